//! The monthly report against an independent count over the same data, recorded by real
//! devices and synced to a real server: a visit dated the last day of the month at 23:30
//! Beijing time counts in that month, one dated the next day at 00:10 (still the last day
//! in UTC) does not. CSV and XLSX exports carry the same numbers.
#![allow(clippy::unwrap_used)]

mod console_support;

use std::collections::{BTreeMap, BTreeSet};

use console_support::*;
use doorstep_core::*;
use doorstep_server::console::report::{monthly, rows, Month};
use doorstep_server::station_time::UtcOffset;
use doorstep_server::store::console::ConsoleStore;

/// 2026-11-30 23:30 and 2026-12-01 00:10 in Asia/Shanghai (UTC+8), in ms since the epoch.
const NOV_30_2330: i64 = 1_796_052_600_000;
const DEC_01_0010: i64 = NOV_30_2330 + 40 * 60 * 1000;

fn visit(s: &Store, hh: HouseholdId, date: &str, at: i64) -> VisitId {
    s.start_visit(
        hh,
        &NewVisit {
            kind: VisitKind::Phone,
            date: Date::parse(date).unwrap(),
            started_at: Timestamp(at),
            gps: None,
            other_workers: vec![],
            present: vec![],
            companions: vec![],
        },
    )
    .unwrap()
}

