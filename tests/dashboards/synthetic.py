"""A realistic span + label data set, made with the real OpenTelemetry SDK, following the span contract.

Used until the simulator -> hooks -> collector -> classifier pipeline is available in-tree: every
scenario is a call the contract describes (healthy streams, peer-closed and stalled streams,
truncations, a poll loop that never ends, a stuck vector-store file, a run waiting in
requires_action), emitted as OTel spans with explicit times, turned into rows by the collector's own OTLP decode and
row conversion, and labelled the way the classifier would. :class:`Truth` records what was injected
so the tests compare panel output with it instead of with hard-coded numbers.
"""
from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from streamtriage.collector.otlp_decode import PROTOBUF, parse_request
from streamtriage.collector.span_rows import INSERT_COLUMNS, convert

SCOPE = "streamtriage.instrumentation.openai"
NS = 1_000_000_000
MS = 1_000_000


@dataclass(frozen=True)
class CallRecord:
    service: str
    model: str
    api: str
    at: datetime
    failed: bool
    truncated: bool


@dataclass(frozen=True)
class LabelRecord:
    kb_id: str
    category: str
    model: str
    at: datetime


@dataclass
class Truth:
    """What the data set contains, counted while it was generated."""

    calls: int = 0
    failed: int = 0
    incomplete: int = 0
    truncated: int = 0
    hung_objects: set[str] = field(default_factory=set)
    requires_action_wait_s: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)          # kb id -> live labels
    categories: Counter[str] = field(default_factory=Counter)      # category -> live labels
    open_labels: int = 0
    withdrawn_kb_ids: set[str] = field(default_factory=set)        # only ever present as deleted labels
    failed_trace_ids: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    apis: set[str] = field(default_factory=set)
    per_model_calls: Counter[str] = field(default_factory=Counter)
    per_model_truncations: Counter[str] = field(default_factory=Counter)
    calls_log: list[CallRecord] = field(default_factory=list)
    labels_log: list[LabelRecord] = field(default_factory=list)
    hung_last_poll: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # object -> (api, last poll)
    per_service_calls: Counter[str] = field(default_factory=Counter)
    start: datetime | None = None
    end: datetime | None = None


def collector_rows(spans: list[ReadableSpan]) -> list[list[Any]]:
    """``otel_traces`` rows through the collector's ingest path: OTLP protobuf encode -> decode -> convert."""
    body = encode_spans(spans).SerializeToString()
    converted = convert(parse_request(body, PROTOBUF))
    if converted.rejected:
        raise AssertionError(f"collector rejected synthetic spans: {converted.error_message}")
    return converted.rows


LABEL_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ServiceName", "Model", "ApiKind", "KbId", "Category", "Title", "RootCause",
    "Confidence", "FixRatePrior", "FixRateObserved", "EvidenceCount", "Evidence", "Alternatives", "Fingerprint",
    "Outcome", "IsOpen", "RuleVersion", "Version", "IsDeleted",
]

KB = {
    "llm/peer-closed-incomplete-chunked-read": ("incomplete_stream", "Peer closed the connection in the middle of the response body", 0.7),
    "llm/stream-stall-no-idle-timeout": ("incomplete_stream", "Stream stalled and no idle timeout ended it", 0.8),
    "llm/finish-reason-length-output-cap": ("truncation", "Output stopped at the max_tokens cap", 0.9),
    "llm/reasoning-tokens-exhaust-output-budget": ("truncation", "Reasoning tokens used up the output budget", 0.85),
    "llm/assistants-poll-loop-no-deadline": ("polling_hang", "Poll loop without a deadline on a run that never finishes", 0.75),
    "llm/vector-store-indexing-stuck-or-not-ready": ("polling_hang", "Vector store file stuck in in_progress", 0.6),
    "llm/assistants-requires-action-expired": ("polling_hang", "Run waiting in requires_action expired", 0.8),
}


