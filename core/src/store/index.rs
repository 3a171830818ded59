//! The materialised query index: ordinary SQL rows derived from the documents, written in
//! the same transaction as the change that caused them.

use std::collections::BTreeMap;

use automerge::Automerge;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use crate::doc::cells::{
    entity_obj, get_map, read_cell, read_provenance, read_set, read_text, Doc,
};
use crate::doc::conflicts::{review, review_record, Review};
use crate::doc::read::{read_card, read_follow_up, read_person};
use crate::doc::verify;
use crate::doc::view::MapView;
use crate::error::{Error, Result};
use crate::model::ids::{HouseholdId, VisitId};
use crate::model::person_details::CareLevel;
use crate::model::policy::EntityKind;
use crate::model::provenance::{ConflictKind, FieldVersion};
use crate::model::values::Section;

use super::text_pending;

/// What an action touched, so the index does only the work it needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope {
    /// Everything of the household (creation, merges, most edits).
    Household,
    /// One section of one visit (typing).
    Section(VisitId, Section),
    /// The household's situation summary (typing).
    Summary,
    /// One record (a new visit, need, follow-up, card; an edit or a status step of one).
    Record(EntityKind, RecordKey),
    /// Two records (a card that replaces another).
    Records([(EntityKind, RecordKey); 2]),
    /// A visit opened with its needs, follow-ups and card in one action: the household's
    /// records are indexed again (one call per visit, not per keystroke).
    OpenedVisit(VisitId),
}

/// A record's key as the document spells it (a UUID: fixed size, so `Scope` stays `Copy`).
pub(crate) type RecordKey = uuid::Uuid;

/// The household record is keyed by the household's own id.
fn record_key(kind: EntityKind, household: HouseholdId, key: RecordKey) -> String {
    if kind == EntityKind::Household {
        household.to_string()
    } else {
        key.to_string()
    }
}

pub(crate) fn update(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    scope: Scope,
) -> Result<()> {
    match scope {
        Scope::Household | Scope::OpenedVisit(_) => index_household(conn, doc, household, None),
        // Typing: the text is only marked; it is indexed once typing is done with it, as
        // rewriting it costs what the whole text costs (ADR 0027, `text_pending`).
        Scope::Section(visit, section) => {
            let Some(obj) = entity_obj(doc, EntityKind::Visit, Some(&visit.to_string()))? else {
                return Ok(());
            };
            text_pending::mark(conn, household, &visit.to_string(), section.as_str())?;
            index_visit_workers(conn, doc, household, &visit.to_string(), &obj)
        }
        Scope::Record(kind, key) => index_records(
            conn,
            doc,
            household,
            &[(kind, record_key(kind, household, key))],
        ),
        Scope::Records(records) => {
            let records: Vec<(EntityKind, String)> = records
                .iter()
                .map(|(kind, key)| (*kind, record_key(kind.to_owned(), household, *key)))
                .collect();
            index_records(conn, doc, household, &records)
        }
        Scope::Summary => {
            if entity_obj(doc, EntityKind::Household, None)?.is_none() {
                return Ok(());
            }
            text_pending::mark(conn, household, &household.to_string(), "summary")
        }
    }
}

/// Index one text that typing left pending (a visit's section, or the household's
/// summary, keyed by the household's own id) as the document holds it now.
pub(crate) fn index_pending(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    entity: &str,
    field: &str,
) -> Result<()> {
    let obj = if field == "summary" && entity == household.to_string() {
        entity_obj(doc, EntityKind::Household, None)?
    } else {
        entity_obj(doc, EntityKind::Visit, Some(entity))?
    };
    let body = match obj {
        Some(obj) => read_text(doc, &obj, field)?,
        None => String::new(),
    };
    put_text(conn, household, entity, field, &body)
}

