//! Device benchmark of doorstep-core: what a phone feels.
//!
//! Builds one store of H households and M visits (defaults 2,000 / 20,000; the data shape
//! of `/work/shared/workload.md`: Chinese notes of 540–660 characters typed in 18–22
//! insertions, 80 % appended, 20 % inserted in the middle) from a fixed seed, then measures:
//!
//! 1. a durable section edit (30 Chinese characters, `Durability::Full`), beside the same
//!    edit without fsync and the disk's own fsync latency;
//! 2. `Store::open` to the first answer of a list query;
//! 3. the household-visit list query;
//! 4. full-text search with a 2-character and a 6-character Chinese query;
//! 5. bytes on disk per visit against the raw UTF-8 size of the notes.
//!
//! Run: `cargo bench -p doorstep-core --bench device`, or for a smaller run
//! `cargo bench -p doorstep-core --bench device -- --households 200 --visits 2000`.
//! Other flags: `--edits N` (durable edits timed, default 500), `--seed N`.
//!
//! The text is generated from a fixed seed with a small self-written PRNG; ids are UUID v7
//! made by the store (time-based), so they differ from run to run.

// A benchmark's report is what it prints.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use doorstep_core::*;

type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const KEY: [u8; 32] = [0x5a; 32];
const NOTE_SECTION: Section = Section::FamilySituation;
/// The store's default `compact_after` (see `StoreOptions::new`).
const COMPACT_AFTER: i64 = 32;
/// Households built together so that their documents stay in the store's cache (64).
const BLOCK: usize = 48;
/// Result rows asked of a search, as a phone screen would.
const SEARCH_LIMIT: u32 = 50;

const NEEDLE_SHORT: &str = "补助";
const NEEDLE_LONG: &str = "事实无人抚养";
/// Two queries that most notes hold (each comes from one of the 40 note phrases and from
/// no other generated text): how search copes with thousands of matches.
const NEEDLE_COMMON: &str = "家中";
const NEEDLE_ONE_CHAR: &str = "鸡";
const NEEDLES: [&str; 4] = [NEEDLE_SHORT, NEEDLE_LONG, NEEDLE_COMMON, NEEDLE_ONE_CHAR];
/// Planted in about 5 % of the notes.
const PLANT_SHORT: &str = "已申请困境儿童基本生活补助，";
/// Planted in about 1 % of the notes.
const PLANT_LONG: &str = "孩子属于事实无人抚养儿童，";

const NOTE_PHRASES: &[&str] = &[
    "孩子目前在镇中心小学读三年级，",
    "学习成绩中等偏上，",
    "爷爷今年七十二岁，患有高血压，",
    "奶奶腿脚不便，平时在家做些家务，",
    "父亲常年在外地打工，很少回家，",
    "母亲已改嫁，多年没有联系，",
    "家中收入主要靠种地和打零工，",
    "房屋为九十年代建的砖瓦房，",
    "屋顶有漏雨现象，需要修缮，",
    "孩子性格比较内向，不爱说话，",
    "与同学关系一般，",
    "班主任反映上课注意力不集中，",
    "低保手续正在办理中，",
    "建议每月上门走访一次，",
    "联系了村委会协调解决用水问题，",
    "医疗费用报销后仍有较大缺口，",
    "老人希望孙子能好好读书，",
    "家里养了几只鸡和一头猪，",
    "冬季取暖主要靠烧柴，",
    "孩子有轻度近视，需要配眼镜，",
    "已告知相关政策和申请流程，",
    "村医每周来量一次血压，",
    "儿童主任已登记在册，",
    "下次走访时核实户口信息，",
    "监护人对政策了解不多，",
    "邻居表示平时会帮忙照看，",
    "孩子周末在家帮忙干农活，",
    "提醒按时服药并定期复查，",
    "家庭关系总体和睦。",
    "近期情绪比较稳定，",
    "学校已减免部分午餐费用，",
    "需要跟进残疾证办理进度，",
    "孩子喜欢画画，希望参加兴趣班，",
    "厨房卫生条件较差，",
    "用电线路老化，存在安全隐患，",
    "已联系志愿者开展课业辅导，",
    "外出务工的父亲每月寄回五百元，",
    "老人独自照顾两个孩子，压力较大，",
    "建议申请临时救助。",
    "今天孩子放学后在家写作业，",
];

