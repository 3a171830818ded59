//! What a document and a change may contain, decided once for the phone and the server
//! (ADR 0012, ADR 0013): the server refuses what these refuse, so what it acknowledges every
//! phone of the same version can read.

use automerge::{legacy, Automerge, Change, ObjType, Prop, ReadDoc, ScalarValue, Value, ROOT};

use crate::doc::cells::ObjId;
use crate::error::{Error, Result};
use crate::model::ids::{DeviceId, WorkerId};
use crate::model::records::Household;
use crate::model::values::VisitStatus;

/// How far in the future of the checker's clock a change's time may lie: a phone's clock
/// may be wrong by a time zone or two; a forged "latest" value a year ahead is refused.
pub const FUTURE_TOLERANCE_MS: i64 = 24 * 60 * 60 * 1000;

/// The device and worker that own a change's actor (its signer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Author {
    pub worker: WorkerId,
    pub device: DeviceId,
}

/// Why a change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("a change names another worker or device as its author")]
    ForgedProvenance,
    #[error("a change is dated too far in the future")]
    FutureTime,
    #[error("a change made after a visit was finalised touches it")]
    Finalised,
}

/// The whole document reads with this version's reader — header (kind, schema, id,
/// station), every record and value, and the conflict review — and holds no value this
/// version does not know. The server runs it on every document it accepts, so what it
/// acknowledges every phone of the same version reads.
pub fn validate(doc: &Automerge) -> Result<()> {
    let household = super::read::read_household(doc)?;
    if let Some(what) = unrecognised(&household) {
        return Err(Error::InvalidInput(what));
    }
    super::conflicts::review(doc, household.id)?;
    Ok(())
}

/// What a phone needs to show a household: the document reads with this version's reader
/// and its conflict review works. Values this version does not know (a newer version wrote
/// them) read as `Unrecognised` and do not hide the household (ADR 0013).
pub fn readable(doc: &Automerge) -> Result<()> {
    let household = super::read::read_household(doc)?;
    super::conflicts::review(doc, household.id)?;
    Ok(())
}

/// The first value of `h` this version does not know, named by its type.
fn unrecognised(h: &Household) -> Option<&'static str> {
    if !h.status.is_recognised() {
        return Some("unknown HouseholdStatus");
    }
    if h.persons.iter().any(|p| !p.sex.is_recognised()) {
        return Some("unknown Sex");
    }
    for v in &h.visits {
        if !v.kind.is_recognised() {
            return Some("unknown VisitKind");
        }
        if !v.status.is_recognised() {
            return Some("unknown VisitStatus");
        }
    }
    if h.needs.iter().any(|n| !n.status.is_recognised()) {
        return Some("unknown NeedStatus");
    }
    if h.inquiries.iter().any(|i| !i.status.is_recognised()) {
        return Some("unknown InquiryStatus");
    }
    if h.follow_ups.iter().any(|f| !f.status.is_recognised()) {
        return Some("unknown FollowUpStatus");
    }
    if h.cards.iter().any(|c| !c.status.is_recognised()) {
        return Some("unknown CardStatus");
    }
    None
}

/// Every provenance `change` writes (`by`, `dev` and `at` keys: cells, set elements,
/// `created` maps, resolutions, card issuances, seals) must be its author's, and neither
/// the change's time nor an `at` may lie past `now_ms` + [`FUTURE_TOLERANCE_MS`]. Keys
/// `by` and `dev` hold provenance and nothing else anywhere in a household document.
///
/// And no change may write into a provenance-bearing map (one holding `by`: a cell, a
/// `created` map, a set element) that another actor made: a value is credited to the
/// author of its cell, so changing `v` inside a colleague's cell would put words in the
/// colleague's mouth. Writing a field is always a new cell (ADR 0002). `doc` is the
/// document with `change` applied.
pub fn check_provenance(
    doc: &Automerge,
    change: &Change,
    author: &Author,
    now_ms: i64,
) -> std::result::Result<(), Violation> {
    let latest = now_ms.saturating_add(FUTURE_TOLERANCE_MS);
    if change.timestamp() > latest {
        return Err(Violation::FutureTime);
    }
    let worker = author.worker.to_string();
    let device = author.device.to_string();
    let mut checked: Option<legacy::ObjectId> = None;
    for op in change.decode().operations {
        if let legacy::ObjectId::Id(id) = &op.obj {
            if id.actor() != change.actor_id() && checked.as_ref() != Some(&op.obj) {
                checked = Some(op.obj.clone());
                let obj = ObjId::Id(id.counter(), id.actor().clone(), usize::MAX);
                if matches!(doc.object_type(&obj), Ok(ObjType::Map))
                    && doc.get(&obj, "by").ok().flatten().is_some()
                {
                    return Err(Violation::ForgedProvenance);
                }
            }
        }
        let legacy::Key::Map(key) = &op.key else {
            continue;
        };
        let key: &str = key;
        if !matches!(key, "by" | "dev" | "at") {
            continue;
        }
        let legacy::OpType::Put(value) = &op.action else {
            // Deleting or replacing provenance with an object makes the record unreadable;
            // `validate` refuses that.
            continue;
        };
        let ok = match (key, value) {
            ("by", ScalarValue::Str(s)) => s.as_str() == worker,
            ("dev", ScalarValue::Str(s)) => s.as_str() == device,
            ("at", ScalarValue::Int(t)) => *t <= latest,
            ("at", ScalarValue::Uint(t)) => i64::try_from(*t).is_ok_and(|t| t <= latest),
            ("at", _) => true, // not a time: `validate` refuses it
            _ => false,
        };
        if !ok {
            return Err(if key == "at" {
                Violation::FutureTime
            } else {
                Violation::ForgedProvenance
            });
        }
    }
    Ok(())
}

