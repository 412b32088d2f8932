-- The sample size behind FixRateObserved: labelled calls of the entry with a request fingerprint, i.e.
-- the calls whose retries could be looked for. A rate is shown next to its sample everywhere.
ALTER TABLE {db}.streamtriage_labels
    ADD COLUMN IF NOT EXISTS FixRateSample UInt32 DEFAULT 0 AFTER FixRateObserved
