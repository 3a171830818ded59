//! The station document: reference data written by admins on the server only (card batches
//! and their leases to devices, the workers' labels, the station's vocabulary), synced to
//! every device of the station like a household.
//!
//! Layout (schema 1):
//! ```text
//! ROOT { schema: 1, kind: "station", id: <station>,
//!        batches: { <batch id>: { prefix, first, last, created_at } },
//!        leases:  { <lease id>: { batch, first, last, device, expires: "YYYY-MM-DD" | null,
//!                                 returned: bool, created_at } },
//!        workers: { <worker id>: "<label>" },
//!        vocabulary: { version: <int>,
//!                      entries: { <code>: "{\"kind\":…,\"parent\":…,\"zh\":…,\"en\":…}" } } }
//! ```
//! `workers` came later (ADR 0017), `vocabulary` later still (ADR 0018): a document without
//! them has no labels and no station categories, and a reader that predates them ignores
//! them. Its document id on the wire is the station id.

use crate::doc::{Doc, Tx};
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ScalarValue, Value, ROOT};

use crate::doc::cells::{get_map, get_str};
use crate::error::{Error, Result};
use crate::model::cards::{CardSerial, MAX_CARD_NUMBER};
use crate::model::ids::{CardBatchId, CardLeaseId, DeviceId, HouseholdId, StationId, WorkerId};
use crate::model::time::{Date, Timestamp};
use crate::model::vocabulary::{
    check_label, CategoryCode, CategoryKind, StationEntry, StationVocabulary,
};
use crate::model::worker_label::WorkerLabel;

/// A printed batch of cards: `PREFIX-first` … `PREFIX-last`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardBatch {
    pub id: CardBatchId,
    pub prefix: String,
    pub first: u32,
    pub last: u32,
}

/// A range of a batch handed to one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardLease {
    pub id: CardLeaseId,
    pub batch: CardBatchId,
    pub prefix: String,
    pub first: u32,
    pub last: u32,
    pub device: DeviceId,
    /// Last day the lease may be used.
    pub expires: Option<Date>,
    pub returned: bool,
}

impl CardLease {
    /// Usable on `as_of`: not returned, not expired.
    pub fn active(&self, as_of: Date) -> bool {
        !self.returned && self.expires.is_none_or(|e| as_of <= e)
    }

    pub fn contains(&self, serial: &CardSerial) -> bool {
        serial.prefix() == self.prefix && (self.first..=self.last).contains(&serial.number())
    }
}

/// What the station document says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationCards {
    pub batches: Vec<CardBatch>,
    pub leases: Vec<CardLease>,
}

impl StationCards {
    /// The batch a serial belongs to, if any.
    pub fn batch_of(&self, serial: &CardSerial) -> Option<&CardBatch> {
        self.batches
            .iter()
            .find(|b| b.prefix == serial.prefix() && (b.first..=b.last).contains(&serial.number()))
    }
}

/// The document id of a station's document (the station id).
pub fn station_doc_id(station: StationId) -> HouseholdId {
    HouseholdId::from_uuid(*station.as_uuid())
}

fn bad(what: &'static str) -> Error {
    Error::NotAHousehold(what)
}

fn get_u32<R: Doc>(doc: &R, obj: &automerge::ObjId, key: &str) -> Result<u32> {
    match doc.get(obj, key)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Int(i) => u32::try_from(*i).map_err(|_| bad("card number")),
            ScalarValue::Uint(u) => u32::try_from(*u).map_err(|_| bad("card number")),
            _ => Err(bad("card number")),
        },
        _ => Err(bad("card number")),
    }
}

/// The station id a station document declares (and that it is one).
pub fn station_header<R: Doc>(doc: &R) -> Result<StationId> {
    if get_str(doc, &ROOT, "kind")?.as_deref() != Some("station") {
        return Err(bad("not a station document"));
    }
    StationId::parse(&get_str(doc, &ROOT, "id")?.ok_or(bad("station id"))?)
        .map_err(|_| bad("station id"))
}

