-- LLM facts from the span contract (docs/span-contract.md section 5) as MATERIALIZED columns:
-- computed at insert from SpanAttributes, never part of an INSERT, so the exporter's 22-column
-- INSERT stays valid and dashboards filter on real columns.
ALTER TABLE {db}.otel_traces
    ADD COLUMN IF NOT EXISTS LlmSpan LowCardinality(String) MATERIALIZED SpanAttributes['streamtriage.span'],
    ADD COLUMN IF NOT EXISTS LlmApi LowCardinality(String) MATERIALIZED SpanAttributes['streamtriage.api'],
    ADD COLUMN IF NOT EXISTS LlmModel LowCardinality(String) MATERIALIZED SpanAttributes['gen_ai.request.model'],
    ADD COLUMN IF NOT EXISTS LlmOutcome LowCardinality(String) MATERIALIZED SpanAttributes['streamtriage.outcome'],
    ADD COLUMN IF NOT EXISTS LlmStatus LowCardinality(String) MATERIALIZED SpanAttributes['streamtriage.status'],
    ADD COLUMN IF NOT EXISTS LlmFinishReason LowCardinality(String) MATERIALIZED JSONExtractString(SpanAttributes['gen_ai.response.finish_reasons'], 1),
    ADD COLUMN IF NOT EXISTS LlmTerminalSeen UInt8 MATERIALIZED SpanAttributes['streamtriage.terminal.seen'] = 'true',
    ADD COLUMN IF NOT EXISTS LlmInputTokens UInt32 MATERIALIZED toUInt32OrZero(SpanAttributes['gen_ai.usage.input_tokens']),
    ADD COLUMN IF NOT EXISTS LlmOutputTokens UInt32 MATERIALIZED toUInt32OrZero(SpanAttributes['gen_ai.usage.output_tokens']),
    ADD COLUMN IF NOT EXISTS LlmTtfeMs Float64 MATERIALIZED toFloat64OrZero(SpanAttributes['streamtriage.ttfe_ms']),
    ADD COLUMN IF NOT EXISTS LlmMaxGapMs Float64 MATERIALIZED toFloat64OrZero(SpanAttributes['streamtriage.max_gap_ms'])
