"""The hook on the older openai lines (1.x and 2.x: httpx transport, raw ``httpx.*`` errors,
``_sleep_for_retry`` retry loop): a subset of the catalogue, sync and async, run in each line's
virtualenv in a subprocess with the same differential + span check as the 3.x run."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import REPO
from tests.support.sdk_lines import OLDER_LINES, python_for

SUBSET = [
    "chat-healthy", "chat-healthy-helper", "chat-no-done", "chat-cut-fin", "chat-stall-timeout", "chat-done-hold",
    "chat-error-event", "chat-429", "chat-early-break", "responses-healthy-helper", "responses-cut",
    "responses-background-healthy", "runs-stream-healthy", "runs-stream-cut", "runs-poll-stuck-queued",
    "vs-file-healthy",
]
SCRIPT = """
import json, sys, traceback
import openai
from streamtriage.simulator import run_simulator
from streamtriage.simulator.scenarios import BY_NAME
from tests.instrumentation.scenario_check import check_scenario
results = {}
with run_simulator() as sim:
    for name in json.loads(sys.argv[1]):
        for mode in ("sync", "async"):
            try:
                check_scenario(sim.base_url, BY_NAME[name], mode)
                results[name + "/" + mode] = "ok"
            except BaseException:
                results[name + "/" + mode] = traceback.format_exc()[-1500:]
print(json.dumps({"sdk": openai.__version__, "results": results}))
"""


@pytest.mark.parametrize("major", sorted(OLDER_LINES))
def test_hook_on_older_openai(major: str) -> None:
    from streamtriage.simulator.scenarios import BY_NAME

    names = [n for n in SUBSET if n in BY_NAME]
    assert len(names) == len(SUBSET)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(python_for(major)), "-c", SCRIPT, json.dumps(names)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sdk"].startswith(f"{major}.")
    failed = {k: v for k, v in out["results"].items() if v != "ok"}
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())
    assert len(out["results"]) == 2 * len(names)