/// Index a household received from elsewhere. A document this version cannot read (its
/// structure broken) must not stop sync: it is stored, its index rows removed, and it is
/// marked unreadable until an update (then `rebuild_index` indexes it). Values a newer app
/// wrote do not make it unreadable: they read as `Unrecognised` (ADR 0013).
///
/// `scope`: what the received changes can have changed ([`verify::touched_for_index`],
/// found in the document before them), or everything. A household that was readable is
/// read and indexed again in those records only, so a change to one visit costs that
/// visit, not the household's history; one that was not readable is read whole.
pub(crate) fn update_received(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    scope: &verify::Scope,
) -> Result<()> {
    let records = match scope {
        verify::Scope::Records(records) if !unreadable(conn, household)? => Some(records),
        _ => None,
    };
    // The phones' reader first (the one the server's validator runs, without its refusal
    // of unknown values): a household the index could take but `household()` could not
    // read would be listed yet never open.
    let checked = match records {
        Some(records) => verify::readable_scope(doc, scope).and_then(|()| {
            let records: Vec<(EntityKind, String)> = records.iter().cloned().collect();
            index_records(conn, doc, household, &records)
        }),
        None => verify::readable_review(doc)
            .and_then(|found| index_household(conn, doc, household, Some(found))),
    };
    match checked {
        // Narrowed only when it was readable: nothing to clear.
        Ok(()) if records.is_some() => Ok(()),
        Ok(()) => {
            let n = conn
                .prepare_cached(
                    "UPDATE documents SET unreadable = 0 WHERE doc_id = ?1 AND unreadable = 1",
                )?
                .execute([household.to_string()])?;
            if n > 0 {
                conn.prepare_cached("DELETE FROM quarantine WHERE doc_id = ?1")?
                    .execute([household.to_string()])?;
            }
            Ok(())
        }
        Err(
            e @ (Error::InvalidInput(_) | Error::NotAHousehold(_) | Error::MalformedDocument(_)),
        ) => {
            let h = household.to_string();
            // Listed for the app (`Store::quarantined`): the changes are kept, so the next
            // version that reads repairs it.
            conn.prepare_cached(
                "INSERT INTO quarantine (doc_id, reason, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (doc_id) DO UPDATE SET reason = ?2",
            )?
            .execute(rusqlite::params![
                h,
                e.to_string(),
                crate::model::time::Timestamp::now().0
            ])?;
            remove(conn, household)?;
            conn.execute(
                "UPDATE documents SET unreadable = 1 WHERE doc_id = ?1",
                [&h],
            )?;
            tracing::warn!(household = %household, "household not readable by this app version; stored, not indexed");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether a document is marked unreadable by [`update_received`]: it applied but does not
/// read with this version (kept, not indexed).
pub(crate) fn unreadable(conn: &Connection, doc: HouseholdId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT unreadable FROM documents WHERE doc_id = ?1")?
        .query_row([doc.to_string()], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// The index tables that hold rows per household.
/// Remove a household's rows from the index and the search index (its search words go
/// with its texts, by trigger).
pub(crate) fn remove(conn: &Connection, household: HouseholdId) -> Result<()> {
    let h = household.to_string();
    for table in TABLES {
        conn.execute(
            &format!("DELETE FROM {table} WHERE household_id = doorstep_key(?1)"),
            [&h],
        )?;
    }
    conn.execute(
        "DELETE FROM ix_text_src WHERE household_id = ?1",
        [household_key(household)],
    )?;
    text_pending::clear_household(conn, household)?;
    // A station-work document's own row (its conflicts and texts went above).
    conn.execute(
        "DELETE FROM ix_activities WHERE activity_id = doorstep_key(?1)",
        [&h],
    )?;
    conn.execute(
        "DELETE FROM ix_resources WHERE resource_id = doorstep_key(?1)",
        [&h],
    )?;
    conn.execute(
        "DELETE FROM ix_surveys WHERE survey_id = doorstep_key(?1)",
        [&h],
    )?;
    Ok(())
}

const TABLES: [&str; 13] = [
    "ix_households",
    "ix_persons",
    "ix_categories",
    "ix_care_levels",
    "ix_visits",
    "ix_visit_workers",
    "ix_follow_ups",
    "ix_cards",
    "ix_conflicts",
    "ix_attendance",
    "ix_referrals",
    "ix_responses",
    "ix_survey_answers",
];

/// Two U+E000 characters indexed after every text: every 1- and 2-character substring of
/// the text then starts an indexed trigram, which is how short queries find it.
pub(crate) const TEXT_PAD: &str = "\u{E000}\u{E000}";
/// The padding character; a search for it is refused.
pub(crate) const TEXT_PAD_CHAR: char = '\u{E000}';

/// The stored form of a searchable text: one zstd frame of its UTF-8 bytes (a blob), or
/// the text itself where the frame would not be smaller (short texts).
pub(crate) fn pack_text(text: &str) -> Value {
    let packed = crate::protocol::wire::compress(text.as_bytes());
    if packed.is_empty() || packed.len() >= text.len() {
        Value::Text(text.to_owned())
    } else {
        Value::Blob(packed)
    }
}

/// The text of a stored body; anything but text or a frame of UTF-8 is damage.
pub(crate) fn unpack_text(body: Value) -> Result<String> {
    match body {
        Value::Text(t) => Ok(t),
        Value::Blob(b) => {
            let bytes = crate::protocol::wire::decompress(&b).map_err(|_| Error::Damaged)?;
            String::from_utf8(bytes).map_err(|_| Error::Damaged)
        }
        _ => Err(Error::Damaged),
    }
}

/// A record id as the text index stores it: a UUID in its canonical text form as its 16
/// bytes; any other key (a document from elsewhere may hold one) as text.
pub(crate) fn text_key(id: &str) -> Value {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Value::Blob(u.as_bytes().to_vec()),
        _ => Value::Text(id.to_owned()),
    }
}

/// The record id of a stored key (the inverse of `text_key`).
pub(crate) fn text_key_id(key: Value) -> Result<String> {
    match key {
        Value::Blob(b) => uuid::Uuid::from_slice(&b)
            .map(|u| u.hyphenated().to_string())
            .map_err(|_| Error::Damaged),
        Value::Text(t) => Ok(t),
        _ => Err(Error::Damaged),
    }
}

pub(crate) fn household_key(household: HouseholdId) -> Value {
    Value::Blob(household.as_uuid().as_bytes().to_vec())
}

/// Upsert one text row and its indexed words (only when the text changed); empty text has
/// no row. Deleting or rewriting a row drops its old words (triggers, schema 2).
fn put_text(
    conn: &Connection,
    household: HouseholdId,
    entity: &str,
    field: &str,
    body: &str,
) -> Result<()> {
    if body.is_empty() {
        return delete_text(conn, household, entity, field);
    }
    let id: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO ix_text_src (household_id, entity_id, field, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (household_id, entity_id, field) DO UPDATE SET body = excluded.body
             WHERE body IS NOT excluded.body
             RETURNING id",
        )?
        .query_row(
            params![
                household_key(household),
                text_key(entity),
                field,
                pack_text(body)
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        let mut words = String::with_capacity(body.len() + TEXT_PAD.len());
        words.push_str(body);
        words.push_str(TEXT_PAD);
        conn.prepare_cached("INSERT INTO ix_text (rowid, body) VALUES (?1, ?2)")?
            .execute(params![id, words])?;
    }
    Ok(())
}

fn delete_text(conn: &Connection, household: HouseholdId, entity: &str, field: &str) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM ix_text_src WHERE household_id = ?1 AND entity_id = ?2 AND field = ?3",
    )?
    .execute(params![household_key(household), text_key(entity), field])?;
    Ok(())
}

/// The (record id, field) of the household's text rows, of one record if `entity` is given.
fn text_rows(
    conn: &Connection,
    household: HouseholdId,
    entity: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut st = match entity {
        None => {
            let mut st = conn.prepare_cached(
                "SELECT entity_id, field FROM ix_text_src WHERE household_id = ?1",
            )?;
            st.raw_bind_parameter(1, household_key(household))?;
            st
        }
        Some(e) => {
            let mut st = conn.prepare_cached(
                "SELECT entity_id, field FROM ix_text_src WHERE household_id = ?1 AND entity_id = ?2",
            )?;
            st.raw_bind_parameter(1, household_key(household))?;
            st.raw_bind_parameter(2, text_key(e))?;
            st
        }
    };
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((text_key_id(r.get(0)?)?, r.get(1)?));
    }
    Ok(out)
}

fn index_visit_workers<R: Doc>(
    conn: &Connection,
    doc: &R,
    household: HouseholdId,
    visit: &str,
    obj: &automerge::ObjId,
) -> Result<()> {
    let date = read_cell(doc, obj, "date")?.unwrap_or_default();
    conn.prepare_cached("DELETE FROM ix_visit_workers WHERE visit_id = doorstep_key(?1)")?
        .execute([visit])?;
    let mut ins = conn.prepare_cached(
        "INSERT INTO ix_visit_workers (visit_id, worker_id, household_id, date)
         VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3), ?4)",
    )?;
    for w in read_set(doc, obj, "workers")? {
        ins.execute(params![visit, w, household.to_string(), date])?;
    }
    Ok(())
}

