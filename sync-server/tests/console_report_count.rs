//! The monthly report against a count kept by the test itself. Four phones (real core
//! stores, each with its own clock) record a seeded month and a half of work — visits of
//! every kind in three villages, needs raised and met, inquiries answered or not, contact
//! cards issued from each phone's lease, follow-ups done, cancelled or left open — and sync
//! through a real server on 127.0.0.1. As they go, the test writes down what each phone
//! recorded, and when; from that ledger alone (never the server's read model, never a
//! phone's store) it counts October, November and December in Beijing time, and the report
//! must equal the count in every number, on SQLite and on PostgreSQL. The scenario always
//! holds one burst of work at 23:30 on 30 November and one at 00:30 on 1 December, Beijing
//! time: the first is November's, the second December's though it is still 30 November in
//! UTC. The seed is printed; `DOORSTEP_REPORT_SEED=<n>` replays one.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod console_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use console_support::client::Browser;
use console_support::{LOGIN, PASSWORD};
use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::console::report::{monthly, rows, Month, Report};
use doorstep_server::console::ConsoleConfig;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Midnight starting 15 October / 25 October / 30 November / 6 December 2026, Beijing time.
const OCT_15: i64 = 1_791_993_600_000;
const OCT_25: i64 = 1_792_857_600_000;
const NOV_30: i64 = 1_795_968_000_000;
const DEC_06: i64 = 1_796_486_400_000;
/// The two bursts either side of the month's end, Beijing time.
const NOV_30_2330: i64 = NOV_30 + 23 * HOUR + 30 * 60_000;
const DEC_01_0030: i64 = NOV_30 + DAY + 30 * 60_000;

const MONTHS: [&str; 3] = ["2026-10", "2026-11", "2026-12"];
const VILLAGES: [&str; 3] = ["石桥村", "柳湾村", "河口村"];
const HOUSEHOLD_TAGS: [&str; 3] = [
    "household.dibao",
    "household.dibao_marginal",
    "household.poverty_monitoring",
];
const PERSON_CATEGORIES: [&str; 5] = [
    "child.orphan",
    "child.unsupported",
    "child.left_behind",
    "child.difficult.illness",
    "elderly.living_alone",
];
const NEED_CATEGORIES: [&str; 3] = ["医疗救助", "教育资助", "心理支持"];
const TOPICS: [&str; 3] = ["补贴政策", "就学", "户籍"];
const KINDS: [VisitKind; 5] = [
    VisitKind::Home,
    VisitKind::Phone,
    VisitKind::School,
    VisitKind::NeighbourCheck,
    VisitKind::FollowUp,
];

/// SplitMix64: one small seeded generator, so a failing scenario replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, of: &'a [T]) -> &'a T {
        &of[self.below(of.len())]
    }
}

/// The Beijing calendar day of an instant, worked out here (UTC+8, no daylight saving)
/// rather than by the server's zone code.
fn beijing_day(ms: i64) -> Date {
    Date::parse("1970-01-01")
        .unwrap()
        .add_days((ms + 8 * HOUR).div_euclid(DAY))
        .unwrap()
}

