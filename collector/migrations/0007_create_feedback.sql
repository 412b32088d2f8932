-- What people said about labels (classifier/feedback.py). Append-only: the latest row per
-- (Scope, Key) is in force, earlier rows are the audit trail.
--   Scope 'call': Key = 'TraceId/SpanId'; Kind confirm | wrong (RightKbId: the entry that applies,
--                 '' = no incident) | clear (withdraw the verdict).
--   Scope 'mute': Key = 'ServiceName/KbId'; Kind mute | unmute.
CREATE TABLE IF NOT EXISTS {db}.streamtriage_feedback (
    Timestamp DateTime64(3) DEFAULT now64(3),
    Scope LowCardinality(String),
    Key String,
    Kind LowCardinality(String),
    TraceId String,
    SpanId String,
    ServiceName LowCardinality(String),
    KbId LowCardinality(String),
    RightKbId LowCardinality(String),
    Author String,
    Note String,
    Version UInt64
) ENGINE = MergeTree()
ORDER BY (Scope, Key, Version)
;
-- Labels say where they came from: 'rule' (the knowledge base) or 'feedback' (a person's verdict),
-- which entry the rules chose (RuleKbId, kept when a verdict overrides it), and whether a mute
-- hides them (Muted = 1: kept for the record, left out of /api/incidents and the dashboards).
ALTER TABLE {db}.streamtriage_labels
    ADD COLUMN IF NOT EXISTS LabelSource LowCardinality(String) DEFAULT 'rule',
    ADD COLUMN IF NOT EXISTS RuleKbId LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS Muted UInt8 DEFAULT 0
