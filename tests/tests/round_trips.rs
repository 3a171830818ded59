//! Round trips against a real server: a pull takes the round trips its budget forces and no
//! more, and the transport chooses its budget from what it measured of the link (ADR 0039).

use std::time::Duration;

use doorstep_core::protocol::budget::{round_trips_forced, FIRST_BUDGET, MAX_BUDGET, MIN_BUDGET};
use doorstep_core::transport::HttpTransport;
use doorstep_core::*;
use doorstep_tests::*;

const HOUSEHOLDS: usize = 60;

/// A device enrolled at the server whose round trips may take two minutes (a debug server on
/// a loaded machine checks 60 households' changes in one request).
async fn patient(server: &TestServer, station: StationId, label: &str) -> Device {
    let mut d = server.device(station, label, &server.url()).await;
    d.transport = fresh(server, &d);
    d
}

/// A new transport for `d` with a two-minute timeout, on a connection of its own.
fn fresh(server: &TestServer, d: &Device) -> HttpTransport {
    HttpTransport::new(&server.url(), &d.token, Duration::from_secs(120))
        .expect("the test server's address is valid")
}

/// A station where A's households are on B's and C's phones, and then A writes a visit with
/// a note into each and pushes it. Returns the raw sizes of A's new changes (what B and C
/// will pull, in the budget's unit).
async fn station_with_a_week_to_pull() -> (TestServer, Device, Device, Vec<usize>) {
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = patient(&server, station, "A").await;
    let b = patient(&server, station, "B").await;
    let c = patient(&server, station, "C").await;
    let homes: Vec<HouseholdId> = (0..HOUSEHOLDS)
        .map(|i| a.new_household(&format!("HH-{i:06}")))
        .collect();
    assert!(a.sync().await.complete);
    assert!(b.sync().await.complete && c.sync().await.complete);
    let before: Vec<_> = homes
        .iter()
        .map(|h| a.store.heads(*h).expect("A holds its households"))
        .collect();
    for h in &homes {
        let v = a.visit(*h);
        a.type_into(
            *h,
            v,
            Section::FamilySituation,
            &"家庭情况，逐字记录。".repeat(6),
        );
    }
    // A fresh connection (see `the_budget_follows_the_measured_link`).
    let pushed = fresh(&server, &a)
        .sync(&a.store)
        .await
        .expect("A pushes its week");
    assert!(pushed.complete && pushed.pulled == 0, "{pushed:?}");
    let mut sizes = Vec::new();
    for (h, heads) in homes.iter().zip(&before) {
        sizes.extend(
            a.store
                .export_changes(*h, heads)
                .expect("A holds its households")
                .iter()
                .map(Vec::len),
        );
    }
    (server, b, c, sizes)
}

/// A pull of T bytes at budget B takes ceil(T / B) round trips, with no empty one at the
/// end; the same pull with a budget above T takes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_takes_the_round_trips_its_budget_forces_and_no_more() {
    let (_server, b, c, sizes) = station_with_a_week_to_pull().await;
    let total: usize = sizes.iter().sum();
    let largest = sizes.iter().copied().max().unwrap();
    // A page is cut before the change that would overflow it, so a full page holds more
    // than B minus the largest change. With T / B = 3.5 and changes under T / 28, exactly
    // four pages hold T, in whatever order the log has them.
    assert!(
        largest * 28 < total,
        "changes too large for the test: {largest} of {total}"
    );
    let budget = u32::try_from(total * 2 / 7).unwrap();
    assert!(
        budget >= MIN_BUDGET,
        "the server would raise {budget}: write more"
    );
    let forced = round_trips_forced(total as u64, budget);
    assert_eq!(forced, 4);

    let small = b.transport.clone().with_budget(budget);
    let report = small.sync(&b.store).await.unwrap();
    assert!(report.complete);
    assert_eq!(report.pulled, sizes.len(), "every change pulled once");
    assert_eq!(u64::from(report.round_trips), forced, "{report:?}");
    assert_eq!(report.budgets, vec![budget; 4]);
    assert_eq!(report.pulled_bytes, total as u64);

    let large = c.transport.clone().with_budget(MAX_BUDGET);
    let report = large.sync(&c.store).await.unwrap();
    assert_eq!((report.round_trips, report.pulled), (1, sizes.len()));
    assert_converged(&[&b, &c]);
}

/// The first sync asks for the conservative first budget; afterwards the budget is the
/// measured rate × the target (a zero target: the smallest budget, many round trips).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_follows_the_measured_link() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = patient(&server, station, "A").await;
    let mut homes = Vec::new();
    for i in 0..HOUSEHOLDS {
        let h = a.new_household(&format!("HH-{i:06}"));
        let v = a.visit(h);
        a.type_into(
            h,
            v,
            Section::FamilySituation,
            &"家庭情况，逐字记录。".repeat(6),
        );
        homes.push(h);
    }
    assert!(a.sync().await.complete);

    let b = patient(&server, station, "B").await;
    assert_eq!(b.transport.budget(), FIRST_BUDGET, "nothing measured yet");
    let boot = b.sync().await;
    assert_eq!(boot.budgets.first(), Some(&FIRST_BUDGET));
    let link = b.transport.link().lock().unwrap().clone();
    assert!(
        link.samples() >= 1,
        "the bootstrap was large enough to measure: {boot:?}"
    );
    assert_eq!(
        b.transport.budget(),
        link.budget(transport_target()),
        "rate × the default target"
    );

    // A zero target asks for the least the server grants: the next pull takes the round
    // trips that forces.
    let hurried = b.transport.clone().with_round_trip_target(Duration::ZERO);
    assert_eq!(hurried.budget(), MIN_BUDGET);
    let before: Vec<_> = homes
        .iter()
        .map(|h| (*h, a.store.heads(*h).unwrap()))
        .collect();
    for (h, _) in &before {
        a.store
            .edit_household(
                *h,
                &HouseholdEdit::Address("石桥村二组，河边第三户".repeat(8)),
            )
            .unwrap();
    }
    // A fresh connection: A's idle one may have been closed by the server meanwhile (its
    // keep-alive is 10 s), and a request racing that close fails.
    assert!(fresh(&server, &a).sync(&a.store).await.unwrap().complete);
    let total: usize = before
        .iter()
        .flat_map(|(h, heads)| a.store.export_changes(*h, heads).unwrap())
        .map(|c| c.len())
        .sum();
    let report = hurried.sync(&b.store).await.unwrap();
    assert!(report.complete);
    assert!(
        report.budgets.iter().all(|b| *b == MIN_BUDGET),
        "{report:?}"
    );
    assert!(
        u64::from(report.round_trips) >= round_trips_forced(total as u64, MIN_BUDGET)
            && report.round_trips > 1,
        "{total} B at {MIN_BUDGET} B: {report:?}"
    );
    assert_converged(&[&a, &b]);
}

fn transport_target() -> Duration {
    doorstep_core::protocol::budget::DEFAULT_ROUND_TRIP_TARGET
}
