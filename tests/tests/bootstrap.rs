//! A new device on a station with history, interrupted bootstraps, and a server restored
//! from a backup (a new epoch).
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::Phase;
use doorstep_core::*;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_bootstraps_from_snapshots_and_resumes_after_interruption() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let mut households = Vec::new();
    for i in 0..30 {
        let hh = a.new_household(&format!("HH-{i:06}"));
        let v = a.visit(hh);
        // Many small edits: history a bootstrap must not replay.
        a.type_into(
            hh,
            v,
            Section::FamilySituation,
            &"家庭情况记录，逐字输入。".repeat(8),
        );
        households.push(hh);
    }
    a.sync().await;

    let proxy = Proxy::start(server.addr).await;
    let mut c = server.device(station, "C", &proxy.url()).await;
    c.transport = c.transport.clone().with_budget(16 * 1024);
    // First page arrives, the second response is lost.
    proxy.plan([Fault::Pass, Fault::DropResponse]);
    assert!(c.try_sync().await.is_err());
    let cursor = c.store.sync_cursor().unwrap();
    let Phase::Bootstrap { after: Some(_) } = cursor.phase else {
        panic!("not resumable: {cursor:?}")
    };
    let got_before = c.store.household_ids().unwrap().len();
    assert!(
        got_before > 0 && got_before < 30,
        "first page had {got_before} households"
    );
    let report = c.sync().await;
    assert_eq!(
        report.snapshots + got_before,
        30,
        "resumed, not restarted: {report:?}"
    );
    assert_eq!(report.pulled, 0, "no history replayed");
    assert_eq!(c.store.sync_cursor().unwrap().phase, Phase::Log);
    assert_converged(&[&a, &c]);
    // And it keeps syncing by log afterwards.
    a.store
        .edit_household(
            households[3],
            &HouseholdEdit::AddTag("household.dibao_marginal".into()),
        )
        .unwrap();
    a.sync().await;
    let r = c.sync().await;
    assert_eq!((r.pulled, r.snapshots), (1, 0));
    assert_converged(&[&a, &c]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restored_from_backup_gets_back_what_it_lost() {
    let mut server = TestServer::start().await;
    let station = server.station("站");
    let mut a = server.device(station, "A", &server.url()).await;
    let mut b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let v = a.visit(hh);
    a.type_into(hh, v, Section::Concerns, "备份之前。");
    a.sync().await;
    b.sync().await;
    let backup = server.dir.path().join("backup.db");
    server.store.backup(&backup).unwrap();

    // After the backup: both devices sync more work, including a new household.
    a.type_into(hh, v, Section::Concerns, "备份之后A写的。");
    let late = b.new_household("HH-000002");
    a.sync().await;
    b.sync().await;

    // Disaster: the server is restored from the backup, with a new epoch.
    server.restore_backup(&backup).await;
    a.retarget(&server.url());
    b.retarget(&server.url());

    let ra = a.sync().await;
    assert!(ra.epoch_reset);
    let rb = b.sync().await;
    assert!(rb.epoch_reset);
    a.sync().await;
    b.sync().await;
    assert_converged(&[&a, &b]);
    assert_server_has(&server, &a);
    assert_eq!(
        b.section_text(hh, v, Section::Concerns),
        "备份之前。备份之后A写的。"
    );
    assert!(
        a.store.household(late).is_ok(),
        "the household made after the backup came back"
    );
}
