-- Doorstep server store, schema 2 (SQLite): signed changes (ADR 0012), card rows per
-- document. Released migrations are never edited.

-- The automerge actor each device writes with and the public key it signs with, bound on
-- its first sync: one actor per device, one device per actor, never rebound.
CREATE TABLE signers (
    actor      BLOB PRIMARY KEY,
    device_id  TEXT NOT NULL UNIQUE REFERENCES devices(device_id),
    public_key BLOB NOT NULL,
    bound_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Per document and actor, the newest signature the server holds (sent with bootstraps, and
-- with pulled changes it vouches for).
CREATE TABLE doc_signatures (
    doc_id TEXT NOT NULL,
    actor  BLOB NOT NULL,
    hash   BLOB NOT NULL,
    sig    BLOB NOT NULL,
    PRIMARY KEY (doc_id, actor)
) WITHOUT ROWID;

-- Card rows keyed by document and card: a household that carries another's card id adds a
-- row of its own and never replaces the other's.
CREATE TABLE cards_2 (
    card_id    TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    station_id TEXT NOT NULL,
    serial     TEXT NOT NULL,
    status     TEXT NOT NULL,
    issued_by  TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    PRIMARY KEY (doc_id, card_id)
) WITHOUT ROWID;
INSERT INTO cards_2 SELECT card_id, doc_id, station_id, serial, status, issued_by, issued_at FROM cards;
DROP TABLE cards;
ALTER TABLE cards_2 RENAME TO cards;
CREATE INDEX cards_serial ON cards(station_id, serial);
CREATE INDEX cards_worker ON cards(station_id, issued_by, issued_at);
