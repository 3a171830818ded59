-- Migration 0009: county console accounts (issue 16, ADR 0020). Released migrations are
-- never edited.
--
-- A console account is a station's `supervisor` (its station in `station_id`, as before)
-- or a `county` account, which belongs to no station (`station_id` NULL) and reads the
-- stations granted to it in `console_account_stations`; it writes nothing.
--
-- SQLite cannot drop a NOT NULL, so `console_accounts` is rebuilt. Foreign keys are on
-- and cannot be turned off inside the migration's transaction: the rows of its two
-- dependants (signers, sessions) are set aside and put back, so that no reference is ever
-- left dangling.
CREATE TEMP TABLE v8_console_signers AS SELECT * FROM console_signers;
CREATE TEMP TABLE v8_console_sessions AS SELECT * FROM console_sessions;
DELETE FROM console_signers;
DELETE FROM console_sessions;

CREATE TABLE console_accounts_v8 (
    account_id    TEXT PRIMARY KEY,
    role          TEXT NOT NULL DEFAULT 'supervisor' CHECK (role IN ('supervisor', 'county')),
    station_id    TEXT REFERENCES stations(station_id),
    login         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,  -- Argon2id, PHC string
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    -- A supervisor has a station; a county account has none (its grants say what it reads).
    CHECK ((role = 'supervisor') = (station_id IS NOT NULL))
) WITHOUT ROWID;
INSERT INTO console_accounts_v8
    (account_id, role, station_id, login, password_hash, created_at, disabled_at)
SELECT account_id, 'supervisor', station_id, login, password_hash, created_at, disabled_at
FROM console_accounts;
DROP TABLE console_accounts;
ALTER TABLE console_accounts_v8 RENAME TO console_accounts;

INSERT INTO console_signers (account_id, worker_id, device_id, actor, seed)
SELECT account_id, worker_id, device_id, actor, seed FROM v8_console_signers;
INSERT INTO console_sessions (session_hash, account_id, csrf, created_at, expires_at)
SELECT session_hash, account_id, csrf, created_at, expires_at FROM v8_console_sessions;
DROP TABLE v8_console_signers;
DROP TABLE v8_console_sessions;

-- The stations a county account reads. Taking a station back deletes its row; the account's
-- next page of that station answers as for an unknown station.
CREATE TABLE console_account_stations (
    account_id TEXT NOT NULL REFERENCES console_accounts(account_id),
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, station_id)
) WITHOUT ROWID;
CREATE INDEX console_account_stations_station ON console_account_stations(station_id);
