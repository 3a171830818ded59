-- Migration 0007: case files opened on the phones (issue 16).
--
-- Each device's access log arrives with its syncs: one row per opening of a household's
-- case file on a phone — which household, which worker and device (from the token), when
-- (the phone's clock, ms) and when the server received it. Ids and times only. Kept only
-- for households of the device's own station that the server holds; once per (device,
-- household, at), so a request sent again adds nothing. Deleted with the household when it
-- is erased. The console lists these with its own reads (`console_access`).
CREATE TABLE device_access (
    device_id   TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    station_id  TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, doc_id, at)
) WITHOUT ROWID;
CREATE INDEX device_access_doc ON device_access(doc_id, at);
CREATE INDEX device_access_station ON device_access(station_id, at);
