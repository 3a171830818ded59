//! The station's other work in the console (issue 17/18, ADR 0021, ADR 0022), over HTTP
//! against a real server on 127.0.0.1 with the real phones of `console_support`: they record
//! group activities, a resource of the register with a need referred to it and activities
//! naming it, and a needs survey in two versions answered in households (two phones answer
//! for one child offline). The supervisor's pages show what the phones recorded, the survey
//! counts equal the phone's own index counts, no respondent is named on the aggregate page;
//! she keeps one of the duplicate responses from the conflict review and the phones get it;
//! a county account is refused every page of station work; the reads are in the access log.
#![allow(clippy::unwrap_used)]

mod console_support;

use console_support::client::Browser;
use console_support::*;
use doorstep_core::*;
use doorstep_server::store::console::{Accessor, ConsoleStore};
use doorstep_server::store::ServerStore;

const COUNTY: &str = "wang.county";

fn opt(c: &str, l: &str) -> SurveyOption {
    SurveyOption {
        code: c.into(),
        label: l.into(),
    }
}

fn questions() -> Vec<Question> {
    vec![
        Question {
            id: "living".into(),
            label: "居住情况".into(),
            kind: QuestionKind::Single {
                options: vec![opt("alone", "独居"), opt("spouse", "与配偶同住")],
            },
        },
        Question {
            id: "needs".into(),
            label: "需要哪些服务".into(),
            kind: QuestionKind::Multiple {
                options: vec![opt("meals", "助餐"), opt("medical", "助医")],
            },
        },
        Question {
            id: "mood".into(),
            label: "心情".into(),
            kind: QuestionKind::Scale { min: 1, max: 5 },
        },
        Question {
            id: "words".into(),
            label: "想说的话".into(),
            kind: QuestionKind::Text,
        },
    ]
}

fn answers(living: &str, needs: &[&str], mood: i64, words: Option<&str>) -> Vec<Answer> {
    let mut out = vec![
        Answer {
            question: "living".into(),
            value: AnswerValue::Choice(living.into()),
        },
        Answer {
            question: "needs".into(),
            value: AnswerValue::Choices(needs.iter().map(|s| (*s).into()).collect()),
        },
        Answer {
            question: "mood".into(),
            value: AnswerValue::Scale(mood),
        },
    ];
    if let Some(w) = words {
        out.push(Answer {
            question: "words".into(),
            value: AnswerValue::Text(w.into()),
        });
    }
    out
}

async fn sync_all(st: &Station) {
    for _ in 0..2 {
        for (_, s, t) in &st.devices {
            t.sync(s).await.unwrap();
        }
    }
}

/// The text after the first `marker` that follows `after` in `page`, up to the next `<`.
fn cell_after(page: &str, after: &[&str], marker: &str) -> String {
    let mut at = 0;
    for a in after {
        at += page[at..]
            .find(a)
            .unwrap_or_else(|| panic!("{a} not on the page"))
            + a.len();
    }
    let at = at + page[at..].find(marker).unwrap() + marker.len();
    page[at..].split('<').next().unwrap().trim().to_owned()
}

