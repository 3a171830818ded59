-- Issue 18's leftovers (ADR 0028): see the SQLite migration of the same number.
ALTER TABLE stations ADD COLUMN utc_offset_minutes INTEGER NOT NULL DEFAULT 480;
ALTER TABLE console_login_failures ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX console_login_failures_client ON console_login_failures(client, at);
