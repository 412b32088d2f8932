"""Every simulator scenario, sync and async, with the real SDK: the hook is invisible to the app
(differential test) and its spans carry the facts the scenario implies.

One run without the hook and one with it per (scenario, mode); the hooked run's spans are checked
against the scenario's ``expected_*`` fields (outcome, terminal seen, finish reason, status).
"""
from __future__ import annotations

from typing import Any, Iterator

import openai
import pytest

from streamtriage.simulator import run_simulator
from streamtriage.simulator.scenarios import SCENARIOS, Scenario

from .scenario_check import check_scenario


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with run_simulator() as handle:
        yield handle


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.name)
def test_scenario(sim: Any, sc: Scenario, mode: str) -> None:
    if int(openai.__version__.split(".")[0]) < sc.min_sdk:
        pytest.skip("call not in this SDK")
    check_scenario(sim.base_url, sc, mode)