fn keys_of<R: Doc>(doc: &R, kind: EntityKind) -> Result<Vec<(String, automerge::ObjId)>> {
    crate::doc::cells::records_of(doc, kind)
}

fn versions_json(values: &[FieldVersion]) -> String {
    let list: Vec<serde_json::Value> = values
        .iter()
        .map(|v| {
            serde_json::json!({
                "value": v.value, "worker": v.provenance.worker.to_string(),
                "device": v.provenance.device.to_string(), "at": v.provenance.at.0,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// Text rows wanted for one household, keyed by (entity id, field).
type Texts = BTreeMap<(String, String), String>;

/// The record kinds with index rows, in the order a whole-household pass visits them.
const RECORD_KINDS: [EntityKind; 8] = [
    EntityKind::Person,
    EntityKind::Visit,
    EntityKind::Need,
    EntityKind::Inquiry,
    EntityKind::Amendment,
    EntityKind::FollowUp,
    EntityKind::Card,
    EntityKind::Response,
];

/// Index a whole household (or station-work document). `reviewed`: its conflict review,
/// if the caller has made it already (the same answer as reviewing again).
fn index_household(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    reviewed: Option<Review>,
) -> Result<()> {
    if let (crate::doc::DocKind::Work(kind), _, _) = crate::doc::document_header(doc)? {
        return index_work(conn, doc, household, kind, reviewed);
    }
    // Each record's keys read in one pass, not field by field (the same answers).
    let doc = &MapView::new(doc);
    let h = household.to_string();
    for table in TABLES {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE household_id = doorstep_key(?1)"
        ))?
        .execute([&h])?;
    }
    let hh = entity_obj(doc, EntityKind::Household, None)?
        .ok_or(Error::NotAHousehold("no household map"))?;
    // Text rows wanted now; compared with what is there so unchanged text costs no FTS work.
    let mut texts = Texts::new();
    insert_record(
        conn,
        doc,
        household,
        EntityKind::Household,
        &h,
        &hh,
        &mut texts,
    )?;
    for kind in RECORD_KINDS {
        for (key, o) in keys_of(doc, kind)? {
            insert_record(conn, doc, household, kind, &key, &o, &mut texts)?;
        }
    }
    let existing = text_rows(conn, household, None)?;
    put_texts(conn, household, existing, &texts)?;
    // Every text of the household is up to date now, those typing left pending too.
    text_pending::clear_household(conn, household)?;
    let found = match reviewed {
        Some(found) => found,
        None => review(doc, household)?,
    };
    insert_conflicts(conn, household, &found)
}

/// Re-index the given records only: their rows, their text and their conflicts. An action
/// that touches named records costs what those records cost, not the household's history.
fn index_records(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    records: &[(EntityKind, String)],
) -> Result<()> {
    let doc = &MapView::new(doc);
    let h = household.to_string();
    for (kind, key) in records {
        let (table, column) = match kind {
            EntityKind::Household => ("ix_households", "household_id"),
            EntityKind::Person => ("ix_persons", "person_id"),
            EntityKind::Visit => ("ix_visits", "visit_id"),
            EntityKind::FollowUp => ("ix_follow_ups", "follow_up_id"),
            EntityKind::Card => ("ix_cards", "card_id"),
            EntityKind::Need => ("ix_referrals", "need_id"),
            EntityKind::Response => ("ix_responses", "response_id"),
            _ => ("", ""),
        };
        if *kind == EntityKind::Response {
            conn.prepare_cached(
                "DELETE FROM ix_survey_answers WHERE response_id = doorstep_key(?1)",
            )?
            .execute([key])?;
        }
        if *kind == EntityKind::Person {
            conn.prepare_cached("DELETE FROM ix_attendance WHERE person_id = doorstep_key(?1)")?
                .execute([key])?;
        }
        if !table.is_empty() {
            conn.prepare_cached(&format!(
                "DELETE FROM {table} WHERE {column} = doorstep_key(?1)"
            ))?
            .execute([key])?;
        }
        if matches!(kind, EntityKind::Household | EntityKind::Person) {
            conn.prepare_cached("DELETE FROM ix_categories WHERE entity_id = doorstep_key(?1)")?
                .execute([key])?;
            conn.prepare_cached("DELETE FROM ix_care_levels WHERE entity_id = doorstep_key(?1)")?
                .execute([key])?;
        }
        // The household record's conflicts are stored under an empty entity id.
        let entity_id = if *kind == EntityKind::Household {
            ""
        } else {
            key.as_str()
        };
        conn.prepare_cached(
            "DELETE FROM ix_conflicts
             WHERE household_id = doorstep_key(?1) AND entity = ?2 AND entity_id = doorstep_key(?3)",
        )?
        .execute(params![h, kind.name(), entity_id])?;
        let obj = if *kind == EntityKind::Household {
            entity_obj(doc, *kind, None)?
        } else {
            entity_obj(doc, *kind, Some(key))?
        };
        let mut texts = Texts::new();
        let mut found = Review::default();
        if let Some(obj) = &obj {
            insert_record(conn, doc, household, *kind, key, obj, &mut texts)?;
            if *kind != EntityKind::Amendment {
                let k = (*kind != EntityKind::Household).then_some(key.as_str());
                let owners = crate::doc::cells::Owners::default();
                review_record(doc, household, *kind, k, obj, &owners, &mut found)?;
            }
        } else if *kind == EntityKind::Visit {
            conn.prepare_cached("DELETE FROM ix_visit_workers WHERE visit_id = doorstep_key(?1)")?
                .execute([key])?;
        }
        let existing = text_rows(conn, household, Some(key))?;
        put_texts(conn, household, existing, &texts)?;
        text_pending::clear_record(conn, household, key)?;
        insert_conflicts(conn, household, &found)?;
    }
    Ok(())
}

/// Write the text rows wanted; remove the `existing` ones that are no longer wanted.
fn put_texts(
    conn: &Connection,
    household: HouseholdId,
    existing: Vec<(String, String)>,
    texts: &Texts,
) -> Result<()> {
    let existing: std::collections::HashSet<(String, String)> = existing.into_iter().collect();
    for (entity, field) in &existing {
        if !texts.contains_key(&(entity.clone(), field.clone())) {
            delete_text(conn, household, entity, field)?;
        }
    }
    for (key, body) in texts {
        // An empty text has no row: nothing to write unless one is there (a visit's empty
        // sections are most of its texts).
        if body.is_empty() && !existing.contains(key) {
            continue;
        }
        put_text(conn, household, &key.0, &key.1, body)?;
    }
    Ok(())
}

/// Insert one record's rows (its old rows are gone) and collect its text rows.
fn insert_record<R: Doc>(
    conn: &Connection,
    doc: &R,
    household: HouseholdId,
    kind: EntityKind,
    key: &str,
    o: &automerge::ObjId,
    texts: &mut Texts,
) -> Result<()> {
    let h = household.to_string();
    let key = key.to_owned();
    match kind {
        EntityKind::Household => {
            let (_, station) = crate::doc::header(doc)?;
            conn.prepare_cached(
                "INSERT INTO ix_households (household_id, station_id, code, village, address, status)
                 VALUES (doorstep_key(?1), doorstep_key(?2), ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                h,
                station.to_string(),
                read_cell(doc, o, "code")?.unwrap_or_default(),
                read_cell(doc, o, "village")?.unwrap_or_default(),
                read_cell(doc, o, "address")?.unwrap_or_default(),
                read_cell(doc, o, "status")?.unwrap_or_default(),
            ])?;
            insert_categories(conn, &h, &h, &read_set(doc, o, "tags")?)?;
            let level = read_cell(doc, o, "care_level")?.map(|l| CareLevel::read(&l));
            insert_care_level(conn, &h, &h, level)?;
            texts.insert((h, "summary".into()), read_text(doc, o, "summary")?);
        }
        EntityKind::Person => {
            let p = read_person(doc, &key, o)?;
            conn.prepare_cached(
                "INSERT INTO ix_persons (person_id, household_id, name, birth_date, relation, guardian, categories)
                 VALUES (doorstep_key(?1), doorstep_key(?2), ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                key,
                h,
                p.name,
                p.birth_date.map(|b| b.to_string()),
                p.relation,
                p.guardian,
                p.categories.join("\u{1f}"),
            ])?;
            insert_categories(conn, &h, &key, &p.categories)?;
            insert_care_level(conn, &h, &key, p.care_level)?;
            let mut ins = conn.prepare_cached(
                "INSERT INTO ix_attendance (activity_id, person_id, household_id)
                 VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3))",
            )?;
            for a in &p.activities {
                ins.execute(params![a.to_string(), key, h])?;
            }
        }
        // Never in a household document (their own documents are indexed by `index_work`).
        EntityKind::Activity | EntityKind::Resource | EntityKind::Survey => {}
        EntityKind::Response => {
            let r = crate::doc::survey::read_response(doc, &key, o)?;
            conn.prepare_cached(
                "INSERT INTO ix_responses
                 (response_id, household_id, person_id, survey_id, version_id, status)
                 VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3), doorstep_key(?4),
                         doorstep_key(?5), ?6)",
            )?
            .execute(params![
                key,
                h,
                r.person.to_string(),
                r.survey.to_string(),
                r.version.to_string(),
                r.status.as_str()
            ])?;
            if r.status == crate::model::survey::ResponseStatus::Submitted {
                insert_answers(conn, &h, &r)?;
            }
        }
        // No rows of their own: their conflicts are indexed with every record's.
        EntityKind::Benefit | EntityKind::Guardianship => {}
        EntityKind::Visit => {
            conn.prepare_cached(
                "INSERT INTO ix_visits (visit_id, household_id, date, kind, status, started_at)
                 VALUES (doorstep_key(?1), doorstep_key(?2), ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key,
                h,
                read_cell(doc, o, "date")?.unwrap_or_default(),
                read_cell(doc, o, "kind")?.unwrap_or_default(),
                read_cell(doc, o, "status")?.unwrap_or_default(),
                read_cell(doc, o, "started_at")?
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0),
            ])?;
            index_visit_workers(conn, doc, household, &key, o)?;
            for s in Section::ALL {
                texts.insert(
                    (key.clone(), s.as_str().into()),
                    read_text(doc, o, s.as_str())?,
                );
            }
        }
        EntityKind::Need => {
            let referred = read_cell(doc, o, "resource")?
                .map(|r| crate::model::ids::ResourceId::parse(&r))
                .transpose()?;
            if let Some(resource) = referred {
                conn.prepare_cached(
                    "INSERT INTO ix_referrals (need_id, household_id, resource_id)
                     VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3))",
                )?
                .execute(params![key, h, resource.to_string()])?;
            }
            let text = [
                read_cell(doc, o, "category")?,
                read_cell(doc, o, "description")?,
            ];
            texts.insert(
                (key, "need".into()),
                text.into_iter().flatten().collect::<Vec<_>>().join("\n"),
            );
        }
        EntityKind::Inquiry => {
            let text = [
                read_cell(doc, o, "topic")?,
                read_cell(doc, o, "question")?,
                read_cell(doc, o, "answer")?,
            ];
            texts.insert(
                (key, "inquiry".into()),
                text.into_iter().flatten().collect::<Vec<_>>().join("\n"),
            );
        }
        EntityKind::Amendment => {
            texts.insert(
                (key, "amendment".into()),
                read_cell(doc, o, "text")?.unwrap_or_default(),
            );
        }
        EntityKind::FollowUp => {
            let f = read_follow_up(doc, &key, o)?;
            conn.prepare_cached(
                "INSERT INTO ix_follow_ups (follow_up_id, household_id, origin_visit, due, assignee, status)
                 VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3), ?4, doorstep_key(?5), ?6)",
            )?
            .execute(params![
                key,
                h,
                f.origin_visit.map(|v| v.to_string()),
                f.due.to_string(),
                f.assignee.to_string(),
                f.status.as_str()
            ])?;
            texts.insert((key, "follow_up".into()), f.what);
        }
        EntityKind::Card => {
            let c = read_card(doc, &key, o)?;
            let created = get_map(doc, o, "created")?
                .map(|c| read_provenance(doc, &c))
                .transpose()?;
            conn.prepare_cached(
                "INSERT INTO ix_cards (card_id, household_id, serial, visit_id, person_id, status, issued_by, issued_at)
                 VALUES (doorstep_key(?1), doorstep_key(?2), ?3, doorstep_key(?4), doorstep_key(?5), ?6,
                         doorstep_key(?7), ?8)",
            )?
            .execute(params![
                key,
                h,
                c.serial,
                c.visit.map(|v| v.to_string()),
                c.person.map(|v| v.to_string()),
                c.status.as_str(),
                created.map(|p| p.worker.to_string()).unwrap_or_default(),
                created.map(|p| p.at.0).unwrap_or(0),
            ])?;
        }
    }
    Ok(())
}

