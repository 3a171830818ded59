//! Command-line flags for the HTTP edge (`serve` and `demo`): limits, timeouts, the metrics
//! listener, trusted proxies. See `docs/operations.md`, *The HTTP edge*.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::api::{
    ServerConfig, DEFAULT_CONNECTION_RESERVE, DEFAULT_ENROL_FAILURES_PER_MINUTE,
    DEFAULT_MAX_CONNECTIONS,
};

/// Where to serve `/metrics`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" | "none" => Ok(MetricsListen(None)),
            a => a
                .parse()
                .map(|a| MetricsListen(Some(a)))
                .map_err(|_| format!("expected ADDRESS:PORT or off, got {a:?}")),
        }
    }
}

/// The edge's flags.
#[derive(clap::Args, Clone, Debug)]
pub struct EdgeArgs {
    /// Where GET /metrics is served (ADDRESS:PORT, or `off`); keep it off the public
    /// address. Default: 127.0.0.1:9091 for `serve`, a free loopback port for `demo`.
    #[arg(long)]
    pub metrics_listen: Option<MetricsListen>,
    /// Connections served at once; more get the reserve (below).
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Connections over the limit still answered (GET /healthz: 200; the rest: 503 with
    /// Retry-After), one request each; a newer one closes the oldest.
    #[arg(long, default_value_t = DEFAULT_CONNECTION_RESERVE)]
    pub connection_reserve: usize,
    /// Seconds a client has to send a request head (and an idle connection is kept).
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a whole request body (then 408).
    #[arg(long, default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// Seconds the server spends on a request besides receiving its body (waiting for a
    /// slot, authenticating, working) before it answers 503.
    #[arg(long, default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Largest sync request body from an authenticated device, in MiB (then 413).
    #[arg(long, default_value_t = 32)]
    pub body_limit_mib: usize,
    /// Memory for large sync bodies (over 64 KiB) being received or worked on, all
    /// requests together, in MiB; a request waits for room (within its body timeout).
    #[arg(long, default_value_t = 256)]
    pub body_memory_mib: usize,
    /// Failed enrolments allowed per client address at once and per minute (then 429).
    #[arg(long, default_value_t = DEFAULT_ENROL_FAILURES_PER_MINUTE)]
    pub enrol_failures_per_minute: u32,
    /// Largest attachment accepted, in MiB (then 413 `too_large`).
    #[arg(long, default_value_t = 16)]
    pub blob_limit_mib: u64,
    /// Attachment bytes one device may have on the server, in MiB (then 413 `quota`).
    #[arg(long, default_value_t = 2048)]
    pub blob_quota_mib: u64,
    /// Delete partial attachment uploads untouched for this many days, at start and every
    /// 6 hours (0: never).
    #[arg(long, default_value_t = crate::blob_sweep::DEFAULT_PARTIAL_UPLOAD_DAYS)]
    pub partial_upload_days: u32,
    /// A reverse proxy (e.g. 127.0.0.1 for nginx on the same machine) whose
    /// X-Forwarded-For names the client; repeat for several. Default: none.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<IpAddr>,
}

impl EdgeArgs {
    /// Set these flags in `config`; `metrics` is the metrics address when the flag is absent.
    pub fn apply(&self, config: &mut ServerConfig, metrics: Option<SocketAddr>) {
        let per_minute = self.enrol_failures_per_minute.max(1);
        config.metrics_listen = self.metrics_listen.map_or(metrics, |m| m.0);
        config.max_connections = self.max_connections.max(1);
        config.connection_reserve = self.connection_reserve;
        config.header_timeout = Duration::from_secs(self.header_timeout_secs.max(1));
        config.body_timeout = Duration::from_secs(self.body_timeout_secs.max(1));
        config.request_timeout = Duration::from_secs(self.request_timeout_secs.max(1));
        config.body_limit = self.body_limit_mib.max(1).saturating_mul(1024 * 1024);
        config.body_memory = self.body_memory_mib.max(1).saturating_mul(1024 * 1024);
        config.enrol_burst = per_minute;
        config.enrol_refill = Duration::from_secs(60) / per_minute;
        config.trusted_proxies = self.trusted_proxies.clone();
        config.blob_limit = self.blob_limit_mib.max(1).saturating_mul(1024 * 1024);
        config.blob_quota = self.blob_quota_mib.saturating_mul(1024 * 1024);
        config.partial_upload_days = Some(self.partial_upload_days).filter(|d| *d > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_parses_an_address_or_off() {
        assert_eq!("off".parse::<MetricsListen>(), Ok(MetricsListen(None)));
        assert_eq!(
            "127.0.0.1:9091".parse::<MetricsListen>(),
            Ok(MetricsListen(Some(SocketAddr::from((
                [127, 0, 0, 1],
                9091
            )))))
        );
        assert!("9091".parse::<MetricsListen>().is_err());
    }
}
