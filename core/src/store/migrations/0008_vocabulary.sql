-- Doorstep device store, schema 8: controlled vocabularies (issue 17, ADR 0018).
--
-- `ix_vocabulary` indexes the station's vocabulary extension (the entries its station
-- document carries, written by the server) and `ix_vocabulary_version` its version: like
-- the workers' labels, a pure function of the station document, rewritten when it changes.
-- The built-in defaults are compiled into the core, not stored.
--
-- `ix_categories` holds one row per category value of a person (`categories`) or household
-- (`tags`): the value as stored (a code, or free text from before vocabularies) and the code
-- it counts under (the value when it is a code; the one code the text unambiguously means;
-- NULL for other text). Lists and counts by category read the code.
CREATE TABLE ix_vocabulary (
    code     TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    parent   TEXT,
    label_zh TEXT NOT NULL,
    label_en TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE ix_vocabulary_version (
    version INTEGER NOT NULL
);

CREATE TABLE ix_categories (
    -- UUIDs as 16 bytes (doorstep_key); entity_id is the person, or the household for a tag
    household_id BLOB NOT NULL,
    entity_id    BLOB NOT NULL,
    stored       TEXT NOT NULL,
    code         TEXT,
    PRIMARY KEY (entity_id, stored)
) WITHOUT ROWID;
CREATE INDEX ix_categories_code ON ix_categories (code, household_id);
CREATE INDEX ix_categories_household ON ix_categories (household_id);

-- Existing households get their rows (and the station document its vocabulary rows) from
-- a whole reindex at the next open, in one transaction with the removal of the request.
INSERT INTO meta (key, value)
    SELECT 'rebuild_index', x'01'
    WHERE EXISTS (SELECT 1 FROM documents);