/// One row per category value of a person or a household (its tags), with the code it
/// counts under (ADR 0018): a pure function of the values, as every index row must be.
fn insert_categories(
    conn: &Connection,
    household: &str,
    entity: &str,
    values: &[String],
) -> Result<()> {
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO ix_categories (household_id, entity_id, stored, code)
         VALUES (doorstep_key(?1), doorstep_key(?2), ?3, ?4)",
    )?;
    for v in values {
        let code = crate::model::vocabulary::code_of_stored(v);
        ins.execute(params![
            household,
            entity,
            v,
            code.as_ref().map(|c| c.as_str())
        ])?;
    }
    Ok(())
}

/// The care level of a household or a person, with the visit interval it requires; none
/// for a level this version does not know (it sets no interval here).
fn insert_care_level(
    conn: &Connection,
    household: &str,
    entity: &str,
    level: Option<CareLevel>,
) -> Result<()> {
    let Some((level, days)) = level.and_then(|l| Some((l, l.visit_every_days()?))) else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO ix_care_levels (household_id, entity_id, level, interval_days)
         VALUES (doorstep_key(?1), doorstep_key(?2), ?3, ?4)",
    )?
    .execute(params![household, entity, level.as_str(), days])?;
    Ok(())
}

fn insert_conflicts(conn: &Connection, household: HouseholdId, found: &Review) -> Result<()> {
    let h = household.to_string();
    let mut ins = conn.prepare_cached(
        "INSERT INTO ix_conflicts (household_id, entity, entity_id, field, kind, detail)
         VALUES (doorstep_key(?1), ?2, doorstep_key(?3), ?4, ?5, ?6)",
    )?;
    for c in &found.conflicts {
        let kind = match c.kind {
            ConflictKind::ConcurrentValues => "concurrent_values",
            ConflictKind::EditedAfterFinalise => "edited_after_finalise",
            ConflictKind::DuplicateResponse => "duplicate_response",
        };
        ins.execute(params![
            h,
            c.field.entity.kind().name(),
            c.field.entity.key().unwrap_or_default(),
            c.field.field,
            kind,
            versions_json(&c.values)
        ])?;
    }
    for u in &found.parallel {
        let mut all = vec![u.shown.clone()];
        all.extend(u.overshadowed.iter().cloned());
        ins.execute(params![
            h,
            u.field.entity.kind().name(),
            u.field.entity.key().unwrap_or_default(),
            u.field.field,
            "parallel_update",
            versions_json(&all)
        ])?;
    }
    Ok(())
}

