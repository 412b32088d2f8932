-- One row per labelled call. Re-labelling writes a row with a higher Version; FINAL (or
-- argMax) reads the latest. IsDeleted=1 withdraws a label (a hang that later completed).
CREATE TABLE IF NOT EXISTS {db}.streamtriage_labels (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    Model LowCardinality(String),
    ApiKind LowCardinality(String),
    KbId LowCardinality(String),
    Category LowCardinality(String),
    Title String,
    RootCause String,
    Confidence Float32,
    FixRatePrior Float32,
    FixRateObserved Nullable(Float32),
    EvidenceCount UInt32,
    Evidence String CODEC(ZSTD(1)),
    Alternatives String CODEC(ZSTD(1)),
    Fingerprint String,
    Outcome LowCardinality(String),
    IsOpen UInt8,
    RuleVersion UInt32,
    ClassifiedAt DateTime64(3) DEFAULT now64(3),
    Version UInt64,
    IsDeleted UInt8 DEFAULT 0,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree(Version, IsDeleted)
PARTITION BY toDate(Timestamp)
ORDER BY (TraceId, SpanId)
TTL toDateTime(Timestamp) + toIntervalDay({label_ttl_days})
SETTINGS ttl_only_drop_parts = 1
