-- Doorstep device store, migration 0010: the access log (issue 16).
--
-- One row each time a household's case file was opened on this device
-- (`Store::open_case_file`): which household, who, on which device, when (this device's
-- clock, ms). Ids and times only, never a name or a note. Rows are appended, sent to the
-- server with the next sync (`synced` once the response to a request that carried them is
-- applied; `in_flight`: carried by every request built since the last response) and
-- deleted only with their household when the server erases it (or with the whole store).
CREATE TABLE access_log (
    id        INTEGER PRIMARY KEY,
    household BLOB NOT NULL,
    worker    BLOB NOT NULL,
    device    BLOB NOT NULL,
    at        INTEGER NOT NULL,
    synced    INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_log_household ON access_log (household, at);
CREATE INDEX access_log_unsynced ON access_log (id) WHERE synced = 0;
CREATE INDEX access_log_in_flight ON access_log (id) WHERE in_flight = 1;

-- Append-only: what was recorded is never rewritten.
CREATE TRIGGER access_log_append_only
BEFORE UPDATE OF household, worker, device, at ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access log is append-only');
END;