/// Whether `change`, already applied to `doc`, touches a visit that was final in the
/// change's own past (at its dependencies). Such a change was made by someone who knew the
/// visit was final: it is refused. A change concurrent with the finalisation is not
/// refused; the phones raise it for review (`EditedAfterFinalise`).
pub fn check_finality(doc: &Automerge, change: &Change) -> std::result::Result<(), Violation> {
    let deps = change.deps();
    if deps.is_empty() {
        return Ok(());
    }
    let Ok(Some((Value::Object(ObjType::Map), visits))) = doc.get_at(&ROOT, "visits", deps) else {
        return Ok(()); // no visit existed then
    };
    let mut touched: Vec<String> = Vec::new();
    let mut all = false;
    // Typing is a run of ops on one text object: look each object up once.
    let mut last: Option<legacy::ObjectId> = None;
    for op in change.decode().operations {
        if last.as_ref() == Some(&op.obj) && !matches!(op.key, legacy::Key::Map(_)) {
            continue;
        }
        last = Some(op.obj.clone());
        let obj = match &op.obj {
            legacy::ObjectId::Root => {
                if matches!(&op.key, legacy::Key::Map(k) if &**k == "visits") {
                    all = true;
                }
                continue;
            }
            legacy::ObjectId::Id(id) => ObjId::Id(id.counter(), id.actor().clone(), usize::MAX),
        };
        let Ok(parents) = doc.parents(&obj) else {
            continue;
        };
        let mut path: Vec<Prop> = parents.map(|p| p.prop).collect();
        path.reverse();
        match path.as_slice() {
            // The visits map itself: the op's key is the visit.
            [Prop::Map(col)] if col == "visits" => match &op.key {
                legacy::Key::Map(k) => touched.push(k.to_string()),
                _ => all = true,
            },
            [Prop::Map(col), Prop::Map(visit), ..] if col == "visits" => {
                touched.push(visit.clone())
            }
            _ => {}
        }
    }
    let keys: Vec<String> = if all {
        doc.keys_at(&visits, deps).collect()
    } else {
        touched.sort();
        touched.dedup();
        touched
    };
    for key in keys {
        if final_at(doc, &visits, &key, deps) {
            return Err(Violation::Finalised);
        }
    }
    Ok(())
}

/// Whether visit `key` held the status final at `heads` (any of its concurrent values).
fn final_at(doc: &Automerge, visits: &ObjId, key: &str, heads: &[automerge::ChangeHash]) -> bool {
    let Ok(Some((Value::Object(ObjType::Map), visit))) = doc.get_at(visits, key, heads) else {
        return false;
    };
    let Ok(cells) = doc.get_all_at(&visit, "status", heads) else {
        return false;
    };
    cells.into_iter().any(|(value, cell)| {
        matches!(value, Value::Object(ObjType::Map))
            && matches!(
                doc.get_at(&cell, "v", heads),
                Ok(Some((Value::Scalar(s), _)))
                    if s.as_str() == Some(VisitStatus::Final.as_str())
            )
    })
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::InvalidInput(match v {
            Violation::ForgedProvenance => "a change names another author",
            Violation::FutureTime => "a change is dated in the future",
            Violation::Finalised => "a change touches a finalised visit",
        })
    }
}
