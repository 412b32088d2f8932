-- Collectors sharing one store register here (a heartbeat per classification loop), so the live
-- ones can split the classification work by a hash of the call's key (classifier/replicas.py).
CREATE TABLE IF NOT EXISTS {db}.streamtriage_classifier_replicas (
    ReplicaId String,
    LastSeen DateTime64(3)
) ENGINE = ReplacingMergeTree(LastSeen)
ORDER BY ReplicaId
TTL toDateTime(LastSeen) + toIntervalDay(1)
