//! What Doorstep is measured against: the lower bound (each device's new changes only,
//! compressed, one round trip), a minimal server doing only the essential work on that
//! data, an independent automerge merge (the convergence oracle), and automerge's own sync
//! protocol run document by document.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use automerge::sync::{Message, State, SyncDoc};
use automerge::{Automerge, Change, ChangeHash};
use doorstep_core::{DeviceId, HouseholdId};
use doorstep_server::now_ms;
use doorstep_server::store::{DocAppend, ServerStore};
use doorstep_server::SqliteStore;

use super::server::cpu_seconds;
use super::Res;

/// One device's new changes of the week: (household index, change bytes in causal order).
pub type OwnChanges = Vec<(usize, Vec<Vec<u8>>)>;

fn concat<'a>(parts: impl Iterator<Item = &'a OwnChanges>) -> Vec<u8> {
    let mut out = Vec::new();
    for own in parts {
        for (_, changes) in own {
            for c in changes {
                out.extend_from_slice(c);
            }
        }
    }
    out
}

fn zstd3(raw: &[u8]) -> Res<Vec<u8>> {
    Ok(zstd::bulk::compress(raw, 3)?)
}

/// The lower bound on bytes: per device, its own new changes concatenated and compressed
/// (up), and every other device's new changes concatenated and compressed (down).
#[derive(Debug, Default)]
pub struct LowerBound {
    pub up: Vec<u64>,
    pub down: Vec<u64>,
    pub raw_up: Vec<u64>,
    pub changes: Vec<usize>,
    /// The compressed uploads (input of the minimal-server run).
    pub uploads: Vec<Vec<u8>>,
}

impl LowerBound {
    pub fn total(&self) -> u64 {
        self.up.iter().sum::<u64>() + self.down.iter().sum::<u64>()
    }
}

pub fn lower_bound(own: &[OwnChanges]) -> Res<LowerBound> {
    let mut lb = LowerBound::default();
    for (d, mine) in own.iter().enumerate() {
        let raw = concat(std::iter::once(mine));
        let up = zstd3(&raw)?;
        let down = zstd3(&concat(
            own.iter()
                .enumerate()
                .filter(|(o, _)| *o != d)
                .map(|(_, x)| x),
        ))?;
        lb.raw_up.push(raw.len() as u64);
        lb.up.push(up.len() as u64);
        lb.down.push(down.len() as u64);
        lb.changes.push(mine.iter().map(|(_, c)| c.len()).sum());
        lb.uploads.push(up);
    }
    Ok(lb)
}

/// CPU and wall time of a minimal server on the lower-bound data.
#[derive(Debug)]
pub struct MinimalServer {
    pub cpu: f64,
    pub wall: Duration,
    pub documents_loaded: usize,
    pub changes_applied: usize,
}

fn load_stored(store: &SqliteStore, id: HouseholdId) -> Res<Automerge> {
    let stored = store
        .load_document(id)?
        .ok_or("minimal server: document missing")?;
    Ok(doorstep_server::snapshot::load_stored(&stored)?)
}

