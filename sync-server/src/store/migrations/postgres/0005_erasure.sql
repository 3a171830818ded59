-- Erasure (issue 15, ADR 0016): see the SQLite migration of the same number.
ALTER TABLE change_log ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0;
CREATE TABLE erasures (
    doc_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    erased_at BIGINT NOT NULL,
    erased_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX erasures_station ON erasures(station_id, erased_at);
