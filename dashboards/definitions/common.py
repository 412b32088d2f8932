"""SQL fragments and variables shared by the three dashboards.

The failure definitions live here once so the health dashboard, the runs dashboard and the alert
rules' documentation agree on what "incomplete", "truncated" and "hung" mean (span contract §4).
"""
from __future__ import annotations

from ..builder import Json, custom_variable, datasource_variable, query_variable, textbox_variable

IS_ERROR = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
"""A failed call: the hook sets ERROR status for every outcome but completed/cancelled and for failed terminal statuses."""

IS_INCOMPLETE = (
    "(SpanAttributes['streamtriage.call.mode'] = 'stream' AND LlmTerminalSeen = 0"
    " AND LlmOutcome NOT IN ('cancelled', 'app_error', 'http_error'))"
)
"""A stream that started but never got its terminal marker, and not because the app stopped reading."""

IS_TRUNCATED = (
    "(LlmFinishReason = 'length' OR SpanAttributes['streamtriage.incomplete_reason'] IN"
    " ('max_output_tokens', 'max_completion_tokens', 'max_prompt_tokens'))"
)
"""Output cut by a token budget: chat ``finish_reason=length`` or an ``incomplete_details.reason``."""

NON_TERMINAL = "('queued', 'in_progress', 'requires_action', 'cancelling')"
"""Poll statuses that mean "not finished yet" (contract §4.3)."""

POLL_READ_OK = "(SpanAttributes['error.type'] = '' AND LlmStatus NOT IN ('', 'unknown', 'error'))"
"""A poll that read a status; a failed read (timeout, cancelled helper: the hook writes status "error") says
nothing about the object."""
LATEST_STATUS = f"argMaxIf(LlmStatus, Timestamp, {POLL_READ_OK})"
"""An object's latest status, from its last successful poll."""

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
