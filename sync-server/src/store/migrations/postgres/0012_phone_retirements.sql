-- Phone retention (issue 15, ADR 0025): see the SQLite migration of the same number.
CREATE TABLE phone_retirements (
    doc_id      TEXT PRIMARY KEY,
    station_id  TEXT NOT NULL,
    retired_at  BIGINT NOT NULL,
    reopened_at BIGINT
);
CREATE INDEX phone_retirements_station ON phone_retirements(station_id) WHERE reopened_at IS NULL;
