//! The bundle lower bound (issue 14): the trace's user actions as plain automerge changes —
//! no cells, no provenance, one change per action — each document's new changes as one
//! `Automerge::bundle`, zstd 3, up once and down once. It is independent of Doorstep's data
//! model and encoding, so it does not rise with them. Beside it, Doorstep's own changes of
//! the week bundled the same way, which separates the cost of the data model (more and
//! bigger changes) from that of the encoding (change chunks instead of bundles).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use super::reference::OwnChanges;
use super::trace::{HouseholdRec, Member, Op, Trace};
use super::Res;

/// Per device: bytes up and down (zstd 3 over the concatenated bundles), and counts.
#[derive(Debug, Default)]
pub struct Bound {
    pub up: Vec<u64>,
    pub down: Vec<u64>,
    /// Changes in the week, all devices.
    pub changes: usize,
    /// Raw (uncompressed) change bytes of the week, all devices.
    pub raw_change_bytes: u64,
}

impl Bound {
    pub fn total(&self) -> u64 {
        self.up.iter().sum::<u64>() + self.down.iter().sum::<u64>()
    }
}

fn put_member(tx: &mut impl Transactable, list: &ObjId, at: usize, m: &Member) -> Res<()> {
    let obj = tx.insert_object(list, at, ObjType::Map)?;
    tx.put(&obj, "name", m.name.as_str())?;
    tx.put(
        &obj,
        "birth_year",
        ScalarValue::Uint(u64::from(m.birth_year)),
    )?;
    let tags = tx.put_object(&obj, "tags", ObjType::List)?;
    for (i, t) in m.tags.iter().enumerate() {
        tx.insert(&tags, i, t.as_str())?;
    }
    Ok(())
}

/// The household as the station creates it before the week, in one change.
fn initial(h: &HouseholdRec) -> Res<Automerge> {
    let mut doc = Automerge::new().with_actor(ActorId::from(&b"station"[..]));
    let mut tx = doc.transaction();
    tx.put(ROOT, "code", h.code.as_str())?;
    tx.put(ROOT, "address", h.address.as_str())?;
    tx.put(ROOT, "head", ScalarValue::Uint(h.head_index() as u64))?;
    tx.put(ROOT, "phone", h.phone.as_str())?;
    let summary = tx.put_object(ROOT, "summary", ObjType::Text)?;
    tx.splice_text(&summary, 0, 0, &h.summary)?;
    let members = tx.put_object(ROOT, "members", ObjType::List)?;
    for (i, m) in h.members.iter().enumerate() {
        put_member(&mut tx, &members, i, m)?;
    }
    tx.put_object(ROOT, "visits", ObjType::Map)?;
    tx.commit_with(CommitOptions::default().with_time(0));
    Ok(doc)
}

fn obj(doc: &Automerge, parent: &ObjId, key: &str) -> Res<ObjId> {
    match doc.get(parent, key)? {
        Some((_, id)) => Ok(id),
        None => Err(format!("bundle bound: no {key}").into()),
    }
}