/// Read batches and leases.
pub fn read_station<R: Doc>(doc: &R) -> Result<StationCards> {
    station_header(doc)?;
    let mut out = StationCards::default();
    if let Some(batches) = get_map(doc, &ROOT, "batches")? {
        for key in doc.keys(&batches) {
            let Some(b) = get_map(doc, &batches, &key)? else {
                continue;
            };
            out.batches.push(CardBatch {
                id: CardBatchId::parse(&key)?,
                prefix: get_str(doc, &b, "prefix")?.ok_or(bad("batch prefix"))?,
                first: get_u32(doc, &b, "first")?,
                last: get_u32(doc, &b, "last")?,
            });
        }
    }
    if let Some(leases) = get_map(doc, &ROOT, "leases")? {
        for key in doc.keys(&leases) {
            let Some(l) = get_map(doc, &leases, &key)? else {
                continue;
            };
            let batch = CardBatchId::parse(&get_str(doc, &l, "batch")?.ok_or(bad("lease batch"))?)?;
            let prefix = out
                .batches
                .iter()
                .find(|b| b.id == batch)
                .map(|b| b.prefix.clone())
                .unwrap_or_default();
            let returned = matches!(doc.get(&l, "returned")?, Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Boolean(true)));
            out.leases.push(CardLease {
                id: CardLeaseId::parse(&key)?,
                batch,
                prefix,
                first: get_u32(doc, &l, "first")?,
                last: get_u32(doc, &l, "last")?,
                device: DeviceId::parse(&get_str(doc, &l, "device")?.ok_or(bad("lease device"))?)?,
                expires: get_str(doc, &l, "expires")?
                    .map(|d| Date::parse(&d))
                    .transpose()?,
                returned,
            });
        }
    }
    Ok(out)
}

/// An empty station document (written once, by the server).
pub fn create_station_doc<T: Tx>(tx: &mut T, station: StationId) -> Result<()> {
    tx.put(&ROOT, "schema", 1_i64)?;
    tx.put(&ROOT, "kind", "station")?;
    tx.put(&ROOT, "id", station.to_string())?;
    tx.put_object(&ROOT, "batches", ObjType::Map)?;
    tx.put_object(&ROOT, "leases", ObjType::Map)?;
    tx.put_object(&ROOT, "workers", ObjType::Map)?;
    Ok(())
}

/// Register a printed batch; refuses ranges that overlap another batch of the same prefix.
pub fn add_batch(
    doc: &mut Automerge,
    prefix: &str,
    first: u32,
    last: u32,
    at: Timestamp,
) -> Result<CardBatchId> {
    let probe = CardSerial::new(prefix, first)?;
    CardSerial::new(prefix, last)?;
    if first > last || last > MAX_CARD_NUMBER {
        return Err(Error::InvalidInput("batch range is empty"));
    }
    let current = read_station(doc)?;
    if current
        .batches
        .iter()
        .any(|b| b.prefix == probe.prefix() && b.first <= last && first <= b.last)
    {
        return Err(Error::InvalidInput("batch overlaps an existing batch"));
    }
    let id = CardBatchId::new();
    let mut tx = doc.transaction();
    let batches = get_map(&tx, &ROOT, "batches")?.ok_or(bad("batches"))?;
    let b = tx.put_object(&batches, id.to_string(), ObjType::Map)?;
    tx.put(&b, "prefix", probe.prefix())?;
    tx.put(&b, "first", i64::from(first))?;
    tx.put(&b, "last", i64::from(last))?;
    tx.put(&b, "created_at", at.0)?;
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(id)
}

/// Lease `first..=last` of a batch to a device; refuses ranges outside the batch or
/// overlapping another lease that is not returned.
pub fn add_lease(
    doc: &mut Automerge,
    batch: CardBatchId,
    first: u32,
    last: u32,
    device: DeviceId,
    expires: Option<Date>,
    at: Timestamp,
) -> Result<CardLeaseId> {
    let current = read_station(doc)?;
    let b = current
        .batches
        .iter()
        .find(|b| b.id == batch)
        .ok_or(Error::NotFound("card batch"))?;
    if first > last || first < b.first || last > b.last {
        return Err(Error::InvalidInput("lease range must lie within the batch"));
    }
    if current
        .leases
        .iter()
        .any(|l| l.batch == batch && !l.returned && l.first <= last && first <= l.last)
    {
        return Err(Error::InvalidInput("lease overlaps another lease"));
    }
    let id = CardLeaseId::new();
    let mut tx = doc.transaction();
    let leases = get_map(&tx, &ROOT, "leases")?.ok_or(bad("leases"))?;
    let l = tx.put_object(&leases, id.to_string(), ObjType::Map)?;
    tx.put(&l, "batch", batch.to_string())?;
    tx.put(&l, "first", i64::from(first))?;
    tx.put(&l, "last", i64::from(last))?;
    tx.put(&l, "device", device.to_string())?;
    match expires {
        Some(d) => tx.put(&l, "expires", d.to_string())?,
        None => tx.put(&l, "expires", ScalarValue::Null)?,
    }
    tx.put(&l, "returned", false)?;
    tx.put(&l, "created_at", at.0)?;
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(id)
}

