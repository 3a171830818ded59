//! The main job: a server on its embedded SQLite, three field devices of one station, a day
//! of visits recorded offline (two workers on one household, a concurrent name edit), then
//! reconnection — and what merged, what waits for review, what each sync cost.
// The demo's output is its purpose.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport, SyncReport};
use doorstep_core::*;

use crate::store::key::ServerKey;
use crate::store::ServerStore;
use crate::{credentials, now_ms, ServerConfig, SqliteStore};

struct Device {
    label: &'static str,
    store: Store,
    transport: HttpTransport,
}

/// The demo supervisor's console login (a demo on this machine only).
pub const DEMO_LOGIN: &str = "supervisor";
/// Its password.
pub const DEMO_PASSWORD: &str = "doorstep-demo";
/// The demo's read-only county console account (ADR 0020), same password.
pub const DEMO_COUNTY_LOGIN: &str = "county";

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What every sync of the demo cost, added up.
#[derive(Default)]
struct Totals {
    syncs: u64,
    round_trips: u64,
    bytes_up: u64,
    bytes_down: u64,
}

fn print_report(label: &str, r: &SyncReport, totals: &mut Totals) {
    println!(
        "  {label}: {} round trip(s); {:>6} bytes up, {:>6} bytes down; {} household(s) acknowledged by the server; {} change(s) and {} household snapshot(s) pulled",
        r.round_trips, r.bytes_up, r.bytes_down, r.acknowledged, r.pulled, r.snapshots
    );
    totals.syncs += 1;
    totals.round_trips += u64::from(r.round_trips);
    totals.bytes_up += r.bytes_up;
    totals.bytes_down += r.bytes_down;
}

fn visit(store: &Store, hh: HouseholdId, date: &str) -> DemoResult<VisitId> {
    Ok(store.start_visit(
        hh,
        &NewVisit {
            kind: VisitKind::Home,
            date: Date::parse(date)?,
            started_at: Timestamp::now(),
            gps: None,
            other_workers: vec![],
            present: vec![],
            companions: vec![],
        },
    )?)
}

/// Type a note the way a worker does: a few words at a time, each one durable.
fn type_note(
    store: &Store,
    hh: HouseholdId,
    v: VisitId,
    section: Section,
    text: &str,
) -> DemoResult<()> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = store
        .household(hh)?
        .visits
        .iter()
        .find(|x| x.id == v)
        .map(|x| x.section(section).chars().count())
        .unwrap_or(0);
    for chunk in chars.chunks(6) {
        let piece: String = chunk.iter().collect();
        store.splice_section(hh, v, section, pos, 0, &piece)?;
        pos += chunk.len();
    }
    Ok(())
}

/// A visit section as a supervisor names it.
fn section_name(s: Section) -> &'static str {
    match s {
        Section::PersonalSituation => "personal situation",
        Section::FamilySituation => "family situation",
        Section::ActualNeeds => "needs",
        Section::QuestionsAsked => "questions asked",
        Section::Concerns => "concerns",
        Section::AdviceGiven => "advice given",
        Section::Health => "health",
        Section::Study => "study",
    }
}

