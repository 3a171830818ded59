//! Devices, setup, the offline week and the reconnect passes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ChangeHash;
use doorstep_core::transport::{enroll, HttpTransport, SyncReport};
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, SqliteStore};
use tokio::runtime::Runtime;

use super::server::{cpu_seconds, Server};
use super::trace::{Action, HouseholdRec, Member, Op};
use super::Res;

/// The section visit notes are typed into.
pub const NOTE_SECTION: Section = Section::PersonalSituation;

/// A field device: its own encrypted store file, a clock the replay sets to the trace's
/// time, and a transport to the server.
pub struct Device {
    pub index: usize,
    pub label: String,
    pub worker: WorkerId,
    pub station: StationId,
    pub device: DeviceId,
    pub url: String,
    token: String,
    pub path: PathBuf,
    key: [u8; 32],
    pub clock: Arc<AtomicI64>,
    pub store: Arc<Store>,
    pub transport: HttpTransport,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

fn open_store(
    path: &Path,
    key: [u8; 32],
    enrolled: (WorkerId, StationId, DeviceId),
    durability: Durability,
    clock: Arc<AtomicI64>,
) -> Res<Store> {
    let (worker, station, device) = enrolled;
    let mut opts = StoreOptions::new(path, StoreKey::Raw(key), worker, station);
    opts.device = Some(device);
    opts.durability = durability;
    opts.clock = Arc::new(move || match clock.load(Ordering::Relaxed) {
        0 => Timestamp::now(),
        t => Timestamp(t),
    });
    Ok(Store::open(opts)?)
}

impl Device {
    /// Reopen the store file with another durability (the old handle is dropped).
    pub fn reopen(&mut self, durability: Durability) -> Res<()> {
        let store = open_store(
            &self.path,
            self.key,
            (self.worker, self.station, self.device),
            durability,
            self.clock.clone(),
        )?;
        self.store = Arc::new(store);
        Ok(())
    }

    pub fn sync(&self, rt: &Runtime) -> Res<SyncReport> {
        Ok(rt.block_on(self.transport.sync(&self.store))?)
    }
}

/// A station with one worker (and one enrolment code) per device, written straight into the
/// server's database before the server starts.
pub fn prepare_station(data: &Path, workers: usize) -> Res<Vec<String>> {
    let store = SqliteStore::open_encrypted(data, &super::server::data_key(data)?)?;
    let station = store.create_station("石桥镇社工站", now_ms())?;
    (0..workers)
        .map(|i| {
            let w = store.add_worker(station, &format!("W{:02}", i + 1), now_ms())?;
            // The station's workers share its caseload, as they did before scopes.
            store.set_team(w, Some(&doorstep_core::TeamName::new("station")?), now_ms())?;
            Ok(credentials::enroll_device(&store, w, now_ms())?.1)
        })
        .collect()
}

/// Enrol each device over HTTP and open its store.
pub fn enroll_devices(
    rt: &Runtime,
    url: &str,
    codes: &[String],
    dir: &Path,
    durability: Durability,
) -> Res<Vec<Device>> {
    let mut out = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let e = rt.block_on(enroll(url, code))?;
        let label = format!("W{:02}", i + 1);
        let path = dir.join(format!("{label}.db"));
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let clock = Arc::new(AtomicI64::new(0));
        let store = open_store(
            &path,
            key,
            (e.worker, e.station, e.device),
            durability,
            clock.clone(),
        )?;
        let transport = HttpTransport::new(url, &e.token, Duration::from_secs(600))?;
        out.push(Device {
            index: i,
            label,
            worker: e.worker,
            station: e.station,
            device: e.device,
            url: url.to_owned(),
            token: e.token.clone(),
            path,
            key,
            clock,
            store: Arc::new(store),
            transport,
        });
    }
    Ok(out)
}

/// The trace's households as documents, and the head of each.
#[derive(Debug)]
pub struct World {
    pub households: Vec<HouseholdId>,
    pub heads: Vec<PersonId>,
    pub changes: usize,
}

