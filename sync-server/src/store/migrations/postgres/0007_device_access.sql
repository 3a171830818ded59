-- Migration 0007: case files opened on the phones (issue 16). See the SQLite migration of
-- the same number: ids and times only; once per (device, household, at); deleted with the
-- household when it is erased.
CREATE TABLE device_access (
    device_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    station_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, doc_id, at)
);
CREATE INDEX device_access_doc ON device_access(doc_id, at);
CREATE INDEX device_access_station ON device_access(station_id, at);
