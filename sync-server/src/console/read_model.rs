//! The console's read model: what it lists and counts of each household document, read
//! with the core's document readers (`doorstep_core::read_model`), written in the same
//! backend as the log. Maintained after each accepted push (`refresh_accepted`) and
//! rebuildable from the stored documents (`rebuild`, `catch_up`).

use automerge::Automerge;
use doorstep_core::read_model::{read_case_file, CaseFile};
use doorstep_core::{HouseholdId, NeedStatus, StationId};

use super::case_files::{CaseFiles, LoadedCaseFile};
use crate::snapshot;
use crate::station_time::UtcOffset;
use crate::store::console::{
    FactRow, FollowUpRow, HouseholdRow, ReadModelDoc, SearchText, VisitRow, WorkRow,
};
use crate::store::{ServerStore, StoreError};

/// Why a document could not be read into the read model.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("the stored document does not load")]
    Unloadable,
}

/// What the read model holds of one case file read at log sequence `seq`, its days in the
/// station's time zone `zone` (a need, inquiry or card counts in the month of the day it
/// was recorded there: ADR 0028).
pub fn rows_of(file: &CaseFile, seq: u64, zone: UtcOffset) -> ReadModelDoc {
    let h = &file.household;
    let mut categories: Vec<String> = h.tags.clone();
    for p in &h.persons {
        categories.extend(p.categories.iter().cloned());
    }
    // Stored space-separated: a space inside a category would split it.
    let mut categories: Vec<String> = categories
        .into_iter()
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join("\u{a0}"))
        .filter(|c| !c.is_empty())
        .collect();
    categories.sort();
    categories.dedup();
    // One search entry per record, so that a refresh re-indexes only what changed.
    let mut texts: Vec<SearchText> = Vec::new();
    let mut entry = |item: String, parts: &[&str]| {
        let body = parts
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        if !body.is_empty() {
            texts.push(SearchText { item, body });
        }
    };
    entry(
        "household".into(),
        &[&h.code, &h.village, &h.address, &h.summary],
    );
    for p in &h.persons {
        entry(format!("person:{}", p.id), &[&p.name]);
    }
    for v in &h.visits {
        let sections: Vec<&str> = v.sections.iter().map(|(_, t)| t.as_str()).collect();
        entry(format!("visit:{}", v.id), &sections);
    }
    for a in &h.amendments {
        entry(format!("amendment:{}", a.id), &[&a.text]);
    }
    for n in &h.needs {
        entry(format!("need:{}", n.id), &[&n.category, &n.description]);
    }
    for i in &h.inquiries {
        let answer = i.answer.as_deref().unwrap_or("");
        entry(
            format!("inquiry:{}", i.id),
            &[&i.question, &i.topic, answer],
        );
    }
    for f in &h.follow_ups {
        entry(format!("follow_up:{}", f.id), &[&f.what]);
    }
    let day = |at: i64| zone.date(at).map(|d| d.to_string()).unwrap_or_default();
    let fact = |fact: &str, item: uuid::Uuid, day: String, dim1: &str, dim2: &str| FactRow {
        doc: h.id,
        fact: fact.to_owned(),
        item,
        day,
        dim1: dim1.to_owned(),
        dim2: dim2.to_owned(),
    };
    let mut facts = Vec::new();
    for v in &h.visits {
        let opener = v.created.worker.to_string();
        facts.push(fact(
            "visit",
            *v.id.as_uuid(),
            v.date.to_string(),
            v.kind.as_str(),
            &opener,
        ));
    }
    // Who of the household a visit reached, by category (the report counts the children
    // visited by category): one row per visit and person with categories; `dim1` the
    // categories (U+001F between), `dim2` the person.
    for v in &h.visits {
        for p in h.persons.iter().filter(|p| !p.categories.is_empty()) {
            let item = uuid::Uuid::from_u128(
                v.id.as_uuid().as_u128().rotate_left(64) ^ p.id.as_uuid().as_u128(),
            );
            facts.push(fact(
                "person_visited",
                item,
                v.date.to_string(),
                &p.categories.join("\u{1f}"),
                &p.id.to_string(),
            ));
        }
    }
    for n in &h.needs {
        facts.push(fact(
            "need",
            *n.id.as_uuid(),
            day(n.created.at.0),
            &n.category,
            n.status.as_str(),
        ));
    }
    for i in &h.inquiries {
        facts.push(fact(
            "inquiry",
            *i.id.as_uuid(),
            day(i.created.at.0),
            &i.topic,
            i.status.as_str(),
        ));
    }
    for c in &h.cards {
        facts.push(fact(
            "card",
            *c.id.as_uuid(),
            day(c.created.at.0),
            &c.serial,
            c.status.as_str(),
        ));
    }
    // Needs referred to a resource of the register (ADR 0021): `dim1` the resource, `dim2`
    // the need's status; the resource's console page lists them.
    for n in &h.needs {
        if let Some(resource) = n.resource {
            facts.push(fact(
                "referral",
                *n.id.as_uuid(),
                day(n.created.at.0),
                &resource.to_string(),
                n.status.as_str(),
            ));
        }
    }
    // Needs-survey responses (ADR 0022) recorded that month, withdrawn ones not counted:
    // `dim1` the survey.
    for r in h
        .responses
        .iter()
        .filter(|r| r.status == doorstep_core::ResponseStatus::Submitted)
    {
        facts.push(fact(
            "response",
            *r.id.as_uuid(),
            day(r.created.at.0),
            &r.survey.to_string(),
            "",
        ));
    }
    ReadModelDoc {
        facts,
        household: HouseholdRow {
            doc: h.id,
            station: h.station,
            seq,
            code: h.code.clone(),
            village: h.village.clone(),
            status: h.status.as_str().to_owned(),
            categories,
            visits: h.visits.len() as u64,
            last_visit: h.visits.iter().map(|v| v.date.to_string()).max(),
            open_needs: h
                .needs
                .iter()
                .filter(|n| matches!(n.status, NeedStatus::Open | NeedStatus::Referred))
                .count() as u64,
            conflicts: file.conflicts.len() as u64,
        },
        texts,
        visits: h
            .visits
            .iter()
            .map(|v| VisitRow {
                doc: h.id,
                visit: *v.id.as_uuid(),
                date: v.date.to_string(),
                kind: v.kind.as_str().to_owned(),
                status: v.status.as_str().to_owned(),
                workers: v.workers.clone(),
            })
            .collect(),
        follow_ups: h
            .follow_ups
            .iter()
            .map(|f| FollowUpRow {
                doc: h.id,
                follow_up: *f.id.as_uuid(),
                what: f.what.clone(),
                due: f.due.to_string(),
                assignee: f.assignee,
                status: f.status.as_str().to_owned(),
            })
            .collect(),
    }
}