/// Mark a lease returned (its unissued serials go back to stock).
pub fn return_lease(doc: &mut Automerge, lease: CardLeaseId, at: Timestamp) -> Result<()> {
    let mut tx = doc.transaction();
    let leases = get_map(&tx, &ROOT, "leases")?.ok_or(bad("leases"))?;
    let l = get_map(&tx, &leases, &lease.to_string())?.ok_or(Error::NotFound("card lease"))?;
    tx.put(&l, "returned", true)?;
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(())
}

/// A new station document for `station`, written by `actor`.
pub fn new_station_doc(station: StationId) -> Result<Automerge> {
    let mut doc = Automerge::new_with_encoding(super::TEXT_ENCODING);
    let mut tx = doc.transaction();
    create_station_doc(&mut tx, station)?;
    tx.commit();
    Ok(doc)
}

/// The workers' labels the document carries, by worker id. Lenient: an entry whose key is
/// not a worker id or whose value is not a valid label (a newer server's shape, a damaged
/// entry) is skipped, so a bad label never stops the card leases from being read.
pub fn read_worker_labels<R: Doc>(doc: &R) -> Result<Vec<(WorkerId, WorkerLabel)>> {
    station_header(doc)?;
    let Ok(Some(workers)) = get_map(doc, &ROOT, "workers") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for key in doc.keys(&workers) {
        let (Ok(worker), Ok(Some(label))) = (WorkerId::parse(&key), get_str(doc, &workers, &key))
        else {
            continue;
        };
        if let Ok(label) = WorkerLabel::new(&label) {
            out.push((worker, label));
        }
    }
    out.sort();
    Ok(out)
}

/// Write labels (the server's admin only), in one change; `workers` is made in a document
/// from before it. Labels the document already carries are not written again. Returns how
/// many were written (0: no change was made).
pub fn set_worker_labels(
    doc: &mut Automerge,
    labels: &[(WorkerId, WorkerLabel)],
    at: Timestamp,
) -> Result<usize> {
    station_header(doc)?;
    let current = read_worker_labels(doc)?;
    let fresh: Vec<&(WorkerId, WorkerLabel)> = labels
        .iter()
        .filter(|(w, l)| !current.iter().any(|(cw, cl)| cw == w && cl == l))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    let mut tx = doc.transaction();
    // Absent in a document from before labels; anything but a map is replaced.
    let workers = match get_map(&tx, &ROOT, "workers") {
        Ok(Some(m)) => m,
        _ => tx.put_object(&ROOT, "workers", ObjType::Map)?,
    };
    for (worker, label) in &fresh {
        tx.put(&workers, worker.to_string(), label.as_str())?;
    }
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(fresh.len())
}

/// One station entry as the document stores it: a JSON object in one scalar, so an entry is
/// written whole by one `put` (the last writer wins) and a newer server can add keys.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEntry {
    kind: String,
    #[serde(default)]
    parent: Option<String>,
    zh: String,
    #[serde(default)]
    en: String,
}

/// The station's vocabulary extension. Lenient like the labels: an entry whose key is not
/// a code, whose value is not the JSON of an entry, or whose labels break the rule is
/// skipped; a kind this version does not know reads as `Unrecognised`; a parent that is not
/// a code reads as none. A missing or damaged `vocabulary` is an empty extension.
pub fn read_vocabulary<R: Doc>(doc: &R) -> Result<StationVocabulary> {
    station_header(doc)?;
    let Ok(Some(vocabulary)) = get_map(doc, &ROOT, "vocabulary") else {
        return Ok(StationVocabulary::default());
    };
    let version = match doc.get(&vocabulary, "version") {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Int(i) => u64::try_from(*i).unwrap_or(0),
            ScalarValue::Uint(u) => *u,
            _ => 0,
        },
        _ => 0,
    };
    let mut out = StationVocabulary {
        version,
        entries: Vec::new(),
    };
    let Ok(Some(entries)) = get_map(doc, &vocabulary, "entries") else {
        return Ok(out);
    };
    for key in doc.keys(&entries) {
        let (Ok(code), Ok(Some(json))) = (CategoryCode::parse(&key), get_str(doc, &entries, &key))
        else {
            continue;
        };
        let Ok(stored) = serde_json::from_str::<StoredEntry>(&json) else {
            continue;
        };
        let (Ok(label_zh), Ok(label_en)) = (
            check_label(&stored.zh, true),
            check_label(&stored.en, false),
        ) else {
            continue;
        };
        out.entries.push(StationEntry {
            code,
            kind: CategoryKind::from_stored(&stored.kind),
            parent: stored.parent.and_then(|p| CategoryCode::parse(&p).ok()),
            label_zh,
            label_en,
        });
    }
    out.entries.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(out)
}