/// One user action as one plain automerge change.
fn apply(doc: &mut Automerge, device: usize, op: &Op, time_ms: i64) -> Res<()> {
    let visits = obj(doc, &ROOT, "visits")?;
    let members = obj(doc, &ROOT, "members")?;
    let head = match doc.get(ROOT, "head")? {
        Some((automerge::Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Uint(n) => *n as usize,
            _ => 0,
        },
        _ => 0,
    };
    let mut tx = doc.transaction();
    match op {
        Op::NewVisit {
            visit_no,
            date,
            needs,
            tasks,
            card,
        } => {
            let v = tx.put_object(&visits, format!("{device}-{visit_no}"), ObjType::Map)?;
            tx.put(&v, "date", date.as_str())?;
            tx.put(&v, "worker", format!("W{:02}", device + 1))?;
            let ns = tx.put_object(&v, "needs", ObjType::List)?;
            for (i, n) in needs.iter().enumerate() {
                tx.insert(&ns, i, n.as_str())?;
            }
            let ts = tx.put_object(&v, "tasks", ObjType::List)?;
            for (i, (what, due)) in tasks.iter().enumerate() {
                let t = tx.insert_object(&ts, i, ObjType::Map)?;
                tx.put(&t, "what", what.as_str())?;
                tx.put(&t, "due", due.as_str())?;
            }
            tx.put(&v, "card", card.as_str())?;
            tx.put_object(&v, "note", ObjType::Text)?;
        }
        Op::NoteInsert {
            visit_no,
            pos,
            text,
        } => {
            let v = match tx.get(&visits, format!("{device}-{visit_no}"))? {
                Some((_, id)) => id,
                None => return Err("bundle bound: note before its visit".into()),
            };
            let note = match tx.get(&v, "note")? {
                Some((_, id)) => id,
                None => return Err("bundle bound: visit without a note".into()),
            };
            tx.splice_text(&note, *pos, 0, text)?;
        }
        Op::Phone(p) => {
            tx.put(ROOT, "phone", p.as_str())?;
        }
        Op::Address(a) => {
            tx.put(ROOT, "address", a.as_str())?;
        }
        Op::HeadTagAdd(tag) => {
            let m = match tx.get(&members, head)? {
                Some((_, id)) => id,
                None => return Err("bundle bound: no head member".into()),
            };
            let tags = match tx.get(&m, "tags")? {
                Some((_, id)) => id,
                None => return Err("bundle bound: member without tags".into()),
            };
            let n = tx.length(&tags);
            tx.insert(&tags, n, tag.as_str())?;
        }
        Op::MemberAdd(m) => {
            let n = tx.length(&members);
            put_member(&mut tx, &members, n, m)?;
        }
    }
    tx.commit_with(CommitOptions::default().with_time(time_ms));
    Ok(())
}

fn zstd3(raw: &[u8]) -> Res<u64> {
    Ok(zstd::bulk::compress(raw, 3)?.len() as u64)
}

/// Per document (by index): the merge of every device's version, and per device the hashes
/// of the changes it made in the week.
struct Week {
    merged: BTreeMap<usize, Automerge>,
    mine: Vec<BTreeMap<usize, Vec<ChangeHash>>>,
}

/// Bytes up and down when each device sends each document's new changes as one bundle and
/// receives, per document, all the other devices' new changes as one bundle.
fn bundled(week: &Week) -> Res<Bound> {
    let mut out = Bound::default();
    for (d, mine) in week.mine.iter().enumerate() {
        let mut up = Vec::new();
        for (h, hashes) in mine {
            up.extend_from_slice(week.merged[h].bundle(hashes.iter().copied())?.bytes());
        }
        let mut down = Vec::new();
        for (h, doc) in &week.merged {
            let others: Vec<ChangeHash> = week
                .mine
                .iter()
                .enumerate()
                .filter(|(o, _)| *o != d)
                .filter_map(|(_, m)| m.get(h))
                .flatten()
                .copied()
                .collect();
            if !others.is_empty() {
                down.extend_from_slice(doc.bundle(others)?.bytes());
            }
        }
        out.up.push(zstd3(&up)?);
        out.down.push(zstd3(&down)?);
    }
    for doc in week.merged.values() {
        for c in doc.get_changes(&[]) {
            if c.actor_id().to_bytes() != b"station" {
                out.changes += 1;
                out.raw_change_bytes += c.raw_bytes().len() as u64;
            }
        }
    }
    Ok(out)
}

/// The yardstick: the trace's user actions as plain automerge changes, bundled.
pub fn plain_bundle_bound(trace: &Trace) -> Res<Bound> {
    let touched: BTreeSet<usize> = trace.touched().into_iter().flatten().collect();
    let start: HashMap<usize, Automerge> = touched
        .iter()
        .map(|&h| Ok((h, initial(&trace.households[h])?)))
        .collect::<Res<_>>()?;
    let mut merged: BTreeMap<usize, Automerge> =
        start.iter().map(|(h, d)| (*h, d.clone())).collect();
    let mut mine = Vec::new();
    for (d, actions) in trace.devices.iter().enumerate() {
        let mut docs: BTreeMap<usize, Automerge> = BTreeMap::new();
        for a in actions {
            let doc = match docs.entry(a.h) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let actor = ActorId::from(format!("device-{d}").into_bytes());
                    e.insert(start[&a.h].fork().with_actor(actor))
                }
            };
            apply(doc, d, &a.op, a.time_ms)?;
        }
        let mut hashes = BTreeMap::new();
        for (h, mut doc) in docs {
            let before = start[&h].get_heads();
            let new: Vec<ChangeHash> = doc.get_changes(&before).iter().map(|c| c.hash()).collect();
            merged
                .get_mut(&h)
                .ok_or("bundle bound: lost a document")?
                .merge(&mut doc)?;
            hashes.insert(h, new);
        }
        mine.push(hashes);
    }
    bundled(&Week { merged, mine })
}

/// Doorstep's own changes of the week, bundled the same way: `initial` are the household
/// documents before the week (by index), `own` each device's new changes.
pub fn doorstep_bundled(initial: &[Vec<u8>], own: &[OwnChanges]) -> Res<Bound> {
    let mut merged: BTreeMap<usize, Automerge> = BTreeMap::new();
    let mut mine = Vec::new();
    for changes in own {
        let mut hashes = BTreeMap::new();
        for (h, bytes) in changes {
            let doc = match merged.entry(*h) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Automerge::load(&initial[*h])?)
                }
            };
            let parsed = bytes
                .iter()
                .map(|b| automerge::Change::from_bytes(b.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            hashes.insert(*h, parsed.iter().map(|c| c.hash()).collect());
            doc.apply_changes(parsed)?;
        }
        mine.push(hashes);
    }
    let mut out = bundled(&Week { merged, mine })?;
    // Count Doorstep's own changes, not the initial documents' history.
    out.changes = own.iter().flatten().map(|(_, c)| c.len()).sum();
    out.raw_change_bytes = own
        .iter()
        .flatten()
        .flat_map(|(_, c)| c.iter().map(|b| b.len() as u64))
        .sum();
    Ok(out)
}
