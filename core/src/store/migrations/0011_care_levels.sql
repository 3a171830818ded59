-- Doorstep device store: care levels and the visits-due list (issue 17).
--
-- `ix_care_levels` holds one row per household or person whose care level is set and known
-- to this version: the level and the longest interval between visits it allows
-- (`CareLevel::visit_every_days`), a pure function of the level. The visits-due list reads
-- the strictest interval of a household (its own level and its persons') against its
-- latest visit in `ix_visits`.
CREATE TABLE ix_care_levels (
    -- UUIDs as 16 bytes (doorstep_key); entity_id is the person, or the household itself
    household_id  BLOB NOT NULL,
    entity_id     BLOB NOT NULL,
    level         TEXT NOT NULL,
    interval_days INTEGER NOT NULL,
    PRIMARY KEY (entity_id)
) WITHOUT ROWID;
CREATE INDEX ix_care_levels_household ON ix_care_levels (household_id);

-- Households a phone stored before this schema (an older app keeps fields it does not know,
-- so they may hold care levels a newer phone wrote) get their rows from a whole reindex at
-- the next open, in one transaction with the removal of the request. `OR IGNORE`: a store
-- upgraded from before schema 8 has the request of 0008 already (one rebuild answers both).
INSERT OR IGNORE INTO meta (key, value)
    SELECT 'rebuild_index', x'01'
    WHERE EXISTS (SELECT 1 FROM documents);