/// Remove every row derived from the station document.
pub(crate) fn clear_station(conn: &Connection) -> Result<()> {
    for table in [
        "ix_card_batches",
        "ix_card_leases",
        "ix_worker_labels",
        "ix_vocabulary",
        "ix_vocabulary_version",
    ] {
        conn.execute(&format!("DELETE FROM {table}"), [])?;
    }
    Ok(())
}

/// Index the station document: card batches and leases, the workers' labels, the station's
/// vocabulary.
pub(crate) fn update_station(conn: &Connection, doc: &Automerge) -> Result<()> {
    let cards = crate::doc::station::read_station(doc)?;
    clear_station(conn)?;
    let vocabulary = crate::doc::station::read_vocabulary(doc)?;
    conn.execute(
        "INSERT INTO ix_vocabulary_version (version) VALUES (?1)",
        [i64::try_from(vocabulary.version).unwrap_or(i64::MAX)],
    )?;
    for e in &vocabulary.entries {
        conn.prepare_cached(
            "INSERT INTO ix_vocabulary (code, kind, parent, label_zh, label_en)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            e.code.as_str(),
            e.kind.as_str(),
            e.parent.as_ref().map(|p| p.as_str()),
            e.label_zh,
            e.label_en
        ])?;
    }
    for (worker, label) in crate::doc::station::read_worker_labels(doc)? {
        conn.prepare_cached(
            "INSERT INTO ix_worker_labels (worker_id, label) VALUES (doorstep_key(?1), ?2)",
        )?
        .execute(params![worker.to_string(), label.as_str()])?;
    }
    for b in &cards.batches {
        conn.prepare_cached(
            "INSERT INTO ix_card_batches (batch_id, prefix, first, last) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![b.id.to_string(), b.prefix, b.first, b.last])?;
    }
    for l in &cards.leases {
        conn.prepare_cached(
            "INSERT INTO ix_card_leases (lease_id, batch_id, prefix, first, last, device_id, expires, returned)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            l.id.to_string(),
            l.batch.to_string(),
            l.prefix,
            l.first,
            l.last,
            l.device.to_string(),
            l.expires.map(|d| d.to_string()),
            l.returned
        ])?;
    }
    Ok(())
}

