-- Migration 0010: what each stored document is (issue 17, ADR 0021; see the SQLite file).
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT 'household';
UPDATE documents SET kind = 'station' WHERE doc_id = station_id;
CREATE INDEX documents_station_kind ON documents(station_id, kind);
