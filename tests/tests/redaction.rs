//! Redacting inside a household's history (issue 15, ADR 0026), with a real server on
//! 127.0.0.1 and real encrypted store files: a wrong ID number and a person who asked to be
//! removed leave the server's database, its WAL, every device and a new device's bootstrap,
//! while every other field, note and the household's other work stays on every device; a
//! device's unsynced edits are rebased onto the new generation and reach its colleagues;
//! a backup restored after the redaction does not bring the values back.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{pages, Device, TestServer};

const ID_NUMBER: &str = "513422201508176028";
const GRANDMA: &str = "欧阳秀英";
const PLANTED: [&str; 2] = [ID_NUMBER, GRANDMA];
const NOTE: &str = "孩子最近不愿上学";

fn found(pages_: &[Vec<u8>], what: &str) -> Vec<&'static str> {
    assert!(pages::decrypts(pages_), "{what}: the pages did not decrypt");
    pages::found(pages_, &PLANTED)
}

/// The server's copy of the household, decoded (the stored generation is compressed: a byte
/// search of the file alone could not find what it holds).
fn server_copy_holds(server: &TestServer, hh: HouseholdId) -> Vec<&'static str> {
    let stored = server.store.load_document(hh).unwrap().unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    let raw = doc.save_nocompress();
    PLANTED
        .into_iter()
        .filter(|p| raw.windows(p.len()).any(|w| w == p.as_bytes()))
        .collect()
}

