-- Doorstep server store (SQLite): blobs are kept, and deduplicated, per station (issue 20,
-- ADR 0032). The `hash` column of `blobs`, `blob_chunks`, `blob_tails` and `blob_refs` now
-- holds a blob's key: the 16 bytes of its station's id followed by the 32 bytes of its
-- SHA-256. A device of one station can no longer learn from a status that another station
-- holds some bytes, nor skip sending them. A blob that households of two stations reference
-- is copied, once per station; a blob no household references (none should exist: a blob
-- is started only for a referencing household) is dropped.
-- Released migrations are never edited.

CREATE TEMP TABLE blob_keys AS
    SELECT DISTINCT r.hash AS hash,
           CAST(unhex(replace(d.station_id, '-', '')) || r.hash AS BLOB) AS key
    FROM blob_refs r JOIN documents d ON d.doc_id = r.doc_id
    WHERE length(r.hash) = 32;

INSERT INTO blobs (hash, size, received, complete, uploader, created_at, touched_at)
    SELECT k.key, b.size, b.received, b.complete, b.uploader, b.created_at, b.touched_at
    FROM blobs b JOIN blob_keys k ON k.hash = b.hash;
INSERT INTO blob_chunks (hash, pos, bytes)
    SELECT k.key, c.pos, c.bytes FROM blob_chunks c JOIN blob_keys k ON k.hash = c.hash;
INSERT INTO blob_tails (hash, pos, bytes)
    SELECT k.key, t.pos, t.bytes FROM blob_tails t JOIN blob_keys k ON k.hash = t.hash;
INSERT INTO blob_refs (hash, doc_id)
    SELECT CAST(unhex(replace(d.station_id, '-', '')) || r.hash AS BLOB), r.doc_id
    FROM blob_refs r JOIN documents d ON d.doc_id = r.doc_id
    WHERE length(r.hash) = 32;

DELETE FROM blob_chunks WHERE length(hash) = 32;
DELETE FROM blob_tails WHERE length(hash) = 32;
DELETE FROM blobs WHERE length(hash) = 32;
DELETE FROM blob_refs WHERE length(hash) = 32;
DROP TABLE blob_keys;
