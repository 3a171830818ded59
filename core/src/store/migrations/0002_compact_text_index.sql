-- Doorstep device store, schema 2: a smaller full-text index (ADR 0011).
--
-- Schema 1 kept a plain copy of every searchable text (ix_text_src.body) and an
-- external-content FTS5 trigram index with positions over it: together about 2.6× the
-- text. Schema 2 keeps the copy zstd-compressed (for excerpts and for checking matches)
-- and a contentless trigram index without positions (`detail=none`). Two trailing
-- U+E000 characters are indexed after every text, so that every 1- and 2-character
-- substring starts some indexed trigram: short queries read the vocabulary
-- (ix_text_terms) by term prefix instead of scanning the text. Record ids are stored as
-- their 16 bytes, and one index serves both lookups (by household, by record).
--
-- The store registers on the migrating connection: `doorstep_zstd(text)` (the stored
-- body: a zstd frame, or the text where that is not smaller) and `doorstep_key(text)` (a
-- canonical UUID as its 16 bytes, anything else as it is).

DROP TRIGGER ix_text_src_ai;
DROP TRIGGER ix_text_src_ad;
DROP TRIGGER ix_text_src_au;

CREATE TABLE ix_text_body (
    id           INTEGER PRIMARY KEY,
    -- the UUID's 16 bytes
    household_id BLOB NOT NULL,
    -- the record's UUID as 16 bytes (text if the record key is not a UUID)
    entity_id    BLOB NOT NULL,
    field        TEXT NOT NULL,
    -- a zstd frame of the UTF-8 text (blob), or the text itself where that is shorter
    body         BLOB NOT NULL,
    UNIQUE (household_id, entity_id, field)
);
INSERT INTO ix_text_body (id, household_id, entity_id, field, body)
    SELECT id, doorstep_key(household_id), doorstep_key(entity_id), field, doorstep_zstd(body)
    FROM ix_text_src;

CREATE VIRTUAL TABLE ix_text_words USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'trigram'
);
INSERT INTO ix_text_words (rowid, body)
    SELECT id, body || char(57344, 57344) FROM ix_text_src;

DROP TABLE ix_text;
DROP TABLE ix_text_src;
ALTER TABLE ix_text_body RENAME TO ix_text_src;
ALTER TABLE ix_text_words RENAME TO ix_text;

-- (term, doc) pairs of the index: short queries select the terms that start with them.
CREATE VIRTUAL TABLE ix_text_terms USING fts5vocab(ix_text, 'instance');

-- Removing or rewriting a text row removes its indexed words; the store indexes the new
-- text itself (it has to decompress nothing: it holds the plain text at that point).
CREATE TRIGGER ix_text_src_ad AFTER DELETE ON ix_text_src BEGIN
    DELETE FROM ix_text WHERE rowid = old.id;
END;
CREATE TRIGGER ix_text_src_au AFTER UPDATE OF body ON ix_text_src BEGIN
    DELETE FROM ix_text WHERE rowid = old.id;
END;
