-- Doorstep device store, schema 3: record ids in the index tables as 16 bytes (ADR 0011).
--
-- A UUID held as 36 characters of text costs 37 bytes in a row and again in every index
-- over it; as a blob it costs 17. The index tables hold several ids per row, and most of
-- their secondary indexes repeat them. `doorstep_key(x)` (registered by the store on every
-- connection) turns a canonical UUID into its 16 bytes and leaves any other key as text;
-- `doorstep_id(x)` turns it back. Queries compare with `doorstep_key(?)` and read with
-- `doorstep_id(column)`. The ordering of canonical UUIDs is the same as bytes and as text.

CREATE TABLE ix_households_3 (
    household_id BLOB PRIMARY KEY,
    station_id   BLOB NOT NULL,
    code         TEXT NOT NULL,
    village      TEXT NOT NULL,
    address      TEXT NOT NULL,
    status       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO ix_households_3
    SELECT doorstep_key(household_id), doorstep_key(station_id), code, village, address, status
    FROM ix_households;
DROP TABLE ix_households;
ALTER TABLE ix_households_3 RENAME TO ix_households;
CREATE INDEX ix_households_village ON ix_households(village, code);

CREATE TABLE ix_persons_3 (
    person_id    BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    name         TEXT NOT NULL,
    birth_date   TEXT,
    relation     TEXT NOT NULL,
    guardian     INTEGER NOT NULL,
    categories   TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO ix_persons_3
    SELECT doorstep_key(person_id), doorstep_key(household_id), name, birth_date, relation,
           guardian, categories
    FROM ix_persons;
DROP TABLE ix_persons;
ALTER TABLE ix_persons_3 RENAME TO ix_persons;
CREATE INDEX ix_persons_household ON ix_persons(household_id);

CREATE TABLE ix_visits_3 (
    visit_id     BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    date         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ix_visits_3
    SELECT doorstep_key(visit_id), doorstep_key(household_id), date, kind, status, started_at
    FROM ix_visits;
DROP TABLE ix_visits;
ALTER TABLE ix_visits_3 RENAME TO ix_visits;
CREATE INDEX ix_visits_date ON ix_visits(date);
CREATE INDEX ix_visits_household ON ix_visits(household_id, date);

CREATE TABLE ix_visit_workers_3 (
    visit_id     BLOB NOT NULL,
    worker_id    BLOB NOT NULL,
    household_id BLOB NOT NULL,
    date         TEXT NOT NULL,
    PRIMARY KEY (visit_id, worker_id)
) WITHOUT ROWID;
INSERT INTO ix_visit_workers_3
    SELECT doorstep_key(visit_id), doorstep_key(worker_id), doorstep_key(household_id), date
    FROM ix_visit_workers;
DROP TABLE ix_visit_workers;
ALTER TABLE ix_visit_workers_3 RENAME TO ix_visit_workers;
CREATE INDEX ix_visit_workers_worker ON ix_visit_workers(worker_id, date);
CREATE INDEX ix_visit_workers_household ON ix_visit_workers(household_id);

CREATE TABLE ix_follow_ups_3 (
    follow_up_id BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    origin_visit BLOB,
    due          TEXT NOT NULL,
    assignee     BLOB NOT NULL,
    status       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO ix_follow_ups_3
    SELECT doorstep_key(follow_up_id), doorstep_key(household_id), doorstep_key(origin_visit),
           due, doorstep_key(assignee), status
    FROM ix_follow_ups;
DROP TABLE ix_follow_ups;
ALTER TABLE ix_follow_ups_3 RENAME TO ix_follow_ups;
CREATE INDEX ix_follow_ups_due ON ix_follow_ups(status, due);
CREATE INDEX ix_follow_ups_household ON ix_follow_ups(household_id);

CREATE TABLE ix_cards_3 (
    card_id      BLOB PRIMARY KEY,
    household_id BLOB NOT NULL,
    serial       TEXT NOT NULL,
    visit_id     BLOB,
    person_id    BLOB,
    status       TEXT NOT NULL,
    issued_by    BLOB NOT NULL,
    issued_at    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ix_cards_3
    SELECT doorstep_key(card_id), doorstep_key(household_id), serial, doorstep_key(visit_id),
           doorstep_key(person_id), status, doorstep_key(issued_by), issued_at
    FROM ix_cards;
DROP TABLE ix_cards;
ALTER TABLE ix_cards_3 RENAME TO ix_cards;
CREATE INDEX ix_cards_serial ON ix_cards(serial);
CREATE INDEX ix_cards_household ON ix_cards(household_id);

CREATE TABLE ix_conflicts_3 (
    household_id BLOB NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    BLOB NOT NULL,
    field        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    PRIMARY KEY (household_id, entity, entity_id, field)
) WITHOUT ROWID;
INSERT INTO ix_conflicts_3
    SELECT doorstep_key(household_id), entity, doorstep_key(entity_id), field, kind, detail
    FROM ix_conflicts;
DROP TABLE ix_conflicts;
ALTER TABLE ix_conflicts_3 RENAME TO ix_conflicts;
