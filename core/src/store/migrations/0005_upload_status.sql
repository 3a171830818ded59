-- Doorstep device store, schema 5: what the app shows as "uploaded" (issue 19).
--
-- `documents.uploaded_at`: when (this device's clock, ms) the server last acknowledged heads
-- that cover every change of the document this device held; NULL while none was needed
-- (received from the server, never changed here) or before this schema.
-- `visit_uploads`: per visit written on this device, the newest local change that touched
-- it and when the server's acknowledged heads first covered that change (NULL: pending).

ALTER TABLE documents ADD COLUMN uploaded_at INTEGER;

CREATE TABLE visit_uploads (
    visit_id    TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BLOB NOT NULL,
    uploaded_at INTEGER
) WITHOUT ROWID;

CREATE INDEX visit_uploads_pending ON visit_uploads (doc_id) WHERE uploaded_at IS NULL;
