-- Doorstep server store (SQLite): when a blob's upload last moved (issue 20, ADR 0029).
-- `touched_at` (ms since the Unix epoch) is set when the upload starts and at every status
-- request, chunk and kept tail; the sweep deletes partial uploads untouched for longer than
-- the configured days. Blobs from before this migration count from when they were started.
-- (Reserved as migration 15 of the branch that wrote it; it runs after every earlier one.)
-- Released migrations are never edited.

ALTER TABLE blobs ADD COLUMN touched_at INTEGER NOT NULL DEFAULT 0;
UPDATE blobs SET touched_at = created_at;
CREATE INDEX blobs_partial ON blobs (touched_at) WHERE complete = 0;
