"""Poll spans for loops the app writes itself: vector store files and vector stores watched by hand,
tied to the call that created the object; and ``submit_tool_outputs_and_poll`` as a helper loop."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from streamtriage.simulator import run_simulator
from streamtriage.simulator.faults import FAULT_HEADER, PARAMS_HEADER


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with run_simulator() as handle:
        yield handle


def test_vector_store_file_and_store_polled_by_hand(hooked, sim):
    c = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
    slow = {FAULT_HEADER: "slow-done", PARAMS_HEADER: "polls=2"}
    store = c.vector_stores.create(name="docs", extra_headers=slow)
    upload = c.files.create(file=("a.txt", b"hello\n"), purpose="assistants")
    vf = c.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id, extra_headers=slow)
    statuses = []
    for _ in range(10):
        vf = c.vector_stores.files.retrieve(file_id=vf.id, vector_store_id=store.id)
        statuses.append(vf.status)
        if vf.status != "in_progress":
            break
    vs = c.vector_stores.retrieve(store.id)

    create = [s for s in hooked.kind("call") if s.attributes["streamtriage.api"] == "vector_stores.files"]
    assert len(create) == 1 and create[0].attributes["streamtriage.object.id"] == vf.id
    polls = sorted((p for p in hooked.kind("poll") if p.attributes["streamtriage.api"] == "vector_stores.files"),
                   key=lambda s: s.start_time)
    assert [p.attributes["streamtriage.status"] for p in polls] == statuses
    assert [p.attributes["streamtriage.poll.attempt"] for p in polls] == list(range(1, len(statuses) + 1))
    assert all(p.context.trace_id == create[0].context.trace_id for p in polls)  # one story
    assert all(p.parent.span_id == create[0].context.span_id for p in polls)
    store_poll = [p for p in hooked.kind("poll") if p.attributes["streamtriage.api"] == "vector_stores"]
    assert len(store_poll) == 1
    in_progress = vs.file_counts.in_progress
    assert store_poll[0].attributes["streamtriage.file_counts.in_progress"] == in_progress
    assert store_poll[0].attributes["streamtriage.status"] == ("in_progress" if in_progress > 0 else vs.status)


def test_submit_tool_outputs_and_poll_is_one_loop(hooked, sim):
    c = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
    thread = c.beta.threads.create()
    run = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id="asst_sim",
                                              model="fault/requires-action", poll_interval_ms=20)
    assert run.status == "requires_action"
    hooked.clear()
    calls = run.required_action.submit_tool_outputs.tool_calls
    done = c.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, poll_interval_ms=20,
        tool_outputs=[{"tool_call_id": t.id, "output": "{}"} for t in calls])
    loops = [s for s in hooked.kind("call") if s.attributes.get("streamtriage.call.mode") == "poll"]
    assert len(loops) == 1
    a = loops[0].attributes
    assert a["streamtriage.helper"] == "threads.runs.submit_tool_outputs_and_poll"
    assert a["streamtriage.status"] == done.status
    assert a["streamtriage.object.id"] == run.id
    polls = hooked.kind("poll")
    assert a["streamtriage.poll.count"] == len(polls) >= 1
    assert all(p.parent.span_id == loops[0].context.span_id for p in polls)
    assert all(p.attributes["streamtriage.poll.interval_ms"] == 20.0 for p in polls)
