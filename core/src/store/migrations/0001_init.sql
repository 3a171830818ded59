-- Doorstep device store, schema 1. Released migrations are never edited: add a new file.

-- Facts about this store: its actor id, device id, signed-in worker.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- One row per automerge document (a household case file).
CREATE TABLE documents (
    doc_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    -- automerge save() of the document at the last compaction, or NULL.
    snapshot      BLOB,
    -- incremental changes appended since that snapshot (see `changes`).
    pending_compaction INTEGER NOT NULL DEFAULT 0,
    -- heads the sync server is known to have (concatenated 32-byte hashes).
    server_heads  BLOB NOT NULL DEFAULT x'',
    -- 1 while this device has changes the server has not acknowledged.
    unsynced      INTEGER NOT NULL DEFAULT 1,
    -- why the server refused this document's changes (a wire error code), or NULL; a new
    -- local change clears it so the push is tried again.
    push_error    TEXT,
    -- 1 when this app version cannot read the document (written by a newer app): it is
    -- stored and synced but not indexed until an update and rebuild_index().
    unreadable    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The durable change log: each user action appends one automerge change here, in the same
-- transaction that updates the index. Compaction folds rows into documents.snapshot.
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY,
    doc_id  TEXT NOT NULL REFERENCES documents(doc_id),
    hash    BLOB NOT NULL,
    bytes   BLOB NOT NULL,
    local   INTEGER NOT NULL
);
CREATE UNIQUE INDEX changes_by_doc ON changes(doc_id, hash);

-- The query index: ordinary tables derived from the documents; rebuild_index() recreates it.
CREATE TABLE ix_households (
    household_id TEXT PRIMARY KEY,
    station_id   TEXT NOT NULL,
    code         TEXT NOT NULL,
    village      TEXT NOT NULL,
    address      TEXT NOT NULL,
    status       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_households_village ON ix_households(village, code);

CREATE TABLE ix_persons (
    person_id    TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    birth_date   TEXT,
    relation     TEXT NOT NULL,
    guardian     INTEGER NOT NULL,
    categories   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_persons_household ON ix_persons(household_id);

CREATE TABLE ix_visits (
    visit_id     TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    date         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_visits_date ON ix_visits(date);
CREATE INDEX ix_visits_household ON ix_visits(household_id, date);

CREATE TABLE ix_visit_workers (
    visit_id     TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    household_id TEXT NOT NULL,
    date         TEXT NOT NULL,
    PRIMARY KEY (visit_id, worker_id)
) WITHOUT ROWID;
CREATE INDEX ix_visit_workers_worker ON ix_visit_workers(worker_id, date);
CREATE INDEX ix_visit_workers_household ON ix_visit_workers(household_id);

CREATE TABLE ix_follow_ups (
    follow_up_id TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    origin_visit TEXT,
    due          TEXT NOT NULL,
    assignee     TEXT NOT NULL,
    status       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_follow_ups_due ON ix_follow_ups(status, due);
CREATE INDEX ix_follow_ups_household ON ix_follow_ups(household_id);

CREATE TABLE ix_cards (
    card_id      TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    serial       TEXT NOT NULL,
    visit_id     TEXT,
    person_id    TEXT,
    status       TEXT NOT NULL,
    issued_by    TEXT NOT NULL,
    issued_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_cards_serial ON ix_cards(serial);
CREATE INDEX ix_cards_household ON ix_cards(household_id);

-- Card batches and leases, from the station document.
CREATE TABLE ix_card_batches (
    batch_id TEXT PRIMARY KEY,
    prefix   TEXT NOT NULL,
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ix_card_leases (
    lease_id  TEXT PRIMARY KEY,
    batch_id  TEXT NOT NULL,
    prefix    TEXT NOT NULL,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    expires   TEXT,
    returned  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_card_leases_device ON ix_card_leases(device_id);

-- Open conflicts and parallel updates, one row per field; `detail` is JSON of the values.
CREATE TABLE ix_conflicts (
    household_id TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    field        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    PRIMARY KEY (household_id, entity, entity_id, field)
) WITHOUT ROWID;

-- Full-text search over visit sections, summaries, needs and inquiries. The text lives in
-- ix_text_src (addressable by record and field, so one section is updated per keystroke);
-- ix_text is an external-content FTS5 index over it, kept in step by triggers. The trigram
-- tokenizer indexes every 3-character window, which suits Chinese (no word breaks).
CREATE TABLE ix_text_src (
    id           INTEGER PRIMARY KEY,
    household_id TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    field        TEXT NOT NULL,
    body         TEXT NOT NULL,
    UNIQUE (entity_id, field)
);
CREATE INDEX ix_text_src_household ON ix_text_src(household_id);

CREATE VIRTUAL TABLE ix_text USING fts5(
    body,
    content = 'ix_text_src',
    content_rowid = 'id',
    tokenize = 'trigram'
);
CREATE TRIGGER ix_text_src_ai AFTER INSERT ON ix_text_src BEGIN
    INSERT INTO ix_text(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER ix_text_src_ad AFTER DELETE ON ix_text_src BEGIN
    INSERT INTO ix_text(ix_text, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER ix_text_src_au AFTER UPDATE OF body ON ix_text_src BEGIN
    INSERT INTO ix_text(ix_text, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO ix_text(rowid, body) VALUES (new.id, new.body);
END;
