-- Doorstep server store, schema 2 (PostgreSQL): signed changes (ADR 0012), card rows per
-- document. Released migrations are never edited.
CREATE TABLE signers (
    actor BYTEA PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE REFERENCES devices(device_id),
    public_key BYTEA NOT NULL,
    bound_at BIGINT NOT NULL
);
CREATE TABLE doc_signatures (
    doc_id TEXT NOT NULL,
    actor BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    sig BYTEA NOT NULL,
    PRIMARY KEY (doc_id, actor)
);
ALTER TABLE cards DROP CONSTRAINT cards_pkey;
ALTER TABLE cards ADD PRIMARY KEY (doc_id, card_id);
DROP INDEX IF EXISTS cards_doc;
