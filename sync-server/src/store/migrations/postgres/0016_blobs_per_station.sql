-- Doorstep server store (PostgreSQL): blobs are kept, and deduplicated, per station (issue
-- 20, ADR 0032); see the SQLite migration of the same number. The `hash` columns hold the
-- station id's 16 bytes followed by the SHA-256.
-- Released migrations are never edited.

CREATE TEMP TABLE blob_keys ON COMMIT DROP AS
    SELECT DISTINCT r.hash AS hash,
           decode(replace(d.station_id, '-', ''), 'hex') || r.hash AS key
    FROM blob_refs r JOIN documents d ON d.doc_id = r.doc_id
    WHERE octet_length(r.hash) = 32;

INSERT INTO blobs (hash, size, received, complete, uploader, created_at, touched_at)
    SELECT k.key, b.size, b.received, b.complete, b.uploader, b.created_at, b.touched_at
    FROM blobs b JOIN blob_keys k ON k.hash = b.hash;
INSERT INTO blob_chunks (hash, pos, bytes)
    SELECT k.key, c.pos, c.bytes FROM blob_chunks c JOIN blob_keys k ON k.hash = c.hash;
INSERT INTO blob_tails (hash, pos, bytes)
    SELECT k.key, t.pos, t.bytes FROM blob_tails t JOIN blob_keys k ON k.hash = t.hash;
INSERT INTO blob_refs (hash, doc_id)
    SELECT decode(replace(d.station_id, '-', ''), 'hex') || r.hash, r.doc_id
    FROM blob_refs r JOIN documents d ON d.doc_id = r.doc_id
    WHERE octet_length(r.hash) = 32;

DELETE FROM blob_chunks WHERE octet_length(hash) = 32;
DELETE FROM blob_tails WHERE octet_length(hash) = 32;
DELETE FROM blobs WHERE octet_length(hash) = 32;
DELETE FROM blob_refs WHERE octet_length(hash) = 32;
