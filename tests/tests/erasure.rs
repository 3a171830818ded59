//! Erasing a household (issue 15, ADR 0016), with a real server on 127.0.0.1 and real
//! encrypted store files: planted personal data (a name, an 18-digit ID number, a note) is
//! found in the decrypted pages of the server's database and of every device before the
//! erasure, and in none of them after — nor in a backup made after, nor in a restored older
//! backup once the ledger is re-applied, nor in a new device's bootstrap. A device with
//! unsynced edits to the household is told they were discarded, and why.
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::ErasureReason;
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_tests::{pages, Device, TestServer};

const NAME: &str = "欧阳雪晴";
const ID_NUMBER: &str = "513422201508176028";
const NOTE: &str = "孩子手臂有淤青疑似被父亲殴打需上报";
const PLANTED: [&str; 3] = [NAME, ID_NUMBER, NOTE];
/// Text of another household, which must survive.
const KEPT: &str = "邻居王大爷独居";

fn plant(device: &Device) -> HouseholdId {
    let hh = device.new_household("HH-ERASE-1");
    let person = device
        .store
        .add_person(hh, &NewPerson::named(NAME, "女儿"))
        .unwrap();
    // Entered on its own (a small change: automerge compresses larger ones, where a byte
    // search could not find it before the erasure either).
    device
        .store
        .edit_person(hh, person, &PersonEdit::IdNumber(Some(ID_NUMBER.into())))
        .unwrap();
    let v = device.visit(hh);
    device
        .store
        .splice_section(hh, v, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    hh
}

fn keep(device: &Device) -> (HouseholdId, VisitId) {
    let hh = device.new_household("HH-KEEP-1");
    let v = device.visit(hh);
    device
        .store
        .splice_section(hh, v, Section::FamilySituation, 0, 0, KEPT)
        .unwrap();
    (hh, v)
}

fn planted_in(pages: &[Vec<u8>], what: &str) -> Vec<&'static str> {
    assert!(
        pages::decrypts(pages),
        "{what}: the pages did not decrypt (key or layout wrong: the search would mean nothing)"
    );
    pages::found(pages, &PLANTED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_household_leaves_no_byte_on_the_server_or_any_device() {
    let mut server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    // D holds the household, then stays offline until the server is restored.
    let d = server.device(station, "A04", &url).await;
    // Everyone bootstraps first, so the household reaches B and D as changes in the log:
    // a bootstrap's snapshot is stored compressed, where a byte search would not find the
    // ID number to begin with.
    for dev in [&a, &b, &d] {
        dev.sync().await;
    }
    let hh = plant(&a);
    let (kept, kept_visit) = keep(&a);
    a.sync().await;
    b.sync().await;
    d.sync().await;
    assert_eq!(b.store.household(hh).unwrap().persons[0].name, NAME);

    // Before: found where it was (so the searches below can fail).
    assert_eq!(planted_in(&server.pages(), "server"), PLANTED);
    assert_eq!(planted_in(&a.pages(), "device A"), PLANTED);
    assert_eq!(planted_in(&b.pages(), "device B"), PLANTED);
    let old_backup = server.dir.path().join("before.db");
    server.store.backup(&old_backup).unwrap();
    assert_eq!(
        planted_in(
            &pages::database(&std::fs::read(&old_backup).unwrap(), &server.key_bytes),
            "backup"
        ),
        PLANTED
    );

    // B edits the household offline; the station erases it meanwhile.
    b.store
        .edit_household(hh, &HouseholdEdit::AddTag("household.dibao".into()))
        .unwrap();
    b.store
        .edit_household(hh, &HouseholdEdit::Address("石桥村三组".into()))
        .unwrap();
    let record = server.erase(station, hh, ErasureReason::SubjectRequest);
    assert_eq!((record.doc, record.station), (hh, station));
    let db = server.dir.path().join("server.db");
    let after = pages::database(&std::fs::read(&db).unwrap(), &server.key_bytes);
    assert_eq!(planted_in(&after, "server after"), Vec::<&str>::new());
    let wal = pages::wal(
        &std::fs::read(db.with_extension("db-wal")).unwrap_or_default(),
        &server.key_bytes,
    );
    assert_eq!(
        pages::found(&wal, &PLANTED),
        Vec::<&str>::new(),
        "server WAL after"
    );
    let after_backup = server.dir.path().join("after.db");
    server.store.backup(&after_backup).unwrap();
    assert_eq!(
        planted_in(
            &pages::database(&std::fs::read(&after_backup).unwrap(), &server.key_bytes),
            "backup after"
        ),
        Vec::<&str>::new()
    );

    // A (nothing unsynced) learns of it from the log; B from its own push.
    let ra = a.sync().await;
    assert_eq!(ra.erased.len(), 1, "{ra:?}");
    assert_eq!(ra.erased[0].household, hh);
    assert_eq!(ra.erased[0].reason, ErasureReason::SubjectRequest);
    assert_eq!(ra.erased[0].discarded_changes, 0);
    let rb = b.sync().await;
    assert_eq!(rb.erased.len(), 1, "{rb:?}");
    assert_eq!(
        rb.erased[0].discarded_changes, 2,
        "B's two unsynced edits were discarded and it is told"
    );
    for d in [&a, &b] {
        assert!(matches!(d.store.household(hh), Err(Error::NotFound(_))));
        assert!(!d.store.household_ids().unwrap().contains(&hh));
        assert!(d.store.search(NAME, 10).unwrap().is_empty());
        assert_eq!(planted_in(&d.pages(), &d.label), Vec::<&str>::new());
        assert!(matches!(
            d.store.household_upload_status(hh).unwrap(),
            UploadStatus::Erased {
                reason: ErasureReason::SubjectRequest,
                ..
            }
        ));
        assert_eq!(d.store.erased_households().unwrap().len(), 1);
        // The other household is whole.
        assert_eq!(
            d.section_text(kept, kept_visit, Section::FamilySituation),
            KEPT
        );
        assert!(!d.store.search("王大爷", 10).unwrap().is_empty());
    }
    assert!(
        d_unsynced_is_empty(&b),
        "nothing of the erased household is left to push"
    );

    // A new device's bootstrap carries none of it.
    let c = server.device(station, "A03", &url).await;
    let rc = c.sync().await;
    assert!(
        rc.erased.is_empty(),
        "a device that never held it is told nothing"
    );
    assert!(c.store.household_ids().unwrap().contains(&kept));
    assert!(!c.store.household_ids().unwrap().contains(&hh));
    assert_eq!(planted_in(&c.pages(), "new device"), Vec::<&str>::new());

    // The old backup, restored: the ledger beside the database erases the household again
    // before any device is served; a device that still holds it is told.
    assert_eq!(planted_in(&d.pages(), "offline device"), PLANTED);
    server.restore_backup(&old_backup).await;
    let url = server.url();
    assert_eq!(
        planted_in(&server.pages(), "restored server"),
        Vec::<&str>::new()
    );
    let mut a = a;
    a.retarget(&url);
    a.sync().await;
    assert!(!a.store.household_ids().unwrap().contains(&hh));
    let mut d = d;
    d.retarget(&url);
    let rd = d.sync().await;
    assert!(rd.epoch_reset);
    assert_eq!(rd.erased.len(), 1, "{rd:?}");
    assert!(!d.store.household_ids().unwrap().contains(&hh));
    assert!(d.store.household_ids().unwrap().contains(&kept));
    assert_eq!(
        planted_in(&d.pages(), "device after restore"),
        Vec::<&str>::new()
    );
    assert_eq!(
        server.store.erasures(Some(station)).unwrap().len(),
        1,
        "the restored database holds the erasure again"
    );
    server.stop().await;
}

fn d_unsynced_is_empty(d: &Device) -> bool {
    d.store.unsynced_households().unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_households_closed_longer_than_the_period() {
    use doorstep_server::erasure::retention;
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let closed = a.new_household("HH-CLOSED");
    let reopened = a.new_household("HH-REOPENED");
    let active = a.new_household("HH-ACTIVE");
    for h in [closed, reopened] {
        a.store
            .edit_household(h, &HouseholdEdit::Status(HouseholdStatus::Closed))
            .unwrap();
    }
    a.store
        .edit_household(reopened, &HouseholdEdit::Status(HouseholdStatus::Active))
        .unwrap();
    a.sync().await;
    b.sync().await;
    let store = server.store.as_ref();
    let ledger = server.ledger();
    let year = 365 * 86_400_000;
    let now = doorstep_server::now_ms();
    assert!(
        retention(store, &ledger, Some(station), year, now, false)
            .unwrap()
            .is_empty(),
        "closed a moment ago: kept"
    );
    let later = now + year + 86_400_000;
    let listed = retention(store, &ledger, Some(station), year, later, true).unwrap();
    assert_eq!(
        listed.iter().map(|e| e.household).collect::<Vec<_>>(),
        [closed],
        "a dry run lists only the household still closed"
    );
    assert!(
        store.erasure(closed).unwrap().is_none(),
        "a dry run erases nothing"
    );
    let erased = retention(store, &ledger, None, year, later, false).unwrap();
    assert_eq!(erased, listed);
    let record = store.erasure(closed).unwrap().unwrap();
    assert_eq!(
        (record.reason, record.erased_by.as_str()),
        (ErasureReason::RetentionEnded, "retention")
    );
    assert_eq!(
        ledger
            .entries::<doorstep_server::erasure::LedgerEntry>()
            .unwrap()
            .len(),
        1,
        "through the ledger like any erasure"
    );
    let report = b.sync().await;
    assert_eq!(report.erased.len(), 1);
    assert_eq!(report.erased[0].reason, ErasureReason::RetentionEnded);
    let mut left = b.store.household_ids().unwrap();
    left.sort();
    let mut expected = vec![reopened, active];
    expected.sort();
    assert_eq!(left, expected);
    assert!(retention(store, &ledger, None, year, later, false)
        .unwrap()
        .is_empty());
    server.stop().await;
}
