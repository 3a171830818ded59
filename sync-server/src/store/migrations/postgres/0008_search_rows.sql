-- Doorstep server store, schema 8 (PostgreSQL): nothing to change. On SQLite this schema
-- finds a household's console search row by its rowid (the FTS5 table has no index on its
-- doc_id); PostgreSQL keeps the search text in indexed tables. The number is kept so both
-- backends name the same schema version.
SELECT 1;
