-- Doorstep server store, schema 1 (SQLite). Released migrations are never edited.

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE stations (
    station_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE workers (
    worker_id  TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A device is one install of the app for one worker. The token and the one-time
-- enrolment code are stored as SHA-256 hashes only.
CREATE TABLE devices (
    device_id      TEXT PRIMARY KEY,
    worker_id      TEXT NOT NULL REFERENCES workers(worker_id),
    station_id     TEXT NOT NULL REFERENCES stations(station_id),
    code_hash      TEXT UNIQUE,
    code_expires   INTEGER,
    token_hash     TEXT UNIQUE,
    enrolled_at    INTEGER,
    revoked_at     INTEGER
) WITHOUT ROWID;

-- One row per household document: its station, and a compacted snapshot.
CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY,
    station_id     TEXT NOT NULL REFERENCES stations(station_id),
    snapshot       BLOB,
    snapshot_seq   INTEGER NOT NULL DEFAULT 0,
    changes_since_snapshot INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX documents_station ON documents(station_id, doc_id);

-- The append-only change log of each station: every accepted change gets the next
-- sequence number of its station.
CREATE TABLE change_log (
    station_id    TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    doc_id        TEXT NOT NULL,
    hash          BLOB NOT NULL,
    bytes         BLOB NOT NULL,
    origin_device TEXT NOT NULL,
    PRIMARY KEY (station_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX change_log_hash ON change_log(doc_id, hash);
CREATE INDEX change_log_doc ON change_log(doc_id, seq);

-- Card issuances found in household documents: lookups by serial, duplicates to review.
CREATE TABLE cards (
    card_id    TEXT PRIMARY KEY,
    doc_id     TEXT NOT NULL,
    station_id TEXT NOT NULL,
    serial     TEXT NOT NULL,
    status     TEXT NOT NULL,
    issued_by  TEXT NOT NULL,
    issued_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX cards_serial ON cards(station_id, serial);
CREATE INDEX cards_doc ON cards(doc_id);
CREATE INDEX cards_worker ON cards(station_id, issued_by, issued_at);
