-- Doorstep device store: station-work documents (issue 17, ADR 0021) — group activities,
-- the community resource register, who attended and which resource a need was referred to.
--
-- `ix_activities` and `ix_resources` hold one row per activity or resource document
-- (`documents.kind` 'activity' / 'resource'); their texts go into `ix_text_src` under the
-- document's own id, and their parallel updates into `ix_conflicts` (household_id = the
-- document's id). `ix_attendance` and `ix_referrals` come from the household documents
-- (a person's `activities` set, a need's `resource` cell) and go with their household.
CREATE TABLE ix_activities (
    -- UUIDs as 16 bytes (doorstep_key)
    activity_id    BLOB PRIMARY KEY,
    type           TEXT NOT NULL,
    date           TEXT NOT NULL,
    place          TEXT NOT NULL,
    attendee_count INTEGER
) WITHOUT ROWID;
CREATE INDEX ix_activities_date ON ix_activities (date);

CREATE TABLE ix_resources (
    resource_id  BLOB PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    member_count INTEGER
) WITHOUT ROWID;
CREATE INDEX ix_resources_kind ON ix_resources (kind, name);

CREATE TABLE ix_attendance (
    activity_id  BLOB NOT NULL,
    person_id    BLOB NOT NULL,
    household_id BLOB NOT NULL,
    PRIMARY KEY (activity_id, person_id)
) WITHOUT ROWID;
CREATE INDEX ix_attendance_person ON ix_attendance (person_id);
CREATE INDEX ix_attendance_household ON ix_attendance (household_id);

CREATE TABLE ix_referrals (
    need_id      BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    resource_id  BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_referrals_resource ON ix_referrals (resource_id);
CREATE INDEX ix_referrals_household ON ix_referrals (household_id);

-- Documents stored before (households a newer phone may have linked) get their rows from a
-- whole reindex at the next open (`OR IGNORE`: an earlier migration's request answers both).
INSERT OR IGNORE INTO meta (key, value)
    SELECT 'rebuild_index', x'01'
    WHERE EXISTS (SELECT 1 FROM documents);
