-- Doorstep server store, schema 8 (SQLite): the console's search row of a household is found
-- by its rowid, not by a scan. `rm_search.doc_id` is UNINDEXED (FTS5 columns have no
-- b-tree), so `DELETE FROM rm_search WHERE doc_id = ?` read every row of the trigram table
-- on each refresh of the read model: a push cost grew with the server's documents
-- (docs/benchmarks.md, "Caseload scope against the station-wide view"). Released
-- migrations are never edited.

ALTER TABLE rm_households ADD COLUMN search_row INTEGER;

-- One scan of the search table, then a key lookup per household.
CREATE TEMP TABLE search_rows AS SELECT doc_id, max(rowid) AS row FROM rm_search GROUP BY doc_id;
CREATE INDEX temp.search_rows_doc ON search_rows(doc_id);
UPDATE rm_households
   SET search_row = (SELECT row FROM temp.search_rows s WHERE s.doc_id = rm_households.doc_id);
DROP TABLE temp.search_rows;

-- Rows no household points at (none are expected: a refresh replaced both together).
DELETE FROM rm_search WHERE rowid NOT IN (SELECT search_row FROM rm_households WHERE search_row IS NOT NULL);