/// Update the read model with documents a sync of a station in time zone `zone` just
/// committed (each with its last log sequence), in one store transaction. Failures are
/// logged, not returned: the changes are committed either way, and `catch_up` (at start)
/// or `console rebuild` repairs the rows left behind. Documents that are not household
/// documents (the station document) are skipped. With `warm`, the console's loaded case
/// files, the last household documents of the sync (as many as it keeps) are kept there
/// as read here, so the first page after the change does not load them again (ADR 0033).
pub(crate) fn refresh_accepted<'a, S: ServerStore>(
    store: &S,
    zone: UtcOffset,
    docs: impl IntoIterator<Item = (HouseholdId, &'a Automerge, u64)>,
    warm: Option<&CaseFiles>,
) {
    let docs: Vec<(HouseholdId, &Automerge, u64)> = docs.into_iter().collect();
    // Only the last ones a sync commits could stay kept: earlier ones would be pushed out.
    let warm_from = docs
        .len()
        .saturating_sub(warm.map_or(0, CaseFiles::capacity));
    let mut rows = Vec::new();
    let mut read = Vec::new();
    for (i, (id, doc, seq)) in docs.into_iter().enumerate() {
        let got =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_any(doc, seq, zone)));
        match got {
            Ok(Some(Rows::Household(r, file))) => {
                rows.push(*r);
                if warm.is_some() && i >= warm_from {
                    read.push((id, seq, doc, file));
                }
            }
            Ok(Some(Rows::Work(w))) => {
                if let Err(e) = store.put_work(&w) {
                    tracing::warn!(doc = %id, error = %e, "read model not updated");
                }
            }
            // The station document, or a document the validator let through that the
            // reader refuses: not listed.
            Ok(None) => {}
            Err(_) => tracing::warn!(doc = %id, "read model: reading the document panicked"),
        }
    }
    // One transaction for the households one sync committed (not one per household).
    if rows.is_empty() {
        return;
    }
    if let Err(e) = store.put_read_models(&rows) {
        tracing::warn!(households = rows.len(), error = %e, "read model not updated");
        // Not kept either: the rows and the kept case file agree, or neither is there.
        return;
    }
    if let Some(files) = warm {
        for (id, seq, doc, file) in read {
            files.keep(
                id,
                seq,
                LoadedCaseFile {
                    doc: doc.clone(),
                    file: *file,
                },
            );
        }
    }
}