/// The essential server work of a reconnect, single-threaded in this process: for each
/// device, decompress its upload, decode its changes, apply them to the documents (loaded
/// once from the same SQLite store the real server uses, then kept in memory), append them
/// durably in one transaction per device; then compress each device's download.
/// Measured as this thread's CPU time. `key`: the store encrypted as the real server's is
/// (SQLCipher), or plaintext (`None`, the yardstick as first defined).
pub fn minimal_server(
    dir: &Path,
    key: Option<&doorstep_server::store::key::ServerKey>,
    initial: &[Vec<u8>],
    ids: &[HouseholdId],
    own: &[OwnChanges],
    lb: &LowerBound,
) -> Res<MinimalServer> {
    std::fs::create_dir_all(dir)?;
    let store = SqliteStore::open_file_with(&dir.join("server.db"), key)?;
    let station = store.create_station("minimal", now_ms())?;
    let seed: Vec<DocAppend> = initial
        .iter()
        .zip(ids)
        .map(|(bytes, id)| {
            let doc = Automerge::load(bytes)?;
            let changes = doc
                .get_changes(&[])
                .into_iter()
                .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                .collect();
            Ok(DocAppend {
                signatures: Vec::new(),
                doc: *id,
                kind: doorstep_core::doc::DocKind::Household,
                changes,
                snapshot: Some(bytes.clone()),
                cards: Vec::new(),
                expected_seq: None,
            })
        })
        .collect::<Res<_>>()?;
    store.commit(station, DeviceId::new(), &seed)?;
    let devices: Vec<DeviceId> = own.iter().map(|_| DeviceId::new()).collect();

    let cpu0 = cpu_seconds("thread-self").unwrap_or(f64::NAN);
    let t0 = Instant::now();
    let mut docs: HashMap<usize, Automerge> = HashMap::new();
    let mut applied = 0usize;
    let mut raws: Vec<Vec<u8>> = Vec::new();
    for (d, mine) in own.iter().enumerate() {
        let raw = zstd::bulk::decompress(&lb.uploads[d], 256 << 20)?;
        let mut offset = 0usize;
        let mut appends = Vec::new();
        for (h, changes) in mine {
            let mut parsed = Vec::with_capacity(changes.len());
            for c in changes {
                let bytes = raw
                    .get(offset..offset + c.len())
                    .ok_or("minimal server: short upload")?;
                offset += c.len();
                parsed.push(Change::from_bytes(bytes.to_vec())?);
            }
            let doc = match docs.entry(*h) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(load_stored(&store, ids[*h])?)
                }
            };
            applied += parsed.len();
            doc.apply_changes(parsed.iter().cloned())?;
            let _heads = doc.get_heads();
            appends.push(DocAppend {
                signatures: Vec::new(),
                doc: ids[*h],
                kind: doorstep_core::doc::DocKind::Household,
                changes: parsed
                    .iter()
                    .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                    .collect(),
                snapshot: None,
                // The card index is not part of the minimal work.
                cards: Vec::new(),
                expected_seq: None,
            });
        }
        store.commit(station, devices[d], &appends)?;
        raws.push(raw);
    }
    for d in 0..own.len() {
        let mut down = Vec::new();
        for (o, r) in raws.iter().enumerate() {
            if o != d {
                down.extend_from_slice(r);
            }
        }
        let _ = zstd3(&down)?;
    }
    let wall = t0.elapsed();
    let cpu = cpu_seconds("thread-self").unwrap_or(f64::NAN) - cpu0;
    Ok(MinimalServer {
        cpu,
        wall,
        documents_loaded: docs.len(),
        changes_applied: applied,
    })
}

/// Automerge's sync protocol, per pass.
#[derive(Debug, Default, Clone)]
pub struct AmPass {
    pub messages: u64,
    pub bytes: u64,
    /// Messages for documents no one changed.
    pub unchanged_doc_messages: u64,
    pub unchanged_doc_bytes: u64,
    /// Documents that exchanged at least one message.
    pub documents_touched: u64,
    /// Per device: the longest request/response chain of any document (all documents
    /// pipelined over one connection).
    pub device_chain: Vec<u64>,
    /// Sum over documents of request/response pairs.
    pub round_trips: u64,
}

#[derive(Debug, Default)]
pub struct OracleResult {
    /// Households whose independent merge differs from the synced heads.
    pub merge_mismatches: usize,
    /// Households where automerge's sync did not converge on the merged heads.
    pub am_mismatches: usize,
    pub passes: [AmPass; 2],
    pub wall: Duration,
}