class _Builder:
    def __init__(self, t0: datetime, rng: random.Random) -> None:
        self.t0 = t0
        self.rng = rng
        self.truth = Truth()
        self.exporters: list[InMemorySpanExporter] = []
        self.labels: list[list[Any]] = []
        self._tracers: dict[str, Tracer] = {}

    def tracer(self, service: str) -> Tracer:
        if service not in self._tracers:
            exporter = InMemorySpanExporter()
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            self.exporters.append(exporter)
            self._tracers[service] = provider.get_tracer(SCOPE, "0.1.0")
            self.truth.services.add(service)
        return self._tracers[service]

    def ns(self, offset_s: float) -> int:
        return int((self.t0 + timedelta(seconds=offset_s)).timestamp() * NS)

    def label(self, span_ctx: Any, at_ns: int, service: str, model: str, api: str, kb_id: str, outcome: str,
              *, is_open: int = 0, version: int = 1, deleted: int = 0) -> None:
        category, title, prior = KB[kb_id]
        self.labels.append([
            at_ns, f"{span_ctx.trace_id:032x}", f"{span_ctx.span_id:016x}", service, model, api, kb_id, category,
            title, f"root cause of {kb_id}", 0.6 + 0.3 * self.rng.random(), prior, None, 3, "[]", "[]",
            uuid.uuid4().hex[:16], outcome, is_open, 1, version, deleted,
        ])

    # --- scenarios ------------------------------------------------------------------------------

    def stream_call(self, service: str, model: str, api: str, at_s: float, *, outcome: str = "completed",
                    finish: str = "stop", incomplete_reason: str = "", ttfe_ms: float = 250.0,
                    max_gap_ms: float = 80.0, duration_s: float = 2.0, kb_id: str = "") -> None:
        tracer = self.tracer(service)
        op = "chat" if api == "chat.completions" else "responses"
        start = self.ns(at_s)
        end = start + int(duration_s * NS)
        terminal = outcome == "completed"
        failed = outcome not in ("completed", "cancelled") or bool(incomplete_reason)
        attrs: dict[str, Any] = {
            "streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": api,
            "streamtriage.call.mode": "stream", "streamtriage.outcome": outcome,
            "streamtriage.terminal.seen": terminal, "gen_ai.operation.name": op, "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai", "gen_ai.request.model": model, "gen_ai.request.max_tokens": 512,
            "streamtriage.ttfe_ms": ttfe_ms, "streamtriage.max_gap_ms": max_gap_ms,
            "streamtriage.event.count": 12, "streamtriage.delta.count": 10, "streamtriage.delta.bytes": 400,
            "streamtriage.request.fingerprint": uuid.uuid4().hex[:16], "streamtriage.retry.count": 0,
            "streamtriage.sdk.name": "openai-python", "streamtriage.sdk.version": "3.54.0",
            "streamtriage.transport.name": "httpx2", "streamtriage.transport.version": "1.0.0",
            "server.address": "127.0.0.1", "server.port": 8080, "http.response.status_code": 200,
        }
        if terminal:
            attrs["streamtriage.terminal.event"] = "[DONE]" if op == "chat" else (
                "response.incomplete" if incomplete_reason else "response.completed")
            attrs["gen_ai.response.finish_reasons"] = [finish]
            attrs["gen_ai.usage.input_tokens"] = 120
            attrs["gen_ai.usage.output_tokens"] = 512 if finish == "length" else 180
        if incomplete_reason:
            attrs["streamtriage.incomplete_reason"] = incomplete_reason
            attrs["streamtriage.status"] = "incomplete"
        if outcome == "transport_error":
            attrs.update({"error.type": "httpx2.RemoteProtocolError",
                          "streamtriage.exception.type": "httpx2.RemoteProtocolError",
                          "streamtriage.exception.message": "peer closed connection without sending complete "
                                                            "message body (incomplete chunked read)"})
        if outcome == "timeout":
            attrs.update({"error.type": "openai.APITimeoutError", "streamtriage.exception.type": "openai.APITimeoutError"})
        if outcome == "cancelled":
            attrs["streamtriage.cancel.reason"] = "close"
        call = tracer.start_span(f"{op} {model}", kind=SpanKind.CLIENT, start_time=start, attributes=attrs)
        call_ctx = call.get_span_context()
        from opentelemetry import trace as trace_api
        parent = trace_api.set_span_in_context(call)
        etype = "chat.completion.chunk" if op == "chat" else "response.output_text.delta"
        first = start + int(ttfe_ms * MS)
        ev = tracer.start_span(etype, kind=SpanKind.INTERNAL, context=parent, start_time=first, attributes={
            "streamtriage.span": "event", "streamtriage.event.type": etype, "streamtriage.event.index": 0,
            "streamtriage.event.count": 1, "streamtriage.event.gap_ms": ttfe_ms, "streamtriage.api": api,
            "gen_ai.request.model": model})
        ev.end(end_time=first)
        last = end - int(0.05 * NS) if terminal else end - int(max_gap_ms * MS)
        deltas = tracer.start_span(etype, kind=SpanKind.INTERNAL, context=parent, start_time=first + MS, attributes={
            "streamtriage.span": "event", "streamtriage.event.type": etype, "streamtriage.event.index": 1,
            "streamtriage.event.count": 10, "streamtriage.event.bytes": 400, "streamtriage.event.gap_ms": 20.0,
            "streamtriage.event.max_gap_ms": max_gap_ms})
        deltas.end(end_time=max(last, first + MS))
        if terminal:
            name = "[DONE]" if op == "chat" else attrs["streamtriage.terminal.event"]
            done = tracer.start_span(name, kind=SpanKind.INTERNAL, context=parent, start_time=end - MS, attributes={
                "streamtriage.span": "event", "streamtriage.event.type": name, "streamtriage.event.index": 11,
                "streamtriage.event.count": 1, "streamtriage.event.gap_ms": 5.0, "streamtriage.terminal": True})
            done.end(end_time=end - MS)
        if failed:
            call.set_status(Status(StatusCode.ERROR, attrs.get("streamtriage.exception.message", outcome)))
        call.end(end_time=end)
        t = self.truth
        t.calls += 1
        t.per_service_calls[service] += 1
        t.calls_log.append(CallRecord(service, model, api, self.t0 + timedelta(seconds=at_s), failed,
                                      finish == "length" or bool(incomplete_reason)))
        t.per_model_calls[model] += 1
        t.models.add(model)
        t.apis.add(api)
        if failed:
            t.failed += 1
            t.failed_trace_ids.add(f"{call_ctx.trace_id:032x}")
        if outcome in ("transport_error", "timeout", "no_terminal", "error_event"):
            t.incomplete += 1
        if finish == "length" or incomplete_reason:
            t.truncated += 1
            t.per_model_truncations[model] += 1
        if kb_id:
            self.label(call_ctx, start, service, model, api, kb_id, outcome)
            t.labels_log.append(LabelRecord(kb_id, KB[kb_id][0], model, self.t0 + timedelta(seconds=at_s)))
            t.labels[kb_id] += 1
            t.categories[KB[kb_id][0]] += 1

    def polled_object(self, service: str, api: str, object_id: str, at_s: float, statuses: list[tuple[str, float]],
                      *, helper_ends: bool, mode: str = "poll", kb_id: str = "", label_open: bool = False,
                      withdrawn_kb_id: str = "", failed_last_read: bool = False) -> None:
        """A polling-helper call whose polls saw ``statuses`` (status, seconds spent in it, one poll per 30 s)."""
        tracer = self.tracer(service)
        start = self.ns(at_s)
        op = "invoke_agent" if api == "assistants.runs" else (
            "responses" if api == "responses" else "vector_store_indexing")
        attrs = {"streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": api,
                 "streamtriage.call.mode": mode, "streamtriage.object.id": object_id,
                 "gen_ai.operation.name": op, "gen_ai.provider.name": "openai",
                 "streamtriage.request.fingerprint": uuid.uuid4().hex[:16],
                 "streamtriage.sdk.name": "openai-python", "streamtriage.sdk.version": "3.54.0",
                 "streamtriage.transport.name": "httpx2", "streamtriage.transport.version": "1.0.0"}
        call = tracer.start_span(f"{op} {api}", kind=SpanKind.CLIENT, start_time=start, attributes=attrs)
        from opentelemetry import trace as trace_api
        parent = trace_api.set_span_in_context(call)
        t_s, attempt = 0.0, 0
        for status, spent in statuses:
            since = 0.0
            while True:
                attempt += 1
                at = start + int(t_s * NS)
                poll = tracer.start_span(f"poll {api}", kind=SpanKind.CLIENT, context=parent, start_time=at,
                                         attributes={
                    "streamtriage.span": "poll", "streamtriage.api": api, "streamtriage.object.id": object_id,
                    "streamtriage.status": status, "streamtriage.poll.attempt": attempt,
                    "streamtriage.poll.interval_ms": 30000.0, "streamtriage.poll.first_seen_ms": t_s * 1000,
                    "streamtriage.poll.status_since_ms": since * 1000})
                poll.end(end_time=at + 40 * MS)
                if status == "requires_action":
                    self.truth.requires_action_wait_s = max(self.truth.requires_action_wait_s, since)
                if since + 30 > spent:
                    break
                since += 30
                t_s += 30
            t_s += 30
        if failed_last_read:  # the app gave up mid-GET: a poll span with no status, only the exception
            at = start + int((t_s - 20) * NS)
            poll = tracer.start_span(f"poll {api}", kind=SpanKind.CLIENT, context=parent, start_time=at, attributes={
                "streamtriage.span": "poll", "streamtriage.api": api, "streamtriage.object.id": object_id,
                "streamtriage.status": "error", "streamtriage.poll.attempt": attempt + 1,
                "error.type": "openai.APITimeoutError"})
            poll.set_status(Status(StatusCode.ERROR, "Request timed out."))
            poll.end(end_time=at + 5 * MS)
        final = statuses[-1][0]
        end = start + int(t_s * NS)
        if helper_ends:
            call.set_attribute("streamtriage.status", final)
            call.set_attribute("streamtriage.outcome", "completed")
            call.set_attribute("streamtriage.terminal.seen", True)
            call.set_attribute("streamtriage.poll.count", attempt)
            call.end(end_time=end)
            self.truth.calls += 1
            self.truth.per_service_calls[service] += 1
            self.truth.calls_log.append(CallRecord(service, "", api, self.t0 + timedelta(seconds=at_s), False, False))
        ctx = call.get_span_context()
        if final in ("queued", "in_progress", "requires_action", "cancelling") and t_s - 30 >= 600:
            self.truth.hung_objects.add(object_id)
            self.truth.hung_last_poll[object_id] = (api, self.t0 + timedelta(seconds=at_s + t_s - 30))
        self.truth.apis.add(api)
        if kb_id:
            self.label(ctx, start, service, "", api, kb_id, "open", is_open=int(label_open))
            self.truth.labels_log.append(LabelRecord(kb_id, KB[kb_id][0], "", self.t0 + timedelta(seconds=at_s)))
            self.truth.labels[kb_id] += 1
            self.truth.categories[KB[kb_id][0]] += 1
            self.truth.open_labels += int(label_open)
        if withdrawn_kb_id:  # labelled as a hang while open, withdrawn once the run completed
            self.label(ctx, start, service, "", api, withdrawn_kb_id, "open", is_open=1, version=1)
            self.label(ctx, start, service, "", api, withdrawn_kb_id, "completed", is_open=0, version=2, deleted=1)
            self.truth.withdrawn_kb_ids.add(withdrawn_kb_id)


