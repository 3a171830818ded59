-- Doorstep device store: needs surveys (issue 17, ADR 0022) — survey documents, the
-- responses kept in the households' documents, and their answers for counting.
--
-- `ix_surveys` holds one row per survey document (`documents.kind` 'survey'). `ix_responses`
-- and `ix_survey_answers` come from the household documents (their `responses` records) and
-- go with their household (erasure, caseload purge). A withdrawn response has its
-- `ix_responses` row and no answer rows: only submitted responses are counted. Free-text
-- answers are counted as answered (`option` '' and no number), never copied here.
CREATE TABLE ix_surveys (
    -- UUIDs as 16 bytes (doorstep_key)
    survey_id BLOB PRIMARY KEY,
    title     TEXT NOT NULL,
    versions  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ix_responses (
    response_id  BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    person_id    BLOB NOT NULL,
    survey_id    BLOB NOT NULL,
    version_id   BLOB NOT NULL,
    status       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_responses_survey ON ix_responses (survey_id, person_id);
CREATE INDEX ix_responses_household ON ix_responses (household_id);

CREATE TABLE ix_survey_answers (
    response_id  BLOB NOT NULL,
    household_id BLOB NOT NULL,
    survey_id    BLOB NOT NULL,
    version_id   BLOB NOT NULL,
    question     TEXT NOT NULL,
    -- the option code (single, multiple), the point as text (scale), '' otherwise
    option       TEXT NOT NULL,
    -- the number (number, scale)
    number       INTEGER,
    PRIMARY KEY (response_id, question, option)
) WITHOUT ROWID;
CREATE INDEX ix_survey_answers_count ON ix_survey_answers (survey_id, version_id, question, option);
CREATE INDEX ix_survey_answers_household ON ix_survey_answers (household_id);

-- Documents stored before get their rows from a whole reindex at the next open.
INSERT OR IGNORE INTO meta (key, value)
    SELECT 'rebuild_index', x'01'
    WHERE EXISTS (SELECT 1 FROM documents);
