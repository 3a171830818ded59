-- Migration 0010: what each stored document is (issue 17, ADR 0021).
--
-- (Applied after 0008 search rows and 0009 county accounts.)
-- `household` (a case file: scoped by assignments), `station` (the station document, written
-- by admins), `activity` or `resource` (station work: every worker and supervisor of the
-- station sees it; county accounts do not). Set when the document is first accepted, from
-- its ROOT `kind`, which the server never lets change.
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT 'household';
UPDATE documents SET kind = 'station' WHERE doc_id = station_id;
CREATE INDEX documents_station_kind ON documents(station_id, kind);
