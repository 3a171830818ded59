-- Doorstep server store, schema 11 (SQLite): the console's read model of station work
-- (ADR 0021): one row per activity or resource document, as of log sequence `seq`, so the
-- monthly report counts activities (their facts are rows of `rm_facts`, `fact = 'activity'`)
-- and a refresh never replaces a newer state with an older one. Rebuildable from the
-- documents (`doorstep-server console rebuild`). Released migrations are never edited.

CREATE TABLE rm_work (
    doc_id     TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL   -- activity | resource | survey
) WITHOUT ROWID;
CREATE INDEX rm_work_station ON rm_work(station_id);
