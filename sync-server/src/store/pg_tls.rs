//! TLS for the PostgreSQL backend (rustls), honouring libpq's `sslmode`:
//!
//! | sslmode | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | not checked (checked against the CA if one is given) |
//! | `require` | always | not checked (checked against the CA if one is given, as libpq does) |
//! | `verify-ca` | always | signed by the CA |
//! | `verify-full` | always | signed by the CA **and** issued for the host connected to |
//!
//! The CA comes from `sslrootcert=PATH` in the connection string or from
//! `--database-ca-file`. `tokio-postgres` knows only disable / prefer / require, so
//! `sslmode` and `sslrootcert` are taken out of the string here and applied to the
//! connector.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{StoreError, StoreResult};

/// libpq's `sslmode` values that Doorstep supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Database(format!(
                    "sslmode={other} is not supported: use disable, prefer, require, verify-ca or \
                     verify-full"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A connection string with its TLS settings taken out.
#[derive(Debug)]
pub struct TlsSettings {
    /// The connection string for `tokio-postgres` (without `sslmode` / `sslrootcert`).
    pub conn: String,
    pub mode: SslMode,
    pub ca_file: Option<PathBuf>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Take `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…`) or a
/// `key=value` connection string; `ca_file` (the `--database-ca-file` flag) wins over
/// `sslrootcert`.
pub fn split_settings(conn: &str, ca_file: Option<&Path>) -> StoreResult<TlsSettings> {
    let mut mode = None;
    let mut root = None;
    let rest = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        match conn.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    match pair.split_once('=') {
                        Some(("sslmode", v)) => mode = Some(percent_decode(v)),
                        Some(("sslrootcert", v)) => root = Some(percent_decode(v)),
                        _ => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => conn.to_owned(),
        }
    } else {
        let mut kept = Vec::new();
        for word in conn.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.trim_matches('\'').to_owned()),
                Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_owned()),
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let mode = match mode {
        Some(m) => SslMode::parse(&m)?,
        None => SslMode::Prefer,
    };
    let ca_file = ca_file.map(Path::to_path_buf).or(root.map(PathBuf::from));
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && ca_file.is_none() {
        return Err(StoreError::Database(format!(
            "sslmode={} needs the CA that signed the database server's certificate: \
             --database-ca-file PATH (or sslrootcert=PATH in the URL)",
            mode.as_str()
        )));
    }
    Ok(TlsSettings {
        conn: rest,
        mode,
        ca_file,
    })
}

/// rustls with *ring*: no aws-lc C build. rustls deprecates it for lacking post-quantum key
/// exchange, which PostgreSQL servers linked with OpenSSL before 3.5 do not offer either
/// (ADR 0014).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_roots(path: &Path) -> StoreResult<RootCertStore> {
    let bad = |why: String| {
        StoreError::Database(format!("cannot read the CA file {}: {why}", path.display()))
    };
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
        n += 1;
    }
    if n == 0 {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(roots)
}

/// The connector for these settings, and the `sslmode` to give `tokio-postgres`.
pub fn connector(
    settings: &TlsSettings,
) -> StoreResult<(MakeRustlsConnect, ::postgres::config::SslMode)> {
    use ::postgres::config::SslMode as PgMode;
    let pg_mode = match settings.mode {
        SslMode::Disable => PgMode::Disable,
        SslMode::Prefer => PgMode::Prefer,
        _ => PgMode::Require,
    };
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS set-up: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match &settings.ca_file {
        Some(ca) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(load_roots(ca)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| StoreError::Database(format!("TLS set-up: {e}")))?;
            if settings.mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
        None => Arc::new(Unverified(provider)),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((MakeRustlsConnect::new(config), pg_mode))
}

/// `verify-ca`: the chain must lead to the CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a CA (libpq's behaviour): encrypted, but the server is
/// not authenticated (the handshake's signatures are still checked).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_are_taken_out_of_urls_and_key_value_strings() {
        let s = split_settings(
            "postgres://u@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
            None,
        )
        .expect("parse");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.conn, "postgres://u@h:5432/db?application_name=x");
        assert_eq!(s.ca_file, Some(PathBuf::from("/tmp/ca.pem")));

        let s = split_settings("postgres://u@h/db", None).expect("parse");
        assert_eq!(s.mode, SslMode::Prefer);
        assert_eq!(s.conn, "postgres://u@h/db");

        let s = split_settings("host=h user=u sslmode=require", None).expect("parse");
        assert_eq!(
            (s.mode, s.conn.as_str()),
            (SslMode::Require, "host=h user=u")
        );

        let flag = split_settings(
            "postgres://h/db?sslmode=verify-ca&sslrootcert=/a",
            Some(Path::new("/b")),
        )
        .expect("parse");
        assert_eq!(flag.ca_file, Some(PathBuf::from("/b")));

        assert!(split_settings("postgres://h/db?sslmode=verify-full", None).is_err());
        assert!(split_settings("postgres://h/db?sslmode=allow", None).is_err());
    }
}
