-- Doorstep device store, schema 4: signed changes (ADR 0012) and quarantine (ADR 0013).
--
-- `signatures`: per document and actor, the newest signature this device holds that vouches
-- for that actor's changes (kept across compaction: a device re-pushes colleagues' changes
-- to a restored server with their authors' signatures).
-- `signers`: who owns each actor, as the server first told this device (pinned: a later
-- answer naming another key for the same actor is refused).
-- `quarantine`: documents this device holds but cannot read or apply, and why; the rest of
-- a sync goes on without them, and a later valid version clears the row.

CREATE TABLE signatures (
    doc_id TEXT NOT NULL,
    actor  BLOB NOT NULL,
    hash   BLOB NOT NULL,
    sig    BLOB NOT NULL,
    PRIMARY KEY (doc_id, actor)
) WITHOUT ROWID;

CREATE TABLE signers (
    actor     BLOB PRIMARY KEY,
    device_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    key       BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE quarantine (
    doc_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since  INTEGER NOT NULL
) WITHOUT ROWID;

-- What was received for a quarantined document, in order (kind 'c' a change, 's' a
-- snapshot): retried, with what comes next, until it applies.
CREATE TABLE held (
    doc_id TEXT NOT NULL,
    n      INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (doc_id, n)
) WITHOUT ROWID;
