"""The Grafana alert conditions as Prometheus rules over the collector's ``/metrics``.

For users who alert from Prometheus. Metric names are listed in ``docs/metrics.md``; thresholds
come from :mod:`thresholds` so both rule sets fire on the same numbers. Checked with
``promtool check rules`` and unit-tested with ``promtool test rules`` (``prometheus/*.test.yaml``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from streamtriage.contract.facts import NON_TERMINAL_STATUSES, TRUNCATING_INCOMPLETE_REASONS

from . import thresholds as T
from .definitions.common import DEFAULT_COLLECTOR_URL

RULES_FILE = Path(__file__).resolve().parent / "prometheus" / "streamtriage-rules.yaml"
TESTS_FILE = Path(__file__).resolve().parent / "prometheus" / "streamtriage-rules.test.yaml"


def _m(seconds: int) -> str:
    return f"{seconds // 60}m"


def _kb(collector_url: str, kb_id: str) -> str:
    return f"{collector_url.rstrip('/')}/api/kb/{kb_id}?format=md"


def render_rules(collector_url: str = DEFAULT_COLLECTOR_URL) -> dict[str, Any]:
    fw, tw = _m(T.FAILURE_WINDOW_S), _m(T.TRUNCATION_WINDOW_S)
    inc = 'streamtriage_incidents{category="incomplete_stream"}'
    recent, base = _m(T.INCOMPLETE_RECENT_S), _m(T.INCOMPLETE_BASELINE_S - T.INCOMPLETE_RECENT_S)
    windows = (T.INCOMPLETE_BASELINE_S - T.INCOMPLETE_RECENT_S) // T.INCOMPLETE_RECENT_S
    rules = [
        {
            "alert": "StreamtriageFailureRateHigh",
            "expr": (f'(\n  sum by (service) (rate(streamtriage_calls_total{{status="Error"}}[{fw}]))\n'
                     f"  /\n  sum by (service) (rate(streamtriage_calls_total[{fw}]))\n) > {T.FAILURE_RATE}\n"
                     f"and on (service)\n"
                     f"sum by (service) (increase(streamtriage_calls_total[{fw}])) >= {T.FAILURE_MIN_CALLS}"),
            "for": T.FAILURE_FOR,
            "labels": {"severity": "warning", "component": "streamtriage", "category": "failure_rate"},
            "annotations": {
                "summary": "{{ $labels.service }}: {{ humanizePercentage $value }} of LLM calls failed",
                "description": f"More than {T.FAILURE_RATE:.0%} of the service's LLM calls ended with an ERROR "
                               f"status over {fw}. Each classified call names its knowledge-base entry in the "
                               "LLM incidents dashboard and at /api/incidents.",
                "runbook_url": f"{collector_url.rstrip('/')}/api/incidents?service={{{{ $labels.service }}}}",
            },
        },
        {
            "alert": "StreamtriageIncompleteStreamSpike",
            "expr": (f"delta({inc}[{recent}]) >= {T.INCOMPLETE_SPIKE_MIN}\n"
                     f"and\n"
                     f"delta({inc}[{recent}])\n"
                     f"  >= {T.INCOMPLETE_SPIKE_FACTOR} * clamp_min(\n"
                     f"    (delta({inc}[{base}] offset {recent}) "
                     f"/ {windows}) or ({inc} * 0),\n"
                     f"    1)"),
            "for": T.INCOMPLETE_FOR,
            "labels": {"severity": "critical", "component": "streamtriage", "category": "incomplete_stream"},
            "annotations": {
                "summary": "{{ $value | humanize }} more incomplete streams in the last " + recent,
                "description": f"At least {T.INCOMPLETE_SPIKE_MIN} streams ended without their terminal event in "
                               f"{recent}, {T.INCOMPLETE_SPIKE_FACTOR}x the {recent} average of the {base} before. Usual KB "
                               "entries: llm/peer-closed-incomplete-chunked-read (upstream or proxy cut the body), "
                               "llm/stream-stall-no-idle-timeout (stall without an idle timeout).",
                "runbook_url": _kb(collector_url, "llm/peer-closed-incomplete-chunked-read"),
            },
        },
        {
            "alert": "StreamtriagePollingHangOpen",
            "expr": f"max by (api) (streamtriage_polling_hang_oldest_seconds) > {T.HANG_AFTER_S}",
            "for": T.HANG_FOR,
            "labels": {"severity": "warning", "component": "streamtriage", "category": "polling_hang"},
            "annotations": {
                "summary": "A {{ $labels.api }} object has been polled for {{ humanizeDuration $value }} "
                           "without finishing",
                "description": f"The oldest polled object still {' / '.join(NON_TERMINAL_STATUSES)} is older "
                               f"than {_m(T.HANG_AFTER_S)}. KB: llm/assistants-poll-loop-no-deadline (runs), "
                               "llm/assistants-requires-action-expired (requires_action), "
                               "llm/responses-background-poll-or-resume-failure (background responses), "
                               "llm/vector-store-indexing-stuck-or-not-ready (vector stores).",
                "runbook_url": _kb(collector_url, "llm/assistants-poll-loop-no-deadline"),
            },
        },
        {
            "alert": "StreamtriageTruncationRateHigh",
            "expr": (f"(\n  sum by (model) (rate(streamtriage_truncated_calls_total[{tw}]))\n"
                     f"  /\n  sum by (model) (rate(streamtriage_calls_total[{tw}]))\n) > {T.TRUNCATION_RATE}\n"
                     f"and on (model)\n"
                     f"sum by (model) (increase(streamtriage_calls_total[{tw}])) >= {T.TRUNCATION_MIN_CALLS}"),
            "for": T.TRUNCATION_FOR,
            "labels": {"severity": "warning", "component": "streamtriage", "category": "truncation"},
            "annotations": {
                "summary": "{{ $labels.model }}: {{ humanizePercentage $value }} of calls cut by a token budget",
                "description": f"More than {T.TRUNCATION_RATE:.0%} of this model's calls over {tw} ended with "
                               "finish_reason=length or incomplete_details "
                               f"{' / '.join(TRUNCATING_INCOMPLETE_REASONS)} (the same definition as the "
                               "Truncations panel). KB: "
                               "llm/finish-reason-length-output-cap, llm/reasoning-tokens-exhaust-output-budget.",
                "runbook_url": _kb(collector_url, "llm/finish-reason-length-output-cap"),
            },
        },
        {
            "alert": "StreamtriageCollectorSpooling",
            "expr": "increase(streamtriage_spans_spooled_total[5m]) > 0",
            "for": T.SPOOLING_FOR,
            "labels": {"severity": "critical", "component": "streamtriage", "category": "collector"},
            "annotations": {
                "summary": "Collector {{ $labels.instance }} is spooling spans to disk",
                "description": "The store (ClickHouse) is unreachable or too slow, so the collector is writing "
                               "spans to its on-disk spool; they are replayed when it recovers. Check /readyz, "
                               "streamtriage_store_up and streamtriage_spool_bytes (see docs/dashboards.md, "
                               "collector spooling).",
                "runbook_url": f"{collector_url.rstrip('/')}/readyz",
            },
        },
        {
            "alert": "StreamtriageStoreDown",
            "expr": "streamtriage_store_up == 0",
            "for": T.SPOOLING_FOR,
            "labels": {"severity": "critical", "component": "streamtriage", "category": "collector"},
            "annotations": {
                "summary": "Collector {{ $labels.instance }} cannot reach its store",
                "description": "The last store operation failed; spans go to the spool until the store is back.",
                "runbook_url": f"{collector_url.rstrip('/')}/readyz",
            },
        },
    ]
    return {"groups": [{"name": "streamtriage-llm", "interval": "1m", "rules": rules}]}


def render_rules_yaml(collector_url: str = DEFAULT_COLLECTOR_URL) -> str:
    from .export import dump_yaml

    return ("# Generated from streamtriage/dashboards/prometheus.py; do not edit by hand.\n"
            "# Metrics: docs/metrics.md. Tests: streamtriage-rules.test.yaml (promtool test rules).\n"
            + dump_yaml(render_rules(collector_url)))