fn new_person(m: &Member, relation: &str) -> Res<NewPerson> {
    Ok(NewPerson {
        name: m.name.clone(),
        sex: Sex::Unknown,
        birth_date: Some(BirthDate {
            date: Date::new(m.birth_year, 1, 1)?,
            estimated: true,
        }),
        id_number: None,
        relation: relation.to_owned(),
        guardian: false,
        categories: person_codes(&m.tags),
        school: None,
        grade: None,
    })
}

/// Device 0 opens every case file: the household (code, address, phone, summary), then
/// each member as a person (the head first) with the member's tags as categories.
pub fn create_households(dev: &Device, recs: &[HouseholdRec], at_ms: i64) -> Res<World> {
    dev.clock.store(at_ms, Ordering::Relaxed);
    let mut world = World {
        households: Vec::with_capacity(recs.len()),
        heads: Vec::with_capacity(recs.len()),
        changes: 0,
    };
    for r in recs {
        let hid = dev.store.create_household(&NewHousehold {
            code: r.code.clone(),
            village: String::new(),
            address: r.address.clone(),
            gps: None,
            phones: vec![r.phone.clone()],
            tags: Vec::new(),
            summary: r.summary.clone(),
        })?;
        world.changes += 1;
        let head_idx = r.head_index();
        let mut head = None;
        for (i, m) in r.members.iter().enumerate() {
            let relation = if i == head_idx {
                "户主"
            } else {
                "家庭成员"
            };
            let pid = dev.store.add_person(hid, &new_person(m, relation)?)?;
            world.changes += 1;
            if i == head_idx {
                head = Some(pid);
            }
        }
        let head = match head {
            Some(h) => h,
            None => {
                world.changes += 1;
                dev.store
                    .add_person(hid, &NewPerson::named(&r.head, "户主"))?
            }
        };
        world.households.push(hid);
        world.heads.push(head);
    }
    dev.clock.store(0, Ordering::Relaxed);
    Ok(world)
}

/// Gives every household `n` earlier visits (issue 14's `--history-visits`): each a home
/// visit a month apart before `before_ms`, its note (540–660 characters) typed in one
/// insertion, then finalised — the history a household carries into the measured week.
/// Returns the changes made.
pub fn add_history(dev: &Device, world: &World, n: usize, before_ms: i64, seed: u64) -> Res<usize> {
    let mut rng = super::trace::Rng::new(seed);
    let mut changes = 0;
    for (i, &hid) in world.households.iter().enumerate() {
        for k in 0..n {
            let at = before_ms - (n - k) as i64 * 30 * 86_400_000 + i as i64 * 1_000;
            dev.clock.store(at, Ordering::Relaxed);
            earlier_visit(&dev.store, hid, Timestamp(at), &mut rng)?;
            changes += 3;
        }
    }
    dev.clock.store(0, Ordering::Relaxed);
    Ok(changes)
}

/// One earlier visit of a household's history: a home visit at `at`, its note (540–660
/// characters) typed in one insertion, finalised (three changes).
pub fn earlier_visit(
    store: &Store,
    hid: HouseholdId,
    at: Timestamp,
    rng: &mut super::trace::Rng,
) -> Res<()> {
    let vid = store.start_visit(
        hid,
        &NewVisit {
            kind: VisitKind::Home,
            date: Date::in_china(at)?,
            started_at: at,
            gps: None,
            other_workers: vec![],
            present: vec![],
            companions: vec![],
        },
    )?;
    let len = rng.range(540, 661);
    let note = super::trace::text(rng, len);
    store.splice_section(hid, vid, NOTE_SECTION, 0, 0, &note)?;
    store.finalise_visit(hid, vid)?;
    Ok(())
}

/// What one device's offline week took.
#[derive(Debug, Default)]
pub struct WeekStats {
    pub wall: Duration,
    pub actions: usize,
    /// Durable store calls (a new visit is several: visit, needs, follow-ups, card).
    pub calls: usize,
    pub per_kind: BTreeMap<&'static str, Vec<Duration>>,
}