/// Write one station entry (the server's admin only; the caller checked it with
/// `Vocabulary::check_station_entry`) and raise the version, in one change. An entry the
/// document already holds as given writes nothing: returns `None`; otherwise the new
/// version. `vocabulary` is made in a document from before it.
pub fn set_vocabulary_entry(
    doc: &mut Automerge,
    entry: &StationEntry,
    at: Timestamp,
) -> Result<Option<u64>> {
    let current = read_vocabulary(doc)?;
    if current.entries.iter().any(|e| e == entry) {
        return Ok(None);
    }
    let json = serde_json::to_string(&StoredEntry {
        kind: entry.kind.as_str().to_owned(),
        parent: entry.parent.as_ref().map(|p| p.as_str().to_owned()),
        zh: check_label(&entry.label_zh, true)?,
        en: check_label(&entry.label_en, false)?,
    })
    .map_err(|_| Error::InvalidInput("category entry"))?;
    let version = current.version + 1;
    let mut tx = doc.transaction();
    // Absent in a document from before vocabularies; anything but a map is replaced.
    let vocabulary = match get_map(&tx, &ROOT, "vocabulary") {
        Ok(Some(m)) => m,
        _ => tx.put_object(&ROOT, "vocabulary", ObjType::Map)?,
    };
    let entries = match get_map(&tx, &vocabulary, "entries") {
        Ok(Some(m)) => m,
        _ => tx.put_object(&vocabulary, "entries", ObjType::Map)?,
    };
    tx.put(&entries, entry.code.as_str(), json)?;
    tx.put(
        &vocabulary,
        "version",
        i64::try_from(version).unwrap_or(i64::MAX),
    )?;
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(Some(version))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn station_entry(code: &str, zh: &str) -> StationEntry {
        StationEntry {
            code: CategoryCode::parse(code).unwrap(),
            kind: CategoryKind::Child,
            parent: None,
            label_zh: zh.into(),
            label_en: String::new(),
        }
    }

    #[test]
    fn vocabulary_entries_are_written_once_versioned_and_read_back() {
        let mut doc = new_station_doc(StationId::new()).unwrap();
        assert_eq!(read_vocabulary(&doc).unwrap(), StationVocabulary::default());
        let flood = station_entry("local.flood", "因灾");
        assert_eq!(
            set_vocabulary_entry(&mut doc, &flood, Timestamp(1)).unwrap(),
            Some(1)
        );
        let heads = doc.get_heads();
        assert_eq!(
            set_vocabulary_entry(&mut doc, &flood, Timestamp(1)).unwrap(),
            None
        );
        assert_eq!(doc.get_heads(), heads, "nothing new: no change");
        let relabelled = station_entry("local.flood", "因灾困境");
        let other = station_entry("child.left_behind", "农村留守儿童");
        set_vocabulary_entry(&mut doc, &relabelled, Timestamp(2)).unwrap();
        assert_eq!(
            set_vocabulary_entry(&mut doc, &other, Timestamp(3)).unwrap(),
            Some(3)
        );
        let read = read_vocabulary(&doc).unwrap();
        assert_eq!(read.version, 3);
        assert_eq!(read.entries, vec![other, relabelled]);
        assert!(read_station(&doc).is_ok() && read_worker_labels(&doc).is_ok());
    }

    #[test]
    fn malformed_vocabulary_entries_are_skipped_and_unknown_kinds_kept() {
        let mut doc = new_station_doc(StationId::new()).unwrap();
        set_vocabulary_entry(&mut doc, &station_entry("local.good", "好"), Timestamp(1)).unwrap();
        let mut tx = doc.transaction();
        let v = get_map(&tx, &ROOT, "vocabulary").unwrap().unwrap();
        let entries = get_map(&tx, &v, "entries").unwrap().unwrap();
        tx.put(&entries, "不是代码", r#"{"kind":"child","zh":"甲"}"#)
            .unwrap();
        tx.put(&entries, "local.not_json", "{").unwrap();
        tx.put(&entries, "local.no_label", r#"{"kind":"child","zh":""}"#)
            .unwrap();
        tx.put(&entries, "local.number", 7_i64).unwrap();
        tx.put(
            &entries,
            "local.newer",
            r#"{"kind":"group_activity","zh":"新","en":"New","colour":"red","parent":"??"}"#,
        )
        .unwrap();
        tx.commit();
        let read = read_vocabulary(&doc).unwrap();
        let codes: Vec<(&str, CategoryKind, Option<CategoryCode>)> = read
            .entries
            .iter()
            .map(|e| (e.code.as_str(), e.kind, e.parent.clone()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("local.good", CategoryKind::Child, None),
                ("local.newer", CategoryKind::Unrecognised, None)
            ]
        );
        // A `vocabulary` that is not a map: an empty extension, the rest still reads.
        let mut doc = new_station_doc(StationId::new()).unwrap();
        let mut tx = doc.transaction();
        tx.put(&ROOT, "vocabulary", "x").unwrap();
        tx.commit();
        assert_eq!(read_vocabulary(&doc).unwrap(), StationVocabulary::default());
        assert!(read_station(&doc).is_ok());
    }

    fn label(s: &str) -> WorkerLabel {
        WorkerLabel::new(s).unwrap()
    }

    #[test]
    fn labels_are_written_once_changed_in_place_and_read_back() {
        let station = StationId::new();
        let mut doc = new_station_doc(station).unwrap();
        let (a, b) = (WorkerId::new(), WorkerId::new());
        let at = Timestamp(1);
        let both = [(a, label("W01 / 张丽")), (b, label("W02"))];
        assert_eq!(set_worker_labels(&mut doc, &both, at).unwrap(), 2);
        let heads = doc.get_heads();
        assert_eq!(set_worker_labels(&mut doc, &both, at).unwrap(), 0);
        assert_eq!(doc.get_heads(), heads, "nothing new: no change");
        assert_eq!(
            set_worker_labels(&mut doc, &[(b, label("W02 / 王芳"))], at).unwrap(),
            1
        );
        let mut want = vec![(a, label("W01 / 张丽")), (b, label("W02 / 王芳"))];
        want.sort();
        assert_eq!(read_worker_labels(&doc).unwrap(), want);
        // The cards are read as before.
        assert_eq!(read_station(&doc).unwrap(), StationCards::default());
    }

    #[test]
    fn a_document_from_before_labels_gets_its_workers_map_at_the_first_label() {
        let station = StationId::new();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(&ROOT, "schema", 1_i64).unwrap();
        tx.put(&ROOT, "kind", "station").unwrap();
        tx.put(&ROOT, "id", station.to_string()).unwrap();
        tx.put_object(&ROOT, "batches", ObjType::Map).unwrap();
        tx.put_object(&ROOT, "leases", ObjType::Map).unwrap();
        tx.commit();
        assert_eq!(read_worker_labels(&doc).unwrap(), vec![]);
        let w = WorkerId::new();
        set_worker_labels(&mut doc, &[(w, label("W01"))], Timestamp(1)).unwrap();
        assert_eq!(read_worker_labels(&doc).unwrap(), vec![(w, label("W01"))]);
    }

    #[test]
    fn malformed_entries_are_skipped_not_fatal() {
        let station = StationId::new();
        let mut doc = new_station_doc(station).unwrap();
        let good = WorkerId::new();
        set_worker_labels(&mut doc, &[(good, label("W01"))], Timestamp(1)).unwrap();
        let mut tx = doc.transaction();
        let workers = get_map(&tx, &ROOT, "workers").unwrap().unwrap();
        tx.put(&workers, "not-an-id", "W09").unwrap();
        tx.put(&workers, WorkerId::new().to_string(), "张\n丽")
            .unwrap();
        tx.put(&workers, WorkerId::new().to_string(), "").unwrap();
        tx.put(&workers, WorkerId::new().to_string(), 7_i64)
            .unwrap();
        tx.put_object(&workers, WorkerId::new().to_string(), ObjType::Map)
            .unwrap();
        tx.commit();
        assert_eq!(
            read_worker_labels(&doc).unwrap(),
            vec![(good, label("W01"))]
        );

        // A `workers` that is not a map at all: no labels, the cards still read.
        let mut doc = new_station_doc(station).unwrap();
        let mut tx = doc.transaction();
        tx.put(&ROOT, "workers", "W01").unwrap();
        tx.commit();
        assert_eq!(read_worker_labels(&doc).unwrap(), vec![]);
        assert!(read_station(&doc).is_ok());
    }
}
