-- Doorstep device store, schema 6: households the server erased (issue 15, ADR 0016).
--
-- When the server says a household was erased, the device deletes everything it held of
-- it (document, changes, signatures, index and search rows, upload status) and keeps only
-- this row: the id, why (a code), when, and how many of this device's changes to it had
-- not reached the server and were discarded, so the app can tell the worker.
CREATE TABLE erased (
    doc_id     TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    erased_at  INTEGER NOT NULL,
    removed_at INTEGER NOT NULL,
    discarded  INTEGER NOT NULL
) WITHOUT ROWID;