/// Index a station-work document whole (ADR 0021): its row, its texts (under its own id, so
/// search finds them) and its parallel updates. Small documents: always whole.
fn index_work(
    conn: &Connection,
    doc: &Automerge,
    id: HouseholdId,
    kind: crate::model::station_work::WorkKind,
    reviewed: Option<Review>,
) -> Result<()> {
    use crate::model::station_work::WorkKind;
    let key = id.to_string();
    conn.prepare_cached("DELETE FROM ix_activities WHERE activity_id = doorstep_key(?1)")?
        .execute([&key])?;
    conn.prepare_cached("DELETE FROM ix_resources WHERE resource_id = doorstep_key(?1)")?
        .execute([&key])?;
    conn.prepare_cached("DELETE FROM ix_surveys WHERE survey_id = doorstep_key(?1)")?
        .execute([&key])?;
    conn.prepare_cached("DELETE FROM ix_conflicts WHERE household_id = doorstep_key(?1)")?
        .execute([&key])?;
    let mut texts = Texts::new();
    match kind {
        WorkKind::Activity => {
            let a = crate::doc::work::read_activity(doc)?;
            conn.prepare_cached(
                "INSERT INTO ix_activities (activity_id, type, date, place, attendee_count)
                 VALUES (doorstep_key(?1), ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                key,
                a.activity_type,
                a.date.to_string(),
                a.place,
                a.attendee_count
            ])?;
            texts.insert((key.clone(), "narrative".into()), a.narrative);
        }
        WorkKind::Resource => {
            let r = crate::doc::work::read_resource(doc)?;
            conn.prepare_cached(
                "INSERT INTO ix_resources (resource_id, kind, name, member_count)
                 VALUES (doorstep_key(?1), ?2, ?3, ?4)",
            )?
            .execute(params![key, r.kind, r.name, r.member_count])?;
            texts.insert((key.clone(), "services".into()), r.services);
            texts.insert((key.clone(), "wishes".into()), r.wishes);
        }
        WorkKind::Survey => {
            let s = crate::doc::survey::read_survey(doc)?;
            conn.prepare_cached(
                "INSERT INTO ix_surveys (survey_id, title, versions) VALUES (doorstep_key(?1), ?2, ?3)",
            )?
            .execute(params![key, s.title, i64::try_from(s.versions.len()).unwrap_or(i64::MAX)])?;
        }
    }
    let existing = text_rows(conn, id, None)?;
    put_texts(conn, id, existing, &texts)?;
    let found = match reviewed {
        Some(found) => found,
        None => crate::doc::work::review_work(doc)?,
    };
    insert_conflicts(conn, id, &found)
}

