-- Doorstep server store, schema 11 (PostgreSQL): the console's read model of station work
-- (ADR 0021); see the SQLite migration of the same number.

CREATE TABLE rm_work (
    doc_id     TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL
);
CREATE INDEX rm_work_station ON rm_work(station_id);
