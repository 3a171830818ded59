-- Erasure (issue 15, ADR 0016).
--
-- An erased household's log entries keep their sequence numbers (gap-free) but lose their
-- bytes and hash (kind 1); one more entry (kind 2) tells the station's devices. The ledger
-- records ids, when, who and a reason code: no personal data.
ALTER TABLE change_log ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;

CREATE TABLE erasures (
    doc_id     TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    erased_at  INTEGER NOT NULL,
    erased_by  TEXT NOT NULL,
    reason     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX erasures_station ON erasures(station_id, erased_at);

-- Space freed before this version may still hold deleted bytes: the store vacuums once
-- when it opens (from now on `secure_delete` zeroes what is deleted).
INSERT OR REPLACE INTO server_meta (key, value) VALUES ('vacuum_pending', '1');
