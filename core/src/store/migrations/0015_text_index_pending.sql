-- Doorstep device store, schema 15: texts whose search index waits (ADR 0027).
--
-- A keystroke used to rewrite its whole text into ix_text_src and ix_text, so its cost
-- grew with the text's length. Now it marks the text here, in its own transaction (the
-- mark is as durable as the change), and the text is indexed later, once: by
-- `Store::flush_search_index`, which every search calls first and the app calls when
-- typing pauses, or by any pass that rewrites the record's texts anyway (finalising or
-- editing the visit, a merge of changes from elsewhere, `rebuild_index`), which removes
-- the marks it covers. Keys as in ix_text_src: the household's 16 bytes, the record's
-- (16 bytes, or text for a key that is not a UUID), the field's name.
CREATE TABLE ix_text_pending (
    household_id BLOB NOT NULL,
    entity_id    BLOB NOT NULL,
    field        TEXT NOT NULL,
    PRIMARY KEY (household_id, entity_id, field)
) WITHOUT ROWID;
