"""Every catalogue scenario, driven through the real installed openai SDK (sync and async).

The app's observation must match the ground truth recorded for this SDK line (exception class,
including ``httpx2.*`` on 3.x vs ``httpx.*`` on 1.x/2.x, events received), and the simulator's
log must show the attempts and hang-ups the ground truth describes. The same module runs under
the openai 1.x virtualenv (see test_sim_sdk_matrix.py).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import openai
import pytest

from streamtriage.simulator import run_simulator
from streamtriage.simulator.drivers import Observation, primary_requests, run_scenario
from streamtriage.simulator.scenarios import APIS, CALLS, EXTRA_SCENARIOS, OUTCOMES, SCENARIOS, Scenario

ALL = SCENARIOS + EXTRA_SCENARIOS

SDK = openai.__version__
SDK_MAJOR = int(SDK.split(".")[0])

warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture(scope="module")
def sim() -> Iterator[object]:
    with run_simulator() as handle:
        yield handle


def _ids() -> list[str]:
    return [s.name for s in ALL]


def _check(sc: Scenario, obs: Observation, log: list[dict]) -> None:
    sdk = obs.sdk_version  # the version of the SDK the scenario drove (openai or anthropic)
    view = sc.view(sdk)
    where = f"{sc.name} [{obs.mode}, {sc.sdk} {sdk}]: {obs.to_dict()}"
    assert obs.exception_type == view.exception, where
    if view.cause is not None:
        assert obs.exception is not None and obs.exception.cause == view.cause, where
    if view.events is not None:
        assert obs.event_count == view.events, where
    if sc.api in ("chat.completions", "messages"):  # Anthropic: stop_reason
        assert obs.finish_reason == sc.expected_finish_reason, where
    if sc.expected_status is not None and not (sc.gives_up and "create_and_poll" in sc.call):
        assert obs.status == sc.expected_status, where
    assert obs.gave_up == sc.gives_up, where
    attempts = primary_requests(log, sc)
    assert len(attempts) == sc.attempts(sdk), f"{where}\nlog: {attempts}"
    if sc.attempts(sdk) > 1:  # the SDK's own retries, numbered by x-stainless-retry-count
        assert [e["retry_count"] for e in attempts] == list(range(sc.attempts(sdk))), attempts
    if obs.exception is not None:
        assert obs.exception.chain[0] == obs.exception.type
        if view.exception and view.exception.startswith(("openai.APIConnectionError", "openai.APITimeoutError")):
            transport = "httpx2." if SDK_MAJOR >= 3 else "httpx."
            assert any(c.startswith(transport) for c in obs.exception.chain), where


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", _ids())
def test_scenario_matches_ground_truth(sim, name: str, mode: str) -> None:
    sc = next(s for s in ALL if s.name == name)
    if SDK_MAJOR < sc.min_sdk:
        pytest.skip(f"{sc.call} needs openai >= {sc.min_sdk}")
    obs = run_scenario(sc, sim.base_url, mode)
    log = sim.wait_idle(obs.run_id)
    _check(sc, obs, log)


def test_transport_cuts_are_seen_on_the_wire(sim) -> None:
    """FIN vs RST really differ on the server side, and one cut makes exactly one attempt."""
    for name, end in (("chat-cut-fin", "cut-fin"), ("chat-cut-rst", "cut-rst"), ("chat-cut-length", "cut-fin"),
                      ("responses-cut", "cut-fin"), ("runs-stream-cut", "cut-fin")):
        sc = next(s for s in SCENARIOS if s.name == name)
        obs = run_scenario(sc, sim.base_url, "sync")
        (entry,) = primary_requests(sim.wait_idle(obs.run_id), sc)
        assert entry["end"] == end, entry
        assert entry["events_sent"] == sc.view(SDK).events, entry


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_early_break_then_close_hangs_up_at_once(sim, mode: str) -> None:
    """break + close() sends a FIN the server sees while it still has ~195 chunks to send."""
    sc = next(s for s in SCENARIOS if s.name == "chat-early-break")
    obs = run_scenario(sc, sim.base_url, mode)
    (entry,) = primary_requests(sim.wait_idle(obs.run_id), sc)
    assert obs.event_count == 5
    assert entry["end"] == "client-hangup", entry
    assert entry["hangup_at"] is not None and entry["events_sent"] < 100, entry


def test_timeout_hangs_up_during_the_stall(sim) -> None:
    """The client closes the socket at its read timeout; the server notices before its stall ends."""
    sc = next(s for s in SCENARIOS if s.name == "chat-stall-timeout")
    obs = run_scenario(sc, sim.base_url, "sync")
    (entry,) = primary_requests(sim.wait_idle(obs.run_id), sc)
    assert entry["end"] == "client-hangup", entry
    assert entry["hangup_at"] - entry["started"] < float(sc.params["stall"]), entry


def test_polling_scenarios_keep_polling_until_abandoned(sim) -> None:
    """A stuck run is polled repeatedly with the SDK's poll-helper header; a healthy one stops polling."""
    stuck = next(s for s in SCENARIOS if s.name == "runs-poll-stuck-queued")
    obs = run_scenario(stuck, sim.base_url, "sync")
    polls = [e for e in sim.wait_idle(obs.run_id) if e["method"] == "GET"]
    assert obs.gave_up and len(polls) >= 3 and all(e["poll_helper"] for e in polls), polls
    healthy = next(s for s in SCENARIOS if s.name == "runs-poll-healthy")
    obs = run_scenario(healthy, sim.base_url, "async")
    polls = [e for e in sim.wait_idle(obs.run_id) if e["method"] == "GET"]
    assert obs.status == "completed" and len(polls) == int(healthy.params["polls"]), polls
    limited = next(s for s in SCENARIOS if s.name == "runs-poll-429")
    obs = run_scenario(limited, sim.base_url, "sync")
    polls = [e for e in sim.wait_idle(obs.run_id) if e["method"] == "GET"]
    assert [(e["status"], e["retry_count"]) for e in polls] == [(429, 0), (429, 1)], polls