/// What the survey page shows for a version's question: an option's count, or a number
/// question's count and sum, or how many answered.
fn shown(page: &str, version: SurveyVersionId, question: &str, option: Option<&str>) -> String {
    let v = format!("data-version=\"{version}\"");
    let q = format!("data-question=\"{question}\"");
    match option {
        Some(o) => cell_after(
            page,
            &[&v, &q, &format!("data-option=\"{o}\"")],
            "class=\"count\">",
        ),
        None => cell_after(page, &[&v, &q], "class=\"answered\">"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stations_work_in_the_console() {
    let st = station(false).await;
    let (w01, w02, w03) = (&st.devices[0].1, &st.devices[1].1, &st.devices[2].1);

    // ---- what the phones record
    let resource = w01
        .create_resource(&NewResource {
            kind: "resource.volunteer_team".into(),
            name: "石桥志愿服务队".into(),
            leader: "李队长".into(),
            phones: vec!["13800000001".into()],
            member_count: Some(12),
            availability: "周末".into(),
            services: "陪伴留守儿童写作业".into(),
            wishes: "希望有培训".into(),
        })
        .unwrap();
    let survey = w01
        .create_survey("高龄独居老人需求调查", &questions())
        .unwrap();
    let v1 = w01.survey(survey).unwrap().versions[0].id;
    sync_all(&st).await;
    let mut qs = questions();
    qs.push(Question {
        id: "age".into(),
        label: "年龄".into(),
        kind: QuestionKind::Number {
            min: Some(0),
            max: Some(130),
        },
    });
    let v2 = w01.publish_survey_version(survey, &qs).unwrap();
    let activity = |s: &Store, kind: &str, date: &str, place: &str, count: Option<u32>| {
        s.create_activity(&NewActivity {
            activity_type: kind.into(),
            date: Date::parse(date).unwrap(),
            place: place.into(),
            target_group: "三至五年级学生".into(),
            attendee_count: count,
            partners: vec!["县交警大队".into()],
            materials: vec!["安全手册 50 册".into()],
            resources: vec![resource],
            narrative: format!("{place}：讲解交通安全知识，学生分组演练。"),
        })
        .unwrap()
    };
    let school = activity(
        w02,
        "activity.safety.traffic",
        "2026-11-10",
        "石桥小学",
        Some(45),
    );
    activity(
        w03,
        "activity.safety.drowning",
        "2026-11-20",
        "柳湾村村委会",
        None,
    );
    let december = activity(
        w01,
        "activity.safety.traffic",
        "2026-12-03",
        "石桥中学",
        Some(32),
    );
    let elder = w01
        .add_person(st.quiet, &NewPerson::named("赵奶奶", "户主"))
        .unwrap();
    let spouse = w01
        .add_person(st.quiet, &NewPerson::named("赵爷爷", "配偶"))
        .unwrap();
    let need = w01
        .add_need(
            st.quiet,
            &NewNeed {
                category: "生活照料".into(),
                description: "需要有人陪伴".into(),
                person: Some(elder),
                visit: None,
            },
        )
        .unwrap();
    w01.refer_need(st.quiet, need, Some(resource)).unwrap();
    sync_all(&st).await;
    w01.respond_to_survey(
        st.quiet,
        elder,
        survey,
        v1,
        &answers(
            "alone",
            &["meals", "medical"],
            2,
            Some("希望有人陪着说说话"),
        ),
    )
    .unwrap();
    let mut second = answers("spouse", &["meals"], 4, None);
    second.push(Answer {
        question: "age".into(),
        value: AnswerValue::Number(81),
    });
    w01.respond_to_survey(st.quiet, spouse, survey, v2, &second)
        .unwrap();
    // Offline, two phones answer for the same child (a duplicate for a human).
    let child = w02.household(st.contested).unwrap().persons[0].id;
    let by_w02 = w02
        .respond_to_survey(
            st.contested,
            child,
            survey,
            v1,
            &answers("alone", &["medical"], 5, None),
        )
        .unwrap();
    let by_w03 = w03
        .respond_to_survey(
            st.contested,
            child,
            survey,
            v1,
            &answers("spouse", &["meals"], 1, Some("想念父母")),
        )
        .unwrap();
    sync_all(&st).await;

    // ---- the supervisor's pages
    let mut b = Browser::new(st.url());
    assert_eq!(b.login(LOGIN, PASSWORD).await.0, 303);
    let (_, dash, _) = b.get("/console").await;
    for link in ["nav-activities", "nav-resources", "nav-surveys"] {
        assert!(dash.contains(link), "{link}");
    }

    // Activities of November: as the phone's own index lists them.
    let (status, page, _) = b.get("/console/activities?month=2026-11").await;
    assert_eq!(status, 200, "{page}");
    let on_phone = w01.activities_in_month(2026, 11).unwrap();
    assert_eq!(on_phone.len(), 2);
    assert_eq!(
        page.matches("class=\"activity\"").count(),
        on_phone.len(),
        "{page}"
    );
    for a in &on_phone {
        assert!(page.contains(&a.place) && page.contains(&a.date.to_string()));
        assert!(page.contains(&format!("/console/activities/{}", a.id)));
    }
    let attendance: u32 = on_phone.iter().filter_map(|a| a.attendee_count).sum();
    assert_eq!(
        cell_after(&page, &[], "id=\"n-attendance\">"),
        attendance.to_string()
    );
    assert!(page.contains("交通安全教育"), "the type's label: {page}");
    assert!(page.contains("县交警大队"));
    assert!(!page.contains("石桥中学"), "December's is not November's");
    let (_, page, _) = b.get("/console/activities?month=2026-12").await;
    assert!(page.contains("石桥中学") && page.contains(&december.to_string()));
    assert_eq!(b.get("/console/activities?month=2026-13").await.0, 400);

    // An activity: its narrative, the resource it names, who recorded it.
    let (status, page, _) = b.get(&format!("/console/activities/{school}")).await;
    assert_eq!(status, 200, "{page}");
    let a = w01.activity(school).unwrap();
    assert!(page.contains(&a.narrative), "{page}");
    assert!(page.contains("安全手册 50 册") && page.contains("三至五年级学生"));
    assert!(page.contains(&format!("/console/resources/{resource}")));
    assert!(page.contains("石桥志愿服务队"));
    assert_eq!(
        cell_after(&page, &["id=\"activity-provenance\""], "class=\"who\">"),
        "W02"
    );
    assert_eq!(
        cell_after(&page, &[], "id=\"activity-attendees\">"),
        a.attendee_count.unwrap().to_string()
    );
    // Not an activity, not an id, another station's: not found.
    assert_eq!(
        b.get(&format!("/console/activities/{resource}")).await.0,
        404
    );
    assert_eq!(b.get("/console/activities/nonsense").await.0, 404);
    assert_eq!(
        b.get(&format!("/console/activities/{}", st.quiet)).await.0,
        404
    );

    // The register and a resource with the activities and the need linked to it.
    let (status, page, _) = b.get("/console/resources").await;
    assert_eq!(status, 200, "{page}");
    let r = w01.resource(resource).unwrap();
    assert!(page.contains(&r.name) && page.contains(&r.leader));
    assert!(page.contains("志愿服务队"), "the kind's label: {page}");
    let (status, page, _) = b.get(&format!("/console/resources/{resource}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&r.services) && page.contains(&r.wishes));
    assert!(page.contains("13800000001"));
    assert_eq!(
        cell_after(&page, &[], "id=\"resource-members\">"),
        r.member_count.unwrap().to_string()
    );
    let linked = page.split("id=\"resource-activities\"").nth(1).unwrap();
    let linked = linked.split("</table>").next().unwrap();
    assert_eq!(linked.matches("class=\"activity-link\"").count(), 3);
    let referred = page.split("id=\"resource-needs\"").nth(1).unwrap();
    assert_eq!(referred.matches("class=\"referral\"").count(), 1);
    assert!(referred.contains("HH-000002") && referred.contains("生活照料"));
    assert!(referred.contains(&format!("/console/households/{}", st.quiet)));
    assert_eq!(b.get(&format!("/console/resources/{school}")).await.0, 404);

    // Surveys: the list with both versions, and the counts per version, question and
    // option equal to the phone's own index (W01 holds every household), with no name.
    let (status, page, _) = b.get("/console/surveys").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("高龄独居老人需求调查"));
    let on_phone = w01.respondents(survey).unwrap().len();
    assert_eq!(on_phone, 4, "the duplicate counts until it is settled");
    assert_eq!(
        cell_after(&page, &[], "class=\"responses\">"),
        on_phone.to_string()
    );
    let (status, page, _) = b.get(&format!("/console/surveys/{survey}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        cell_after(&page, &[], "id=\"n-responses\">"),
        on_phone.to_string()
    );
    let counts = w01.survey_counts(survey).unwrap();
    assert!(counts.len() > 10, "{counts:?}");
    for c in &counts {
        match (&c.option, c.sum) {
            (Some(o), _) => assert_eq!(
                shown(&page, c.version, &c.question, Some(o)),
                c.count.to_string(),
                "{c:?}"
            ),
            (None, Some(sum)) => {
                let v = format!("data-version=\"{}\"", c.version);
                let q = format!("data-question=\"{}\"", c.question);
                assert_eq!(
                    cell_after(&page, &[&v, &q], "class=\"n-count\">"),
                    c.count.to_string()
                );
                assert_eq!(
                    cell_after(&page, &[&v, &q], "class=\"n-sum\">"),
                    sum.to_string()
                );
            }
            (None, None) => assert_eq!(
                shown(&page, c.version, &c.question, None),
                c.count.to_string(),
                "{c:?}"
            ),
        }
    }
    // An option nobody chose is shown with 0 (the phone has no row for it).
    assert_eq!(shown(&page, v2, "living", Some("alone")), "0");
    for name in [
        "赵奶奶",
        "赵爷爷",
        "王小明",
        "汪晓明",
        "王晓明",
        "希望有人陪着说说话",
    ] {
        assert!(!page.contains(name), "{name} on the aggregate page");
    }
    assert_eq!(b.get(&format!("/console/surveys/{school}")).await.0, 404);

    // ---- the duplicate response, kept from the conflict review
    let (_, page, _) = b.get("/console/conflicts").await;
    let section = page
        .split("<section class=\"conflict\">")
        .find(|s| s.contains("duplicate-hint"))
        .expect("the duplicate in the review");
    assert!(section.contains("高龄独居老人需求调查"), "{section}");
    for (id, who) in [(by_w02, "W02"), (by_w03, "W03")] {
        assert!(section.contains(&id.to_string()), "{section}");
        assert!(section.contains(who));
    }
    assert!(section.contains("想念父母"), "the answers, to choose by");
    // The case file shows the duplicate the same way.
    let (_, file, _) = b
        .get(&format!("/console/households/{}", st.contested))
        .await;
    assert!(
        file.contains("重复问卷") && file.contains("想念父母"),
        "{file}"
    );
    let field = section
        .split("name=\"field\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let keep = doorstep_server::console::resolve::value_digest(Some(&by_w02.to_string()));
    assert!(section.contains(&keep));
    let log_before = st.store.high_water(st.station).unwrap();
    let body = |csrf: &str| {
        form(&[
            ("csrf", csrf),
            ("doc", &st.contested.to_string()),
            ("field", &field),
            ("chosen", &keep),
        ])
    };
    let (status, _, _) = b.post("/console/conflicts/resolve", body("forged")).await;
    assert_eq!(status, 403);
    assert_eq!(st.store.high_water(st.station).unwrap(), log_before);
    let csrf = Browser::csrf_of(&page);
    let (status, text, set) = b.post("/console/conflicts/resolve", body(&csrf)).await;
    assert_eq!(status, 303, "{text}");
    assert!(set.iter().any(|s| s == "location: /console/conflicts"));
    let (_, page, _) = b.get("/console/conflicts").await;
    assert!(!page.contains("duplicate-hint"), "settled");
    sync_all(&st).await;
    for phone in [w02, w03] {
        assert_eq!(
            phone.survey_response(st.contested, by_w02).unwrap().status,
            ResponseStatus::Submitted
        );
        assert_eq!(
            phone.survey_response(st.contested, by_w03).unwrap().status,
            ResponseStatus::Withdrawn
        );
        assert!(phone
            .conflicts(Some(st.contested))
            .unwrap()
            .iter()
            .all(|c| c.kind != ConflictKind::DuplicateResponse));
    }
    let (_, page, _) = b.get(&format!("/console/surveys/{survey}")).await;
    let now = w01.respondents(survey).unwrap().len();
    assert_eq!(now, 3);
    assert_eq!(
        cell_after(&page, &[], "id=\"n-responses\">"),
        now.to_string()
    );
    assert_eq!(shown(&page, v1, "living", Some("spouse")), "0");

    // English.
    b.get("/console/lang?to=en").await;
    let (_, page, _) = b.get("/console/surveys").await;
    assert!(page.contains("Needs surveys") && page.contains("Responses"));
    let (_, page, _) = b.get("/console/activities?month=2026-11").await;
    assert!(page.contains("Group activities") && page.contains("Attendance"));

    // ---- a county account sees none of the station's work (ADR 0021 §5)
    let county = doorstep_server::console::auth::add_county_account(
        st.store.as_ref(),
        COUNTY,
        PASSWORD,
        &[st.station],
        doorstep_server::now_ms(),
    )
    .unwrap();
    let mut c = Browser::new(st.url());
    assert_eq!(c.login(COUNTY, PASSWORD).await.0, 303);
    let prefix = format!("/console/s/{}", st.station);
    let (status, dash, _) = c.get(&prefix).await;
    assert_eq!(status, 200);
    assert!(!dash.contains("nav-surveys") && !dash.contains("tile-activities"));
    for path in [
        "/activities".to_owned(),
        "/activities?month=2026-11".to_owned(),
        format!("/activities/{school}"),
        "/resources".to_owned(),
        format!("/resources/{resource}"),
        "/surveys".to_owned(),
        format!("/surveys/{survey}"),
    ] {
        let (status, body, _) = c.get(&format!("{prefix}{path}")).await;
        assert_eq!(status, 403, "{path}: {body}");
        for secret in ["石桥", "高龄", "李队长", "交通"] {
            assert!(!body.contains(secret), "{path}: {body}");
        }
    }

    // ---- the access log: the supervisor's reads, with their targets; none of the county's
    let entries = st.store.accesses(st.station, None, 1000).unwrap();
    let of = |what: &str, target: Option<String>| {
        entries.iter().any(|e| {
            e.what == what
                && matches!(&e.by, Accessor::Console { login, .. } if login == LOGIN)
                && (target.is_none() || e.target == target)
        })
    };
    assert!(of("activities", Some("2026-11".into())));
    assert!(of("activity", Some(school.to_string())));
    assert!(of("resources", None));
    assert!(of("resource", Some(resource.to_string())));
    assert!(of("surveys", None));
    assert!(of("survey", Some(survey.to_string())));
    assert!(of("resolve_conflict", Some(st.contested.to_string())));
    assert!(!entries.iter().any(|e| {
        matches!(&e.by, Accessor::Console { account, .. } if *account == county)
            && [
                "activities",
                "activity",
                "resources",
                "resource",
                "surveys",
                "survey",
            ]
            .contains(&e.what.as_str())
    }));
    st.server.shutdown().await;
}

/// The PostgreSQL test database (`DOORSTEP_TEST_POSTGRES`), or `None` outside CI when none is
/// configured.
fn postgres_url() -> Option<String> {
    match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("DOORSTEP_TEST_POSTGRES must be set in CI (eval \"$(scripts/postgres.sh)\")")
        }
        _ => {
            eprintln!(
                "DOORSTEP_TEST_POSTGRES not set: station work in the console on PostgreSQL skipped"
            );
            None
        }
    }
}

/// The same pages on PostgreSQL, in brief: one phone records an activity, a resource with a
/// need referred to it and a survey answered by two persons; the supervisor's pages show
/// them and the counts equal the phone's; a county account is refused; the reads are logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stations_work_on_postgresql() {
    use doorstep_core::transport::{enroll, HttpTransport};
    use doorstep_server::console::ConsoleConfig;
    use doorstep_server::store::postgres::PostgresStore;
    use doorstep_server::{credentials, now_ms, ServerConfig};
    use std::sync::Arc;
    use std::time::Duration;

    let Some(url) = postgres_url() else { return };
    let (store, station, code) = tokio::task::spawn_blocking(move || {
        let schema = format!("work_{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(PostgresStore::open(&url, Some(&schema), 4).unwrap());
        let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
        let worker = store.add_worker(station, "W01", now_ms()).unwrap();
        let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
        doorstep_server::console::auth::add_account(
            store.as_ref(),
            station,
            LOGIN,
            PASSWORD,
            now_ms(),
        )
        .unwrap();
        doorstep_server::console::auth::add_county_account(
            store.as_ref(),
            COUNTY,
            PASSWORD,
            &[station],
            now_ms(),
        )
        .unwrap();
        (store, station, code)
    })
    .await
    .unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let e = enroll(&server.url(), &code).await.unwrap();
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut options = StoreOptions::new(
        dir.path().join("phone.db"),
        StoreKey::Raw(key),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    let phone = Store::open(options).unwrap();
    let t = HttpTransport::new(&server.url(), &e.token, Duration::from_secs(30)).unwrap();

    let resource = phone
        .create_resource(&NewResource {
            kind: "resource.school".into(),
            name: "河口小学".into(),
            leader: "陈校长".into(),
            member_count: Some(30),
            ..Default::default()
        })
        .unwrap();
    let activity = phone
        .create_activity(&NewActivity {
            activity_type: "activity.child_protection".into(),
            date: Date::parse("2026-11-05").unwrap(),
            place: "河口小学礼堂".into(),
            target_group: "全校学生".into(),
            attendee_count: Some(120),
            partners: vec!["县妇联".into()],
            materials: vec![],
            resources: vec![resource],
            narrative: "防性侵教育讲座。".into(),
        })
        .unwrap();
    let hh = phone
        .create_household(&NewHousehold {
            code: "HK-000001".into(),
            village: "河口村".into(),
            ..Default::default()
        })
        .unwrap();
    let a = phone
        .add_person(hh, &NewPerson::named("钱老太", "户主"))
        .unwrap();
    let b = phone
        .add_person(hh, &NewPerson::named("钱老汉", "配偶"))
        .unwrap();
    let need = phone
        .add_need(
            hh,
            &NewNeed {
                category: "助餐".into(),
                description: String::new(),
                person: Some(a),
                visit: None,
            },
        )
        .unwrap();
    phone.refer_need(hh, need, Some(resource)).unwrap();
    let survey = phone.create_survey("助餐需求调查", &questions()).unwrap();
    let v1 = phone.survey(survey).unwrap().versions[0].id;
    phone
        .respond_to_survey(hh, a, survey, v1, &answers("alone", &["meals"], 3, None))
        .unwrap();
    phone
        .respond_to_survey(
            hh,
            b,
            survey,
            v1,
            &answers("spouse", &["meals", "medical"], 5, Some("想吃热饭")),
        )
        .unwrap();
    t.sync(&phone).await.unwrap();

    let mut br = Browser::new(server.url());
    assert_eq!(br.login(LOGIN, PASSWORD).await.0, 303);
    let (status, page, _) = br.get("/console/activities?month=2026-11").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("河口小学礼堂") && page.contains(&activity.to_string()));
    assert_eq!(cell_after(&page, &[], "id=\"n-attendance\">"), "120");
    let (_, page, _) = br.get(&format!("/console/activities/{activity}")).await;
    assert!(page.contains("防性侵教育讲座。"));
    let (_, page, _) = br.get("/console/resources").await;
    assert!(page.contains("河口小学") && page.contains("陈校长"));
    let (_, page, _) = br.get(&format!("/console/resources/{resource}")).await;
    assert!(
        page.contains("HK-000001") && page.contains("助餐"),
        "{page}"
    );
    let (_, page, _) = br.get(&format!("/console/surveys/{survey}")).await;
    for c in phone.survey_counts(survey).unwrap() {
        if let Some(o) = &c.option {
            assert_eq!(
                shown(&page, c.version, &c.question, Some(o)),
                c.count.to_string()
            );
        }
    }
    assert!(!page.contains("钱老太") && !page.contains("想吃热饭"));

    let mut county = Browser::new(server.url());
    assert_eq!(county.login(COUNTY, PASSWORD).await.0, 303);
    let (status, body, _) = county
        .get(&format!("/console/s/{station}/surveys/{survey}"))
        .await;
    assert_eq!(status, 403);
    assert!(!body.contains("助餐"));

    let whats: Vec<String> = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.accesses(station, None, 100).unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.what)
            .collect()
    };
    for what in ["activities", "activity", "resources", "resource", "survey"] {
        assert!(whats.contains(&what.to_owned()), "{what}: {whats:?}");
    }
    server.shutdown().await;
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
}
