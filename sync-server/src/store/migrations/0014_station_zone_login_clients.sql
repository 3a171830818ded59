-- Doorstep server store, schema 14 (SQLite): issue 18's leftovers (ADR 0028).
-- A station's time zone, as a fixed offset from UTC in minutes (480: UTC+08:00, Beijing
-- time, every station's zone until an admin sets another with `station timezone`).
-- Failed console logins keyed by the client too (its address, an IPv6 one by its /64),
-- so throttling counts per login and client, per client, and per login. Rows from before
-- have no client (''): they still count per login for the 15 minutes they are kept.
-- Released migrations are never edited.

ALTER TABLE stations ADD COLUMN utc_offset_minutes INTEGER NOT NULL DEFAULT 480;
ALTER TABLE console_login_failures ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX console_login_failures_client ON console_login_failures(client, at);