fn timed<T>(
    stats: &mut WeekStats,
    kind: &'static str,
    f: impl FnOnce() -> doorstep_core::Result<T>,
) -> Res<T> {
    let t = Instant::now();
    let out = f()?;
    stats.per_kind.entry(kind).or_default().push(t.elapsed());
    stats.calls += 1;
    Ok(out)
}

/// Replay one device's actions in order, each durable before the next.
pub fn replay(dev: &Device, acts: &[Action], world: &World) -> Res<WeekStats> {
    let store = &dev.store;
    let mut stats = WeekStats::default();
    let mut visits: HashMap<usize, (HouseholdId, VisitId)> = HashMap::new();
    let started = Instant::now();
    for a in acts {
        let hid = *world
            .households
            .get(a.h)
            .ok_or("action on an unknown household")?;
        dev.clock.store(a.time_ms, Ordering::Relaxed);
        match &a.op {
            Op::NewVisit {
                visit_no,
                date,
                needs,
                tasks,
                card,
            } => {
                let date = Date::parse(date)?;
                let due: Vec<Date> = tasks
                    .iter()
                    .map(|(_, due)| Date::parse(due))
                    .collect::<Result<_, _>>()?;
                // One user action, one change: the visit with what it found (issue 14).
                let opened = timed(&mut stats, "open_visit", || {
                    store.open_visit(
                        hid,
                        &VisitOpening {
                            visit: NewVisit {
                                kind: VisitKind::Home,
                                date,
                                started_at: Timestamp(a.time_ms),
                                gps: None,
                                other_workers: vec![],
                                present: vec![],
                                companions: vec![],
                            },
                            needs: needs
                                .iter()
                                .map(|n| NewNeed {
                                    category: n.clone(),
                                    description: String::new(),
                                    person: None,
                                    visit: None,
                                })
                                .collect(),
                            follow_ups: tasks
                                .iter()
                                .zip(&due)
                                .map(|((what, _), due)| NewFollowUp {
                                    what: what.clone(),
                                    due: *due,
                                    assignee: dev.worker,
                                    origin_visit: None,
                                })
                                .collect(),
                            card: Some(NewCardIssuance {
                                serial: card.clone(),
                                visit: None,
                                person: None,
                                replaces: None,
                            }),
                        },
                    )
                })?;
                visits.insert(*visit_no, (hid, opened.visit));
            }
            Op::NoteInsert {
                visit_no,
                pos,
                text,
            } => {
                let (vh, vid) = *visits.get(visit_no).ok_or("note for a visit not opened")?;
                if vh != hid {
                    return Err("note for a visit of another household".into());
                }
                timed(&mut stats, "splice_section", || {
                    store.splice_section(hid, vid, NOTE_SECTION, *pos, 0, text)
                })?;
            }
            Op::Phone(new) => {
                // "Change the phone" = replace: remove what this device shows, add the new one.
                let t = Instant::now();
                let old = store.household(hid)?.phones;
                stats
                    .per_kind
                    .entry("read_phones")
                    .or_default()
                    .push(t.elapsed());
                for p in old.iter().filter(|p| *p != new) {
                    timed(&mut stats, "phone_remove", || {
                        store.edit_household(hid, &HouseholdEdit::RemovePhone(p.clone()))
                    })?;
                }
                timed(&mut stats, "phone_add", || {
                    store.edit_household(hid, &HouseholdEdit::AddPhone(new.clone()))
                })?;
            }
            Op::Address(addr) => {
                timed(&mut stats, "address", || {
                    store.edit_household(hid, &HouseholdEdit::Address(addr.clone()))
                })?;
            }
            Op::HeadTagAdd(tag) => {
                let head = world.heads[a.h];
                // A tag with no person category code is recorded nowhere (ADR 0018).
                if let Some(code) = person_codes(std::slice::from_ref(tag)).pop() {
                    timed(&mut stats, "head_tag_add", || {
                        store.edit_person(hid, head, &PersonEdit::AddCategory(code.clone()))
                    })?;
                }
            }
            Op::MemberAdd(m) => {
                let p = new_person(m, "家庭成员")?;
                timed(&mut stats, "member_add", || store.add_person(hid, &p))?;
            }
        }
        stats.actions += 1;
    }
    dev.clock.store(0, Ordering::Relaxed);
    stats.wall = started.elapsed();
    Ok(stats)
}

