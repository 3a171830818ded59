-- Doorstep device store, schema 16: compaction sized by bytes (ADR 0038).
--
-- A document's change rows were folded into its snapshot after every 32 of them, and the
-- fold (automerge's save()) costs what the whole history costs: on a long text one
-- keystroke in 32 paid for it. Now the rows are folded once they also reach a share of the
-- snapshot's bytes. `pending_bytes` counts the bytes of the changes appended since the
-- snapshot, as `pending_compaction` counts the changes, so an edit knows the tail's size
-- without reading it; compaction sets both to 0.
ALTER TABLE documents ADD COLUMN pending_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE documents SET pending_bytes = (
    SELECT coalesce(sum(length(bytes)), 0) FROM changes WHERE changes.doc_id = documents.doc_id
);
