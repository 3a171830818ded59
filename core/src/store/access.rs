//! The device's access log (issue 16): each opening of a household's case file on this
//! device — which household, who, on which device, when — appended durably (offline too)
//! and sent to the server with the next syncs. Ids and times only: never a name, a note or
//! an ID number. Rows are never rewritten (a trigger refuses it); they are deleted only with
//! their household when the server erases it, or with the whole store.
//!
//! Sending (`docs/protocol.md`, "Accesses"): a request carries the oldest unsent entries, up
//! to [`MAX_ACCESSES`], of households the server is known to hold, and marks them in flight;
//! the response applied next counts the in-flight entries as sent, in its own transaction.
//! A request built while another is unanswered keeps in flight only what both carry.

use rusqlite::params;

use super::*;
use crate::protocol::{Access, MAX_ACCESSES};

/// One opening of a case file on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseFileAccess {
    pub household: HouseholdId,
    /// The signed-in worker who opened it.
    pub worker: WorkerId,
    /// This device.
    pub device: DeviceId,
    /// When (this device's clock).
    pub at: Timestamp,
    /// The server has been sent it (acknowledged by the response to a request carrying it).
    pub synced: bool,
}

fn id_bytes(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

fn uuid_of(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| Error::Damaged)
}

impl Store {
    /// The whole case file, opened to be shown to the signed-in worker: the opening is
    /// appended to this device's access log (on disk before this returns, offline too) and
    /// reaches the server with the next syncs. Use [`household`](Self::household) for
    /// anything that is not a person looking at the file; lists and search record nothing.
    /// A household this store does not hold, or cannot read, is an error and records nothing.
    pub fn open_case_file(&self, id: HouseholdId) -> Result<Household> {
        let at = (self.clock)();
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let doc = load(conn, cache, id, &self.actor)?;
        let household = doc::read::read_household(doc)?;
        // Each opening at its own millisecond, after this device's earlier ones of the
        // household: the server keeps one entry per device, household and millisecond (a
        // repeated request's), so two openings within one millisecond must not look like one.
        let last: Option<i64> = conn
            .prepare_cached("SELECT MAX(at) FROM access_log WHERE household = ?1")?
            .query_row(params![id_bytes(id.as_uuid())], |r| r.get(0))?;
        let at = match last {
            Some(last) if last >= at.0 => Timestamp(last.saturating_add(1)),
            _ => at,
        };
        conn.prepare_cached(
            "INSERT INTO access_log (household, worker, device, at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            id_bytes(id.as_uuid()),
            id_bytes(self.worker.as_uuid()),
            id_bytes(self.device.as_uuid()),
            at.0
        ])?;
        Ok(household)
    }

    /// This device's recorded openings of a household's case file, newest first (the
    /// household need not be held any more; an erased one has none).
    pub fn accesses(&self, household: HouseholdId) -> Result<Vec<CaseFileAccess>> {
        self.with_reader(|r| {
            let rows = r
                .prepare_cached(
                    "SELECT worker, device, at, synced FROM access_log WHERE household = ?1
                     ORDER BY at DESC, id DESC",
                )?
                .query_map([id_bytes(household.as_uuid())], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, bool>(3)?,
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(worker, device, at, synced)| {
                    Ok(CaseFileAccess {
                        household,
                        worker: WorkerId::from_uuid(uuid_of(&worker)?),
                        device: DeviceId::from_uuid(uuid_of(&device)?),
                        at: Timestamp(at),
                        synced,
                    })
                })
                .collect()
        })
    }

    /// How many recorded openings the server has not been sent yet (all households).
    pub fn unsynced_accesses(&self) -> Result<u64> {
        self.with_reader(|r| {
            let n: i64 = r.query_row(
                "SELECT count(*) FROM access_log WHERE synced = 0",
                [],
                |row| row.get(0),
            )?;
            Ok(n.max(0) as u64)
        })
    }
}

