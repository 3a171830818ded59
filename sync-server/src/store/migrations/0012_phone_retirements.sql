-- Phone retention (issue 15, ADR 0025): households closed for longer than the phones'
-- period leave every phone of the station and stay on the server until its retention
-- ends. Released migrations are never edited.
--
-- One row per household ever retired: retired while `reopened_at` is NULL; a household
-- reopened keeps its row (the phones' period then counts from `reopened_at`). Ids and
-- times only: no personal data.
CREATE TABLE phone_retirements (
    doc_id      TEXT PRIMARY KEY,
    station_id  TEXT NOT NULL,
    retired_at  INTEGER NOT NULL,
    reopened_at INTEGER
) WITHOUT ROWID;
CREATE INDEX phone_retirements_station ON phone_retirements(station_id) WHERE reopened_at IS NULL;
