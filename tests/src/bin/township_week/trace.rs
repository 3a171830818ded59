//! The township-week workload: the reference trace (zstd JSON lines, see
//! `shared/workload.md`) or a seeded generator of the same shape for scaling runs.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Res;

/// A household as the station created it before the week.
#[derive(Clone, Debug)]
pub struct HouseholdRec {
    pub code: String,
    pub address: String,
    pub head: String,
    pub phone: String,
    pub members: Vec<Member>,
    pub summary: String,
}

impl HouseholdRec {
    /// Index of the head among the members (the trace lists the head first).
    pub fn head_index(&self) -> usize {
        self.members
            .iter()
            .position(|m| m.name == self.head)
            .unwrap_or(0)
    }
}

#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub birth_year: u16,
    pub tags: Vec<String>,
}

/// One user action of a device.
#[derive(Clone, Debug)]
pub enum Op {
    NewVisit {
        visit_no: usize,
        date: String,
        needs: Vec<String>,
        /// (what, due date)
        tasks: Vec<(String, String)>,
        card: String,
    },
    NoteInsert {
        visit_no: usize,
        pos: usize,
        text: String,
    },
    Phone(String),
    Address(String),
    HeadTagAdd(String),
    MemberAdd(Member),
}

#[derive(Clone, Debug)]
pub struct Action {
    pub h: usize,
    pub time_ms: i64,
    pub op: Op,
}

/// A whole workload.
#[derive(Debug)]
pub struct Trace {
    /// Where it came from (a path, or the generator with its seed).
    pub source: String,
    pub params: Value,
    pub households: Vec<HouseholdRec>,
    /// Each device's actions in the order it performs them.
    pub devices: Vec<Vec<Action>>,
    /// SHA-256 of the decompressed trace, and what `township-week.jsonl.sha256` says.
    pub sha256: Option<String>,
    pub sha256_expected: Option<String>,
    pub decompressed_bytes: usize,
}

impl Trace {
    pub fn sha_matches(&self) -> Option<bool> {
        match (&self.sha256, &self.sha256_expected) {
            (Some(a), Some(b)) => Some(a.eq_ignore_ascii_case(b)),
            _ => None,
        }
    }

    pub fn action_count(&self) -> usize {
        self.devices.iter().map(Vec::len).sum()
    }

    /// Households each device touches during the week.
    pub fn touched(&self) -> Vec<BTreeSet<usize>> {
        self.devices
            .iter()
            .map(|acts| acts.iter().map(|a| a.h).collect())
            .collect()
    }

    pub fn note_chars(&self) -> usize {
        self.devices
            .iter()
            .flatten()
            .map(|a| match &a.op {
                Op::NoteInsert { text, .. } => text.chars().count(),
                _ => 0,
            })
            .sum()
    }

    pub fn count(&self, pred: impl Fn(&Op) -> bool) -> usize {
        self.devices
            .iter()
            .flatten()
            .filter(|a| pred(&a.op))
            .count()
    }
}

fn s(v: &Value, k: &str) -> Res<String> {
    v[k].as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("trace: missing string {k}").into())
}

