-- Doorstep server store, schema 13 (SQLite): attachments' bytes (issue 20, ADR 0023).
-- Inside the database, so encrypted with the server's key like everything else and in its
-- backups. A blob is addressed by its SHA-256; its bytes are kept in chunks in upload
-- order (`pos`: the chunk's first byte); `received` bytes from the start are held, and
-- `complete` once the whole blob was checked against its hash. `uploader` is the device
-- whose limit it counts against. `blob_refs`: the households whose documents reference a
-- blob, as the server checked them (a device may only move blobs of households it may
-- see); erasing a household deletes its rows, and the blobs no other household references.
-- Released migrations are never edited.

CREATE TABLE blobs (
    hash       BLOB PRIMARY KEY,
    size       INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    complete   INTEGER NOT NULL,
    uploader   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX blobs_uploader ON blobs (uploader);

CREATE TABLE blob_chunks (
    hash  BLOB NOT NULL,
    pos   INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (hash, pos)
);

CREATE TABLE blob_refs (
    hash   BLOB NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (hash, doc_id)
) WITHOUT ROWID;
CREATE INDEX blob_refs_doc ON blob_refs (doc_id);

-- What arrived of a cut chunk (at most one per blob, starting at `blobs.received`): not
-- checked yet; the next chunk brings the rest and the hash of the whole chunk.
CREATE TABLE blob_tails (
    hash  BLOB PRIMARY KEY,
    pos   INTEGER NOT NULL,
    bytes BLOB NOT NULL
);