const VILLAGES: &[&str] = &[
    "石桥村",
    "柳树村",
    "杨家湾村",
    "新民村",
    "双河村",
    "高坪村",
    "大兴村",
    "龙潭村",
    "白鹤村",
    "青山村",
    "太平村",
    "红星村",
    "和平村",
    "长岭村",
    "金竹村",
    "桃园村",
    "东风村",
    "前进村",
    "马家村",
    "清水村",
];
const SURNAMES: &[&str] = &[
    "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建国", "小红",
];
const RELATIONS: &[&str] = &["孙子", "孙女", "配偶", "儿子", "女儿", "儿媳"];
/// Codes of the built-in vocabulary (ADR 0018).
const TAGS: &[&str] = &["household.dibao", "household.dibao_marginal"];
const CATEGORIES: &[&str] = &[
    "elderly.living_alone",
    "person.disability",
    "child.left_behind",
    "child.difficult",
    "elderly.empty_nest",
];
const NEEDS: &[(&str, &str)] = &[
    ("医疗救助", "慢性病长期服药，费用负担重"),
    ("低保申请", "家庭收入低于当地低保标准"),
    ("心理疏导", "孩子情绪低落，需要陪伴"),
    ("教育资助", "学习用品和校服费用困难"),
    ("住房修缮", "房屋漏雨，墙体开裂"),
    ("就业帮扶", "监护人希望就近找工作"),
    ("残疾人服务", "需要办理残疾评定"),
];
const FOLLOW_UPS: &[&str] = &[
    "回访核实低保办理进度",
    "联系学校了解孩子在校情况",
    "陪同老人到卫生院复查",
    "送去冬季衣物",
    "协调村委会修缮房屋",
];

// ----- a tiny PRNG (splitmix64) ----------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }

    fn pick_item<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// An endless stream of note text made of random phrases, handed out by character count.
struct Typist {
    pending: std::collections::VecDeque<char>,
}

impl Typist {
    fn new() -> Self {
        Typist {
            pending: std::collections::VecDeque::new(),
        }
    }

    fn take(&mut self, rng: &mut Rng, chars: usize) -> String {
        while self.pending.len() < chars {
            self.pending.extend(rng.pick(NOTE_PHRASES).chars());
        }
        self.pending.drain(..chars).collect()
    }
}

/// The insertions that type one note, and the note they produce.
struct Note {
    inserts: Vec<(usize, String)>,
    text: String,
}

fn compose_note(rng: &mut Rng, typist: &mut Typist) -> Note {
    let total = rng.range(540, 660);
    let pieces = rng.range(18, 22);
    let mut plants: Vec<(usize, &str)> = Vec::new();
    if rng.chance(50) {
        plants.push((rng.below(pieces), PLANT_SHORT));
    }
    if rng.chance(10) {
        plants.push((rng.below(pieces), PLANT_LONG));
    }
    let mut text: Vec<char> = Vec::with_capacity(total);
    let mut inserts = Vec::with_capacity(pieces);
    for i in 0..pieces {
        let size = total / pieces + usize::from(i < total % pieces);
        let mut piece = String::new();
        for (_, plant) in plants.iter().filter(|(at, _)| *at == i) {
            piece.push_str(plant);
        }
        let have = piece.chars().count();
        piece.push_str(&typist.take(rng, size.saturating_sub(have)));
        // 80 % typed at the end, 20 % corrections in the middle.
        let pos = if i > 0 && rng.chance(200) {
            rng.below(text.len())
        } else {
            text.len()
        };
        text.splice(pos..pos, piece.chars());
        inserts.push((pos, piece));
    }
    Note {
        inserts,
        text: text.into_iter().collect(),
    }
}

// ----- measuring -------------------------------------------------------------------------

