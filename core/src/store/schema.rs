//! Numbered migrations of the device store. A released file is never edited; a change of
//! schema is a new file. `user_version` holds the number of migrations applied.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; index + 1 is the schema version each one produces.
pub(crate) const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Bring the store to the latest schema, one migration per transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST)
}

pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST {
        return Err(Error::SchemaTooNew {
            found: current,
            supported: LATEST,
        });
    }
    for version in current..target {
        let tx = conn.transaction()?;
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
    }
    Ok(())
}
