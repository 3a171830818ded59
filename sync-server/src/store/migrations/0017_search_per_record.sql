-- Doorstep server store, schema 17 (SQLite): the console's search keeps one entry per
-- record of a household (its own texts, each person, visit, amendment, need, inquiry and
-- follow-up) instead of one per household (ADR 0041). A refresh re-indexes only the
-- entries whose text changed: a new visit costs its own words, not the household's whole
-- history again. The trigram index is contentless and keeps no positions (as the phones'
-- since device schema 2, ADR 0011): the text is kept once, in `rm_text`, and every
-- candidate the index gives is checked against it.

ALTER TABLE rm_search RENAME TO rm_search_old;

CREATE TABLE rm_text (
    -- never reused: a new entry always comes above every earlier one (see
    -- `put_read_models`)
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     TEXT NOT NULL,
    station_id TEXT NOT NULL,
    -- `household`, or the record's kind and id (`visit:…`); '' for a household's whole
    -- text carried over from schema 16, replaced at its next refresh
    item       TEXT NOT NULL,
    -- lower-cased, one text per line
    body       TEXT NOT NULL,
    UNIQUE (doc_id, item)
);
CREATE INDEX rm_text_station ON rm_text(station_id);

CREATE VIRTUAL TABLE rm_search USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'trigram'
);

INSERT INTO rm_text (doc_id, station_id, item, body)
    SELECT h.doc_id, h.station_id, '', o.body
    FROM rm_households h JOIN rm_search_old o ON o.rowid = h.search_row
    ORDER BY h.doc_id;
INSERT INTO rm_search (rowid, body) SELECT id, body FROM rm_text;

DROP TABLE rm_search_old;
ALTER TABLE rm_households DROP COLUMN search_row;