struct Stats {
    n: usize,
    median: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    if n == 0 {
        return Stats {
            n,
            median: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::ZERO,
        };
    }
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    // Nearest rank.
    let p99 = samples[(n * 99).div_ceil(100).max(1) - 1];
    Stats {
        n,
        median,
        p99,
        max: samples[n - 1],
    }
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.3} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn timed<T>(f: impl FnOnce() -> AnyResult<T>) -> AnyResult<(T, Duration)> {
    let t = Instant::now();
    let out = f()?;
    Ok((out, t.elapsed()))
}

// ----- configuration and machine ---------------------------------------------------------

struct Config {
    households: usize,
    visits: usize,
    edits: usize,
    seed: u64,
}

fn parse_args() -> AnyResult<Config> {
    let mut c = Config {
        households: 2_000,
        visits: 20_000,
        edits: 500,
        seed: 20_250_303,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> AnyResult<u64> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            Ok(v.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {v}"))?)
        };
        match a.as_str() {
            "--households" => c.households = usize::try_from(value("--households")?)?,
            "--visits" => c.visits = usize::try_from(value("--visits")?)?,
            "--edits" => c.edits = usize::try_from(value("--edits")?)?,
            "--seed" => c.seed = value("--seed")?,
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other}; flags: --households N --visits N --edits N --seed N"
                )
                .into())
            }
        }
    }
    if c.households == 0 {
        return Err("--households must be at least 1".into());
    }
    Ok(c)
}

/// The 1-, 5- and 15-minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

// ----- building the store ----------------------------------------------------------------