/// What the read model holds of a document of either kind.
enum Rows {
    /// The rows, and the case file they were read from.
    Household(Box<ReadModelDoc>, Box<CaseFile>),
    Work(WorkRow),
}

/// Read a document for the read model: `None` for the station document and for a document
/// this version does not read.
fn read_any(doc: &Automerge, seq: u64, zone: UtcOffset) -> Option<Rows> {
    use doorstep_core::doc::{document_header, read_activity_document, DocKind};
    use doorstep_core::WorkKind;
    match document_header(doc).ok()? {
        (DocKind::Household, _, _) => read_case_file(doc).ok().map(|file| {
            let rows = Box::new(rows_of(&file, seq, zone));
            Rows::Household(rows, Box::new(file))
        }),
        (DocKind::Work(kind), id, station) => {
            let facts = match kind {
                // One fact per activity: its date, type code and counted attendance.
                WorkKind::Activity => {
                    let a = read_activity_document(doc).ok()?;
                    vec![FactRow {
                        doc: id,
                        fact: "activity".to_owned(),
                        item: *id.as_uuid(),
                        day: a.date.to_string(),
                        dim1: a.activity_type,
                        dim2: a.attendee_count.map(|n| n.to_string()).unwrap_or_default(),
                    }]
                }
                WorkKind::Resource | WorkKind::Survey => Vec::new(),
            };
            Some(Rows::Work(WorkRow {
                doc: id,
                station,
                seq,
                kind: kind.as_str().to_owned(),
                facts,
            }))
        }
    }
}

/// Read one stored document into the read model. False if it is neither a household nor
/// station work (the station document), or does not read.
pub fn refresh_one<S: ServerStore>(store: &S, id: HouseholdId) -> Result<bool, ReadModelError> {
    let Some(station) = store.document_station(id)? else {
        return Ok(false);
    };
    refresh_in(store, id, store.station_zone(station)?)
}