/// The month of a day in Beijing time, computed here without the server's code.
fn beijing_month(ms: i64) -> String {
    let days = (ms + 8 * 3_600_000).div_euclid(86_400_000);
    let d = Date::parse("1970-01-01").unwrap().add_days(days).unwrap();
    format!("{:04}-{:02}", d.year(), d.month())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_equals_an_independent_count() {
    let st = station(true).await;
    let (w01, w03) = (&st.devices[0].1, &st.devices[2].1);
    visit(w03, st.quiet, "2026-11-30", NOV_30_2330);
    visit(w03, st.contested, "2026-12-01", DEC_01_0010);
    w03.add_need(
        st.quiet,
        &NewNeed {
            category: "医疗救助".into(),
            description: String::new(),
            person: None,
            visit: None,
        },
    )
    .unwrap();
    w01.add_inquiry(
        st.contested,
        &NewInquiry {
            question: "补助如何申请？".into(),
            topic: "补贴政策".into(),
            answer: Some("已告知".into()),
            visit: None,
        },
    )
    .unwrap();
    // Group activities (ADR 0021): two in November on two phones (one counted, one not),
    // one on the first of December.
    let activity = |s: &Store, kind: &str, date: &str, count: Option<u32>| {
        s.create_activity(&NewActivity {
            activity_type: kind.into(),
            date: Date::parse(date).unwrap(),
            place: "石桥小学".into(),
            target_group: "三至五年级学生".into(),
            attendee_count: count,
            partners: vec!["县交警大队".into()],
            materials: Vec::new(),
            resources: Vec::new(),
            narrative: String::new(),
        })
        .unwrap()
    };
    activity(w01, "activity.safety.traffic", "2026-11-20", Some(45));
    activity(w03, "activity.elderly_care", "2026-11-30", None);
    activity(w03, "activity.safety.traffic", "2026-12-01", Some(30));
    // Needs-survey responses (ADR 0022), dated now: one counted, one withdrawn (not counted).
    let survey = w01
        .create_survey(
            "老年人需求调查",
            &[Question {
                id: "age".into(),
                label: "年龄".into(),
                kind: QuestionKind::Number {
                    min: Some(0),
                    max: None,
                },
            }],
        )
        .unwrap();
    let version = w01.survey(survey).unwrap().versions[0].id;
    let grandson = w01.household(st.contested).unwrap().persons[0].id;
    let granny = w01
        .add_person(st.quiet, &NewPerson::named("李奶奶", "户主"))
        .unwrap();
    let age = |n| Answer {
        question: "age".into(),
        value: AnswerValue::Number(n),
    };
    w01.respond_to_survey(st.contested, grandson, survey, version, &[age(9)])
        .unwrap();
    let withdrawn = w01
        .respond_to_survey(st.quiet, granny, survey, version, &[age(81)])
        .unwrap();
    w01.withdraw_survey_response(st.quiet, withdrawn).unwrap();
    for _ in 0..2 {
        for (_, s, t) in &st.devices {
            t.sync(s).await.unwrap();
        }
    }
    assert_eq!(
        UtcOffset::BEIJING.date(NOV_30_2330).unwrap().to_string(),
        "2026-11-30"
    );
    assert_eq!(
        UtcOffset::BEIJING.date(DEC_01_0010).unwrap().to_string(),
        "2026-12-01"
    );

    // The independent count, from one device's store (it holds everything after the sync).
    let phone = &st.devices[1].1;
    let labels: BTreeMap<WorkerId, String> = st
        .devices
        .iter()
        .map(|(l, s, _)| (s.worker(), l.clone()))
        .collect();
    let today = UtcOffset::BEIJING.date(doorstep_server::now_ms()).unwrap();
    let mut children_seen = 0;
    for month in ["2026-11", "2026-12"] {
        let mut visits = 0u64;
        let mut by_worker: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_village: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut visited = BTreeSet::new();
        let (mut needs, mut inquiries, mut answered, mut due, mut done, mut overdue) =
            (0, 0, 0, 0, 0, 0);
        for id in phone.household_ids().unwrap() {
            let h = phone.household(id).unwrap();
            for v in &h.visits {
                if v.date.to_string().starts_with(month) {
                    visits += 1;
                    *by_worker
                        .entry(labels[&v.created.worker].clone())
                        .or_default() += 1;
                    *by_village.entry(h.village.clone()).or_default() += 1;
                    *by_kind.entry(v.kind.as_str().to_owned()).or_default() += 1;
                    visited.insert(id);
                }
            }
            needs += h
                .needs
                .iter()
                .filter(|n| beijing_month(n.created.at.0) == month)
                .count() as u64;
            for i in h
                .inquiries
                .iter()
                .filter(|i| beijing_month(i.created.at.0) == month)
            {
                inquiries += 1;
                answered += u64::from(i.status == InquiryStatus::Answered);
            }
            for f in h
                .follow_ups
                .iter()
                .filter(|f| f.due.to_string().starts_with(month))
            {
                due += 1;
                done += u64::from(f.status == FollowUpStatus::Done);
                overdue += u64::from(f.status == FollowUpStatus::Open && f.due < today);
            }
        }
        // Households visited by category code (ADR 0018), named by the phone's vocabulary.
        let vocabulary = phone.vocabulary().unwrap();
        let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
        for id in &visited {
            let h = phone.household(*id).unwrap();
            let codes: BTreeSet<String> = h
                .tags
                .iter()
                .chain(h.persons.iter().flat_map(|p| p.categories.iter()))
                .cloned()
                .collect();
            for code in codes {
                let label = &vocabulary.lookup(&code).unwrap().label_zh;
                *by_category.entry(format!("{label} {code}")).or_default() += 1;
            }
        }
        let r = monthly(
            st.store.as_ref(),
            st.station,
            Month::parse(month).unwrap(),
            today,
        )
        .unwrap();
        let tally = |t: &[(String, u64)]| t.iter().cloned().collect::<BTreeMap<_, _>>();
        assert_eq!(
            tally(&r.households_visited_by_category),
            by_category,
            "{month}"
        );
        assert!(
            by_category.contains_key("低保户 household.dibao"),
            "{month}"
        );
        // Children of the visited households by child category, each child once.
        let mut children: BTreeMap<String, BTreeSet<PersonId>> = BTreeMap::new();
        for id in &visited {
            for p in phone.household(*id).unwrap().persons {
                for code in &p.categories {
                    let e = vocabulary.lookup(code).unwrap();
                    if e.kind == CategoryKind::Child {
                        children
                            .entry(format!("{} {}", e.label_zh, e.code))
                            .or_default()
                            .insert(p.id);
                    }
                }
            }
        }
        let children_count: BTreeMap<String, u64> = children
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect();
        assert_eq!(
            tally(&r.children_visited_by_category),
            children_count,
            "{month}"
        );
        let distinct: BTreeSet<&PersonId> = children.values().flatten().collect();
        assert_eq!(r.children_visited, distinct.len() as u64, "{month}");
        children_seen += r.children_visited;
        assert_eq!(r.visits, visits, "{month}");
        assert_eq!(tally(&r.visits_by_worker), by_worker, "{month}");
        assert_eq!(tally(&r.visits_by_village), by_village, "{month}");
        assert_eq!(tally(&r.visits_by_kind), by_kind, "{month}");
        assert_eq!(r.households_visited, visited.len() as u64, "{month}");
        assert_eq!(r.needs_raised, needs, "{month}");
        assert_eq!(r.inquiries, inquiries, "{month}");
        assert_eq!(r.inquiries_answered, answered, "{month}");
        assert_eq!(r.follow_ups_due, due, "{month}");
        assert_eq!(r.follow_ups_done, done, "{month}");
        assert_eq!(r.follow_ups_overdue, overdue, "{month}");
        assert_eq!(r.cards_issued, 0);
        // Activities, from the phone's own list of the month.
        let (y, m) = month.split_once('-').unwrap();
        let held = phone
            .activities_in_month(y.parse().unwrap(), m.parse().unwrap())
            .unwrap();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        for a in &held {
            let label = &vocabulary.lookup(&a.activity_type).unwrap().label_zh;
            *by_type
                .entry(format!("{label} {}", a.activity_type))
                .or_default() += 1;
        }
        assert_eq!(r.activities, held.len() as u64, "{month}");
        assert_eq!(
            r.activity_attendees,
            held.iter()
                .map(|a| u64::from(a.attendee_count.unwrap_or(0)))
                .sum::<u64>(),
            "{month}"
        );
        assert_eq!(tally(&r.activities_by_type), by_type, "{month}");
        let responses = phone
            .household_ids()
            .unwrap()
            .into_iter()
            .flat_map(|id| phone.household(id).unwrap().responses)
            .filter(|r| {
                r.status == ResponseStatus::Submitted && beijing_month(r.created.at.0) == month
            })
            .count() as u64;
        assert_eq!(r.survey_responses, responses, "{month}");
        if month == "2026-11" {
            assert_eq!((r.activities, r.activity_attendees), (2, 45));
            // The 23:30 visit is November's; the 00:10 one is not, though it is in UTC.
            assert_eq!(r.visits, 3);
            assert_eq!(by_worker.get("W03"), Some(&1));
        }
    }
    assert!(
        children_seen > 0,
        "the fixture visits a child with a child category"
    );

    // The responses are this month's: one counted, the withdrawn one not.
    let this_month = Month::of(today);
    let r = monthly(st.store.as_ref(), st.station, this_month, today).unwrap();
    assert_eq!(r.survey_responses, 1, "{this_month}");

    // The page, the CSV and the XLSX carry the same numbers.
    let r = monthly(
        st.store.as_ref(),
        st.station,
        Month::parse("2026-11").unwrap(),
        today,
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = st.url();
    let login_page = client
        .get(format!("{url}/console/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = login_page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = login_page.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = html[at..].split('"').next().unwrap();
    let resp = client
        .post(format!("{url}/console/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", csrf),
            ("login", LOGIN),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    let session = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page =
        String::from_utf8(fetch(&client, &url, &session, "/console/report?month=2026-11").await)
            .unwrap();
    assert!(
        page.contains(&format!("<td id=\"n-visits\">{}</td>", r.visits)),
        "{page}"
    );
    assert!(
        page.contains(&format!("<td id=\"n-activities\">{}</td>", r.activities)),
        "{page}"
    );
    assert!(page.contains("<svg"), "charts are inline SVG");
    let csv = String::from_utf8(
        fetch(&client, &url, &session, "/console/report.csv?month=2026-11").await,
    )
    .unwrap();
    assert!(csv.starts_with('\u{feff}'));
    let expected: Vec<String> = rows(&r)
        .iter()
        .map(|(s, i, n)| format!("{s},{i},{n}"))
        .collect();
    let got: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().skip(1).collect();
    assert_eq!(got, expected);
    assert!(got.contains(&"visits,total,3"));
    assert!(got.contains(&"activities,total,2"), "{got:?}");
    let xlsx = fetch(
        &client,
        &url,
        &session,
        "/console/report.xlsx?month=2026-11",
    )
    .await;
    assert_eq!(&xlsx[..2], b"PK", "a zip container");
    let sheet = xlsx_sheet_text(&xlsx);
    for (section, item, n) in rows(&r) {
        assert!(
            sheet.contains(section) && sheet.contains(&item),
            "{section} {item} in the sheet"
        );
        assert!(sheet.contains(&format!("<v>{n}</v>")), "{n} in the sheet");
    }
    let households = fetch(&client, &url, &session, "/console/export/households.xlsx").await;
    assert!(xlsx_sheet_text(&households).contains("HH-000002"));
    // A malformed month is a clean 400.
    let resp = client
        .get(format!("{url}/console/report?month=2026-13"))
        .header("cookie", session.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let log = st.store.access_log(st.station, 50).unwrap();
    for what in [
        "report",
        "export_report_csv",
        "export_report_xlsx",
        "export_households_xlsx",
    ] {
        assert!(log.iter().any(|e| e.what == what), "{what} logged");
    }
}

async fn fetch(client: &reqwest::Client, url: &str, session: &str, path: &str) -> Vec<u8> {
    let resp = client
        .get(format!("{url}{path}"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

/// The shared strings and first sheet of an XLSX file, as text.
fn xlsx_sheet_text(bytes: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = String::new();
    for name in ["xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"] {
        if let Ok(mut f) = zip.by_name(name) {
            std::io::Read::read_to_string(&mut f, &mut out).unwrap();
        }
    }
    out
}
