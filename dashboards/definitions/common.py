"""SQL fragments and variables shared by the three dashboards.

The failure definitions ("incomplete", "truncated", "hung") are the span contract's derived facts
from ``streamtriage.contract.facts``, the same ones the collector's ``/metrics`` and the classifier
use; they are only given their dashboard names here.
"""
from __future__ import annotations

from streamtriage.contract import facts

from ..builder import Json, custom_variable, datasource_variable, query_variable, textbox_variable

IS_ERROR = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
"""A failed call: the hook sets ERROR status for every outcome but completed/cancelled and for failed terminal statuses."""

IS_INCOMPLETE = facts.INCOMPLETE_SQL
IS_TRUNCATED = facts.TRUNCATED_SQL
NON_TERMINAL = facts.NON_TERMINAL_SQL
POLL_READ_OK = facts.POLL_READ_OK_SQL
LATEST_STATUS = facts.OBJECT_STATUS_SQL
OPEN_FOR_S = facts.OBJECT_OPEN_S_SQL

PROVIDER = "if(SpanAttributes['gen_ai.provider.name'] = '', 'openai', SpanAttributes['gen_ai.provider.name'])"
"""A span's provider (``gen_ai.provider.name``: openai, anthropic); poll spans carry none and poll OpenAI objects."""
LABEL_PROVIDER = "if(ApiKind = 'messages', 'anthropic', 'openai')"
"""A label's provider: the labels table has no provider column, and ``messages`` is the one Anthropic API kind."""

CALLS = "LlmSpan = 'call'"
POLLS = "LlmSpan = 'poll'"

SPAN_FILTERS = (
    "$__conditionalAll(ServiceName IN (${service}), $service)\n"
    "  AND $__conditionalAll(LlmModel IN (${model}), $model)\n"
    "  AND $__conditionalAll(LlmApi IN (${api}), $api)\n"
    f"  AND $__conditionalAll({PROVIDER} IN (${{provider}}), $provider)"
)
LABEL_FILTERS = (
    "$__conditionalAll(ServiceName IN (${service}), $service)\n"
    "  AND $__conditionalAll(Model IN (${model}), $model)\n"
    "  AND $__conditionalAll(ApiKind IN (${api}), $api)\n"
    f"  AND $__conditionalAll({LABEL_PROVIDER} IN (${{provider}}), $provider)"
)
LABELS = "streamtriage_labels FINAL"
LIVE_LABELS = "IsDeleted = 0 AND Muted = 0"  # not withdrawn, not hidden by a mute (classifier/feedback.py)

DEFAULT_COLLECTOR_URL = "http://localhost:4318"
DEFAULT_DATABASE = "default"


def filter_variables() -> list[Json]:
    """Data source plus provider / service / model / API kind, all multi-value with "All" as the default."""
    return [
        datasource_variable(),
        query_variable(
            "provider", "Provider",
            f"SELECT DISTINCT {PROVIDER} AS provider FROM otel_traces WHERE $__timeFilter(Timestamp) "
            "AND LlmSpan = 'call' ORDER BY provider",
            "gen_ai.provider.name of the SDK the call went through: openai, anthropic.",
        ),
        query_variable(
            "service", "Service",
            "SELECT DISTINCT ServiceName FROM otel_traces WHERE $__timeFilter(Timestamp) AND LlmSpan != '' "
            "ORDER BY ServiceName",
            "service.name of the instrumented app (resource attribute).",
        ),
        query_variable(
            "model", "Model",
            "SELECT DISTINCT LlmModel FROM otel_traces WHERE $__timeFilter(Timestamp) AND LlmSpan != '' "
            "AND LlmModel != '' ORDER BY LlmModel",
            "gen_ai.request.model; calls without a model (Assistants runs, vector stores) show only under All.",
        ),
        query_variable(
            "api", "API kind",
            "SELECT DISTINCT LlmApi FROM otel_traces WHERE $__timeFilter(Timestamp) AND LlmApi != '' ORDER BY LlmApi",
            "streamtriage.api: chat.completions, responses, assistants.runs, vector_stores.*, messages (Anthropic)",
        ),
    ]


def collector_variables() -> list[Json]:
    """Where the KB is served and which database holds the traces (for the trace-view link)."""
    return [
        textbox_variable("collector_url", "Collector URL", DEFAULT_COLLECTOR_URL,
                         "Base URL of the streamtriage collector; KB entries are served at /api/kb/{id}?format=md."),
        textbox_variable("database", "Trace database", DEFAULT_DATABASE,
                         "ClickHouse database holding otel_traces, used by the trace-view link.", hide=2),
    ]


def hang_variable() -> Json:
    return custom_variable(
        "hang_after_s", "Hang after (s)", ["60", "300", "600", "1800", "3600"], "600",
        "A polled object still queued / in_progress / requires_action for longer than this counts as a hang.",
    )