/// Heads of every household on one device.
pub fn device_heads(store: &Store, ids: &[HouseholdId]) -> Res<Vec<Vec<ChangeHash>>> {
    ids.iter()
        .map(|h| {
            let mut heads = store.heads(*h)?;
            heads.sort();
            Ok(heads)
        })
        .collect()
}

/// Heads of every household on every device (one thread per device).
pub fn all_device_heads(devs: &[Device], ids: &[HouseholdId]) -> Res<Vec<Vec<Vec<ChangeHash>>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = devs
            .iter()
            .map(|d| {
                let store = d.store.clone();
                s.spawn(move || device_heads(&store, ids).map_err(|e| e.to_string()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "heads thread panicked")?
                    .map_err(Into::into)
            })
            .collect()
    })
}

/// Heads of every household as the server stores them (read from its database file).
pub fn server_heads(data: &Path, ids: &[HouseholdId]) -> Res<Vec<Vec<ChangeHash>>> {
    let store = SqliteStore::open_encrypted(data, &super::server::data_key(data)?)?;
    ids.iter()
        .map(|h| {
            let Some(stored) = store.load_document(*h)? else {
                return Ok(Vec::new());
            };
            let doc = doorstep_server::snapshot::load_stored(&stored)?;
            let mut heads = doc.get_heads();
            heads.sort();
            Ok(heads)
        })
        .collect()
}

/// Households on which devices or the server disagree.
pub fn divergent(devices: &[Vec<Vec<ChangeHash>>], server: &[Vec<ChangeHash>]) -> usize {
    (0..server.len())
        .filter(|&h| devices.iter().any(|d| d[h] != server[h]) || server[h].is_empty())
        .count()
}

/// One device's part in a pass.
#[derive(Debug)]
pub struct DevicePass {
    pub report: SyncReport,
    pub wall: Duration,
    /// With `--breakdown`: time building requests, waiting for the server (HTTP), applying.
    pub breakdown: Option<[Duration; 3]>,
}

/// `HttpTransport::sync` spelled out (same requests, same loop) with a stopwatch on each
/// step: prepare the request, the HTTP exchange, apply the response. It asks for the
/// budget the device's transport would ask for at the start (and measures no link).
async fn instrumented_sync(
    store: &Store,
    client: &reqwest::Client,
    url: &str,
    token: &str,
    budget: u32,
) -> doorstep_core::Result<(SyncReport, [Duration; 3])> {
    let mut report = SyncReport::default();
    let mut times = [Duration::ZERO; 3];
    loop {
        let t = Instant::now();
        let body = store.prepare_sync_request(budget)?;
        report.budgets.push(budget);
        times[0] += t.elapsed();
        let up = body.len() as u64;
        let t = Instant::now();
        let resp = client
            .post(format!("{url}/v1/sync"))
            .bearer_auth(token)
            .header(
                reqwest::header::CONTENT_TYPE,
                doorstep_core::protocol::SYNC_CONTENT_TYPE,
            )
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(Error::Server(resp.status().as_u16()));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        times[1] += t.elapsed();
        let t = Instant::now();
        let o = store.apply_sync_response(&bytes)?;
        times[2] += t.elapsed();
        report.round_trips += 1;
        report.bytes_up += up;
        report.bytes_down += bytes.len() as u64;
        report.acknowledged += o.acknowledged;
        report.pulled += o.pulled;
        report.pulled_bytes += o.pulled_bytes;
        report.snapshots += o.snapshots;
        report.refused += o.refused.len();
        if !o.more {
            return Ok((report, times));
        }
    }
}