/// Time spent per kind of action while building (the core's per-action cost on a growing store).
#[derive(Default)]
struct Tally {
    kinds: Vec<(&'static str, Duration, u64)>,
}

impl Tally {
    fn time<T>(&mut self, kind: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let out = f();
        let d = t.elapsed();
        match self.kinds.iter_mut().find(|(k, _, _)| *k == kind) {
            Some((_, total, n)) => {
                *total += d;
                *n += 1;
            }
            None => self.kinds.push((kind, d, 1)),
        }
        out
    }
}

struct Built {
    path: PathBuf,
    worker: WorkerId,
    station: StationId,
    households: Vec<HouseholdId>,
    visits: usize,
    note_bytes: u64,
    note_chars: u64,
    /// Searchable text rows holding each of `NEEDLES`.
    expected: [usize; 4],
    actions: u64,
    elapsed: Duration,
    tally: Tally,
}

fn options(path: &Path, worker: WorkerId, station: StationId) -> StoreOptions {
    StoreOptions::new(path, StoreKey::Raw(KEY), worker, station)
}

fn count_needles(text: &str, expected: &mut [usize; 4]) {
    for (n, needle) in expected.iter_mut().zip(NEEDLES) {
        *n += usize::from(text.contains(needle));
    }
}

fn build(cfg: &Config, dir: &Path) -> AnyResult<Built> {
    let path = dir.join("device.db");
    let worker = WorkerId::new();
    let station = StationId::new();
    let mut opts = options(&path, worker, station);
    opts.durability = Durability::Relaxed;
    let store = Store::open(opts)?;
    let mut rng = Rng(cfg.seed);
    let mut typist = Typist::new();
    let start = Instant::now();
    let mut last_report = start;
    let base = Date::new(2024, 1, 1)?;
    let (h_total, v_total) = (cfg.households, cfg.visits);
    let per_household = |h: usize| v_total / h_total + usize::from(h < v_total % h_total);
    let mut built = Built {
        path: path.clone(),
        worker,
        station,
        households: Vec::with_capacity(h_total),
        visits: 0,
        note_bytes: 0,
        note_chars: 0,
        expected: [0; 4],
        actions: 0,
        elapsed: Duration::ZERO,
        tally: Tally::default(),
    };
    let tally = &mut built.tally;
    let mut card_serial = 10_001u32;
    for block in (0..h_total).collect::<Vec<_>>().chunks(BLOCK) {
        // The station's households: created once, before any visit.
        let mut members: Vec<Vec<PersonId>> = Vec::new();
        for &h in block {
            let village = VILLAGES[h % VILLAGES.len()];
            let summary = typist.take(&mut rng, 100);
            count_needles(&summary, &mut built.expected);
            let new = NewHousehold {
                code: format!("HH-{:06}", h + 1),
                village: village.into(),
                address: format!(
                    "青山县白沙镇{village}{}组{}号（村委会往东第{}户）",
                    rng.range(1, 9),
                    rng.range(1, 80),
                    rng.range(2, 9)
                ),
                gps: Some(GeoPoint::new(
                    30.0 + rng.below(10_000) as f64 / 10_000.0,
                    110.0 + rng.below(10_000) as f64 / 10_000.0,
                )?),
                phones: vec![format!("1{:010}", rng.next_u64() % 10_000_000_000)],
                tags: vec![rng.pick(TAGS).to_string()],
                summary,
            };
            let id = tally.time("create_household", || store.create_household(&new))?;
            built.actions += 1;
            let mut people = Vec::new();
            for m in 0..rng.range(1, 6) {
                let mut p = NewPerson::named(
                    &format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN)),
                    if m == 0 {
                        "户主"
                    } else {
                        rng.pick(RELATIONS)
                    },
                );
                p.guardian = m == 0;
                p.sex = if rng.chance(500) {
                    Sex::Female
                } else {
                    Sex::Male
                };
                p.birth_date = Some(BirthDate {
                    date: Date::new(rng.range(1935, 2020) as u16, rng.range(1, 12) as u8, 1)?,
                    estimated: rng.chance(200),
                });
                for _ in 0..rng.range(0, 3) {
                    let tag = rng.pick(CATEGORIES).to_string();
                    if !p.categories.contains(&tag) {
                        p.categories.push(tag);
                    }
                }
                people.push(tally.time("add_person", || store.add_person(id, &p))?);
                built.actions += 1;
            }
            built.households.push(id);
            members.push(people);
        }
        // Their visits, interleaved as the weeks go by.
        let rounds = block.iter().map(|&h| per_household(h)).max().unwrap_or(0);
        for round in 0..rounds {
            for (i, &h) in block.iter().enumerate() {
                let count = per_household(h);
                if round >= count {
                    continue;
                }
                let hh = built.households[h];
                let spacing = (730 / count.max(1)).max(1);
                let date = base.add_days((round * spacing + h % spacing) as i64)?;
                let present = vec![*rng.pick_item(&members[i])];
                let new = NewVisit {
                    kind: if rng.chance(850) {
                        VisitKind::Home
                    } else {
                        VisitKind::Phone
                    },
                    date,
                    started_at: Timestamp(
                        date.to_days() * 86_400_000 + 3_600_000 * rng.range(1, 9) as i64,
                    ),
                    gps: None,
                    other_workers: vec![],
                    present,
                    companions: vec![],
                };
                let visit = tally.time("start_visit", || store.start_visit(hh, &new))?;
                let note = compose_note(&mut rng, &mut typist);
                for (pos, piece) in &note.inserts {
                    tally.time("splice_section (note)", || {
                        store.splice_section(hh, visit, NOTE_SECTION, *pos, 0, piece)
                    })?;
                }
                built.note_bytes += note.text.len() as u64;
                built.note_chars += note.text.chars().count() as u64;
                count_needles(&note.text, &mut built.expected);
                let needs = rng.range(1, 4);
                for _ in 0..needs {
                    let (category, description) = *rng.pick_item(NEEDS);
                    let new = NewNeed {
                        category: category.into(),
                        description: description.into(),
                        person: None,
                        visit: Some(visit),
                    };
                    tally.time("add_need", || store.add_need(hh, &new))?;
                }
                let follow_ups = rng.range(0, 2);
                for _ in 0..follow_ups {
                    let new = NewFollowUp {
                        what: rng.pick(FOLLOW_UPS).to_string(),
                        due: date.add_days(rng.range(3, 14) as i64)?,
                        assignee: worker,
                        origin_visit: Some(visit),
                    };
                    tally.time("add_follow_up", || store.add_follow_up(hh, &new))?;
                }
                let new = NewCardIssuance {
                    serial: format!("HG-{card_serial:06}"),
                    visit: Some(visit),
                    person: None,
                    replaces: None,
                };
                tally.time("record_card_issuance", || {
                    store.record_card_issuance(hh, &new)
                })?;
                card_serial += 1;
                tally.time("finalise_visit", || store.finalise_visit(hh, visit))?;
                built.actions += (note.inserts.len() + needs + follow_ups + 3) as u64;
                built.visits += 1;
                if last_report.elapsed() >= Duration::from_secs(10) {
                    last_report = Instant::now();
                    let done = built.visits.max(1) as f64;
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "  build: {}/{} visits, {:.0} s, about {:.0} s to go",
                        built.visits,
                        v_total,
                        secs,
                        secs / done * (v_total as f64 - done)
                    );
                }
            }
        }
    }
    built.elapsed = start.elapsed();
    Ok(built)
}