/// A submitted response's answers, one row per option chosen (single, multiple), per point
/// (scale), per number, per text answered (its words are not copied: counted only).
fn insert_answers(
    conn: &Connection,
    household: &str,
    r: &crate::model::survey::SurveyResponse,
) -> Result<()> {
    use crate::model::survey::AnswerValue;
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO ix_survey_answers
         (response_id, household_id, survey_id, version_id, question, option, number)
         VALUES (doorstep_key(?1), doorstep_key(?2), doorstep_key(?3), doorstep_key(?4), ?5, ?6, ?7)",
    )?;
    let (id, survey, version) = (
        r.id.to_string(),
        r.survey.to_string(),
        r.version.to_string(),
    );
    for a in &r.answers {
        let rows: Vec<(String, Option<i64>)> = match &a.value {
            AnswerValue::Choice(c) => vec![(c.clone(), None)],
            AnswerValue::Choices(cs) => cs.iter().map(|c| (c.clone(), None)).collect(),
            AnswerValue::Number(n) => vec![(String::new(), Some(*n))],
            AnswerValue::Scale(n) => vec![(n.to_string(), Some(*n))],
            AnswerValue::Text(_) => vec![(String::new(), None)],
            AnswerValue::Unknown => vec![],
        };
        for (option, number) in rows {
            ins.execute(params![
                id, household, survey, version, a.question, option, number
            ])?;
        }
    }
    Ok(())
}
