-- Doorstep device store, schema 14: attachments (issue 20, ADR 0023).
--
-- `attachment_blobs`: the bytes of an attachment this device holds, per household (the same
-- bytes attached in two households are held twice, so erasing one household removes exactly
-- its bytes), addressed by SHA-256. Inside the SQLCipher store, so encrypted at rest like
-- everything else. `held` is how many bytes of `data` are there: all of them (`size`) once
-- captured or downloaded whole; fewer while a download is under way (it resumes there).
-- `attachment_uploads`: this device's upload queue, one row per blob captured here:
-- `state` 'pending' | 'done' | 'failed', `sent` bytes the server has confirmed, `reason` a
-- code for a failure (never content).
CREATE TABLE attachment_blobs (
    doc_id TEXT NOT NULL,
    hash   BLOB NOT NULL,
    size   INTEGER NOT NULL,
    held   INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (doc_id, hash)
);

CREATE TABLE attachment_uploads (
    doc_id    TEXT NOT NULL,
    hash      BLOB NOT NULL,
    size      INTEGER NOT NULL,
    state     TEXT NOT NULL,
    sent      INTEGER NOT NULL,
    reason    TEXT,
    queued_at INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
) WITHOUT ROWID;

CREATE INDEX attachment_uploads_state ON attachment_uploads (state);