// ----- bytes on disk ---------------------------------------------------------------------

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A plain connection to the store file, for what the API does not offer (checkpoint,
/// page statistics); the key pragma is the one the store uses.
fn raw_connection(path: &Path) -> AnyResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))?;
    Ok(conn)
}

struct Disk {
    db_after_close: u64,
    wal_after_close: u64,
    db: u64,
    wal: u64,
    free_pages: i64,
    page_size: i64,
    /// (object, bytes, payload bytes), largest first, if SQLite's dbstat is compiled in.
    objects: Vec<(String, i64, i64)>,
}

fn measure_disk(path: &Path) -> AnyResult<Disk> {
    let db_after_close = file_len(path);
    let wal_after_close = file_len(&sibling(path, "-wal"));
    let conn = raw_connection(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let free_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    // SQLCipher answers `page_size` as text.
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(n) => n,
            rusqlite::types::Value::Text(t) => t.parse().unwrap_or(0),
            _ => 0,
        })?;
    let objects = conn
        .prepare("SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<(String, i64, i64)>, _>>()
        })
        .unwrap_or_default();
    drop(conn);
    Ok(Disk {
        db_after_close,
        wal_after_close,
        db: file_len(path),
        wal: file_len(&sibling(path, "-wal")),
        free_pages,
        page_size,
        objects,
    })
}

fn pending_compaction(path: &Path, household: HouseholdId) -> AnyResult<i64> {
    let conn = raw_connection(path)?;
    Ok(conn.query_row(
        "SELECT pending_compaction FROM documents WHERE doc_id = ?1",
        [household.to_string()],
        |r| r.get(0),
    )?)
}

// ----- typing ----------------------------------------------------------------------------

/// Timings of typing notes into fresh draft visits.
struct Typing {
    edits: Vec<Duration>,
    needs: Vec<Duration>,
    finalises: Vec<Duration>,
}

/// Type `edits` splices of 30 characters into fresh draft visits of households spread over
/// the store, 20 per visit (a 600-character note; 80 % appended, 20 % in the middle), then
/// close each visit with a need and finalisation, timing every call.
fn type_notes(
    store: &Store,
    built: &Built,
    edits: usize,
    offset: usize,
    rng: &mut Rng,
    typist: &mut Typist,
) -> AnyResult<Typing> {
    let per_visit = 20;
    let visits = edits.div_ceil(per_visit);
    let n = built.households.len();
    let mut out = Typing {
        edits: Vec::with_capacity(edits),
        needs: Vec::new(),
        finalises: Vec::new(),
    };
    for v in 0..visits {
        let h = built.households[(v * n / visits.max(1) + offset) % n];
        let visit = store.start_visit(
            h,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::new(2026, 3, 2)?,
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )?;
        let mut len = 0usize;
        for _ in 0..per_visit.min(edits - out.edits.len()) {
            let text = typist.take(rng, 30);
            let pos = if len > 0 && rng.chance(200) {
                rng.below(len)
            } else {
                len
            };
            let ((), d) =
                timed(|| Ok(store.splice_section(h, visit, NOTE_SECTION, pos, 0, &text)?))?;
            len += 30;
            out.edits.push(d);
        }
        let (category, description) = *rng.pick_item(NEEDS);
        let need = NewNeed {
            category: category.into(),
            description: description.into(),
            person: None,
            visit: Some(visit),
        };
        out.needs.push(timed(|| Ok(store.add_need(h, &need)?))?.1);
        out.finalises
            .push(timed(|| Ok(store.finalise_visit(h, visit)?))?.1);
    }
    Ok(out)
}

