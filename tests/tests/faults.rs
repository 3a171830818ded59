//! Sync through a faulty network and a crashing server: every scenario ends converged,
//! with nothing a device saved lost.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use doorstep_core::*;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::*;

async fn setup() -> (TestServer, Proxy, Device, Device, HouseholdId) {
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A", &proxy.url()).await;
    let b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;
    b.sync().await;
    (server, proxy, a, b, hh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_ends_in_convergence() {
    let faults = [
        Fault::DropResponse,
        Fault::TruncateResponse,
        Fault::DuplicateRequest,
        Fault::ResetBeforeForward,
        Fault::Delay(Duration::from_millis(300)),
    ];
    for fault in faults {
        let (server, proxy, a, b, hh) = setup().await;
        let v = a.visit(hh);
        a.type_into(
            hh,
            v,
            Section::Concerns,
            &format!("故障{fault:?}之前写的内容。"),
        );
        proxy.plan([fault]);
        let first = a.try_sync().await;
        match fault {
            Fault::DuplicateRequest | Fault::Delay(_) => {
                assert!(first.is_ok(), "{fault:?}: {first:?}")
            }
            _ => assert!(
                matches!(first, Err(Error::Network { .. })),
                "{fault:?}: {first:?}"
            ),
        }
        a.type_into(hh, v, Section::Concerns, "之后又写。");
        a.sync().await;
        b.sync().await;
        assert_converged(&[&a, &b]);
        assert_server_has(&server, &a);
        assert_eq!(
            b.section_text(hh, v, Section::Concerns),
            format!("故障{fault:?}之前写的内容。之后又写。")
        );
        assert!(
            a.store.unsynced_households().unwrap().is_empty(),
            "{fault:?}: outbox not empty"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_by_seed() {
    let seed: u64 = std::env::var("DOORSTEP_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261129);
    let steps: usize = std::env::var("DOORSTEP_FAULT_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (server, proxy, a, b, hh) = setup().await;
    let v = a.visit(hh);
    let mut expected = String::new();
    for step in 0..steps {
        let piece = format!("第{step}步。");
        a.type_into(hh, v, Section::FamilySituation, &piece);
        expected.push_str(&piece);
        let fault = match next() % 6 {
            0 => Fault::DropResponse,
            1 => Fault::TruncateResponse,
            2 => Fault::DuplicateRequest,
            3 => Fault::ResetBeforeForward,
            4 => Fault::Delay(Duration::from_millis(next() % 50)),
            _ => Fault::Pass,
        };
        proxy.plan([fault]);
        let _ = a.try_sync().await;
        if next() % 3 == 0 {
            b.sync().await;
        }
    }
    a.sync().await;
    b.sync().await;
    assert_converged(&[&a, &b]);
    assert_eq!(
        b.section_text(hh, v, Section::FamilySituation),
        expected,
        "seed {seed}"
    );
    assert_server_has(&server, &a);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_and_restart_mid_session() {
    let (mut server, proxy, a, mut b, hh) = setup().await;
    let v = a.visit(hh);
    a.type_into(hh, v, Section::AdviceGiven, "建议申请补助。");
    a.sync().await;
    a.type_into(hh, v, Section::AdviceGiven, "联系学校。");
    // The server dies with a request in flight, and comes back on the same data.
    proxy.plan([Fault::Delay(Duration::from_millis(500))]);
    let in_flight = tokio::spawn(async move {
        let r = a.try_sync().await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.crash_and_restart().await;
    proxy.set_upstream(server.addr);
    b.retarget(&server.url());
    let (a, _maybe_failed) = in_flight.await.unwrap();
    a.type_into(hh, v, Section::AdviceGiven, "下周回访。");
    a.sync().await;
    b.sync().await;
    assert_converged(&[&a, &b]);
    assert_server_has(&server, &a);
    assert_eq!(
        b.section_text(hh, v, Section::AdviceGiven),
        "建议申请补助。联系学校。下周回访。"
    );
    server.stop().await;
}
