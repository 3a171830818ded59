-- Doorstep device store, schema 7: the workers' labels (issue 19, ADR 0017).
--
-- The station document carries a label per worker id ("W01 / 张丽"), written by the
-- server. `ix_worker_labels` indexes them like the card batches and leases: a pure function
-- of the station document, rewritten whenever it changes. Labels may be names: like the
-- rest of the store they stay in this encrypted file.
--
-- A store that already holds the station document (an older app may have received labels
-- it did not read) gets no rows from SQL: `reindex_station` in `meta` asks the store to
-- index the document when it next opens, and is removed in the same transaction.
CREATE TABLE ix_worker_labels (
    -- the worker's UUID as 16 bytes (doorstep_key)
    worker_id BLOB PRIMARY KEY,
    label     TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value)
    SELECT 'reindex_station', x'01'
    WHERE EXISTS (SELECT 1 FROM documents WHERE kind = 'station');
