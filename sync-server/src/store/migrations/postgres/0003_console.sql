-- Doorstep server store, schema 3 (PostgreSQL): the console's read model, accounts,
-- sessions and access log (docs/console.md, ADR 0015). Released migrations are never edited.
CREATE TABLE rm_households (
    doc_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    code TEXT NOT NULL,
    village TEXT NOT NULL,
    status TEXT NOT NULL,
    categories TEXT NOT NULL,
    visits BIGINT NOT NULL,
    last_visit TEXT,
    open_needs BIGINT NOT NULL,
    conflicts BIGINT NOT NULL,
    -- Chinese search: lower-cased text matched with strpos() (a scan of one station).
    search_text TEXT NOT NULL
);
CREATE INDEX rm_households_station ON rm_households(station_id, code);
CREATE TABLE rm_visits (
    doc_id TEXT NOT NULL,
    visit_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    date TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    workers TEXT NOT NULL,
    PRIMARY KEY (doc_id, visit_id)
);
CREATE INDEX rm_visits_date ON rm_visits(station_id, date);
CREATE TABLE rm_follow_ups (
    doc_id TEXT NOT NULL,
    follow_up_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    what TEXT NOT NULL,
    due TEXT NOT NULL,
    assignee TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (doc_id, follow_up_id)
);
CREATE INDEX rm_follow_ups_due ON rm_follow_ups(station_id, status, due);
CREATE TABLE rm_facts (
    doc_id TEXT NOT NULL,
    fact TEXT NOT NULL,
    item_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    day TEXT NOT NULL,
    dim1 TEXT NOT NULL,
    dim2 TEXT NOT NULL,
    PRIMARY KEY (doc_id, fact, item_id)
);
CREATE INDEX rm_facts_day ON rm_facts(station_id, day);
CREATE TABLE console_accounts (
    account_id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE TABLE console_signers (
    account_id TEXT PRIMARY KEY REFERENCES console_accounts(account_id),
    worker_id TEXT NOT NULL REFERENCES workers(worker_id),
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    actor BYTEA NOT NULL,
    seed BYTEA NOT NULL
);
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES console_accounts(account_id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE console_login_failures (
    login TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX console_login_failures_login ON console_login_failures(login, at);
CREATE TABLE console_access (
    id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    what TEXT NOT NULL,
    target TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX console_access_station ON console_access(station_id, at);
