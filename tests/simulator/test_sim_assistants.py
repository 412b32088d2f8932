"""A normal Assistants app, as written from the OpenAI docs, runs against the simulator with the real
SDK (issue 15): assistants, threads with initial messages, create_and_poll, the answer in the message
list; an assistant created with a fault model passes the fault on to its runs."""
from __future__ import annotations

import warnings

import openai
import pytest

from streamtriage.simulator import fault_model, run_simulator


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    with run_simulator() as sim:
        yield openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=5)


def test_normal_assistants_app(client) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the Assistants API is deprecated in the SDK
        assistant = client.beta.assistants.create(model="gpt-4o-mini", name="helper", instructions="Be brief.")
        assert client.beta.assistants.retrieve(assistant.id).name == "helper"
        assert [a.id for a in client.beta.assistants.list().data] == [assistant.id]
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="and again")
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                       poll_interval_ms=10)
        assert run.status == "completed" and run.assistant_id == assistant.id
        messages = client.beta.threads.messages.list(thread_id=thread.id)
        assert [m.role for m in messages.data] == ["assistant", "user", "user"]
        assert messages.data[0].run_id == run.id and messages.data[0].content[0].text.value
        assert client.beta.threads.retrieve(thread.id).id == thread.id
        assert client.beta.threads.delete(thread.id).deleted
        assert client.beta.assistants.delete(assistant.id).deleted
        with pytest.raises(openai.NotFoundError):
            client.beta.assistants.retrieve(assistant.id)


def test_assistant_fault_model_reaches_its_runs(client) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assistant = client.beta.assistants.create(model=fault_model("stuck", status="queued"))
        thread = client.beta.threads.create()
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        for _ in range(3):
            run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert run.status == "queued"
        assert client.beta.threads.messages.list(thread_id=thread.id).data == []


def test_simulate_help_documents_the_fault_syntax() -> None:
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "streamtriage.cli", "simulate", "--help"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "fault/NAME;k=v" in out and "fault/cut;after=3;how=rst" in out and "stuck" in out
