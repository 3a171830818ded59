-- Need-to-know (issue 16, ADR 0019): see the SQLite migration of the same number.
--
-- A worker of role 'worker' sees the households assigned to them or to their team; a
-- 'supervisor' sees the station; a 'county' account has no caseload on a phone. Scope
-- changes reach the worker's devices as log entries of kind 3 (`doc_id`: the household,
-- `origin_device`: the worker, `bytes`: entered or left and when).
ALTER TABLE workers ADD COLUMN role TEXT NOT NULL DEFAULT 'worker';
ALTER TABLE workers ADD COLUMN team TEXT;
-- The furthest log position the server has answered a device with (written at least when
-- an answer tells it a household left its scope): a device cannot claim an older cursor to
-- write to a household it was already told it no longer holds.
ALTER TABLE devices ADD COLUMN served_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE assignments (
    doc_id      TEXT PRIMARY KEY,
    station_id  TEXT NOT NULL,
    worker_id   TEXT,
    team        TEXT,
    assigned_at BIGINT NOT NULL,
    assigned_by TEXT NOT NULL
);
CREATE INDEX assignments_worker ON assignments(worker_id);
CREATE INDEX assignments_team ON assignments(station_id, team);
CREATE INDEX change_log_scope ON change_log(doc_id, origin_device, seq) WHERE kind = 3;

-- Households from before scopes: assigned to the worker whose device first wrote them.
INSERT INTO assignments (doc_id, station_id, worker_id, team, assigned_at, assigned_by)
SELECT d.doc_id, d.station_id,
       (SELECT dv.worker_id FROM change_log c JOIN devices dv ON dv.device_id = c.origin_device
         WHERE c.doc_id = d.doc_id AND c.kind = 0 ORDER BY c.seq LIMIT 1),
       NULL, 0, 'migration'
FROM documents d
WHERE d.doc_id <> d.station_id;