fn u(v: &Value, k: &str) -> Res<u64> {
    v[k].as_u64()
        .ok_or_else(|| format!("trace: missing number {k}").into())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn member(v: &Value) -> Res<Member> {
    Ok(Member {
        name: s(v, "name")?,
        birth_year: u16::try_from(u(v, "birth_year")?)?,
        tags: strings(&v["tags"]),
    })
}

/// Load and check the reference trace.
pub fn load(path: &Path) -> Res<Trace> {
    let compressed =
        std::fs::read(path).map_err(|e| format!("cannot read trace {}: {e}", path.display()))?;
    let raw = zstd::stream::decode_all(&compressed[..])?;
    let sha: String = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("township-week.jsonl.zst");
    let sha_path = path.with_file_name(format!("{}.sha256", name.trim_end_matches(".zst")));
    let expected = std::fs::read_to_string(&sha_path)
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned));
    let text = std::str::from_utf8(&raw)?;
    let mut params = Value::Null;
    let mut households: Vec<HouseholdRec> = Vec::new();
    let mut devices: Vec<Vec<Action>> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("trace line {}: {e}", n + 1))?;
        match v["kind"].as_str() {
            Some("params") => params = v["params"].clone(),
            Some("household") => {
                let h = u(&v, "h")? as usize;
                if h != households.len() {
                    return Err(format!("trace line {}: household {h} out of order", n + 1).into());
                }
                households.push(HouseholdRec {
                    code: s(&v, "code")?,
                    address: s(&v, "address")?,
                    head: s(&v, "head")?,
                    phone: s(&v, "phone")?,
                    members: v["members"]
                        .as_array()
                        .ok_or("trace: members")?
                        .iter()
                        .map(member)
                        .collect::<Res<_>>()?,
                    summary: s(&v, "summary")?,
                });
            }
            Some("action") => {
                let device = u(&v, "device")? as usize;
                let op = match v["op"].as_str() {
                    Some("new_visit") => Op::NewVisit {
                        visit_no: u(&v, "visit_no")? as usize,
                        date: s(&v, "date")?,
                        needs: strings(&v["needs"]),
                        tasks: v["tasks"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|t| Ok((s(t, "what")?, s(t, "due")?)))
                                    .collect::<Res<Vec<_>>>()
                            })
                            .transpose()?
                            .unwrap_or_default(),
                        card: s(&v, "card")?,
                    },
                    Some("note_insert") => Op::NoteInsert {
                        visit_no: u(&v, "visit_no")? as usize,
                        pos: u(&v, "pos")? as usize,
                        text: s(&v, "text")?,
                    },
                    Some("profile") => match v["field"].as_str() {
                        Some("phone") => Op::Phone(s(&v, "value")?),
                        Some("address") => Op::Address(s(&v, "value")?),
                        Some("head_tag_add") => Op::HeadTagAdd(s(&v, "value")?),
                        Some("member_add") => Op::MemberAdd(member(&v["value"])?),
                        other => {
                            return Err(format!("trace: unknown profile field {other:?}").into())
                        }
                    },
                    other => return Err(format!("trace: unknown op {other:?}").into()),
                };
                if devices.len() <= device {
                    devices.resize_with(device + 1, Vec::new);
                }
                devices[device].push(Action {
                    h: u(&v, "h")? as usize,
                    time_ms: v["time_ms"].as_i64().ok_or("trace: time_ms")?,
                    op,
                });
            }
            other => return Err(format!("trace line {}: unknown kind {other:?}", n + 1).into()),
        }
    }
    if let Some(w) = params["workers"].as_u64() {
        devices.resize_with(devices.len().max(w as usize), Vec::new);
    }
    Ok(Trace {
        source: path.display().to_string(),
        params,
        households,
        devices,
        sha256: Some(sha),
        sha256_expected: expected,
        decompressed_bytes: raw.len(),
    })
}

// ----- generator ---------------------------------------------------------------------------

/// xorshift64* — small, seeded, good enough for workload shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤";
const GIVEN: &str =
    "秀英华明丽强军平芳燕红敏静伟刚勇磊洋艳杰娟涛超霞桂兰琴云梅雪淑珍玉凤建国志文春荣";
const DISTRICTS: &[&str] = &["南山区", "北湖区", "东城区", "西城区", "青山区", "开发区"];
const ROADS: &[&str] = &[
    "光明街",
    "友谊路",
    "解放路",
    "建设街",
    "人民路",
    "和平路",
    "胜利街",
    "新华路",
];
pub const TAGS: &[&str] = &[
    "老人",
    "儿童",
    "残疾",
    "低保",
    "独居",
    "外出务工",
    "退役军人",
    "孕妇",
    "党员",
    "失业",
    "慢性病",
];
const NEEDS: &[&str] = &[
    "医疗救助",
    "低保申请",
    "心理疏导",
    "临时救助",
    "就业帮扶",
    "上门送药",
    "证件办理",
    "适老化改造",
    "助学帮扶",
    "法律援助",
];
const TASKS: &[&str] = &[
    "提交低保材料",
    "复查血压",
    "联系村医",
    "回访了解情况",
    "协助办理证件",
    "联系学校老师",
];
const WORDS: &[&str] = &[
    "老人",
    "身体",
    "情况",
    "需要",
    "家庭",
    "低保",
    "血压",
    "子女",
    "外出务工",
    "照顾",
    "社区",
    "政策",
    "申请",
    "材料",
    "按时",
    "服药",
    "生活",
    "困难",
    "孩子",
    "学习",
    "房屋",
    "维修",
    "用电",
    "安全",
    "邻居",
    "反映",
    "稳定",
    "医疗",
    "费用",
    "回访",
    "目前",
    "居委会",
    "陪护",
    "慢性病",
    "心理",
    "疏导",
    "上次",
    "已经",
    "联系",
    "村医",
    "，",
    "。",
    "，",
    "的",
    "了",
    "有",
    "在",
    "是",
];

