//! The station console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by scripts/setup.sh) driven over WebDriver, against a real
//! server with case files that real devices synced. Screenshots of each page go to
//! `target/console-screenshots/`.
//!
//! Without Chromium the test says so loudly and passes, except where Chromium is required
//! (`CI` or `DOORSTEP_REQUIRE_CHROMIUM` set): there it fails.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod console_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use console_support::*;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("DOORSTEP_REQUIRE_CHROMIUM").is_some()
}

fn start_driver() -> Option<Driver> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        if chromium_required() {
            panic!("{CHROMIUM} and {CHROMEDRIVER} are required here (CI or DOORSTEP_REQUIRE_CHROMIUM is set): run scripts/setup.sh");
        }
        eprintln!("\n**********************************************************************");
        eprintln!("* console browser test SKIPPED: {CHROMIUM} / {CHROMEDRIVER} not found.");
        eprintln!("* Install them with scripts/setup.sh (Debian: chromium chromium-driver).");
        eprintln!("**********************************************************************\n");
        return None;
    }
    // A free port for chromedriver (it has no "pick one and tell me").
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver { child, port })
}

/// A WebDriver session; the browser saves downloads in `downloads` without asking.
async fn connect(driver: &Driver, downloads: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--lang=zh-CN"],
            "prefs": {
                "download.default_directory": downloads.to_str().unwrap(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            },
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    // chromedriver takes a moment to listen: retry the connection (bounded).
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    panic!("cannot start a WebDriver session: {last:?}");
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Wait (bounded) until the browser is at a URL whose path and query satisfy `at`: a click
/// that submits a form may return before the next page is there.
async fn wait_for_url(c: &Client, what: &str, at: impl Fn(&str) -> bool) {
    for _ in 0..200 {
        let u = c.current_url().await.unwrap();
        let here = format!("{}?{}", u.path(), u.query().unwrap_or(""));
        if at(&here) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the browser never got to {what}");
}

/// Click the element `at` finds (the test fails if there is none).
async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

/// Type `text` into the element `at` finds.
async fn type_into(c: &Client, at: Locator<'_>, text: &str) {
    c.find(at).await.unwrap().send_keys(text).await.unwrap();
}

/// Click the link `id` and wait (bounded) for the browser to finish saving `name` in
/// `downloads`; its bytes.
async fn download(c: &Client, downloads: &Path, id: &str, name: &str) -> Vec<u8> {
    click(c, Locator::Id(id)).await;
    let path = downloads.join(name);
    for _ in 0..200 {
        // Chromium writes `<name>.crdownload` and renames it when done.
        let partial = downloads.join(format!("{name}.crdownload"));
        if path.exists() && !partial.exists() {
            return std::fs::read(&path).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let there: Vec<_> = std::fs::read_dir(downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    panic!("the browser did not download {name} (the folder holds {there:?})");
}

/// The first sheet of an XLSX file, read by a spreadsheet reader (calamine): its name and
/// its cells as text, row by row (numbers as written: `2`, not `2.0`).
fn xlsx_rows(bytes: &[u8]) -> (String, Vec<Vec<String>>) {
    use calamine::{Data, Reader};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let name = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&name).unwrap();
    let rows = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|cell| match cell {
                    Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    (name, rows)
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_uses_the_console_in_chromium() {
    let Some(driver) = start_driver() else { return };
    // Chromium keeps `Secure` cookies of http://localhost (a trustworthy origin), so the
    // console runs with its production cookie settings.
    let st = station(true).await;
    let downloads = tempfile::tempdir().unwrap();
    let c = connect(&driver, downloads.path()).await;
    let url = st.url().replace("127.0.0.1", "localhost");

    // Log in.
    c.goto(&format!("{url}/console")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    shot(&c, "01-login").await;
    type_into(&c, Locator::Id("login"), LOGIN).await;
    type_into(&c, Locator::Id("password"), PASSWORD).await;
    click(&c, Locator::Id("submit")).await;

    // The dashboard.
    if c.wait().for_element(Locator::Id("account")).await.is_err() {
        shot(&c, "02-dashboard-missing").await;
        panic!("no dashboard after login: {}", c.source().await.unwrap());
    }
    let account = c
        .find(Locator::Id("account"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains(LOGIN), "{account}");
    let conflicts = c
        .find(Locator::Css("#tile-conflicts .n"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(conflicts, "1");
    shot(&c, "02-dashboard").await;

    // Search a household by a Chinese word from a visit note.
    c.goto(&format!("{url}/console/households")).await.unwrap();
    type_into(&c, Locator::Id("q"), "心理疏导").await;
    click(&c, Locator::Id("search")).await;
    wait_for_url(&c, "the search results", |u| u.contains("q=")).await;
    let links = c.find_all(Locator::Css("a.household-link")).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].text().await.unwrap(), "HH-000001");
    shot(&c, "03-search").await;

    // Open the case file: who wrote the child's name (both concurrent values).
    links[0].click().await.unwrap();
    wait_for_url(&c, "the case file", |u| {
        u.starts_with(&format!("/console/households/{}", st.contested))
    })
    .await;
    let rows = c
        .find_all(Locator::Css("tr[data-field='name']"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for r in &rows {
        let value = r
            .find(Locator::Css("td.value"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let who = r
            .find(Locator::Css("td.who"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen.push((value, who));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("汪晓明".to_owned(), "W03".to_owned()),
            ("王小明".to_owned(), "W01".to_owned())
        ]
    );
    let source = c.source().await.unwrap();
    assert!(!source.contains(ID_NUMBER), "the ID number is masked");
    shot(&c, "04-case-file").await;

    // Resolve the conflict two devices made: keep 王小明; a third device gets it.
    c.goto(&format!("{url}/console/conflicts")).await.unwrap();
    shot(&c, "05-conflicts").await;
    c.find(Locator::XPath("//label[text()='王小明']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, Locator::Css("button.resolve")).await;
    wait_for_url(&c, "the conflicts after resolving", |u| {
        u.starts_with("/console/conflicts?")
    })
    .await;
    c.wait()
        .for_element(Locator::Id("no-conflicts"))
        .await
        .unwrap();
    shot(&c, "05b-conflict-resolved").await;
    let (_, w02, t02) = &st.devices[1];
    t02.sync(w02).await.unwrap();
    assert!(w02.conflicts(None).unwrap().is_empty());
    assert_eq!(
        w02.household(st.contested).unwrap().persons[0].name,
        "王小明"
    );
    c.goto(&format!("{url}/console/follow-ups")).await.unwrap();
    shot(&c, "06-follow-ups").await;
    // The monthly report of the devices' visits, with its charts.
    c.goto(&format!("{url}/console/report?month=2026-11"))
        .await
        .unwrap();
    let visits = c
        .find(Locator::Id("n-visits"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(visits, "2");
    assert_eq!(
        c.find_all(Locator::Css("svg.chart")).await.unwrap().len(),
        8,
        "visits by kind, worker, village; households and children by category; needs; inquiries; \
         activities"
    );
    shot(&c, "06b-report").await;

    // A needs survey a phone made and answered: from the navigation to its counts.
    let w01 = &st.devices[0];
    let survey = w01
        .1
        .create_survey(
            "高龄独居老人需求调查",
            &[doorstep_core::Question {
                id: "living".into(),
                label: "居住情况".into(),
                kind: doorstep_core::QuestionKind::Single {
                    options: vec![
                        doorstep_core::SurveyOption {
                            code: "alone".into(),
                            label: "独居".into(),
                        },
                        doorstep_core::SurveyOption {
                            code: "spouse".into(),
                            label: "与配偶同住".into(),
                        },
                    ],
                },
            }],
        )
        .unwrap();
    let version = w01.1.survey(survey).unwrap().versions[0].id;
    let elder = w01
        .1
        .add_person(st.quiet, &doorstep_core::NewPerson::named("赵奶奶", "户主"))
        .unwrap();
    w01.1
        .respond_to_survey(
            st.quiet,
            elder,
            survey,
            version,
            &[doorstep_core::Answer {
                question: "living".into(),
                value: doorstep_core::AnswerValue::Choice("alone".into()),
            }],
        )
        .unwrap();
    w01.2.sync(&w01.1).await.unwrap();
    click(&c, Locator::Id("nav-surveys")).await;
    wait_for_url(&c, "the surveys", |u| u == "/console/surveys?").await;
    click(&c, Locator::LinkText("高龄独居老人需求调查")).await;
    wait_for_url(&c, "the survey's counts", |u| {
        u == format!("/console/surveys/{survey}?")
    })
    .await;
    let counted = |css: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(css))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(counted("#n-responses").await, "1");
    assert_eq!(counted("tr[data-option='alone'] td.count").await, "1");
    assert_eq!(counted("tr[data-option='spouse'] td.count").await, "0");
    assert!(
        !c.source().await.unwrap().contains("赵奶奶"),
        "no respondent named"
    );
    shot(&c, "06c-survey").await;

    // Enrol a phone for W02: the one-time code as text and as a QR code.
    c.goto(&format!("{url}/console/devices")).await.unwrap();
    click(&c, Locator::Id("enroll-W02")).await;
    wait_for_url(&c, "the enrolment", |u| {
        u.starts_with("/console/devices/enroll")
    })
    .await;
    let code = c
        .find(Locator::Id("enrol-code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(
        c.find_all(Locator::Css("#enrolment svg"))
            .await
            .unwrap()
            .len(),
        1
    );
    shot(&c, "06c-enrol-device").await;

    // Contact cards: register a printed batch with the form, lease part of it to W01's
    // phone; a batch overlapping it is refused with the reason on the page.
    c.goto(&format!("{url}/console/cards")).await.unwrap();
    let fill = |id: &'static str, text: &'static str| {
        let c = c.clone();
        async move {
            let field = c.find(Locator::Id(id)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        }
    };
    fill("batch-prefix", "HG").await;
    fill("batch-first", "1").await;
    fill("batch-last", "5000").await;
    click(&c, Locator::Id("batch-submit")).await;
    wait_for_url(&c, "the registered batch", |u| {
        u == "/console/cards?done=batch"
    })
    .await;
    let w01_phone = st.devices[0].1.device().to_string();
    c.find(Locator::Id("lease-device"))
        .await
        .unwrap()
        .select_by_value(&w01_phone)
        .await
        .unwrap();
    fill("lease-first", "1").await;
    fill("lease-last", "100").await;
    click(&c, Locator::Id("lease-submit")).await;
    wait_for_url(&c, "the lease", |u| u == "/console/cards?done=lease").await;
    let leases = c
        .find(Locator::Id("leases"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        leases.contains("HG-000001 … HG-000100") && leases.contains("W01"),
        "{leases}"
    );
    shot(&c, "06d-cards").await;
    fill("batch-prefix", "HG").await;
    fill("batch-first", "4001").await;
    fill("batch-last", "6000").await;
    click(&c, Locator::Id("batch-submit")).await;
    wait_for_url(&c, "the refused batch", |u| u == "/console/cards/batches?").await;
    let error = c
        .find(Locator::Id("card-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("重叠"), "{error}");
    shot(&c, "06e-card-refused").await;

    // The dashboard's card stock per lease: the range leased to W01's phone, none issued.
    c.goto(&format!("{url}/console")).await.unwrap();
    let stock = c
        .find_all(Locator::Css("#lease-stock tbody tr[data-lease]"))
        .await
        .unwrap();
    assert_eq!(stock.len(), 1);
    let mut cells = Vec::new();
    for td in stock[0].find_all(Locator::Css("td")).await.unwrap() {
        cells.push(td.text().await.unwrap());
    }
    assert_eq!(cells[0], "HG-000001 … HG-000100", "{cells:?}");
    assert_eq!(cells[1], "W01", "{cells:?}");
    assert_eq!(
        cells[3..],
        ["100", "0", "100"],
        "size, issued, left: {cells:?}"
    );
    shot(&c, "06f-dashboard-card-stock").await;

    // Exports, downloaded by the browser itself with its session: the household list as
    // CSV and XLSX, the month's report as XLSX; each opened and read.
    let session = c.get_named_cookie("doorstep_session").await.unwrap();
    assert_eq!(session.http_only(), Some(true));
    c.goto(&format!("{url}/console/households")).await.unwrap();
    let csv = download(&c, downloads.path(), "export-csv", "households.csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with('\u{feff}'));
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("HH-000001,石桥村,"), "{csv}");
    let xlsx = download(&c, downloads.path(), "export-xlsx", "households.xlsx").await;
    let (sheet, rows) = xlsx_rows(&xlsx);
    assert_eq!(sheet, "households");
    assert_eq!(
        rows[0],
        [
            "code",
            "village",
            "categories",
            "status",
            "visits",
            "last_visit",
            "open_needs",
            "conflicts",
            "household_id"
        ]
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    let contested = rows.iter().find(|r| r[0] == "HH-000001").unwrap();
    assert_eq!(contested[1], "石桥村");
    assert!(
        contested[2].split(' ').any(|c| c == "household.dibao"),
        "{contested:?}"
    );
    assert_eq!(contested[4], "1", "one visit: {contested:?}");
    assert_eq!(contested[5], "2026-11-29");
    assert_eq!(contested[8], st.contested.to_string());
    // The XLSX holds the same households as the CSV, in the same order.
    for (line, row) in lines[1..].iter().zip(&rows[1..]) {
        assert!(
            line.starts_with(&format!("{},{},", row[0], row[1])),
            "{line} / {row:?}"
        );
    }
    c.goto(&format!("{url}/console/report?month=2026-11"))
        .await
        .unwrap();
    let xlsx = download(&c, downloads.path(), "report-xlsx", "report-2026-11.xlsx").await;
    let (sheet, rows) = xlsx_rows(&xlsx);
    assert_eq!(sheet, "月报 2026-11");
    assert_eq!(rows[0], ["section", "item", "count"]);
    let today = doorstep_server::station_time::UtcOffset::BEIJING
        .date(doorstep_server::now_ms())
        .unwrap();
    let report = doorstep_server::console::report::monthly(
        st.store.as_ref(),
        st.station,
        doorstep_server::console::report::Month::parse("2026-11").unwrap(),
        today,
    )
    .unwrap();
    let expected: Vec<Vec<String>> = doorstep_server::console::report::rows(&report)
        .into_iter()
        .map(|(section, item, n)| vec![section.to_owned(), item, n.to_string()])
        .collect();
    assert_eq!(rows[1..], expected[..]);
    assert!(
        rows.contains(&vec!["visits".into(), "total".into(), "2".into()]),
        "the page said 2 visits: {rows:?}"
    );

    // A POST without the CSRF token is refused, even from the signed-in browser: strip the
    // token from the logout form and submit it (no script runs in the page otherwise).
    c.execute(
        "document.querySelector('form[action=\"/console/logout\"] input[name=csrf]').remove();",
        vec![],
    )
    .await
    .unwrap();
    click(&c, Locator::Id("logout")).await;
    wait_for_url(&c, "the refused logout", |u| {
        u.starts_with("/console/logout")
    })
    .await;
    let body = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("CSRF"), "{body}");
    shot(&c, "07-csrf-refused").await;
    c.goto(&format!("{url}/console")).await.unwrap();
    assert!(
        c.current_url().await.unwrap().path().ends_with("/console"),
        "still signed in"
    );

    // English, then log out properly.
    click(&c, Locator::Id("lang-switch")).await;
    c.wait()
        .for_element(Locator::Css("html[lang='en']"))
        .await
        .unwrap();
    let tile = c
        .find(Locator::Id("tile-conflicts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(tile.contains("Unresolved conflicts"), "{tile}");
    shot(&c, "08-dashboard-en").await;
    click(&c, Locator::Id("logout")).await;
    wait_for_url(&c, "the login page", |u| u.starts_with("/console/login")).await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    c.goto(&format!("{url}/console/households")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));

    // A county account (ADR 0020): its stations, one chosen, read-only pages under the
    // station's prefix, no assignment form on a case file.
    doorstep_server::console::auth::add_county_account(
        st.store.as_ref(),
        "wang.county",
        PASSWORD,
        &[st.station],
        doorstep_server::now_ms(),
    )
    .unwrap();
    c.goto(&format!("{url}/console/lang?to=zh")).await.unwrap();
    c.goto(&format!("{url}/console/login")).await.unwrap();
    for (id, text) in [("login", "wang.county"), ("password", PASSWORD)] {
        type_into(&c, Locator::Id(id), text).await;
    }
    click(&c, Locator::Id("submit")).await;
    c.wait().for_element(Locator::Id("stations")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/stations"));
    shot(&c, "09-county-stations").await;
    click(&c, Locator::Css("a.station-link")).await;
    c.wait()
        .for_element(Locator::Id("read-only"))
        .await
        .unwrap();
    let prefix = format!("/console/s/{}", st.station);
    assert_eq!(c.current_url().await.unwrap().path(), prefix);
    let name = c
        .find(Locator::Id("station-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "石桥镇社工站");
    click(&c, Locator::Id("tile-households")).await;
    wait_for_url(&c, "the county's household list", |u| {
        u == format!("{prefix}/households?")
    })
    .await;
    click(&c, Locator::LinkText("HH-000001")).await;
    wait_for_url(&c, "the county's case file", |u| {
        u == format!("{prefix}/households/{}?", st.contested)
    })
    .await;
    c.wait()
        .for_element(Locator::Id("assignment"))
        .await
        .unwrap();
    assert!(
        c.find(Locator::Css("form[action$='/assign']"))
            .await
            .is_err(),
        "no assignment form for a county account"
    );
    assert!(
        c.find(Locator::Id("nav-surveys")).await.is_err(),
        "a county account is not offered the station's work"
    );
    shot(&c, "10-county-case-file").await;
    click(&c, Locator::Id("logout")).await;
    wait_for_url(&c, "the login page", |u| u.starts_with("/console/login")).await;

    c.close().await.unwrap();
}
