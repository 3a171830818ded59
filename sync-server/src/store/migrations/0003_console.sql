-- Doorstep server store, schema 3 (SQLite): the console's read model, accounts, sessions
-- and access log (docs/console.md, ADR 0015). Released migrations are never edited.

-- One row per household document, as of log sequence `seq` (rebuildable from the
-- documents: `doorstep-server console rebuild`).
CREATE TABLE rm_households (
    doc_id      TEXT PRIMARY KEY,
    station_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    code        TEXT NOT NULL,
    village     TEXT NOT NULL,
    status      TEXT NOT NULL,
    categories  TEXT NOT NULL,  -- space-separated tags and person categories
    visits      INTEGER NOT NULL,
    last_visit  TEXT,           -- YYYY-MM-DD
    open_needs  INTEGER NOT NULL,
    conflicts   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rm_households_station ON rm_households(station_id, code);

-- Chinese full-text search: a trigram index (queries of three or more characters) over the
-- household's text; shorter queries scan it with instr().
CREATE VIRTUAL TABLE rm_search USING fts5(
    doc_id UNINDEXED,
    station_id UNINDEXED,
    body,
    tokenize = 'trigram'
);

CREATE TABLE rm_visits (
    doc_id     TEXT NOT NULL,
    visit_id   TEXT NOT NULL,
    station_id TEXT NOT NULL,
    date       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    workers    TEXT NOT NULL,  -- space-separated worker ids
    PRIMARY KEY (doc_id, visit_id)
) WITHOUT ROWID;
CREATE INDEX rm_visits_date ON rm_visits(station_id, date);

CREATE TABLE rm_follow_ups (
    doc_id       TEXT NOT NULL,
    follow_up_id TEXT NOT NULL,
    station_id   TEXT NOT NULL,
    what         TEXT NOT NULL,
    due          TEXT NOT NULL,
    assignee     TEXT NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (doc_id, follow_up_id)
) WITHOUT ROWID;
CREATE INDEX rm_follow_ups_due ON rm_follow_ups(station_id, status, due);

-- Facts the monthly report counts, one row per record: a visit (day: its date; dim1: its
-- kind; dim2: the worker who opened it), a need, an inquiry or a card (day: the station-time
-- date it was recorded; dim1: category / topic / serial; dim2: status).
CREATE TABLE rm_facts (
    doc_id     TEXT NOT NULL,
    fact       TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    station_id TEXT NOT NULL,
    day        TEXT NOT NULL,
    dim1       TEXT NOT NULL,
    dim2       TEXT NOT NULL,
    PRIMARY KEY (doc_id, fact, item_id)
) WITHOUT ROWID;
CREATE INDEX rm_facts_day ON rm_facts(station_id, day);

-- Console accounts: a supervisor of one station (roles come with the need-to-know issue).
CREATE TABLE console_accounts (
    account_id    TEXT PRIMARY KEY,
    station_id    TEXT NOT NULL REFERENCES stations(station_id),
    login         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,  -- Argon2id, PHC string
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
) WITHOUT ROWID;

-- A supervisor's identity as a writer of household documents (ADR 0015): a worker and a
-- device of her station that never enrol (their code expired at creation), an automerge
-- actor bound to that device in `signers` like a phone's, and the Ed25519 seed the server
-- signs her decisions with (in the encrypted database).
CREATE TABLE console_signers (
    account_id TEXT PRIMARY KEY REFERENCES console_accounts(account_id),
    worker_id  TEXT NOT NULL REFERENCES workers(worker_id),
    device_id  TEXT NOT NULL REFERENCES devices(device_id),
    actor      BLOB NOT NULL,
    seed       BLOB NOT NULL
) WITHOUT ROWID;

-- Sessions by the SHA-256 of their cookie; the CSRF token is per session.
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES console_accounts(account_id),
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Failed logins per login name, for throttling.
CREATE TABLE console_login_failures (
    login TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX console_login_failures_login ON console_login_failures(login, at);

-- Every page view and export: who, what, which record (ids only), when.
CREATE TABLE console_access (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    what       TEXT NOT NULL,
    target     TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX console_access_station ON console_access(station_id, at);