/// Exactly `n` characters of plausible Chinese case-note text.
pub fn text(rng: &mut Rng, n: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    while count < n {
        for c in rng.pick(WORDS).chars() {
            if count < n {
                out.push(c);
                count += 1;
            }
        }
    }
    out
}

fn name(rng: &mut Rng) -> String {
    let sur: Vec<char> = SURNAMES.chars().collect();
    let given: Vec<char> = GIVEN.chars().collect();
    let mut s = String::new();
    s.push(sur[rng.below(sur.len())]);
    for _ in 0..rng.range(1, 2) {
        s.push(given[rng.below(given.len())]);
    }
    s
}

pub fn address(rng: &mut Rng) -> String {
    format!(
        "{}{}{}号{}栋{}单元{}室",
        rng.pick(DISTRICTS),
        rng.pick(ROADS),
        rng.range(1, 300),
        rng.range(1, 30),
        rng.range(1, 6),
        rng.range(101, 1899)
    )
}

pub fn phone(rng: &mut Rng) -> String {
    let mut p = format!("1{}", rng.range(3, 9));
    for _ in 0..9 {
        p.push(char::from(b'0' + rng.below(10) as u8));
    }
    p
}

fn tags(rng: &mut Rng) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for _ in 0..rng.range(0, 3) {
        let x = rng.pick(TAGS).to_owned();
        if !t.contains(&x) {
            t.push(x);
        }
    }
    t
}

fn gen_member(rng: &mut Rng) -> Member {
    Member {
        name: name(rng),
        birth_year: rng.range(1935, 2020) as u16,
        tags: tags(rng),
    }
}

/// Sizes of a generated workload.
#[derive(Clone, Copy, Debug)]
pub struct GenParams {
    pub seed: u64,
    pub households: usize,
    pub devices: usize,
    pub visits: usize,
    pub profile_edits: usize,
}