/// The oldest unsent entries of households the server is known to hold (an entry of a
/// household still waiting for its first acknowledgement would be dropped by the server).
fn sendable(conn: &Connection, limit: usize) -> Result<Vec<(i64, Access)>> {
    let rows = conn
        .prepare_cached(
            // A household that left the worker's scope (ADR 0019) is gone from `documents`
            // but the server holds it: its openings are sent all the same.
            "SELECT a.id, a.household, a.at FROM access_log a
             LEFT JOIN documents d ON d.doc_id = doorstep_id(a.household)
             WHERE a.synced = 0 AND (length(d.server_heads) > 0
               OR EXISTS (SELECT 1 FROM departed p WHERE p.doc_id = doorstep_id(a.household)))
             ORDER BY a.id LIMIT ?1",
        )?
        .query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, household, at)| {
            Ok((
                id,
                Access {
                    household: HouseholdId::from_uuid(uuid_of(&household)?),
                    at,
                },
            ))
        })
        .collect()
}

/// The entries the next request carries, marked in flight (one transaction).
pub(super) fn take_for_request(conn: &mut Connection) -> Result<Vec<Access>> {
    let entries = sendable(conn, MAX_ACCESSES)?;
    let outstanding: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM access_log WHERE in_flight = 1)",
        [],
        |r| r.get(0),
    )?;
    if entries.is_empty() && !outstanding {
        return Ok(Vec::new());
    }
    let tx = conn.transaction()?;
    if outstanding {
        // An unanswered request before this one: whichever of the two is answered, only
        // what both carried is known to have been sent.
        let carried: std::collections::HashSet<i64> = entries.iter().map(|(id, _)| *id).collect();
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM access_log WHERE in_flight = 1")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        let mut clear = tx.prepare_cached("UPDATE access_log SET in_flight = 0 WHERE id = ?1")?;
        for id in ids.into_iter().filter(|id| !carried.contains(id)) {
            clear.execute([id])?;
        }
    } else {
        let mut set = tx.prepare_cached("UPDATE access_log SET in_flight = 1 WHERE id = ?1")?;
        for (id, _) in &entries {
            set.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(entries.into_iter().map(|(_, a)| a).collect())
}

/// In a response's transaction: the entries in flight reached the server; on a reset (a
/// restored server, which may have lost what it was sent) every entry is sent again.
/// Returns how many were counted as sent.
pub(super) fn response_applied(tx: &Connection, reset: bool) -> Result<usize> {
    if reset {
        tx.execute("UPDATE access_log SET synced = 0, in_flight = 0", [])?;
        return Ok(0);
    }
    Ok(tx.execute(
        "UPDATE access_log SET synced = 1, in_flight = 0 WHERE in_flight = 1",
        [],
    )?)
}

/// Whether entries wait that the next request could carry.
pub(super) fn more_to_send(conn: &Connection) -> Result<bool> {
    Ok(!sendable(conn, 1)?.is_empty())
}

/// In an erasure's transaction: the household's entries go with it, sent or not.
pub(super) fn erase(tx: &Connection, household: HouseholdId) -> Result<()> {
    tx.prepare_cached("DELETE FROM access_log WHERE household = ?1")?
        .execute([id_bytes(household.as_uuid())])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_recorded_is_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(
            dir.path().join("w.db"),
            StoreKey::Raw([7; 32]),
            WorkerId::new(),
            StationId::new(),
        ))
        .unwrap();
        let hh = store
            .create_household(&NewHousehold {
                code: "HH-1".into(),
                ..Default::default()
            })
            .unwrap();
        store.open_case_file(hh).unwrap();
        let w = store.writer();
        for column in ["household", "worker", "device"] {
            let r = w.conn.execute(
                &format!("UPDATE access_log SET {column} = zeroblob(16)"),
                [],
            );
            assert!(r.is_err(), "{column} rewritten");
        }
        assert!(w.conn.execute("UPDATE access_log SET at = 0", []).is_err());
        // Sending state may move.
        w.conn
            .execute("UPDATE access_log SET synced = 1, in_flight = 0", [])
            .unwrap();
    }
}
