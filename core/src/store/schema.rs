//! Numbered migrations of the device store. A released file is never edited; a change of
//! schema is a new file. `user_version` holds the number of migrations applied.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; index + 1 is the schema version each one produces.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_compact_text_index.sql"),
];

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
    if current < target {
        register_functions(conn)?;
    }
    for version in current..target {
        let tx = conn.transaction()?;
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// Functions the migrations call (schema 2): `doorstep_zstd(text)`, the stored form of a
/// searchable text, and `doorstep_key(text)`, the stored form of a record id
/// (`ix_text_src.body` and its keys).
fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("doorstep_zstd", 1, flags, |ctx| {
        Ok(super::index::pack_text(&ctx.get::<String>(0)?))
    })?;
    conn.create_scalar_function("doorstep_key", 1, flags, |ctx| {
        Ok(super::index::text_key(&ctx.get::<String>(0)?))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        st.query_map([], |r| {
            Ok(format!(
                "{}|{}|{:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn upgrading_from_every_older_schema_equals_a_fresh_store() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        for start in 0..=LATEST {
            let mut old = Connection::open_in_memory().unwrap();
            migrate_to(&mut old, start).unwrap();
            migrate(&mut old).unwrap();
            assert_eq!(
                schema_of(&old),
                schema_of(&fresh),
                "upgrade from schema {start}"
            );
            let v: i64 = old
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, LATEST);
        }
    }

    #[test]
    fn schema_2_keeps_the_searchable_text_of_schema_1() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        // Two records keyed by UUID, one by another key; the first text is long enough
        // to be stored compressed, the others are stored as they are.
        let household = uuid::Uuid::now_v7().to_string();
        let keys = [
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
            "e2".to_owned(),
        ];
        let texts = [
            "已申请困境儿童基本生活补助，已申请困境儿童基本生活补助，已申请困境儿童基本生活补助",
            "孩子属于事实无人抚养儿童",
            "Wx 家庭",
        ];
        for (k, t) in keys.iter().zip(texts) {
            conn.execute(
                "INSERT INTO ix_text_src (household_id, entity_id, field, body) VALUES (?1, ?2, 'note', ?3)",
                rusqlite::params![household, k, t],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let index = super::super::index::text_key;
        let mut types = Vec::new();
        for (k, t) in keys.iter().zip(texts) {
            let (body, kind): (rusqlite::types::Value, String) = conn
                .query_row(
                    "SELECT body, typeof(body) FROM ix_text_src WHERE household_id = ?1 AND entity_id = ?2",
                    rusqlite::params![index(&household), index(k)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(super::super::index::unpack_text(body).unwrap(), t);
            types.push(kind);
        }
        assert_eq!(types, ["blob", "text", "text"]);
        let rows = |sql: &str, arg: &str| -> Vec<i64> {
            conn.prepare(sql)
                .unwrap()
                .query_map([arg], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let by_match = "SELECT s.id FROM ix_text_src s WHERE s.id IN
                        (SELECT rowid FROM ix_text WHERE ix_text MATCH ?1) ORDER BY 1";
        assert_eq!(rows(by_match, "\"事实无\" AND \"无人抚\""), [2]);
        assert_eq!(rows(by_match, "\"儿童基\""), [1]);
        // A short query finds the text it ends (the padding starts a trigram).
        let by_term = "SELECT DISTINCT s.id FROM ix_text_terms t JOIN ix_text_src s
                       ON s.id = t.doc WHERE t.term >= ?1 AND t.term < ?1 || char(1114111) ORDER BY 1";
        assert_eq!(rows(by_term, "补助"), [1]);
        assert_eq!(rows(by_term, "庭"), [3]);
        assert_eq!(rows(by_term, "wx"), [3]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", LATEST + 1))
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::SchemaTooNew { .. })
        ));
    }
}
