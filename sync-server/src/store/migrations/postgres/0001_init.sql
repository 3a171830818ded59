-- Doorstep server store, schema 1 (PostgreSQL). Released migrations are never edited.
CREATE TABLE server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE stations (station_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL REFERENCES workers(worker_id),
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    code_hash TEXT UNIQUE,
    code_expires BIGINT,
    token_hash TEXT UNIQUE,
    enrolled_at BIGINT,
    revoked_at BIGINT
);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    snapshot BYTEA,
    snapshot_seq BIGINT NOT NULL DEFAULT 0,
    changes_since_snapshot BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_station ON documents(station_id, doc_id);
CREATE TABLE change_log (
    station_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    hash BYTEA NOT NULL,
    bytes BYTEA NOT NULL,
    origin_device TEXT NOT NULL,
    PRIMARY KEY (station_id, seq)
);
CREATE UNIQUE INDEX change_log_hash ON change_log(doc_id, hash);
CREATE INDEX change_log_doc ON change_log(doc_id, seq);
CREATE TABLE cards (
    card_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    status TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at BIGINT NOT NULL
);
CREATE INDEX cards_serial ON cards(station_id, serial);
CREATE INDEX cards_doc ON cards(doc_id);
CREATE INDEX cards_worker ON cards(station_id, issued_by, issued_at);