/// What one durable write costs the disk alone: append 4 KiB and `fdatasync`, as SQLite's
/// WAL commit does with `synchronous=FULL`.
fn fsync_floor(dir: &Path, samples: usize) -> AnyResult<Vec<Duration>> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let page = [0x5au8; 4096];
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        f.write_all(&page)?;
        f.sync_data()?;
        out.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(out)
}

// ----- the report ------------------------------------------------------------------------

struct Row {
    what: String,
    stats: Stats,
    target: &'static str,
    verdict: String,
}

fn verdict(value: Duration, limit_ms: f64) -> String {
    if value.as_secs_f64() * 1e3 <= limit_ms {
        "met".into()
    } else {
        "**missed**".into()
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() -> AnyResult<()> {
    let mut cfg = parse_args()?;
    // `cargo test --all-targets` runs this binary without `--bench`: a small smoke run then,
    // so the test-suite checks the benchmark works without paying for the full store.
    if !std::env::args().any(|a| a == "--bench") {
        cfg = Config {
            households: 20,
            visits: 60,
            edits: 20,
            seed: cfg.seed,
        };
    }
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "DEBUG build (figures not meaningful)"
    } else {
        "release build (optimised)"
    };
    println!(
        "# doorstep-core {} device benchmark: {profile}; nproc = {nproc}; CPU: {}; seed {}",
        VERSION,
        cpu_model(),
        cfg.seed
    );
    let dir = tempfile::Builder::new()
        .prefix("doorstep-device-bench-")
        .tempdir_in(std::env::temp_dir())?;
    println!(
        "# load average at start: {}; store in {} ({} households, {} visits)",
        load_average(),
        dir.path().display(),
        cfg.households,
        cfg.visits
    );

    eprintln!(
        "building the store ({} households, {} visits, Durability::Relaxed) ...",
        cfg.households, cfg.visits
    );
    let built = build(&cfg, dir.path())?;
    eprintln!("  built in {:.1} s", built.elapsed.as_secs_f64());
    let disk = measure_disk(&built.path)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut rng = Rng(cfg.seed ^ 0xD00D);
    let village_of = |h: usize| VILLAGES[h % VILLAGES.len()];

    // 2. Open to the first answer (warm OS cache: the file was just written).
    eprintln!("open + first query ...");
    let mut open_first = Vec::new();
    let mut open_only = Vec::new();
    for i in 0..7 {
        let village = village_of(i);
        let t = Instant::now();
        let store = Store::open(options(&built.path, built.worker, built.station))?;
        let opened = t.elapsed();
        let list = store.households_in_village(village)?;
        let first = t.elapsed();
        if list.is_empty() && cfg.households > i {
            return Err("households_in_village found nothing".into());
        }
        open_only.push(opened);
        open_first.push(first);
        drop(store);
    }
    let open_only = stats(open_only);
    let open_first = stats(open_first);
    rows.push(Row {
        verdict: verdict(open_first.median, 50.0),
        what: "Store::open + first households_in_village".into(),
        stats: open_first,
        target: "≤ 50 ms",
    });

    let store = Store::open(options(&built.path, built.worker, built.station))?;

    // 3. List queries.
    eprintln!("list queries ...");
    let mut samples = Vec::new();
    for _ in 0..1_000 {
        let h = built.households[rng.below(built.households.len())];
        let (list, d) = timed(|| Ok(store.visits_of_household(h)?))?;
        if cfg.visits >= cfg.households && list.is_empty() {
            return Err("visits_of_household found nothing".into());
        }
        samples.push(d);
    }
    rows.push(Row {
        what: "visits_of_household (≈ M/H visits each)".into(),
        stats: stats(samples),
        target: "—",
        verdict: "—".into(),
    });
    let mut samples = Vec::new();
    for i in 0..200 {
        let (_, d) = timed(|| Ok(store.households_in_village(village_of(i))?))?;
        samples.push(d);
    }
    rows.push(Row {
        what: format!(
            "households_in_village (≈ {} households each)",
            cfg.households.div_ceil(VILLAGES.len())
        ),
        stats: stats(samples),
        target: "—",
        verdict: "—".into(),
    });

    // 4. Full-text search.
    eprintln!("search ...");
    for (needle, expected) in NEEDLES.into_iter().zip(built.expected) {
        let all = store.search(needle, u32::MAX)?;
        if all.len() != expected {
            return Err(format!(
                "search {needle:?} found {} rows, the generator wrote {expected}",
                all.len()
            )
            .into());
        }
        let mut samples = Vec::new();
        for _ in 0..50 {
            let (hits, d) = timed(|| Ok(store.search(needle, SEARCH_LIMIT)?))?;
            if hits.len() != expected.min(SEARCH_LIMIT as usize) {
                return Err("search result count changed".into());
            }
            samples.push(d);
        }
        let s = stats(samples);
        rows.push(Row {
            what: format!(
                "search \"{needle}\" ({} chars, {expected} matching notes, limit {SEARCH_LIMIT})",
                needle.chars().count()
            ),
            verdict: verdict(s.median, 20.0),
            stats: s,
            target: "≤ 20 ms",
        });
    }

    // 1. Durable typing, then the same typing without fsync (the CPU and SQLite part), and
    //    the disk's own fsync latency: the floor under any durable write on this machine.
    eprintln!("durable edits ...");
    let mut typist = Typist::new();
    let fsync = stats(fsync_floor(dir.path(), 200)?);
    let full = type_notes(&store, &built, cfg.edits, 1, &mut rng, &mut typist)?;
    drop(store);
    let mut relaxed_options = options(&built.path, built.worker, built.station);
    relaxed_options.durability = Durability::Relaxed;
    let relaxed_store = Store::open(relaxed_options)?;
    let relaxed = type_notes(&relaxed_store, &built, cfg.edits, 2, &mut rng, &mut typist)?;
    drop(relaxed_store);
    let store = Store::open(options(&built.path, built.worker, built.station))?;
    let s = stats(full.edits);
    let visits_per_household = cfg.visits.div_ceil(cfg.households);
    let plain = |what: String, stats: Stats| Row {
        what,
        stats,
        target: "—",
        verdict: "—".into(),
    };
    rows.splice(
        0..0,
        [
            Row {
                what: "durable section edit, 30 chars (Durability::Full)".into(),
                verdict: verdict(s.median, 2.0),
                stats: s,
                target: "≤ 2 ms median",
            },
            plain(
                "same edit, Durability::Relaxed (no fsync: CPU + SQLite)".into(),
                stats(relaxed.edits),
            ),
            plain(
                "fsync floor: 4 KiB append + fdatasync in the same directory".into(),
                fsync,
            ),
            plain(
                format!("durable add_need (household of ≈ {visits_per_household} visits)"),
                stats(full.needs),
            ),
            plain(
                "same add_need, Durability::Relaxed".into(),
                stats(relaxed.needs),
            ),
            plain(
                "durable finalise_visit (same households)".into(),
                stats(full.finalises),
            ),
        ],
    );

    // The edit that also compacts its document (1 in `COMPACT_AFTER` actions of a draft).
    // Typing now folds a long document only once its tail reaches twice the snapshot's
    // bytes (ADR 0038), so the count-only rule is asked for here: the 32nd edit is then the
    // one that saves the whole document, whose cost this row reports.
    drop(store);
    let mut count_only = options(&built.path, built.worker, built.station);
    count_only.compact_tail_percent = 0;
    let store = Store::open(count_only)?;
    eprintln!("compacting edits ...");
    let mut samples = Vec::new();
    for k in 0..5.min(cfg.households) {
        let h = built.households[(k * 7 + 3) % cfg.households];
        let mut pending = pending_compaction(&built.path, h)?;
        let mut len = usize::MAX;
        let mut visit = None;
        while pending < COMPACT_AFTER {
            if len >= 600 || visit.is_none() {
                visit = Some(store.start_visit(
                    h,
                    &NewVisit {
                        kind: VisitKind::Home,
                        date: Date::new(2026, 3, 3)?,
                        started_at: Timestamp::now(),
                        gps: None,
                        other_workers: vec![],
                        present: vec![],
                        companions: vec![],
                    },
                )?);
                len = 0;
                pending += 1;
                continue;
            }
            let v = visit.ok_or("no visit")?;
            let text = typist.take(&mut rng, 30);
            let ((), d) = timed(|| Ok(store.splice_section(h, v, NOTE_SECTION, len, 0, &text)?))?;
            len += 30;
            pending += 1;
            if pending == COMPACT_AFTER {
                samples.push(d);
            }
        }
    }
    let s = stats(samples);
    rows.insert(
        6,
        Row {
            what: format!("durable section edit that also compacts its document (1 in {COMPACT_AFTER} actions)"),
            verdict: "—".into(),
            stats: s,
            target: "—",
        },
    );
    drop(store);

    // The report.
    println!();
    println!("| Measure | n | median | p99 | max | target | result |");
    println!("|---|---:|---:|---:|---:|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.what,
            r.stats.n,
            ms(r.stats.median),
            ms(r.stats.p99),
            ms(r.stats.max),
            r.target,
            r.verdict
        );
    }
    println!(
        "| (Store::open alone) | {} | {} | {} | {} | — | — |",
        open_only.n,
        ms(open_only.median),
        ms(open_only.p99),
        ms(open_only.max)
    );
    let visits = built.visits.max(1) as u64;
    let total = disk.db + disk.wal;
    let ratio = total as f64 / built.note_bytes.max(1) as f64;
    println!();
    println!("| Bytes on disk | total | per visit | × raw note text | target | result |");
    println!("|---|---:|---:|---:|---|---|");
    println!(
        "| raw note text (UTF-8), {} notes, {:.0} chars avg | {} | {} B | 1.00 | — | — |",
        built.visits,
        built.note_chars as f64 / visits as f64,
        mib(built.note_bytes),
        built.note_bytes / visits,
    );
    println!(
        "| store after close (db {} + wal {}) | {} | {} B | {:.2} | — | — |",
        mib(disk.db_after_close),
        mib(disk.wal_after_close),
        mib(disk.db_after_close + disk.wal_after_close),
        (disk.db_after_close + disk.wal_after_close) / visits,
        (disk.db_after_close + disk.wal_after_close) as f64 / built.note_bytes.max(1) as f64,
    );
    println!(
        "| store after checkpoint (db + wal) | {} | {} B | {:.2} | ≤ 2× | {} |",
        mib(total),
        total / visits,
        ratio,
        if ratio <= 2.0 { "met" } else { "**missed**" }
    );
    println!();
    println!(
        "Build: {} households, {} visits, {} durable actions in {:.1} s (Durability::Relaxed), \
         {:.0} actions/s.",
        built.households.len(),
        built.visits,
        built.actions,
        built.elapsed.as_secs_f64(),
        built.actions as f64 / built.elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "Free pages after checkpoint: {} ({}).",
        disk.free_pages,
        mib((disk.free_pages * disk.page_size).max(0) as u64)
    );
    println!();
    println!("| Build action (Relaxed) | count | mean | share of build |");
    println!("|---|---:|---:|---:|");
    for (kind, total, n) in &built.tally.kinds {
        println!(
            "| {kind} | {n} | {} | {:.0} % |",
            ms(*total / (*n).max(1) as u32),
            total.as_secs_f64() * 100.0 / built.elapsed.as_secs_f64().max(1e-9)
        );
    }
    if !disk.objects.is_empty() {
        println!();
        println!("| Object (dbstat) | bytes | per visit | payload per visit | share |");
        println!("|---|---:|---:|---:|---:|");
        let sum: i64 = disk.objects.iter().map(|(_, b, _)| b).sum();
        for (name, bytes, payload) in disk.objects.iter().filter(|(_, b, _)| *b * 100 >= sum) {
            println!(
                "| {name} | {} | {} B | {} B | {:.0} % |",
                mib((*bytes).max(0) as u64),
                *bytes / visits as i64,
                *payload / visits as i64,
                *bytes as f64 * 100.0 / sum.max(1) as f64
            );
        }
    }
    println!();
    println!("# load average at the end: {}", load_average());
    dir.close()?;
    Ok(())
}
