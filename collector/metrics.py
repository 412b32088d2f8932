"""Prometheus text exposition for the collector, without a client library.

A handful of counters, gauges and one histogram; rendering is a pure function of the values so
``/metrics`` never touches the store: the store-derived gauges (incidents by category, oldest open
polling hang) are refreshed in the background by ``gauges.py``.
"""
from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
        self.n += 1


class Metrics:
    """Counters the ingest path and the writer bump; thread-safe (writer runs in threads)."""

    COUNTERS = {
        "spans_received": "Spans received in OTLP export requests.",
        "spans_rejected": "Spans rejected one by one (partial success: invalid ids or timestamps, start "
                          "time unset, older than the retention or on/after 2106).",
        "spans_stored": "Spans inserted into the store (directly or replayed from the spool).",
        "spans_spooled": "Spans appended to the on-disk spool because the store was down or slow.",
        "spans_replayed": "Spans replayed from the spool into the store.",
        "store_errors": "Failed store inserts.",
        "requests_refused_overload": "Export requests answered 429/503 because of overload.",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = dict.fromkeys(self.COUNTERS, 0)
        self.requests: dict[int, int] = {}
        self.write_latency = Histogram()
        self.request_latency = Histogram()
        self.calls: dict[tuple[str, ...], list[int]] = {}  # (service, model, api, outcome, status) -> [calls, truncated]

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.values[name] += amount

    def count_calls(self, tally: Iterable[tuple[tuple[str, ...], int, int]]) -> None:
        """Add a batch's call-span tally (see ``decode_worker.tally_calls``) once the batch is accepted."""
        with self._lock:
            for key, n, truncated in tally:
                c = self.calls.setdefault(key, [0, 0])
                c[0] += n
                c[1] += truncated

    def request(self, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1
            self.request_latency.observe(seconds)

    def observe_write(self, seconds: float) -> None:
        with self._lock:
            self.write_latency.observe(seconds)

    def render(self, gauges: dict[str, tuple[str, float]], labelled: dict[str, tuple[str, str, dict[str, float]]]) -> str:  # noqa: E501
        """Exposition text. ``gauges``: name -> (help, value); ``labelled``: name -> (help, label, {label_value: v})."""
        lines: list[str] = []
        with self._lock:
            for name, help_text in self.COUNTERS.items():
                metric = f"streamtriage_{name}_total"
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter", f"{metric} {self.values[name]}"]
            metric = "streamtriage_export_requests_total"
            lines += [f"# HELP {metric} OTLP export requests by HTTP status.", f"# TYPE {metric} counter"]
            lines += [f'{metric}{{code="{code}"}} {n}' for code, n in sorted(self.requests.items())]
            _call_counters(lines, self.calls)
            _histogram(lines, "streamtriage_store_write_seconds", "Store insert latency per batch.", self.write_latency)
            _histogram(lines, "streamtriage_export_request_seconds", "OTLP export request latency.", self.request_latency)
        for name, (help_text, value) in gauges.items():
            metric = f"streamtriage_{name}"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", f"{metric} {value:g}"]
        for name, (help_text, label, values) in labelled.items():
            metric = f"streamtriage_{name}"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
            lines += [f'{metric}{{{label}="{_escape(k)}"}} {v:g}' for k, v in sorted(values.items())]
        return "\n".join(lines) + "\n"


_CALL_LABELS = ("service", "model", "api", "outcome", "status")


def _call_counters(lines: list[str], calls: dict[tuple[str, ...], list[int]]) -> None:
    for index, metric, help_text, labels in (
        (0, "streamtriage_calls_total", "LLM calls received (call spans), by outcome and span status.", _CALL_LABELS),
        (1, "streamtriage_truncated_calls_total", "LLM calls cut by a token budget (finish_reason length or an "
                                                  "incomplete reason naming max_*_tokens).", _CALL_LABELS[:3]),
    ):
        merged: dict[tuple[str, ...], int] = {}
        for key, values in calls.items():
            merged[key[:len(labels)]] = merged.get(key[:len(labels)], 0) + values[index]
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        for key, n in sorted(merged.items()):
            pairs = ",".join(f'{name}="{_escape(str(v))}"' for name, v in zip(labels, key, strict=False))
            lines.append(f"{metric}{{{pairs}}} {n}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(lines: list[str], metric: str, help_text: str, h: Histogram) -> None:
    lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} histogram"]
    running = 0
    for bound, count in zip(h.buckets, h.counts, strict=False):
        running += count
        lines.append(f'{metric}_bucket{{le="{bound:g}"}} {running}')
    lines.append(f'{metric}_bucket{{le="+Inf"}} {h.n}')
    lines += [f"{metric}_sum {h.total:.6f}", f"{metric}_count {h.n}"]