/// [`refresh_one`] for a document of a station in time zone `zone`.
fn refresh_in<S: ServerStore>(
    store: &S,
    id: HouseholdId,
    zone: UtcOffset,
) -> Result<bool, ReadModelError> {
    let seq = store.document_seq(id)?;
    let Some(stored) = store.load_document(id)? else {
        return Ok(false);
    };
    let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
        .map_err(|_| ReadModelError::Unloadable)?
        .map_err(|_| ReadModelError::Unloadable)?;
    match read_any(&doc, seq, zone) {
        Some(Rows::Household(r, _)) => {
            store.put_read_model(&r)?;
            Ok(true)
        }
        Some(Rows::Work(w)) => {
            store.put_work(&w)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// What a rebuild or catch-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Documents read into it: households and station work.
    pub documents: u64,
    pub skipped: u64,
}

/// Read every document of a station whose read model is missing or older than its log.
pub fn catch_up<S: ServerStore>(
    store: &S,
    station: StationId,
) -> Result<Refreshed, ReadModelError> {
    let held: std::collections::HashMap<HouseholdId, u64> =
        store.read_model_seqs(station)?.into_iter().collect();
    let zone = store.station_zone(station)?;
    let mut out = Refreshed::default();
    crate::store::for_each_document(store, station, |id| -> Result<(), ReadModelError> {
        if held
            .get(&id)
            .is_some_and(|s| *s >= store.document_seq(id).unwrap_or(u64::MAX))
        {
            return Ok(());
        }
        match refresh_in(store, id, zone) {
            Ok(true) => out.documents += 1,
            Ok(false) => {}
            Err(ReadModelError::Unloadable) => {
                tracing::warn!(doc = %id, "read model: stored document does not load");
                out.skipped += 1;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    })?;
    Ok(out)
}

/// Forget a station's read model and read it again from every document.
pub fn rebuild<S: ServerStore>(store: &S, station: StationId) -> Result<Refreshed, ReadModelError> {
    store.clear_read_model(station)?;
    catch_up(store, station)
}

/// [`catch_up`] for every station; errors are logged (the server serves regardless).
pub fn catch_up_all<S: ServerStore>(store: &S) {
    let stations = match store.stations() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "read model catch-up: stations not read");
            return;
        }
    };
    for (station, _) in stations {
        match catch_up(store, station) {
            Ok(r) if r.documents > 0 || r.skipped > 0 => {
                tracing::info!(%station, documents = r.documents, skipped = r.skipped, "read model caught up")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%station, error = %e, "read model catch-up failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test with its message.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::console::ConsoleStore;
    use crate::SqliteStore;
    use doorstep_core::{NewHousehold, Store, StoreKey, StoreOptions, WorkerId};

    /// Households recorded on a real device store, as the documents a push delivers.
    fn documents(station: StationId, n: usize) -> Vec<(HouseholdId, Automerge)> {
        let dir = tempfile::tempdir().unwrap();
        let phone = Store::open(StoreOptions::new(
            dir.path().join("phone.db"),
            StoreKey::Raw([3; 32]),
            WorkerId::new(),
            station,
        ))
        .unwrap();
        (0..n)
            .map(|i| {
                let id = phone
                    .create_household(&NewHousehold {
                        code: format!("HH-{i:06}"),
                        village: "石桥村".into(),
                        ..Default::default()
                    })
                    .unwrap();
                let doc = Automerge::load(&phone.export_document(id).unwrap()).unwrap();
                (id, doc)
            })
            .collect()
    }

    #[test]
    fn the_last_case_files_a_push_commits_are_kept_as_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("server")).unwrap();
        let station = store.create_station("石桥镇社工站", 1).unwrap();
        let docs = documents(station, 3);
        let files = CaseFiles::new(2);
        refresh_accepted(
            &store,
            UtcOffset::BEIJING,
            docs.iter()
                .enumerate()
                .map(|(i, (id, doc))| (*id, doc, 10 + i as u64)),
            Some(&files),
        );
        // The rows are written, and the last two case files are kept at their sequence: a
        // page finds them without loading (the loader here fails).
        assert_eq!(store.read_model_seqs(station).unwrap().len(), 3);
        for (i, (id, _)) in docs.iter().enumerate().skip(1) {
            let kept = files
                .get(*id, 10 + i as u64, || Err::<LoadedCaseFile, ()>(()))
                .unwrap();
            assert_eq!(kept.file.household.code, format!("HH-{i:06}"));
        }
        assert!(
            files
                .get(docs[0].0, 10, || Err::<LoadedCaseFile, ()>(()))
                .is_err(),
            "only as many as are kept: the first was not"
        );
        assert!(
            files
                .get(docs[2].0, 11, || Err::<LoadedCaseFile, ()>(()))
                .is_err(),
            "kept at the pushed sequence only"
        );

        // Without a console's case files, only the rows.
        let more = documents(station, 1);
        refresh_accepted(
            &store,
            UtcOffset::BEIJING,
            more.iter().map(|(id, doc)| (*id, doc, 20)),
            None,
        );
        assert_eq!(store.read_model_seqs(station).unwrap().len(), 4);
    }
}