/// A pass: every device syncs (all start at once) until its sync is done.
#[derive(Debug)]
pub struct Pass {
    pub wall: Duration,
    pub devices: Vec<DevicePass>,
    pub server_cpu: f64,
    /// CPU of this process (the devices; also the server when it runs in-process).
    pub bench_cpu: f64,
}

impl Pass {
    pub fn bytes_up(&self) -> u64 {
        self.devices.iter().map(|d| d.report.bytes_up).sum()
    }
    pub fn bytes_down(&self) -> u64 {
        self.devices.iter().map(|d| d.report.bytes_down).sum()
    }
    pub fn round_trips(&self) -> u64 {
        self.devices
            .iter()
            .map(|d| u64::from(d.report.round_trips))
            .sum()
    }
    pub fn max_round_trips(&self) -> u64 {
        self.devices
            .iter()
            .map(|d| u64::from(d.report.round_trips))
            .max()
            .unwrap_or(0)
    }
}

/// Run one pass: a tokio task per device on the multi-thread runtime (one worker thread per
/// device, so a task blocked in a store call never holds up another device).
pub fn pass(rt: &Runtime, devs: &[Device], server: &Server, breakdown: bool) -> Res<Pass> {
    let barrier = Arc::new(tokio::sync::Barrier::new(devs.len() + 1));
    let client = reqwest::Client::new();
    let cpu0 = server.cpu_seconds();
    let self0 = cpu_seconds("self").unwrap_or(f64::NAN);
    let (wall, results) = rt.block_on(async {
        let mut handles = Vec::new();
        for d in devs {
            let store = d.store.clone();
            let transport = d.transport.clone();
            let b = barrier.clone();
            let (client, url, token) = (client.clone(), d.url.clone(), d.token.clone());
            handles.push(tokio::spawn(async move {
                b.wait().await;
                let t = Instant::now();
                let r = if breakdown {
                    instrumented_sync(&store, &client, &url, &token, transport.budget())
                        .await
                        .map(|(r, b)| (r, Some(b)))
                } else {
                    transport.sync(&store).await.map(|r| (r, None))
                };
                (r, t.elapsed())
            }));
        }
        barrier.wait().await;
        let t0 = Instant::now();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await);
        }
        (t0.elapsed(), out)
    });
    let server_cpu = server.cpu_seconds() - cpu0;
    let bench_cpu = cpu_seconds("self").unwrap_or(f64::NAN) - self0;
    let mut devices = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        let (result, wall) = r?;
        let (report, breakdown) = result.map_err(|e| format!("W{:02} sync failed: {e}", i + 1))?;
        devices.push(DevicePass {
            report,
            wall,
            breakdown,
        });
    }
    Ok(Pass {
        wall,
        devices,
        server_cpu,
        bench_cpu,
    })
}

/// What a device will push when it reconnects, read before the first pass.
#[derive(Debug, Default)]
pub struct PendingPush {
    pub documents: usize,
    pub changes: usize,
    pub change_bytes: usize,
}

pub fn pending_push(store: &Store) -> Res<PendingPush> {
    let req = store.build_sync_request(doorstep_core::transport::DEFAULT_BUDGET)?;
    Ok(PendingPush {
        documents: req.push.len(),
        changes: req.push.iter().map(|d| d.changes.len()).sum(),
        change_bytes: req
            .push
            .iter()
            .flat_map(|d| d.changes.iter().map(Vec::len))
            .sum(),
    })
}

/// The trace's free-text tags as person category codes (ADR 0018): a tag that means one
/// built-in person code (独居 -> elderly.living_alone, 残疾 -> person.disability) becomes
/// it; the others (外出务工, 党员 ..., and 低保, a household's) are left out.
fn person_codes(tags: &[String]) -> Vec<String> {
    let vocabulary = doorstep_core::Vocabulary::builtin();
    tags.iter()
        .filter_map(|t| doorstep_core::model::vocabulary::code_of_stored(t))
        .filter_map(|c| {
            vocabulary
                .check_writable(c.as_str(), doorstep_core::CategoryPlace::Person)
                .ok()
        })
        .map(|c| c.as_str().to_owned())
        .collect()
}