def build_dataset(now: datetime | None = None, seed: int = 7) -> tuple[list[list[Any]], list[list[Any]], Truth]:
    """Spans (otel_traces rows), labels (streamtriage_labels rows) and the truth, ending about ``now``."""
    now = now or datetime.now(timezone.utc)
    t0 = now - timedelta(minutes=30)
    b = _Builder(t0, random.Random(seed))
    rng = b.rng
    for i in range(12):
        b.stream_call("checkout-bot", "gpt-4o-mini", "chat.completions", 10 + 60 * i,
                      ttfe_ms=150 + 200 * rng.random(), max_gap_ms=40 + 100 * rng.random())
    for i in range(3):
        b.stream_call("checkout-bot", "gpt-4o-mini", "chat.completions", 200 + 300 * i, outcome="transport_error",
                      max_gap_ms=120.0, kb_id="llm/peer-closed-incomplete-chunked-read")
    b.stream_call("support-agent", "gpt-4.1", "responses", 400, outcome="timeout", max_gap_ms=30000.0,
                  duration_s=31.0, kb_id="llm/stream-stall-no-idle-timeout")
    for i in range(4):
        b.stream_call("support-agent", "gpt-4.1", "responses", 60 + 240 * i, ttfe_ms=900 + 300 * rng.random())
    for i in range(2):
        b.stream_call("support-agent", "gpt-4.1", "chat.completions", 500 + 400 * i, finish="length",
                      kb_id="llm/finish-reason-length-output-cap")
    b.stream_call("support-agent", "gpt-4.1", "responses", 1300, incomplete_reason="max_output_tokens",
                  kb_id="llm/reasoning-tokens-exhaust-output-budget")
    b.stream_call("checkout-bot", "gpt-4o-mini", "chat.completions", 1500, outcome="cancelled")
    # A burst of peer-closed streams in the last ten minutes (the incomplete-stream spike).
    for i in range(5):
        b.stream_call("checkout-bot", "gpt-4o-mini", "chat.completions", 1250 + 100 * i, outcome="transport_error",
                      max_gap_ms=150.0, kb_id="llm/peer-closed-incomplete-chunked-read")
    for i in range(4):  # recent healthy gpt-4.1 traffic, so the truncation rate has a denominator
        b.stream_call("support-agent", "gpt-4.1", "chat.completions", 1100 + 150 * i)
    # A healthy service: must never fire an alert.
    for i in range(8):
        b.stream_call("search-api", "gpt-4o-mini", "chat.completions", 1220 + 60 * i)
    # A run polled for 27 minutes, never leaving in_progress: the helper's call span never ends.
    b.polled_object("support-agent", "assistants.runs", "run_hang", 120, [("queued", 0), ("in_progress", 1620)],
                    helper_ends=False, kb_id="llm/assistants-poll-loop-no-deadline", label_open=True)
    # A run that waited 90 s for tool outputs, then completed; its open-hang label was withdrawn.
    b.polled_object("support-agent", "assistants.runs", "run_ok", 300,
                    [("queued", 0), ("in_progress", 60), ("requires_action", 90), ("in_progress", 30),
                     ("completed", 0)], helper_ends=True, withdrawn_kb_id="llm/assistants-requires-action-expired")
    # A background response polled to completion.
    b.polled_object("checkout-bot", "responses", "resp_bg", 600, [("queued", 30), ("in_progress", 60),
                                                                   ("completed", 0)], helper_ends=True,
                    mode="background")
    # A vector-store file stuck in in_progress for 12 minutes, still being polled; the last read timed out.
    b.polled_object("support-agent", "vector_stores.files", "file_stuck", 900, [("in_progress", 720)],
                    helper_ends=False, kb_id="llm/vector-store-indexing-stuck-or-not-ready", label_open=True,
                    failed_last_read=True)
    spans = collector_rows([s for e in b.exporters for s in e.get_finished_spans()])
    b.truth.start, b.truth.end = t0, now
    return spans, b.labels, b.truth


def feedback_rows(labels: list[list[Any]]) -> list[list[Any]]:
    """Verdicts on the first label of each entry (columns of ``classifier.feedback.COLUMNS``): peer-closed
    confirmed, the output cap marked wrong, so the precision panel has both ends."""
    verdicts = {"llm/peer-closed-incomplete-chunked-read": ("confirm", ""),
                "llm/finish-reason-length-output-cap": ("wrong", "llm/structured-output-length-limit-error")}
    out, seen = [], set()
    for row in labels:
        tid, sid, service, kb_id = row[1], row[2], row[3], row[6]
        if kb_id in verdicts and kb_id not in seen:
            seen.add(kb_id)
            kind, right = verdicts[kb_id]
            out.append(["call", f"{tid}/{sid}", kind, tid, sid, service, kb_id, right, "qa", "", len(out) + 1])
    return out


SPAN_COLUMNS = list(INSERT_COLUMNS)