pub async fn run(
    listen: SocketAddr,
    data: Option<PathBuf>,
    keep_serving: bool,
    mut config: ServerConfig,
) -> DemoResult<()> {
    // The demo serves plain HTTP on this machine: the session cookie cannot be `Secure`.
    config.console = Some(crate::console::ConsoleConfig {
        secure_cookies: false,
        ..crate::console::ConsoleConfig::default()
    });
    let data = data.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("doorstep-demo-{}", uuid::Uuid::new_v4()))
    });
    crate::store::sqlite::create_private_dir(&data.join("devices"))?;
    // The server's data is encrypted as in production; the demo keeps its key (mode 0600)
    // beside the server's directory, reused when the demo runs again on the same data.
    let key_file = data.join("server.key");
    let key = if key_file.exists() {
        ServerKey::from_file(&key_file)?
    } else {
        let key = ServerKey::generate()?;
        key.write_new_file(&key_file)?;
        key
    };
    let server_store = Arc::new(SqliteStore::open_encrypted(&data.join("server"), &key)?);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let server = crate::api::serve_until_signal(server_store.clone(), listener, config).await?;
    let url = server.url();
    println!(
        "Doorstep demo — server on {url}, data in {} (server.db encrypted; key in {})",
        data.display(),
        key_file.display()
    );

    // The admin sets up the station and enrols three field devices.
    let station = server_store.create_station("石桥镇社工站", now_ms())?;
    let mut devices = Vec::new();
    // W01 supervises the station; W02 and W03 share the north villages' caseload (ADR 0019).
    let north = doorstep_core::TeamName::new("北片")?;
    for label in ["W01", "W02", "W03"] {
        let worker = crate::workers::add_worker(server_store.as_ref(), station, label, now_ms())?;
        let (role, team) = match label {
            "W01" => (doorstep_core::Role::Supervisor, None),
            _ => (doorstep_core::Role::Worker, Some(&north)),
        };
        crate::workers::set_access(
            server_store.as_ref(),
            worker,
            Some(role),
            Some(team),
            now_ms(),
        )?;
        let (_, code) = credentials::enroll_device(server_store.as_ref(), worker, now_ms())?;
        let enrolment = enroll(&url, &code).await?;
        // A demo key; an app keeps a random key in Android Keystore / iOS Keychain.
        let key = StoreKey::Raw(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .repeat(2)
                .first_chunk::<32>()
                .ok_or("key")?,
        );
        let mut options = StoreOptions::new(
            data.join("devices").join(format!("{label}.db")),
            key,
            enrolment.worker,
            enrolment.station,
        );
        options.device = Some(enrolment.device);
        let store = Store::open(options)?;
        let transport = HttpTransport::new(&url, &enrolment.token, Duration::from_secs(30))?;
        devices.push(Device {
            label,
            store,
            transport,
        });
    }
    let mut totals = Totals::default();
    println!(
        "\n1. Station set up; three devices enrolled. W01 (the supervisor) opens five case files, \
         syncs and assigns them to the north team (W02, W03), whose phones then receive them:"
    );
    let w01 = &devices[0].store;
    let villages = ["石桥村", "石桥村", "柳湾村", "柳湾村", "河口村"];
    let mut households = Vec::new();
    for (i, village) in villages.iter().enumerate() {
        let hh = w01.create_household(&NewHousehold {
            code: format!("HH-{:06}", i + 1),
            village: (*village).into(),
            address: format!("{village}{}组{}号", i + 1, 10 + i),
            phones: vec![format!("1380013800{i}")],
            tags: vec!["household.dibao".into()],
            summary: "祖孙二人生活，父母外出务工。".into(),
            ..Default::default()
        })?;
        w01.add_person(
            hh,
            &NewPerson {
                categories: vec!["child.unsupported".into()],
                ..NewPerson::named("王晓明", "孙子")
            },
        )?;
        households.push(hh);
    }
    let r = devices[0].transport.sync(&devices[0].store).await?;
    print_report(devices[0].label, &r, &mut totals);
    for hh in &households {
        server_store.assign(station, *hh, None, Some(&north), "demo", now_ms())?;
    }
    for d in &devices[1..] {
        let r = d.transport.sync(&d.store).await?;
        print_report(d.label, &r, &mut totals);
    }

    println!("\n2. A day in the field, offline. Every keystroke batch is saved on the phone.");
    let hh1 = households[0];
    let child = devices[0].store.household(hh1)?.persons[0].id;
    // W01 and W02 both visit HH-000001 and both add to its situation summary.
    let v1 = visit(&devices[0].store, hh1, "2026-11-29")?;
    type_note(
        &devices[0].store,
        hh1,
        v1,
        Section::FamilySituation,
        "奶奶七十二岁，腿脚不便，靠低保生活。孙子上五年级，成绩中等。",
    )?;
    type_note(
        &devices[0].store,
        hh1,
        v1,
        Section::QuestionsAsked,
        "奶奶询问事实无人抚养儿童基本生活补助如何申请。",
    )?;
    devices[0].store.splice_summary(hh1, 0, 0, "【重点关注】")?;
    let v2 = visit(&devices[1].store, hh1, "2026-11-29")?;
    type_note(
        &devices[1].store,
        hh1,
        v2,
        Section::Concerns,
        "孩子近来情绪低落，与同学有矛盾。建议学校心理老师跟进。",
    )?;
    let len = devices[1].store.household(hh1)?.summary.chars().count();
    devices[1]
        .store
        .splice_summary(hh1, len, 0, "孩子需心理疏导。")?;
    // W01 and W03 correct the child's name differently: a conflict for a human.
    devices[0]
        .store
        .edit_person(hh1, child, &PersonEdit::Name("王小明".into()))?;
    devices[2]
        .store
        .edit_person(hh1, child, &PersonEdit::Name("汪晓明".into()))?;
    // Other visits of the day.
    for (i, d) in devices.iter().enumerate() {
        for hh in households.iter().skip(1 + i).take(2) {
            let v = visit(&d.store, *hh, "2026-11-29")?;
            type_note(
                &d.store,
                *hh,
                v,
                Section::ActualNeeds,
                "需要协助办理医疗救助，送申请表。",
            )?;
            d.store.add_follow_up(
                *hh,
                &NewFollowUp {
                    what: "送医疗救助申请表".into(),
                    due: Date::parse("2026-12-06")?,
                    assignee: d.store.worker(),
                    origin_visit: Some(v),
                },
            )?;
            d.store.finalise_visit(*hh, v)?;
        }
    }
    for d in &devices {
        println!(
            "  {}: {} household(s) with changes waiting for signal",
            d.label,
            d.store.unsynced_households()?.len()
        );
    }

    println!("\n3. Signal returns. W03, W01, W02 sync (pass 1), then all again (pass 2):");
    for pass in 1..=2 {
        println!(" pass {pass}");
        for i in [2, 0, 1] {
            let r = devices[i].transport.sync(&devices[i].store).await?;
            print_report(devices[i].label, &r, &mut totals);
        }
    }

    println!("\n4. What merged (HH-000001, as every device now shows it):");
    let labels: Vec<(WorkerId, &str)> = devices
        .iter()
        .map(|d| (d.store.worker(), d.label))
        .collect();
    let label_of = |w: WorkerId| {
        labels
            .iter()
            .find(|(id, _)| *id == w)
            .map(|(_, l)| *l)
            .unwrap_or("?")
    };
    let h = devices[2].store.household(hh1)?;
    println!(
        "  situation summary (W01 and W02 typed into it offline): {}",
        h.summary
    );
    for (n, v) in h.visits.iter().enumerate() {
        println!(
            "  visit {} on {}, recorded by {}:",
            n + 1,
            v.date,
            label_of(v.created.worker)
        );
        for (s, text) in &v.sections {
            if !text.is_empty() {
                println!("    {}: {}", section_name(*s), text);
            }
        }
    }
    let same = devices
        .iter()
        .all(|d| d.store.heads(hh1).ok() == devices[0].store.heads(hh1).ok());
    println!("  identical on all three devices: {same}");

    println!("\n5. Waiting for review:");
    for c in devices[1].store.conflicts(None)? {
        let what = match c.kind {
            ConflictKind::ConcurrentValues => "written differently on two phones",
            ConflictKind::EditedAfterFinalise => "edited after the visit was finalised",
            ConflictKind::DuplicateResponse => "answered twice on two phones",
        };
        println!(
            "  the {} of a {} in HH-000001, {what}:",
            c.field.field.replace('_', " "),
            c.field.entity.kind().name()
        );
        for v in &c.values {
            println!(
                "    - {:?} by {}",
                v.value.as_deref().unwrap_or(""),
                label_of(v.provenance.worker)
            );
        }
    }
    let due = devices[0]
        .store
        .follow_ups_due(Date::parse("2026-11-29")?, 7)?;
    println!(
        "  follow-ups due within a week of 2026-11-29: {}",
        due.len()
    );
    println!(
        "\n  In all: {} syncs, {} round trips, {} bytes up and {} bytes down.",
        totals.syncs, totals.round_trips, totals.bytes_up, totals.bytes_down
    );

    // The station's supervisor gets a console account.
    match crate::console::auth::add_account(
        server_store.as_ref(),
        station,
        DEMO_LOGIN,
        DEMO_PASSWORD,
        now_ms(),
    ) {
        Ok(_)
        | Err(crate::console::auth::AuthError::Store(crate::store::StoreError::Conflict(_))) => {}
        Err(e) => return Err(e.into()),
    }
    // And the county gets one that reads the station (and writes nothing).
    match crate::console::auth::add_county_account(
        server_store.as_ref(),
        DEMO_COUNTY_LOGIN,
        DEMO_PASSWORD,
        &[station],
        now_ms(),
    ) {
        Ok(_)
        | Err(crate::console::auth::AuthError::Store(crate::store::StoreError::Conflict(_))) => {}
        Err(e) => return Err(e.into()),
    }
    println!("\n6. The supervisor's console (what the server accepted, for review):");
    if keep_serving {
        println!("  {url}/console   login: {DEMO_LOGIN}   password: {DEMO_PASSWORD}");
        println!(
            "  read only, as the county: login: {DEMO_COUNTY_LOGIN}   password: {DEMO_PASSWORD}"
        );
    } else {
        println!("  not served with --no-serve; run the demo without it to open the console");
    }

    if keep_serving {
        println!("\nServing on {url} until Ctrl-C.");
        if let Some(m) = server.metrics_url() {
            println!("Metrics on {m}/metrics.");
        }
        server.wait().await?;
    } else {
        server.shutdown().await;
    }
    println!(
        "\nThe demo's data (server and three phones) stays in {}; remove it with: rm -r {}",
        data.display(),
        data.display()
    );
    Ok(())
}
