//! Contact-card batches and leases made from the console, over HTTP against a real server on
//! 127.0.0.1 with real phones: the forms need the session's CSRF token; bad input, overlaps,
//! an unknown or revoked phone and a past expiry are refused with the reason on the page
//! and change nothing; a registered batch and a lease are in the station document, a phone
//! receives its lease at its next sync and issues from it, a returned lease stops it; every
//! action is in the access log with ids only.
#![allow(clippy::unwrap_used)]

mod console_support;

use console_support::client::Browser;
use console_support::*;
use doorstep_core::doc::station::{read_station, station_doc_id, StationCards};
use doorstep_core::{CardSerial, NewCard};
use doorstep_server::console::view::{self, Lang};
use doorstep_server::now_ms;
use doorstep_server::store::console::ConsoleStore;
use doorstep_server::store::ServerStore;

/// The station document's batches and leases as the server stores them.
fn station_cards(st: &Station) -> StationCards {
    match st.store.load_document(station_doc_id(st.station)).unwrap() {
        None => StationCards::default(),
        Some(stored) => {
            read_station(&doorstep_server::snapshot::load_stored(&stored).unwrap()).unwrap()
        }
    }
}

/// The page shows a refusal with these words (Chinese), and says nothing was changed.
fn refused_with(page: &str, key: &str) {
    let words = view::words(Lang::Zh);
    let error = page
        .split("id=\"card-error\" role=\"alert\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no refusal on the page: {page}"))
        .split("</p>")
        .next()
        .unwrap();
    assert!(error.contains(words[key]), "{key}: {error}");
    assert!(error.contains("未作任何修改"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_registers_a_batch_and_leases_cards_to_a_phone_from_the_console() {
    let st = station(false).await;
    let mut b = Browser::new(st.url());
    assert_eq!(b.login(LOGIN, PASSWORD).await.0, 303);
    let (status, page, _) = b.get("/console/cards").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"batch-form\""), "{page}");
    assert!(
        page.contains("id=\"lease-needs-batch\""),
        "no lease form before a batch: {page}"
    );
    let csrf = Browser::csrf_of(&page);
    let log_before = st.store.access_log(st.station, 1000).unwrap().len();
    let high_water = |st: &Station| st.store.high_water(st.station).unwrap();
    let unchanged = high_water(&st);

    // Without the session's CSRF token, or with a forged one, no form does anything.
    for path in [
        "/console/cards/batches",
        "/console/cards/leases",
        "/console/cards/return",
    ] {
        for token in [None, Some("forged")] {
            let mut fields = vec![("prefix", "HG"), ("first", "1"), ("last", "10")];
            if let Some(t) = token {
                fields.push(("csrf", t));
            }
            let (status, body, _) = b.post(path, form(&fields)).await;
            assert_eq!(status, 403, "{path} {token:?}: {body}");
        }
    }
    assert_eq!(high_water(&st), unchanged);
    assert_eq!(station_cards(&st), StationCards::default());

    // Bad input: the reason in Chinese on the page, what was typed kept, nothing written.
    for (prefix, first, last, status, why) in [
        ("H1", "1", "5000", 400, "card_err_prefix"),
        ("", "1", "5000", 400, "card_err_prefix"),
        ("ABCDEFGHI", "1", "5000", 400, "card_err_prefix"),
        ("HG", "0", "5000", 400, "card_err_number"),
        ("HG", "1", "1000000", 400, "card_err_number"),
        ("HG", "一", "5000", 400, "card_err_number"),
        ("HG", "-5", "5000", 400, "card_err_number"),
        ("HG", "5000", "1", 400, "card_err_reversed"),
    ] {
        let (s, page, _) = b
            .post(
                "/console/cards/batches",
                form(&[
                    ("csrf", &csrf),
                    ("prefix", prefix),
                    ("first", first),
                    ("last", last),
                ]),
            )
            .await;
        assert_eq!(s, status, "{prefix} {first} {last}: {page}");
        refused_with(&page, why);
        assert!(
            page.contains(&format!(
                "id=\"batch-first\" inputmode=\"numeric\" size=\"7\" required value=\"{first}\""
            )),
            "what was typed is kept: {page}"
        );
    }
    assert_eq!(high_water(&st), unchanged, "a refused form writes nothing");

    // A printed batch HG-000001 … HG-005000 (the prefix as typed, capitalised).
    let (status, _, set) = b
        .post(
            "/console/cards/batches",
            form(&[
                ("csrf", &csrf),
                ("prefix", " hg "),
                ("first", "1"),
                ("last", "005000"),
            ]),
        )
        .await;
    assert_eq!(status, 303, "{set:?}");
    assert!(
        set.iter()
            .any(|l| l == "location: /console/cards?done=batch"),
        "{set:?}"
    );
    let cards = station_cards(&st);
    assert_eq!(cards.batches.len(), 1);
    let hg = cards.batches[0].clone();
    assert_eq!((hg.prefix.as_str(), hg.first, hg.last), ("HG", 1, 5000));
    let (status, page, _) = b.get("/console/cards?done=batch").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"card-notice\""), "{page}");
    let row = page
        .split(&format!("id=\"batch-{}\"", hg.id))
        .nth(1)
        .unwrap();
    assert!(
        row.starts_with("><td>HG-000001 … HG-005000</td><td>5000</td><td>0</td><td>5000</td>"),
        "{row}"
    );

    // Batches of one prefix never overlap; another prefix may use the same numbers.
    let after_batch = high_water(&st);
    for (first, last) in [("4001", "6000"), ("5000", "5000"), ("1", "1")] {
        let (status, page, _) = b
            .post(
                "/console/cards/batches",
                form(&[
                    ("csrf", &csrf),
                    ("prefix", "HG"),
                    ("first", first),
                    ("last", last),
                ]),
            )
            .await;
        assert_eq!(status, 409, "{first}-{last}: {page}");
        refused_with(&page, "card_err_batch_overlap");
    }
    assert_eq!(high_water(&st), after_batch);
    assert_eq!(station_cards(&st).batches.len(), 1);
    let (status, _, _) = b
        .post(
            "/console/cards/batches",
            form(&[
                ("csrf", &csrf),
                ("prefix", "QF"),
                ("first", "1"),
                ("last", "5000"),
            ]),
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(station_cards(&st).batches.len(), 2);

    // The lease form offers the station's phones in use, each by its worker's label.
    let (_, w01, t01) = &st.devices[0];
    let (_, w02, t02) = &st.devices[1];
    let (_, w03, _) = &st.devices[2];
    let (status, page, _) = b.get("/console/cards").await;
    assert_eq!(status, 200);
    let select = page
        .split("id=\"lease-device\">")
        .nth(1)
        .unwrap()
        .split("</select>")
        .next()
        .unwrap();
    for (label, s, _) in &st.devices {
        assert!(
            select.contains(&format!(
                "value=\"{}\">{label} · {}",
                s.device(),
                view::device_label(s.device())
            )),
            "{label}: {select}"
        );
    }
    // A revoked phone is no longer offered, and a lease to it is refused.
    let (status, _, _) = b
        .post(
            "/console/devices/revoke",
            form(&[("csrf", &csrf), ("device", &w03.device().to_string())]),
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get("/console/cards").await;
    assert!(!page.contains(&format!("value=\"{}\"", w03.device())));

    let (hg_id, w01_device, w03_device, stranger) = (
        hg.id.to_string(),
        w01.device().to_string(),
        w03.device().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let (hg_id, w01_device, w03_device, stranger) = (
        hg_id.as_str(),
        w01_device.as_str(),
        w03_device.as_str(),
        stranger.as_str(),
    );
    let before_leases = high_water(&st);
    for (batch, device, first, last, expires, status, why) in [
        (
            hg_id,
            w03_device,
            "1",
            "100",
            "",
            400,
            "card_err_unknown_device",
        ),
        (
            hg_id,
            stranger,
            "1",
            "100",
            "",
            400,
            "card_err_unknown_device",
        ),
        (hg_id, "", "1", "100", "", 400, "card_err_unknown_device"),
        (
            stranger,
            w01_device,
            "1",
            "100",
            "",
            400,
            "card_err_unknown_batch",
        ),
        (
            hg_id,
            w01_device,
            "4990",
            "5010",
            "",
            400,
            "card_err_outside_batch",
        ),
        (hg_id, w01_device, "100", "1", "", 400, "card_err_reversed"),
        (hg_id, w01_device, "1", "x", "", 400, "card_err_number"),
        (
            hg_id,
            w01_device,
            "1",
            "100",
            "2020-01-01",
            400,
            "card_err_past_date",
        ),
        (
            hg_id,
            w01_device,
            "1",
            "100",
            "2027-02-30",
            400,
            "card_err_date",
        ),
        (hg_id, w01_device, "1", "100", "明年", 400, "card_err_date"),
    ] {
        let (s, page, _) = b
            .post(
                "/console/cards/leases",
                form(&[
                    ("csrf", &csrf),
                    ("batch", batch),
                    ("device", device),
                    ("first", first),
                    ("last", last),
                    ("expires", expires),
                ]),
            )
            .await;
        assert_eq!(s, status, "{why}: {page}");
        refused_with(&page, why);
    }
    assert_eq!(high_water(&st), before_leases);
    assert!(station_cards(&st).leases.is_empty());

    // HG-000001 … HG-000100 to W01's phone until the end of 2099.
    let (status, _, set) = b
        .post(
            "/console/cards/leases",
            form(&[
                ("csrf", &csrf),
                ("batch", hg_id),
                ("device", w01_device),
                ("first", "1"),
                ("last", "100"),
                ("expires", "2099-12-31"),
            ]),
        )
        .await;
    assert_eq!(status, 303, "{set:?}");
    assert!(set
        .iter()
        .any(|l| l == "location: /console/cards?done=lease"));
    let cards = station_cards(&st);
    assert_eq!(cards.leases.len(), 1);
    let lease = cards.leases[0].clone();
    assert_eq!(
        (lease.batch, lease.device, lease.first, lease.last),
        (hg.id, w01.device(), 1, 100)
    );
    assert_eq!(
        lease.expires.map(|d| d.to_string()).as_deref(),
        Some("2099-12-31")
    );
    // Leases of a batch never overlap unless returned.
    let after_lease = high_water(&st);
    let (status, page, _) = b
        .post(
            "/console/cards/leases",
            form(&[
                ("csrf", &csrf),
                ("batch", hg_id),
                ("device", &w02.device().to_string()),
                ("first", "50"),
                ("last", "150"),
                ("expires", ""),
            ]),
        )
        .await;
    assert_eq!(status, 409, "{page}");
    refused_with(&page, "card_err_lease_overlap");
    assert!(
        page.contains(&format!("<option value=\"{}\" selected>", w02.device())),
        "the chosen phone is kept: {page}"
    );
    assert_eq!(high_water(&st), after_lease);

    // The phone receives its lease at its next sync and hands out its first card.
    let today = doorstep_server::station_time::UtcOffset::BEIJING
        .date(now_ms())
        .unwrap();
    assert_eq!(w01.next_card_serial(today).unwrap(), None);
    t01.sync(w01).await.unwrap();
    let first = CardSerial::new("HG", 1).unwrap().to_string();
    assert_eq!(
        w01.next_card_serial(today).unwrap().as_deref(),
        Some(first.as_str())
    );
    assert_eq!(w01.card_stock(today, 10).unwrap().remaining, 100);
    let card = |serial: &str| NewCard {
        serial: serial.to_owned(),
        visit: None,
        person: None,
        replaces: None,
        outside_lease: false,
    };
    w01.issue_card(st.quiet, &card(&first), today).unwrap();
    t01.sync(w01).await.unwrap();
    t02.sync(w02).await.unwrap();
    assert_eq!(
        w02.next_card_serial(today).unwrap(),
        None,
        "the lease is W01's phone's only"
    );
    let (_, page, _) = b.get("/console/cards").await;
    let row = page
        .split(&format!("id=\"lease-{}\"", lease.id))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("<td>HG-000001 … HG-000100</td><td>W01</td>")
            && row.contains("2099-12-31")
            && row.contains("<td class=\"used\">1</td><td class=\"left\">99</td>"),
        "{row}"
    );
    // The dashboard's card tile counts what is left on active leases.
    let (_, dashboard, _) = b.get("/console").await;
    let tile = dashboard
        .split("id=\"tile-cards\"")
        .nth(1)
        .unwrap()
        .split("</a>")
        .next()
        .unwrap();
    assert!(
        tile.contains("<span class=\"n\">99</span>") && tile.contains("在用领用 1"),
        "{tile}"
    );
    // And the stock of each active lease: its range, holder, cards issued and left, in
    // Chinese and in English.
    let stock_row = |page: &str| {
        page.split(&format!("data-lease=\"{}\"", lease.id))
            .nth(1)
            .unwrap_or_else(|| panic!("no stock row for the lease: {page}"))
            .split("</tr>")
            .next()
            .unwrap()
            .to_owned()
    };
    let row = stock_row(&dashboard);
    assert!(
        row.contains("<td class=\"range\">HG-000001 … HG-000100</td><td class=\"holder\">W01</td>")
            && row.contains(
                "<td class=\"size\">100</td><td class=\"issued\">1</td><td class=\"left\">99</td>"
            ),
        "{row}"
    );
    assert!(dashboard.contains("各领用的联系卡库存"), "{dashboard}");
    b.get("/console/lang?to=en").await;
    let (_, english, _) = b.get("/console").await;
    assert!(english.contains(">Card stock per lease</h2>"), "{english}");
    assert_eq!(stock_row(&english), row);
    b.get("/console/lang?to=zh").await;

    // Returned: the phone stops handing out its cards after its next sync; a second return
    // and an unknown lease are refused.
    let (status, _, set) = b
        .post(
            "/console/cards/return",
            form(&[("csrf", &csrf), ("lease", &lease.id.to_string())]),
        )
        .await;
    assert_eq!(status, 303, "{set:?}");
    assert!(set
        .iter()
        .any(|l| l == "location: /console/cards?done=return"));
    assert!(station_cards(&st).leases[0].returned);
    let (_, dashboard, _) = b.get("/console").await;
    assert!(
        dashboard.contains("id=\"no-lease-stock\"") && !dashboard.contains("data-lease="),
        "a returned lease has no stock on the dashboard: {dashboard}"
    );
    let after_return = high_water(&st);
    let (status, page, _) = b
        .post(
            "/console/cards/return",
            form(&[("csrf", &csrf), ("lease", &lease.id.to_string())]),
        )
        .await;
    assert_eq!(status, 409, "{page}");
    refused_with(&page, "card_err_returned");
    for bad in [
        uuid::Uuid::now_v7().to_string(),
        "x".to_owned(),
        String::new(),
    ] {
        let (status, page, _) = b
            .post(
                "/console/cards/return",
                form(&[("csrf", &csrf), ("lease", &bad)]),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {page}");
        refused_with(&page, "card_err_unknown_lease");
    }
    assert_eq!(high_water(&st), after_return);
    t01.sync(w01).await.unwrap();
    assert_eq!(w01.next_card_serial(today).unwrap(), None);
    let second = CardSerial::new("HG", 2).unwrap().to_string();
    assert!(w01.issue_card(st.quiet, &card(&second), today).is_err());
    let (_, page, _) = b.get("/console/cards").await;
    let row = page
        .split(&format!("id=\"lease-{}\"", lease.id))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("已归还") && !row.contains("return-lease"),
        "{row}"
    );
    // Its range is free again: W02's phone may have it.
    let (status, _, _) = b
        .post(
            "/console/cards/leases",
            form(&[
                ("csrf", &csrf),
                ("batch", hg_id),
                ("device", &w02.device().to_string()),
                ("first", "2"),
                ("last", "100"),
                ("expires", ""),
            ]),
        )
        .await;
    assert_eq!(status, 303);
    t02.sync(w02).await.unwrap();
    assert_eq!(
        w02.next_card_serial(today).unwrap().as_deref(),
        Some(second.as_str())
    );

    // In English, a refusal is in English.
    assert_eq!(b.get("/console/lang?to=en").await.0, 303);
    let (status, page, _) = b
        .post(
            "/console/cards/batches",
            form(&[
                ("csrf", &csrf),
                ("prefix", "H1"),
                ("first", "1"),
                ("last", "2"),
            ]),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("The prefix is 1 to 8 letters (such as HG). Nothing was changed."),
        "{page}"
    );

    // The access log: each action once, with the id it made or changed; no prefixes, no
    // numbers; every refusal only as a view of the page.
    let log = st.store.access_log(st.station, 1000).unwrap();
    let new = &log[..log.len() - log_before];
    let actions: Vec<(&str, Option<&str>)> = new
        .iter()
        .filter(|e| e.what != "cards" && e.what != "dashboard")
        .map(|e| (e.what.as_str(), e.target.as_deref()))
        .collect();
    let cards = station_cards(&st);
    let qf = cards.batches.iter().find(|b| b.prefix == "QF").unwrap().id;
    let w02_lease = cards
        .leases
        .iter()
        .find(|l| l.device == w02.device())
        .unwrap()
        .id;
    let mut expected = [
        ("add_card_batch", hg.id.to_string()),
        ("add_card_batch", qf.to_string()),
        ("revoke_device", w03.device().to_string()),
        ("lease_cards", lease.id.to_string()),
        ("return_card_lease", lease.id.to_string()),
        ("lease_cards", w02_lease.to_string()),
    ];
    expected.reverse(); // newest first
    assert_eq!(
        actions,
        expected
            .iter()
            .map(|(w, t)| (*w, Some(t.as_str())))
            .collect::<Vec<_>>(),
        "{new:?}"
    );
    for e in new {
        let t = e.target.as_deref().unwrap_or("");
        assert!(
            t.is_empty() || uuid::Uuid::parse_str(t).is_ok(),
            "ids only: {e:?}"
        );
    }
}
