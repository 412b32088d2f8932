"""The request fingerprint groups a request with its retries: what a retry usually changes (the output
cap, usage reporting, request ids, metadata) is left out; model and messages are kept."""
from __future__ import annotations

import openai

MSGS = [{"role": "user", "content": "hi"}]


def _fingerprint(hooked, url: str, **kw) -> str:
    client = openai.OpenAI(base_url=url, api_key="test", max_retries=0)
    list(client.chat.completions.create(model=kw.pop("model", "mini-healthy"), messages=kw.pop("messages", MSGS),
                                        stream=True, **kw))
    fp = hooked.call().attributes["streamtriage.request.fingerprint"]
    hooked.clear()
    return fp


def test_a_retry_with_another_cap_or_ids_keeps_the_fingerprint(hooked, mini_url) -> None:
    first = _fingerprint(hooked, mini_url, max_tokens=16)
    assert _fingerprint(hooked, mini_url, max_tokens=256) == first
    assert _fingerprint(hooked, mini_url, max_completion_tokens=300, stream_options={"include_usage": True},
                        metadata={"request_id": "r-2"}, user="u-1") == first
    assert _fingerprint(hooked, mini_url, max_tokens=16, extra_body={"request_id": "req_abc",
                                                                     "idempotency_key": "k-9"}) == first
    # a different question or model is a different request
    assert _fingerprint(hooked, mini_url, max_tokens=16, messages=[{"role": "user", "content": "bye"}]) != first
    assert _fingerprint(hooked, mini_url, max_tokens=16, model="mini-healthy-2") != first
    assert _fingerprint(hooked, mini_url, max_tokens=16, temperature=0.1) != first
