//! The bundled transport tells an app what kind of network failure it met: a wrong address,
//! a name that does not resolve, a server that is down, TLS, a stalled link — each from a
//! real socket on 127.0.0.1 (or a reserved name), never from a mock.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use doorstep_core::*;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::*;

async fn failure_of(device: &Device, url: &str, timeout: Duration) -> (NetworkFailure, String) {
    // A malformed address is refused by `new`, before any request; the rest by `sync`.
    let result = match transport::HttpTransport::new(url, &device.token, timeout) {
        Ok(transport) => transport.sync(&device.store).await,
        Err(e) => Err(e),
    };
    match result {
        Err(Error::Network { failure, detail }) => (failure, detail),
        other => panic!("{url}: not a network error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_network_failure_is_told_apart() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let d = server.device(station, "A", &server.url()).await;
    let second = Duration::from_secs(5);

    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let url = format!("http://127.0.0.1:{port}");
    let (failure, detail) = failure_of(&d, &url, second).await;
    assert_eq!(failure, NetworkFailure::ConnectionRefused, "{detail}");
    assert_ne!(detail, "error sending request", "the cause is named");

    // `.invalid` never resolves (RFC 6761).
    let (failure, detail) = failure_of(&d, "http://doorstep-test.invalid", second).await;
    assert_eq!(failure, NetworkFailure::Dns, "{detail}");

    for bad in [
        "not a url",
        "http://",
        "http://[::1",
        "ftp://example.org",
        "127.0.0.1:8080",
    ] {
        let (failure, detail) = failure_of(&d, bad, second).await;
        assert_eq!(failure, NetworkFailure::InvalidUrl, "{bad}: {detail}");
    }

    // TLS to a server that speaks plain HTTP (or a build without TLS): a TLS failure.
    let url = format!("https://{}", server.addr);
    let (failure, detail) = failure_of(&d, &url, second).await;
    assert_eq!(failure, NetworkFailure::Tls, "{detail}");

    // A link that stalls past the timeout.
    let proxy = Proxy::start(server.addr).await;
    proxy.plan([Fault::Delay(Duration::from_secs(20))]);
    let started = Instant::now();
    let (failure, detail) = failure_of(&d, &proxy.url(), Duration::from_millis(300)).await;
    assert_eq!(failure, NetworkFailure::Timeout, "{detail}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Enrolment is classified the same way.
    match transport::enroll(&format!("http://127.0.0.1:{port}"), "ABCD-EFGH").await {
        Err(Error::Network { failure, .. }) => {
            assert_eq!(failure, NetworkFailure::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
    // And the store is untouched by all of it: the real server still syncs.
    assert!(d.sync().await.complete);
}

/// A phone that syncs again after a pause does not send its request on a connection the
/// server may be closing as idle (its keep-alive is its header timeout): such a request
/// fails with "connection closed" although nothing is wrong with the link. The proxy plays
/// the server closing the idle connection just as a request arrives on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_after_a_pause_does_not_use_a_connection_left_idle() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A", &proxy.url()).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;
    // Within one sync, rounds share their connection: a second round right away reuses it.
    a.new_household("HH-000002");
    proxy.plan([Fault::CloseIfReused]);
    let quick = a.try_sync().await;
    assert!(
        matches!(quick, Err(Error::Network { .. })),
        "a request at once goes on the kept connection: {quick:?}"
    );
    a.sync().await;
    // After a pause longer than the idle limit, a new connection.
    tokio::time::sleep(transport::IDLE_CONNECTION_LIMIT + Duration::from_millis(500)).await;
    let v = a.visit(hh);
    a.type_into(hh, v, Section::Concerns, "停了一会儿再同步。");
    proxy.plan([Fault::CloseIfReused]);
    let report = a.try_sync().await;
    assert!(
        report.as_ref().is_ok_and(|r| r.complete),
        "after the pause: {report:?}"
    );
    assert!(a.store.unsynced_households().unwrap().is_empty());
}