/// Ping-pong automerge sync of one document between a device and the server copy until
/// both are quiet. Returns (messages, bytes, request/response pairs).
fn exchange(
    dev: &mut Automerge,
    ds: &mut State,
    srv: &mut Automerge,
    ss: &mut State,
    device_first: bool,
) -> Res<(u64, u64, u64)> {
    let (mut msgs, mut bytes) = (0u64, 0u64);
    let mut device_turn = device_first;
    let mut quiet = 0;
    for _ in 0..1000 {
        let msg = if device_turn {
            dev.generate_sync_message(ds)
        } else {
            srv.generate_sync_message(ss)
        };
        match msg {
            Some(m) => {
                let enc = m.encode();
                bytes += enc.len() as u64;
                msgs += 1;
                let m = Message::decode(&enc)?;
                if device_turn {
                    srv.receive_sync_message(ss, m)?;
                } else {
                    dev.receive_sync_message(ds, m)?;
                }
                quiet = 0;
            }
            None => {
                quiet += 1;
                if quiet >= 2 {
                    return Ok((msgs, bytes, msgs.div_ceil(2)));
                }
            }
        }
        device_turn = !device_turn;
    }
    Err("automerge sync did not settle in 1000 messages".into())
}

fn state_with(shared: &[ChangeHash]) -> State {
    // What `State::decode` gives for a state persisted after the last sync: shared heads only.
    let mut s = State::new();
    s.shared_heads = shared.to_vec();
    s
}

/// For every household: merge every device's week into the initial document and compare
/// with the synced heads; then (if asked) run automerge's sync protocol between each
/// device's document and a server copy, device by device (pass 1), then again (pass 2).
pub fn oracle(
    initial: &[Vec<u8>],
    after: &[HashMap<usize, Vec<u8>>],
    pre_heads: &[Vec<ChangeHash>],
    synced: &[Vec<ChangeHash>],
    run_automerge: bool,
) -> Res<OracleResult> {
    let w = after.len();
    let t0 = Instant::now();
    let mut out = OracleResult::default();
    for p in &mut out.passes {
        p.device_chain = vec![0; w];
    }
    for h in 0..initial.len() {
        let base = Automerge::load(&initial[h])?;
        let changed = after.iter().any(|a| a.contains_key(&h));
        let mut devs: Vec<Automerge> = after
            .iter()
            .map(|a| match a.get(&h) {
                Some(b) => Automerge::load(b).map_err(Into::into),
                None => Ok(base.clone()),
            })
            .collect::<Res<_>>()?;
        let mut merged = base.clone();
        for d in &devs {
            merged.merge(&mut d.clone())?;
        }
        let mut mh = merged.get_heads();
        mh.sort();
        if mh != synced[h] {
            out.merge_mismatches += 1;
        }
        if !run_automerge {
            continue;
        }
        let mut srv = base;
        let mut dev_states: Vec<State> = (0..w).map(|_| state_with(&pre_heads[h])).collect();
        let mut srv_states: Vec<State> = (0..w).map(|_| state_with(&pre_heads[h])).collect();
        for (pass, device_first) in [(0usize, true), (1usize, false)] {
            let mut touched = false;
            for d in 0..w {
                let (m, b, rt) = exchange(
                    &mut devs[d],
                    &mut dev_states[d],
                    &mut srv,
                    &mut srv_states[d],
                    device_first,
                )?;
                let p = &mut out.passes[pass];
                p.messages += m;
                p.bytes += b;
                p.round_trips += rt;
                if !changed {
                    p.unchanged_doc_messages += m;
                    p.unchanged_doc_bytes += b;
                }
                p.device_chain[d] = p.device_chain[d].max(rt);
                touched |= m > 0;
            }
            if touched {
                out.passes[pass].documents_touched += 1;
            }
        }
        let mut sh = srv.get_heads();
        sh.sort();
        if sh != mh
            || devs.iter().any(|d| {
                let mut x = d.get_heads();
                x.sort();
                x != mh
            })
        {
            out.am_mismatches += 1;
        }
    }
    out.wall = t0.elapsed();
    Ok(out)
}
