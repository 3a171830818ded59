-- Doorstep server store, schema 13 (PostgreSQL): attachments' bytes (issue 20, ADR 0023),
-- as bytea in chunks; see the SQLite migration of the same number for the meaning.

CREATE TABLE blobs (
    hash       BYTEA PRIMARY KEY,
    size       BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    complete   BOOLEAN NOT NULL,
    uploader   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX blobs_uploader ON blobs (uploader);

CREATE TABLE blob_chunks (
    hash  BYTEA NOT NULL,
    pos   BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (hash, pos)
);

CREATE TABLE blob_refs (
    hash   BYTEA NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (hash, doc_id)
);
CREATE INDEX blob_refs_doc ON blob_refs (doc_id);

CREATE TABLE blob_tails (
    hash  BYTEA PRIMARY KEY,
    pos   BIGINT NOT NULL,
    bytes BYTEA NOT NULL
);
