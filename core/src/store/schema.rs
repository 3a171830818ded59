//! Numbered migrations of the device store. A released file is never edited; a change of
//! schema is a new file. `user_version` holds the number of migrations applied.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; index + 1 is the schema version each one produces (the file's
/// number).
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_compact_text_index.sql"),
    include_str!("migrations/0003_binary_ids.sql"),
    include_str!("migrations/0004_signatures.sql"),
    include_str!("migrations/0005_upload_status.sql"),
    include_str!("migrations/0006_erasure.sql"),
    include_str!("migrations/0007_worker_labels.sql"),
    include_str!("migrations/0008_vocabulary.sql"),
    include_str!("migrations/0009_caseload.sql"),
    include_str!("migrations/0010_access_log.sql"),
    include_str!("migrations/0011_care_levels.sql"),
    include_str!("migrations/0012_station_work.sql"),
    include_str!("migrations/0013_surveys.sql"),
    include_str!("migrations/0014_attachments.sql"),
    include_str!("migrations/0015_text_index_pending.sql"),
    include_str!("migrations/0016_compaction_by_bytes.sql"),
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

/// The store's SQL functions, registered on every connection (the migrations and the
/// queries call them):
/// - `doorstep_zstd(text)`: the stored form of a searchable text (`ix_text_src.body`);
/// - `doorstep_key(x)`: the stored form of a record id: a canonical UUID as its 16 bytes,
///   any other text as it is (NULL and blobs pass through);
/// - `doorstep_id(x)`: the id of a stored key (the inverse).
pub(crate) fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("doorstep_zstd", 1, flags, |ctx| {
        Ok(super::index::pack_text(&ctx.get::<String>(0)?))
    })?;
    conn.create_scalar_function("doorstep_key", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => super::index::text_key(t),
                Err(_) => Value::Blob(t.to_vec()),
            },
            other => owned(other),
        })
    })?;
    conn.create_scalar_function("doorstep_id", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(b) if b.len() == 16 => uuid::Uuid::from_slice(b)
                .map(|u| Value::Text(u.hyphenated().to_string()))
                .unwrap_or_else(|_| Value::Blob(b.to_vec())),
            other => owned(other),
        })
    })?;
    Ok(())
}

fn owned(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::Value {
    use rusqlite::types::{Value, ValueRef};
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
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
    fn schema_3_keeps_the_index_rows_of_schema_2() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 2).unwrap();
        let (v, h, w) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        conn.execute(
            "INSERT INTO ix_visits VALUES (?1, ?2, '2026-11-20', 'home', 'draft', 7)",
            [&v, &h],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ix_follow_ups VALUES (?1, ?2, NULL, '2026-12-01', ?3, 'open')",
            [&v, &h, &w],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ix_conflicts VALUES (?1, 'household', '', 'address', 'concurrent_values', '[]')",
            [&h],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let visit: (String, String, String, String) = conn
            .query_row(
                "SELECT doorstep_id(visit_id), typeof(visit_id), doorstep_id(household_id), date
                 FROM ix_visits WHERE visit_id = doorstep_key(?1)",
                [&v],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            visit,
            (v.clone(), "blob".into(), h.clone(), "2026-11-20".into())
        );
        let follow_up: (Option<String>, String) = conn
            .query_row(
                "SELECT doorstep_id(origin_visit), doorstep_id(assignee) FROM ix_follow_ups",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(follow_up, (None, w));
        let conflict: (String, String) = conn
            .query_row(
                "SELECT doorstep_id(entity_id), typeof(entity_id) FROM ix_conflicts
                 WHERE household_id = doorstep_key(?1)",
                [&h],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(conflict, (String::new(), "text".into()));
    }

    #[test]
    fn schema_16_counts_the_bytes_of_the_change_rows_already_stored() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 15).unwrap();
        for (doc, pending) in [("a", 2), ("b", 0)] {
            conn.execute(
                "INSERT INTO documents (doc_id, kind, snapshot, pending_compaction)
                 VALUES (?1, 'household', x'00', ?2)",
                rusqlite::params![doc, pending],
            )
            .unwrap();
        }
        for (hash, len) in [(1u8, 100usize), (2, 23)] {
            conn.execute(
                "INSERT INTO changes (doc_id, hash, bytes, local) VALUES ('a', ?1, ?2, 1)",
                rusqlite::params![vec![hash; 32], vec![7u8; len]],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let bytes: Vec<(String, i64)> = conn
            .prepare("SELECT doc_id, pending_bytes FROM documents ORDER BY doc_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(bytes, [("a".to_owned(), 123), ("b".to_owned(), 0)]);
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
