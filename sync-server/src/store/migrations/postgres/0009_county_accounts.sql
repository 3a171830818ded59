-- Migration 0009: county console accounts (issue 16, ADR 0020). See the SQLite migration of
-- the same number: a console account is a station's `supervisor` (with its station) or a
-- `county` account (no station of its own) that reads the stations granted to it.
ALTER TABLE console_accounts
    ADD COLUMN role TEXT NOT NULL DEFAULT 'supervisor' CHECK (role IN ('supervisor', 'county'));
ALTER TABLE console_accounts ALTER COLUMN station_id DROP NOT NULL;
ALTER TABLE console_accounts ADD CONSTRAINT console_accounts_role_station
    CHECK ((role = 'supervisor') = (station_id IS NOT NULL));
CREATE TABLE console_account_stations (
    account_id TEXT NOT NULL REFERENCES console_accounts(account_id),
    station_id TEXT NOT NULL REFERENCES stations(station_id),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, station_id)
);
CREATE INDEX console_account_stations_station ON console_account_stations(station_id);