fn converged(devices: &[&Device], hh: HouseholdId) {
    let mut heads: Vec<Vec<automerge::ChangeHash>> = devices
        .iter()
        .map(|d| {
            let mut h = d.store.heads(hh).unwrap();
            h.sort();
            h
        })
        .collect();
    heads.dedup();
    assert_eq!(heads.len(), 1, "the devices hold different copies");
    let first = devices[0].store.household(hh).unwrap();
    for d in &devices[1..] {
        assert_eq!(d.store.household(hh).unwrap(), first, "{}", d.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_leaves_no_byte_and_keeps_everything_else_and_every_unsynced_edit() {
    let mut server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    // D will miss part of what the server redacts from.
    let d = server.device(station, "A04", &url).await;
    for dev in [&a, &b, &d] {
        dev.sync().await;
    }
    let hh = a.new_household("HH-REDACT-1");
    let child = a
        .store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    // Entered on their own (small changes: automerge compresses larger ones, where a byte
    // search could not find them before the redaction either).
    a.store
        .edit_person(hh, child, &PersonEdit::IdNumber(Some(ID_NUMBER.into())))
        .unwrap();
    let grandma = a
        .store
        .add_person(hh, &NewPerson::named(GRANDMA, "祖母"))
        .unwrap();
    let v = a.visit(hh);
    a.store
        .splice_section(hh, v, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    a.sync().await;
    b.sync().await;
    d.sync().await;
    assert_eq!(found(&server.pages(), "server"), PLANTED, "control");
    // A writes a little more that D never pulls; D types offline into the family section.
    a.store
        .splice_section(hh, v, Section::FamilySituation, 0, 0, "祖孙二人")
        .unwrap();
    a.sync().await;
    b.sync().await;
    d.store
        .splice_section(hh, v, Section::AdviceGiven, 0, 0, "建议申请助学金")
        .unwrap();
    assert_eq!(found(&b.pages(), "B"), PLANTED, "control");
    let before_backup = server.dir.path().join("before.db");
    server.store.backup(&before_backup).unwrap();

    // B, offline: types into the notes, corrects the address, edits the grandmother.
    b.store
        .splice_section(hh, v, Section::Concerns, 0, 0, "【B】")
        .unwrap();
    b.store
        .edit_household(hh, &HouseholdEdit::Address("石桥村四组3号".into()))
        .unwrap();
    b.store
        .edit_person(hh, grandma, &PersonEdit::Relation("外祖母".into()))
        .unwrap();

    let notice = server.redact(
        station,
        hh,
        &[
            &format!("person/{child}/id_number"),
            &format!("person/{grandma}"),
        ],
    );
    assert_eq!(notice.generation, 1);
    assert_eq!(server_copy_holds(&server, hh), Vec::<&str>::new());
    assert_eq!(found(&server.pages(), "server after"), Vec::<&str>::new());

    // A holds exactly what the server redacted from: it computes the generation itself.
    let ra = a.sync().await;
    assert_eq!(ra.redacted.len(), 1, "{ra:?}");
    assert!(ra.redacted[0].witnessed);
    assert_eq!(ra.redacted[0].discarded_edits, 0);
    assert_eq!(found(&a.pages(), "A after"), Vec::<&str>::new());
    let h = a.store.household(hh).unwrap();
    assert_eq!(h.persons.len(), 1);
    assert_eq!(h.persons[0].id_number, None);
    assert_eq!(h.persons[0].name, "王小明");
    assert_eq!(h.visits[0].section(Section::Concerns), NOTE);

    // B's edits survive, rebased; the one on the removed person goes and B is told.
    let rb = b.sync().await;
    assert_eq!(rb.redacted.len(), 1, "{rb:?}");
    assert!(rb.redacted[0].witnessed);
    assert_eq!(rb.redacted[0].discarded_edits, 1, "{rb:?}");
    assert!(
        b.store.unsynced_households().unwrap().is_empty(),
        "pushed: {:?} {:?}",
        b.store.refused_households().unwrap(),
        b.store.quarantined().unwrap()
    );
    assert_eq!(found(&b.pages(), "B after"), Vec::<&str>::new());
    a.sync().await;
    let h = a.store.household(hh).unwrap();
    assert_eq!(h.address, "石桥村四组3号");
    assert_eq!(
        h.visits[0].section(Section::Concerns),
        format!("【B】{NOTE}")
    );

    // D lacked part of what was redacted from: it takes the server's generation and keeps
    // its own edit on it.
    let rd = d.sync().await;
    assert_eq!(rd.redacted.len(), 1, "{rd:?}");
    assert!(!rd.redacted[0].witnessed);
    assert_eq!(rd.redacted[0].discarded_edits, 0);
    assert!(d.store.unsynced_households().unwrap().is_empty());
    assert_eq!(found(&d.pages(), "D after"), Vec::<&str>::new());
    a.sync().await;
    b.sync().await;
    d.sync().await;
    assert_eq!(
        a.section_text(hh, v, Section::AdviceGiven),
        "建议申请助学金"
    );
    assert_eq!(d.section_text(hh, v, Section::FamilySituation), "祖孙二人");

    // A new device's bootstrap holds the generation and B's edits, and none of the values.
    let c = server.device(station, "A03", &url).await;
    let rc = c.sync().await;
    assert!(
        rc.redacted.is_empty(),
        "a device that never held it is told nothing"
    );
    assert_eq!(found(&c.pages(), "C"), Vec::<&str>::new());
    converged(&[&a, &b, &c, &d], hh);

    // Typing goes on as before.
    b.store
        .splice_section(hh, v, Section::Concerns, 0, 0, "【再】")
        .unwrap();
    b.sync().await;
    a.sync().await;
    c.sync().await;
    d.sync().await;
    converged(&[&a, &b, &c, &d], hh);

    // The backup from before, restored: the ledger redacts again before any device is
    // served, to the same generation (the backup held what it was made from), and the
    // devices hand back what the backup lacks.
    assert_eq!(
        found(
            &pages::database(&std::fs::read(&before_backup).unwrap(), &server.key_bytes),
            "old backup"
        ),
        PLANTED
    );
    server.restore_backup(&before_backup).await;
    let url = server.url();
    assert_eq!(server_copy_holds(&server, hh), Vec::<&str>::new());
    assert_eq!(found(&server.pages(), "restored"), Vec::<&str>::new());
    // (C was enrolled after the backup: the restored server does not know it.)
    let (mut a, mut b) = (a, b);
    for d in [&mut a, &mut b] {
        d.retarget(&url);
        let r = d.sync().await;
        assert!(r.epoch_reset);
        assert!(r.redacted.is_empty(), "the same generation: {r:?}");
    }
    for d in [&a, &b] {
        d.sync().await;
    }
    converged(&[&a, &b], hh);
    drop((c, d));
    assert!(a.store.unsynced_households().unwrap().is_empty());
    assert!(a.store.household(hh).unwrap().visits[0]
        .section(Section::Concerns)
        .starts_with("【再】【B】"));
    server.stop().await;
}

/// The per-visit upload status after a rebase (ADR 0034): the rows named changes of the old
/// history, which the device no longer has. A visit the device typed into offline becomes
/// uploaded once its rebased edits are acknowledged (not pending for good); a visit the
/// redaction removed is no longer a visit (not pending for good either); a visit uploaded
/// before stays uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visit_upload_status_follows_the_rebase() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let hh = a.new_household("HH-REDACT-2");
    let child = a
        .store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    a.store
        .edit_person(hh, child, &PersonEdit::IdNumber(Some(ID_NUMBER.into())))
        .unwrap();
    let kept = a.visit(hh);
    let removed = a.visit(hh);
    let earlier = a.visit(hh);
    a.sync().await;
    b.sync().await;
    b.store
        .splice_section(hh, earlier, Section::Concerns, 0, 0, "上次")
        .unwrap();
    b.sync().await;
    let uploaded_before = b.store.visit_upload_status(hh, earlier).unwrap();
    assert!(
        matches!(uploaded_before, UploadStatus::Uploaded { at: Some(_) }),
        "{uploaded_before:?}"
    );
    // B, offline: types into two visits, one of which the station removes.
    b.store
        .splice_section(hh, kept, Section::AdviceGiven, 0, 0, "建议申请助学金")
        .unwrap();
    b.store
        .splice_section(hh, removed, Section::Concerns, 0, 0, "写错了孩子")
        .unwrap();
    for v in [kept, removed] {
        assert_eq!(
            b.store.visit_upload_status(hh, v).unwrap(),
            UploadStatus::Pending
        );
    }
    server.redact(
        station,
        hh,
        &[
            &format!("person/{child}/id_number"),
            &format!("visit/{removed}"),
        ],
    );
    let rb = b.sync().await;
    assert_eq!(rb.redacted.len(), 1, "{rb:?}");
    // The text typed into the removed visit (and the visit's list of who typed).
    assert!(rb.redacted[0].discarded_edits >= 1, "{rb:?}");
    assert!(b.store.unsynced_households().unwrap().is_empty());
    let kept_status = b.store.visit_upload_status(hh, kept).unwrap();
    assert!(
        matches!(kept_status, UploadStatus::Uploaded { at: Some(_) }),
        "the rebased edit was acknowledged: {kept_status:?}"
    );
    assert!(
        matches!(
            b.store.visit_upload_status(hh, removed),
            Err(Error::NotFound(_))
        ),
        "{:?}",
        b.store.visit_upload_status(hh, removed)
    );
    assert_eq!(
        b.store.visit_upload_status(hh, earlier).unwrap(),
        uploaded_before
    );
    assert!(matches!(
        b.store.household_upload_status(hh).unwrap(),
        UploadStatus::Uploaded { .. }
    ));
    a.sync().await;
    assert_eq!(
        a.section_text(hh, kept, Section::AdviceGiven),
        "建议申请助学金"
    );
    server.stop().await;
}

/// A phone that skipped a generation (docs/reliability.md, finding 13): it pushed a note
/// the server held but never heard the answer, the station redacted the note and then
/// something else, and the phone met the second generation only. The second notice's clock
/// names the first generation's actors, not the phone's: without the first one's clock,
/// carried in the second notice, the phone took the note for its own unsynced typing and
/// wrote it back into the emptied text, and the server's copy held it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_skipped_a_generation_writes_nothing_redacted_back() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A01", &proxy.url()).await;
    let hh = a.new_household("HH-REDACT-3");
    let v = a.visit(hh);
    a.sync().await;
    // The note reaches the server; the phone never hears so.
    a.type_into(hh, v, Section::Concerns, NOTE);
    proxy.plan([Fault::DropResponse]);
    assert!(a.try_sync().await.is_err());
    // Offline, the phone writes on: this edit is its own and must survive both generations.
    a.type_into(hh, v, Section::AdviceGiven, "建议申请助学金");
    let first = server.redact(station, hh, &[&format!("visit/{v}/concerns")]);
    let second = server.redact(station, hh, &[&format!("visit/{v}/family_situation")]);
    assert_eq!(second.generation, 2);
    // The second notice carries the first's clock: what the server held of the phone's copy.
    assert_eq!(second.clock_of(1), Some(&first.clock[..]));
    let report = a.sync().await;
    assert_eq!(report.redacted.len(), 1, "{report:?}");
    assert_eq!(report.redacted[0].generation, 2);
    assert!(
        !report.redacted[0].witnessed,
        "it lacked the first generation"
    );
    a.sync().await;
    assert!(a.store.unsynced_households().unwrap().is_empty());
    assert_eq!(a.section_text(hh, v, Section::Concerns), "");
    assert_eq!(
        a.section_text(hh, v, Section::AdviceGiven),
        "建议申请助学金"
    );
    let stored = server.store.load_document(hh).unwrap().unwrap();
    let raw = doorstep_server::snapshot::load_stored(&stored)
        .unwrap()
        .save_nocompress();
    assert!(
        !raw.windows(NOTE.len()).any(|w| w == NOTE.as_bytes()),
        "the redacted note is back on the server"
    );
    assert!(
        raw.windows("建议申请助学金".len())
            .any(|w| w == "建议申请助学金".as_bytes()),
        "the phone's own edit reached the server"
    );
    server.stop().await;
}
