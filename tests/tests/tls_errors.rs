//! A TLS failure is told apart from the other network failures by what failed, not by an
//! error's wording: a real TLS server on 127.0.0.1 whose certificate (made here) no phone
//! trusts, reached through the phones' TLS stack (rustls with the platform verifier).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use doorstep_core::*;
use doorstep_tests::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls;

/// A TLS server with a fresh self-signed certificate for 127.0.0.1 and `localhost`. Reports
/// how each handshake ended on its side (`true`: completed).
struct UntrustedTlsServer {
    addr: std::net::SocketAddr,
    handshakes: mpsc::UnboundedReceiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl UntrustedTlsServer {
    async fn start() -> UntrustedTlsServer {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let cert = made.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
        // The provider is named: the workspace builds rustls with both ring and aws-lc-rs.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, handshakes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, report) = (acceptor.clone(), report.clone());
                tokio::spawn(async move {
                    let _ = report.send(acceptor.accept(stream).await.is_ok());
                });
            }
        });
        UntrustedTlsServer {
            addr,
            handshakes,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

fn network_failure<T: std::fmt::Debug>(result: Result<T>) -> (NetworkFailure, String) {
    match result {
        Err(Error::Network { failure, detail }) => (failure, detail),
        other => panic!("not a network error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_failure_not_offline() {
    let mut tls = UntrustedTlsServer::start().await;
    let server = TestServer::start().await;
    let station = server.station("站");
    // Enrolled through the real server; syncs against the TLS server.
    let device = server.device(station, "A", &tls.url()).await;

    let (failure, detail) = network_failure(device.transport.sync(&device.store).await);
    assert_eq!(failure, NetworkFailure::Tls, "{detail}");
    let (failure, detail) = network_failure(transport::enroll(&tls.url(), "ABCD-EFGH").await);
    assert_eq!(failure, NetworkFailure::Tls, "{detail}");
    // The TLS server saw both handshakes start and fail: the failure was the certificate,
    // not a connection that never reached it.
    for _ in 0..2 {
        assert_eq!(tls.handshakes.recv().await, Some(false));
    }

    // The same address once nobody listens: refused, not TLS.
    let url = tls.url();
    tls.task.abort();
    let _ = tls.task.await;
    let (failure, detail) = network_failure(transport::enroll(&url, "ABCD-EFGH").await);
    assert_eq!(failure, NetworkFailure::ConnectionRefused, "{detail}");

    // And a malformed https address is not taken for TLS.
    let (failure, _) = network_failure(transport::HttpTransport::new(
        "https://",
        "t",
        Duration::from_secs(5),
    ));
    assert_eq!(failure, NetworkFailure::InvalidUrl);
    // The store was not touched: the device still syncs with the real server.
    let real = transport::HttpTransport::new(&server.url(), &device.token, Duration::from_secs(5))
        .unwrap();
    assert!(real.sync(&device.store).await.unwrap().complete);
}