def test_catalogue_shape() -> None:
    names = [s.name for s in ALL]
    assert len(names) == len(set(names)), "scenario names must be unique"
    assert 30 <= len(SCENARIOS), len(SCENARIOS)
    for sc in ALL:
        assert sc.api in APIS and sc.call in CALLS and sc.expected_outcome in OUTCOMES, sc.name
        assert sc.description and sc.model.startswith("fault/"), sc.name
        if sc.healthy:
            assert sc.expected_kb_id is None and sc.expected_category is None, sc.name
        else:
            assert sc.expected_kb_id or sc.expected_category or sc.expected_outcome != "completed", sc.name
    healthy = [s for s in SCENARIOS if s.healthy]
    assert {"chat-healthy", "chat-slow-healthy", "chat-stall-short", "chat-stall-keepalive"} <= {s.name for s in healthy}


def test_expected_labels_exist_in_the_knowledge_base() -> None:
    from streamtriage.classifier.kb import load_kb

    entries = {e.id: {"category": e.category} for e in load_kb()}
    categories = {e["category"] for e in entries.values()}
    for sc in ALL:
        for kb, category in {sc.expected_label(), sc.expected_label("1.109.1")}:
            if kb is not None:
                assert kb in entries, f"{sc.name}: unknown kb id {kb}"
                assert entries[kb]["category"] == category, f"{sc.name}: {kb} is {entries[kb]['category']}"
            elif category is not None:
                assert category in categories, f"{sc.name}: unknown category {category}"


DETERMINISM_SAMPLE = ("chat-wallclock-cut", "chat-early-break", "chat-error-event-bare",
                      "chat-429", "responses-error-flat", "responses-background-stuck", "runs-stream-cut",
                      "runs-stream-error-event", "runs-poll-stuck-in-progress", "runs-requires-action-expired")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_app_view_is_deterministic(sim, mode: str) -> None:
    """The hooks' differential tests compare app_view() across runs: it must not depend on timing or ids."""
    for name in DETERMINISM_SAMPLE:
        sc = next(s for s in SCENARIOS if s.name == name)
        first, second = (run_scenario(sc, sim.base_url, mode) for _ in range(2))
        assert first.run_id != second.run_id
        assert first.app_view() == second.app_view(), name


def test_break_without_close_keeps_the_response_open(sim) -> None:
    """Ground truth §2.3: breaking out of the loop alone sends nothing; close() then sends the FIN."""
    client = openai.OpenAI(api_key="sk-sim", base_url=sim.base_url, max_retries=0,
                           default_headers={"x-streamtriage-run": "break-no-close"})
    try:
        stream = client.chat.completions.create(model="fault/healthy;n=200;gap=0.01", messages=[], stream=True)
        for i, _ in enumerate(stream):
            if i == 4:
                break
        time.sleep(0.3)
        (entry,) = sim.log("break-no-close")
        assert entry["end"] is None and entry["hangup_at"] is None, entry  # still streaming to nobody
        assert entry["events_sent"] > 5, entry
        stream.close()
        (entry,) = sim.wait_idle("break-no-close")
        assert entry["end"] == "client-hangup" and entry["events_sent"] < 200, entry
    finally:
        client.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_background_resume_replays_from_the_start(sim, mode: str) -> None:
    """Ground truth 2.4: the resume GET carries no starting_after; the server replays everything and the
    SDK drops the events the app already has."""
    sc = next(s for s in ALL if s.name == "responses-background-resume")
    obs = run_scenario(sc, sim.base_url, mode)
    (resume,) = [e for e in sim.wait_idle(obs.run_id) if e["method"] == "GET"]
    assert resume["query"] == "stream=true" and resume["events_sent"] == 17, resume
    cut = "openai.APIConnectionError" if SDK_MAJOR >= 3 else "httpx.RemoteProtocolError"
    assert obs.callbacks == [f"resume_after:{cut}"], obs
    assert obs.events.count("response.created") == 1 and obs.events[-1] == "response.completed", obs
    assert obs.status == "completed" and obs.exception is None, obs