/// A workload of the township-week shape: `shared_pct` = 10 % of visits go to households
/// a second device also visits; each device's first two profile edits are phone changes on
/// households one neighbouring device also changes.
pub fn generate(p: GenParams) -> Res<Trace> {
    let GenParams {
        seed,
        households: h_count,
        devices: w,
        visits: v,
        profile_edits: pe,
    } = p;
    if h_count == 0 || w == 0 {
        return Err("--households and --devices must be at least 1".into());
    }
    let mut rng = Rng::new(seed);
    let households: Vec<HouseholdRec> = (0..h_count)
        .map(|i| {
            let members: Vec<Member> = (0..rng.range(1, 6)).map(|_| gen_member(&mut rng)).collect();
            HouseholdRec {
                code: format!("HH-{:06}", i + 1),
                address: address(&mut rng),
                head: members[0].name.clone(),
                phone: phone(&mut rng),
                members,
                summary: text(&mut rng, 100),
            }
        })
        .collect();

    // Which households each device visits.
    let mut pool: Vec<usize> = (0..h_count).collect();
    rng.shuffle(&mut pool);
    let mut next_fresh = 0usize;
    let mut fresh = |rng: &mut Rng| {
        let h = if next_fresh < pool.len() {
            pool[next_fresh]
        } else {
            rng.below(h_count)
        };
        next_fresh += 1;
        h
    };
    let mut plan: Vec<Vec<usize>> = vec![Vec::new(); w];
    // 10 % of the visits' households get a second device's visit too (320 visits: 32).
    let shared = if w > 1 { w * v / 10 } else { 0 };
    for s in 0..shared {
        let a = s % w;
        let b = (a + 1 + (s / w) % (w - 1)) % w;
        if plan[a].len() < v && plan[b].len() < v {
            let h = fresh(&mut rng);
            plan[a].push(h);
            plan[b].push(h);
        }
    }
    for visits in plan.iter_mut() {
        while visits.len() < v {
            visits.push(fresh(&mut rng));
        }
        rng.shuffle(visits);
    }
    // Phone edits: device d's first lands on x[d], its second on x[d-1].
    let contested: Vec<usize> = (0..w).map(|_| fresh(&mut rng)).collect();

    let base_ms: i64 = 1_740_992_400_000; // 2025-03-03 09:00 (UTC+0)
    let day0 = doorstep_core::Date::parse("2025-03-03")?;
    let mut devices = Vec::with_capacity(w);
    for (d, visits) in plan.iter().enumerate() {
        let mut acts: Vec<Action> = Vec::new();
        let per_day = v.div_ceil(5).max(1);
        let mut profile_done = 0usize;
        for (visit_no, &h) in visits.iter().enumerate() {
            let day = (visit_no / per_day) as i64;
            let mut t = base_ms + day * 86_400_000 + (visit_no % per_day) as i64 * 2_700_000;
            let date = day0.add_days(day)?.to_string();
            let tasks = (0..rng.range(0, 2))
                .map(|_| {
                    let due = day0.add_days(day + rng.range(3, 14) as i64)?;
                    Ok((rng.pick(TASKS).to_owned(), due.to_string()))
                })
                .collect::<Res<Vec<_>>>()?;
            let mut needs: Vec<String> = Vec::new();
            for _ in 0..rng.range(1, 4) {
                let n = rng.pick(NEEDS).to_owned();
                if !needs.contains(&n) {
                    needs.push(n);
                }
            }
            acts.push(Action {
                h,
                time_ms: t,
                op: Op::NewVisit {
                    visit_no,
                    date,
                    needs,
                    tasks,
                    card: format!("HG-{:02}{:04}", d + 1, visit_no + 1),
                },
            });
            let total = rng.range(540, 660);
            let edits = rng.range(18, 22);
            let mut len = 0usize;
            for e in 0..edits {
                let remaining = total - len;
                let piece = if e + 1 == edits {
                    remaining
                } else {
                    let base = total / edits;
                    (base + rng.below(base / 2 + 1))
                        .saturating_sub(base / 4)
                        .clamp(1, remaining.saturating_sub(edits - e - 1).max(1))
                };
                let pos = if len > 0 && rng.chance(20) {
                    rng.range(1, len)
                } else {
                    len
                };
                t += 30_000;
                acts.push(Action {
                    h,
                    time_ms: t,
                    op: Op::NoteInsert {
                        visit_no,
                        pos,
                        text: text(&mut rng, piece),
                    },
                });
                len += piece;
            }
            // Profile edits spread over the week, between visits.
            while profile_done < pe && (visit_no + 1) * (pe + 1) >= (profile_done + 1) * v.max(1) {
                let k = profile_done;
                let (h, op) = match k % 5 {
                    0 if w > 1 && k == 0 => (contested[d], Op::Phone(phone(&mut rng))),
                    1 if w > 1 && k == 1 => {
                        (contested[(d + w - 1) % w], Op::Phone(phone(&mut rng)))
                    }
                    0 | 1 => (fresh(&mut rng), Op::Phone(phone(&mut rng))),
                    2 => (fresh(&mut rng), Op::MemberAdd(gen_member(&mut rng))),
                    3 => (fresh(&mut rng), Op::HeadTagAdd(rng.pick(TAGS).to_owned())),
                    _ => (fresh(&mut rng), Op::Address(address(&mut rng))),
                };
                t += 60_000;
                acts.push(Action { h, time_ms: t, op });
                profile_done += 1;
            }
        }
        devices.push(acts);
    }
    Ok(Trace {
        source: format!("generator (seed {seed})"),
        params: json!({
            "seed": seed, "households": h_count, "workers": w, "visits": v,
            "profile_edits": pe, "shared_pct": 10, "contested_edits": if w > 1 { 2 } else { 0 },
            "generator": "township-week bench xorshift64*",
        }),
        households,
        devices,
        sha256: None,
        sha256_expected: None,
        decompressed_bytes: 0,
    })
}
