-- Doorstep device store, schema 9: the worker's caseload (issue 16, ADR 0019).
--
-- The server says in every answer what the worker may see; a household that left their
-- scope (reassigned, the worker moved team or role) is removed from this device once its
-- edits are pushed. One row per such household: the id, when this device was told, when it
-- removed it (NULL while its edits wait to be pushed) and how many of its changes were
-- discarded (the server refused them). No personal data. The role and team are in `meta`.
CREATE TABLE departed (
    doc_id     TEXT PRIMARY KEY,
    left_at    INTEGER NOT NULL,
    removed_at INTEGER,
    discarded  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
