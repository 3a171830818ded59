//! Sorting a failed request into what an app can act on ([`NetworkFailure`]): a mistyped
//! address, a name that does not resolve, a server that refuses, TLS, a stalled link, or
//! "offline, retry later". reqwest's own text for most of them is "error sending request";
//! the cause is further down its source chain, and is recognised by its type where the
//! type is known (an `io::Error`'s kind, the TLS library's error), by its text otherwise.

use std::error::Error as StdError;

use crate::error::{Error, NetworkFailure};

pub(super) fn transport_error(e: reqwest::Error) -> Error {
    let failure = network_failure(&e);
    // reqwest's messages name the URL and the failure, never a body; the URL is left out
    // and the causes added ("error sending request" alone says nothing).
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = StdError::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    Error::Network { failure, detail }
}

fn network_failure(e: &reqwest::Error) -> NetworkFailure {
    if e.is_builder() {
        return NetworkFailure::InvalidUrl;
    }
    if e.is_timeout() {
        return NetworkFailure::Timeout;
    }
    classify_causes(StdError::source(e))
}

/// Walk a failure's causes, outermost first.
fn classify_causes(mut source: Option<&(dyn StdError + 'static)>) -> NetworkFailure {
    while let Some(s) = source {
        if let Some(failure) = classify_typed(s) {
            return failure;
        }
        if let Some(failure) = classify_text(s) {
            return failure;
        }
        source = s.source();
    }
    NetworkFailure::Offline
}

/// A cause whose type says what happened.
fn classify_typed(e: &(dyn StdError + 'static)) -> Option<NetworkFailure> {
    if is_tls_error(e) {
        return Some(NetworkFailure::Tls);
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => return Some(NetworkFailure::ConnectionRefused),
        std::io::ErrorKind::TimedOut => return Some(NetworkFailure::Timeout),
        _ => {}
    }
    // An `io::Error` hides the error it wraps from `source()` (its text is that error's):
    // the TLS stream reports a failed handshake as `InvalidData` around the TLS error.
    let inner: &(dyn StdError + 'static) = io.get_ref()?;
    is_tls_error(inner).then_some(NetworkFailure::Tls)
}

/// The TLS library's own error type (rustls on phones, native-tls on desktop `https`).
fn is_tls_error(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "rustls")]
    if e.is::<rustls::Error>() {
        return true;
    }
    #[cfg(feature = "https")]
    if e.is::<native_tls::Error>() {
        return true;
    }
    let _ = e;
    false
}

/// A cause known only by its text (hyper's DNS error has no public type; a build without
/// TLS refuses an https:// address with a message).
fn classify_text(e: &(dyn StdError + 'static)) -> Option<NetworkFailure> {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("dns error") || text.contains("lookup address") {
        return Some(NetworkFailure::Dns);
    }
    if text.contains("scheme is not http") || text.contains("invalid url") {
        // An https:// address on a build without TLS (the `https` / `rustls` feature).
        return Some(NetworkFailure::Tls);
    }
    ["tls", "ssl", "certificate", "handshake", "corrupt message"]
        .iter()
        .any(|w| text.contains(w))
        .then_some(NetworkFailure::Tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error chain as hyper hands it over: a wrapper around an `io::Error`.
    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn of(io: std::io::Error) -> NetworkFailure {
        let chain = Wrapper(io);
        classify_causes(Some(&chain))
    }

    #[test]
    fn io_kinds_are_read_from_the_type() {
        use std::io::{Error as Io, ErrorKind};
        assert_eq!(
            of(Io::from(ErrorKind::ConnectionRefused)),
            NetworkFailure::ConnectionRefused
        );
        assert_eq!(of(Io::from(ErrorKind::TimedOut)), NetworkFailure::Timeout);
        assert_eq!(
            of(Io::from(ErrorKind::ConnectionReset)),
            NetworkFailure::Offline
        );
    }

    /// rustls errors whose text names no TLS word are still TLS failures: the type says so.
    #[cfg(feature = "rustls")]
    #[test]
    fn a_rustls_error_inside_an_io_error_is_tls_whatever_its_text() {
        use std::io::{Error as Io, ErrorKind};
        for tls in [
            rustls::Error::DecryptError,
            rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::IllegalMiddleboxChangeCipherSpec),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ] {
            let text = tls.to_string();
            assert_eq!(
                of(Io::new(ErrorKind::InvalidData, tls)),
                NetworkFailure::Tls,
                "{text}"
            );
        }
        // The same text without the type is not taken for TLS.
        let decrypt = rustls::Error::DecryptError.to_string();
        assert_eq!(
            of(Io::new(ErrorKind::InvalidData, decrypt)),
            NetworkFailure::Offline
        );
    }
}