fn month_of(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// A household as the test made it.
struct Household {
    id: HouseholdId,
    village: &'static str,
    /// Category codes of the household and its persons.
    codes: BTreeSet<&'static str>,
    /// Persons with categories: who, and the codes.
    persons: Vec<(PersonId, Vec<&'static str>)>,
}

/// What the phones recorded, as the test wrote it down when they did.
#[derive(Default)]
struct Ledger {
    /// (household index, worker label, kind, the phone's local day)
    visits: Vec<(usize, String, VisitKind, Date)>,
    /// (Beijing day recorded, category, met)
    needs: Vec<(Date, &'static str, bool)>,
    /// (Beijing day recorded, topic, answered)
    inquiries: Vec<(Date, &'static str, bool)>,
    /// Beijing day of each card issued.
    cards: Vec<Date>,
    /// (due, final status)
    follow_ups: Vec<(Date, FollowUpStatus)>,
}

/// A phone and the clock its store reads.
struct Phone {
    label: String,
    store: Store,
    transport: HttpTransport,
    clock: Arc<AtomicI64>,
}

impl Phone {
    fn at(&self, ms: i64) -> &Store {
        self.clock.store(ms, Ordering::SeqCst);
        &self.store
    }
}

/// The report the ledger says a month should have. Tallies are ordered as the report
/// documents them: largest first, then by label.
fn expected(
    ledger: &Ledger,
    households: &[Household],
    month: &str,
    today: Date,
    vocabulary: &Vocabulary,
) -> Report {
    fn tally(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
    let shown = |code: &str| {
        let e = vocabulary.lookup(code).unwrap();
        format!("{} {}", e.label_zh, e.code)
    };
    let mut r = Report {
        month: month.to_owned(),
        ..Report::default()
    };
    let (mut kinds, mut workers, mut villages) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut visited = BTreeSet::new();
    for (hh, worker, kind, day) in &ledger.visits {
        if month_of(*day) == month {
            r.visits += 1;
            *kinds.entry(kind.as_str().to_owned()).or_insert(0) += 1;
            *workers.entry(worker.clone()).or_insert(0) += 1;
            *villages
                .entry(households[*hh].village.to_owned())
                .or_insert(0) += 1;
            visited.insert(*hh);
        }
    }
    r.visits_by_kind = tally(kinds);
    r.visits_by_worker = tally(workers);
    r.visits_by_village = tally(villages);
    r.households_visited = visited.len() as u64;
    let mut categories = BTreeMap::new();
    let mut children: BTreeMap<String, BTreeSet<PersonId>> = BTreeMap::new();
    for hh in &visited {
        let h = &households[*hh];
        for code in &h.codes {
            *categories.entry(shown(code)).or_insert(0) += 1;
        }
        for (person, codes) in &h.persons {
            for code in codes.iter().filter(|c| c.starts_with("child.")) {
                children.entry(shown(code)).or_default().insert(*person);
            }
        }
    }
    r.households_visited_by_category = tally(categories);
    r.children_visited = children.values().flatten().collect::<BTreeSet<_>>().len() as u64;
    r.children_visited_by_category = tally(
        children
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect(),
    );
    let mut needs = BTreeMap::new();
    for (day, category, met) in &ledger.needs {
        if month_of(*day) == month {
            r.needs_raised += 1;
            r.needs_met += u64::from(*met);
            *needs.entry((*category).to_owned()).or_insert(0) += 1;
        }
    }
    r.needs_by_category = tally(needs);
    let mut topics = BTreeMap::new();
    for (day, topic, answered) in &ledger.inquiries {
        if month_of(*day) == month {
            r.inquiries += 1;
            r.inquiries_answered += u64::from(*answered);
            *topics.entry((*topic).to_owned()).or_insert(0) += 1;
        }
    }
    r.inquiries_by_topic = tally(topics);
    r.cards_issued = ledger
        .cards
        .iter()
        .filter(|d| month_of(**d) == month)
        .count() as u64;
    for (due, status) in &ledger.follow_ups {
        if month_of(*due) == month {
            r.follow_ups_due += 1;
            r.follow_ups_done += u64::from(*status == FollowUpStatus::Done);
            r.follow_ups_overdue += u64::from(*status == FollowUpStatus::Open && *due < today);
        }
    }
    r
}

/// Every phone syncs, twice round, so each has what the others sent.
async fn sync_all(phones: &[Phone]) {
    for _ in 0..2 {
        for p in phones {
            p.transport.sync(&p.store).await.unwrap();
        }
    }
}

/// Run `f` on the store off the async runtime (PostgreSQL's client blocks).
async fn blocking<S: ServerStore, T: Send + 'static>(
    store: &Arc<S>,
    f: impl FnOnce(&S) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .unwrap()
}

fn seed() -> u64 {
    match std::env::var("DOORSTEP_REPORT_SEED") {
        Ok(s) => s.parse().expect("DOORSTEP_REPORT_SEED is a number"),
        Err(_) => u64::from(uuid::Uuid::new_v4().as_fields().0),
    }
}

/// The scenario on `store`; panics with the seed in the message if a number differs.
async fn report_equals_the_ledger<S: ServerStore>(store: Arc<S>, backend: &str) {
    let seed = seed();
    eprintln!("{backend}: DOORSTEP_REPORT_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        console: Some(ConsoleConfig {
            secure_cookies: false,
            ..ConsoleConfig::default()
        }),
        ..ServerConfig::default()
    };
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();
    let (station, codes) = blocking(&store, |s| {
        let station = s.create_station("石桥镇社工站", now_ms()).unwrap();
        let batch = doorstep_server::cards::add_batch(s, station, "HG", 1, 400).unwrap();
        let mut codes = Vec::new();
        for i in 1..=4u32 {
            let worker = s
                .add_worker(station, &format!("W{i:02}"), now_ms())
                .unwrap();
            // One team: every phone sees every household of the station (ADR 0019).
            s.set_team(worker, Some(&TeamName::new("station").unwrap()), now_ms())
                .unwrap();
            let (device, code) = credentials::enroll_device(s, worker, now_ms()).unwrap();
            let first = (i - 1) * 100 + 1;
            doorstep_server::cards::add_lease(s, station, batch, first, first + 99, device, None)
                .unwrap();
            codes.push((format!("W{i:02}"), code, first));
        }
        doorstep_server::console::auth::add_account(s, station, LOGIN, PASSWORD, now_ms()).unwrap();
        (station, codes)
    })
    .await;
    let mut phones = Vec::new();
    // The next card number of each phone's lease.
    let mut next_card = Vec::new();
    for (label, code, first) in codes {
        let e = enroll(&url, &code).await.unwrap();
        let clock = Arc::new(AtomicI64::new(OCT_15));
        let mut options = StoreOptions::new(
            dir.path().join(format!("{label}.db")),
            StoreKey::Raw([rng.next() as u8; 32]),
            e.worker,
            e.station,
        );
        options.device = Some(e.device);
        let read = clock.clone();
        options.clock = Arc::new(move || Timestamp(read.load(Ordering::SeqCst)));
        phones.push(Phone {
            label,
            store: Store::open(options).unwrap(),
            transport: HttpTransport::new(&url, &e.token, Duration::from_secs(30)).unwrap(),
            clock,
        });
        next_card.push(first);
    }
    sync_all(&phones).await;

    // Households with categories, made on 15 October by one phone or another.
    let mut households = Vec::new();
    for n in 1..=8 {
        let phone = &phones[rng.below(phones.len())];
        let s = phone.at(OCT_15 + n * HOUR);
        let village = *rng.pick(&VILLAGES);
        let tags: Vec<&'static str> = if rng.below(3) == 0 {
            vec![]
        } else {
            vec![*rng.pick(&HOUSEHOLD_TAGS)]
        };
        let id = s
            .create_household(&NewHousehold {
                code: format!("HH-{n:06}"),
                village: village.into(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            })
            .unwrap();
        let mut codes: BTreeSet<&'static str> = tags.into_iter().collect();
        let mut persons = Vec::new();
        for p in 0..rng.below(4) {
            let cats: Vec<&'static str> = (0..rng.below(3))
                .map(|_| *rng.pick(&PERSON_CATEGORIES))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let person = s
                .add_person(
                    id,
                    &NewPerson {
                        categories: cats.iter().map(|c| (*c).to_owned()).collect(),
                        ..NewPerson::named(&format!("成员{n}-{p}"), "家庭成员")
                    },
                )
                .unwrap();
            codes.extend(cats.iter().copied());
            if !cats.is_empty() {
                persons.push((person, cats));
            }
        }
        households.push(Household {
            id,
            village,
            codes,
            persons,
        });
    }
    sync_all(&phones).await;

    // The work, in time order (each phone's clock only moves forward): random instants from
    // 25 October to 6 December, and the two bursts at the month's end.
    let mut instants: Vec<i64> = (0..60)
        .map(|_| OCT_25 + (rng.next() % (DEC_06 - OCT_25) as u64) as i64)
        .collect();
    instants.extend([NOV_30_2330, NOV_30_2330, DEC_01_0030, DEC_01_0030]);
    instants.sort();
    let mut ledger = Ledger::default();
    let today = beijing_day(now_ms());
    for at in instants {
        let burst = at == NOV_30_2330 || at == DEC_01_0030;
        let p = rng.below(phones.len());
        let hh = rng.below(households.len());
        let household = households[hh].id;
        let day = beijing_day(at);
        // A burst does everything at once; another instant one thing.
        let what = if burst { None } else { Some(rng.below(5)) };
        let phone = &phones[p];
        let s = phone.at(at);
        let mut visit = None;
        if what.is_none() || what == Some(0) {
            let kind = *rng.pick(&KINDS);
            visit = Some(
                s.start_visit(
                    household,
                    &NewVisit {
                        kind,
                        date: day,
                        started_at: Timestamp(at),
                        gps: None,
                        other_workers: vec![],
                        present: vec![],
                        companions: vec![],
                    },
                )
                .unwrap(),
            );
            ledger.visits.push((hh, phone.label.clone(), kind, day));
        }
        if what.is_none() || what == Some(1) {
            let category = *rng.pick(&NEED_CATEGORIES);
            let need = s
                .add_need(
                    household,
                    &NewNeed {
                        category: category.into(),
                        description: String::new(),
                        person: None,
                        visit,
                    },
                )
                .unwrap();
            let status = *rng.pick(&[NeedStatus::Open, NeedStatus::Met, NeedStatus::Referred]);
            if status != NeedStatus::Open {
                s.set_need_status(household, need, status).unwrap();
            }
            ledger
                .needs
                .push((day, category, status == NeedStatus::Met));
        }
        if what.is_none() || what == Some(2) {
            let topic = *rng.pick(&TOPICS);
            // Answered on the spot, answered a little later, referred, or left open.
            let how = rng.below(4);
            let inquiry = s
                .add_inquiry(
                    household,
                    &NewInquiry {
                        question: "请问怎么办理？".into(),
                        topic: topic.into(),
                        answer: (how == 0).then(|| "已当场告知".to_owned()),
                        visit,
                    },
                )
                .unwrap();
            match how {
                1 => s.answer_inquiry(household, inquiry, "已电话告知").unwrap(),
                2 => s
                    .set_inquiry_status(household, inquiry, InquiryStatus::Referred)
                    .unwrap(),
                _ => {}
            }
            ledger.inquiries.push((day, topic, how <= 1));
        }
        if what.is_none() || what == Some(3) {
            let serial = CardSerial::new("HG", next_card[p]).unwrap().to_string();
            next_card[p] += 1;
            s.issue_card(
                household,
                &NewCard {
                    serial,
                    visit,
                    person: None,
                    replaces: None,
                    outside_lease: false,
                },
                day,
            )
            .unwrap();
            ledger.cards.push(day);
        }
        if what.is_none() || what == Some(4) {
            // Due from a week before to three weeks after it was set.
            let due = day.add_days(rng.below(28) as i64 - 7).unwrap();
            let follow_up = s
                .add_follow_up(
                    household,
                    &NewFollowUp {
                        what: "回访".into(),
                        due,
                        assignee: s.worker(),
                        origin_visit: visit,
                    },
                )
                .unwrap();
            let status = *rng.pick(&[
                FollowUpStatus::Open,
                FollowUpStatus::Done,
                FollowUpStatus::Cancelled,
            ]);
            match status {
                FollowUpStatus::Done => s.complete_follow_up(household, follow_up).unwrap(),
                FollowUpStatus::Cancelled => s.cancel_follow_up(household, follow_up).unwrap(),
                _ => {}
            }
            ledger.follow_ups.push((due, status));
        }
    }
    sync_all(&phones).await;
    // The end of November in UTC is not Beijing's: the burst at 00:30 on 1 December is
    // still 30 November in UTC.
    assert_eq!(beijing_day(DEC_01_0030).to_string(), "2026-12-01");
    assert_eq!(
        Date::parse("1970-01-01")
            .unwrap()
            .add_days(DEC_01_0030.div_euclid(DAY))
            .unwrap()
            .to_string(),
        "2026-11-30"
    );

    let vocabulary = Vocabulary::builtin();
    let mut browser = Browser::new(url.clone());
    let (status, _, _) = browser.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303, "signed in");
    for month in MONTHS {
        let want = expected(&ledger, &households, month, today, &vocabulary);
        let got = blocking(&store, move |s| {
            monthly(s, station, Month::parse(month).unwrap(), today).unwrap()
        })
        .await;
        assert_eq!(
            got, want,
            "{backend}, {month}: the report differs from the ledger (DOORSTEP_REPORT_SEED={seed})"
        );
        // The exported CSV carries the same numbers.
        let (status, csv, _) = browser
            .get(&format!("/console/report.csv?month={month}"))
            .await;
        assert_eq!(status, 200);
        let got: Vec<String> = csv
            .trim_start_matches('\u{feff}')
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        let want: Vec<String> = rows(&want)
            .iter()
            .map(|(section, item, n)| format!("{section},{item},{n}"))
            .collect();
        assert_eq!(
            got, want,
            "{backend}, {month}: the CSV (DOORSTEP_REPORT_SEED={seed})"
        );
    }
    // The bursts are on the right side of the month's end, whatever else the seed made.
    let november = expected(&ledger, &households, "2026-11", today, &vocabulary);
    let december = expected(&ledger, &households, "2026-12", today, &vocabulary);
    assert!(november.cards_issued >= 2 && december.cards_issued >= 2);
    assert!(november.needs_raised >= 2 && december.needs_raised >= 2);
    server.shutdown().await;
    // PostgreSQL's blocking client is closed off the async runtime.
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_equals_the_ledger_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    report_equals_the_ledger(store, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_equals_the_ledger_on_postgresql() {
    use doorstep_server::store::postgres::PostgresStore;
    let url = match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("DOORSTEP_TEST_POSTGRES must be set in CI (eval \"$(scripts/postgres.sh)\")")
        }
        _ => {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: the report on PostgreSQL skipped");
            return;
        }
    };
    let store = tokio::task::spawn_blocking(move || {
        let schema = format!("report_{}", uuid::Uuid::new_v4().simple());
        Arc::new(PostgresStore::open(&url, Some(&schema), 4).unwrap())
    })
    .await
    .unwrap();
    report_equals_the_ledger(store, "PostgreSQL").await;
}
