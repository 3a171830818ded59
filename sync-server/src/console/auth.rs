//! Console accounts and sessions: Argon2id password hashes, session cookies stored as
//! SHA-256 hashes, one CSRF token per session, and login throttling per login and client
//! address, per client address, and per login (ADR 0028).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use doorstep_core::StationId;

use crate::credentials::{hash_secret, new_token};
use std::net::{IpAddr, Ipv6Addr};

use crate::store::console::{AccountId, LoginFailures, Session};
use crate::store::{ServerStore, StoreError};

/// Name of the session cookie. The `__Host-` prefix would require HTTPS on every hop;
/// the console sits behind a TLS proxy (docs/operations.md), so the plain name is used and
/// the cookie is `Secure` unless the console is told it is served over plain HTTP.
pub const SESSION_COOKIE: &str = "doorstep_session";
/// How long a session lasts.
pub const SESSION_MS: i64 = 8 * 3600 * 1000;
/// Failed logins of one login name from one client allowed in `THROTTLE_WINDOW_MS` …
pub const MAX_FAILURES: u64 = 5;
/// … failed logins from one client, of any login names (guessing across accounts) …
pub const MAX_CLIENT_FAILURES: u64 = 20;
/// … and failed logins of one login name from all clients together (guessing from many
/// addresses: the bound on online guessing, and the price of it — an attacker with more
/// than `MAX_LOGIN_FAILURES / MAX_FAILURES` addresses can still lock a login: ADR 0028) …
pub const MAX_LOGIN_FAILURES: u64 = 100;
/// … after which such attempts are refused (even with the right password) until the
/// window has passed. A login throttled for one client still works from another.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Passwords shorter than this are refused when an account is made.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong login or password")]
    Wrong,
    #[error("too many failed logins: wait and try again")]
    Throttled(Throttle),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("a login is 1 to 64 letters, digits, '.', '_' or '-'")]
    BadLogin,
    #[error("a county account reads at least one station")]
    NoStation,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hashing,
}

/// Whether a login name is acceptable (ASCII, short, no spaces).
pub fn valid_login(login: &str) -> bool {
    (1..=64).contains(&login.len())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An Argon2id hash (PHC string) of a password, with a random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| AuthError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| AuthError::Hashing)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hashing)
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Create a console account for a station (the admin CLI's `account add`).
pub fn add_account<S: ServerStore>(
    store: &S,
    station: StationId,
    login: &str,
    password: &str,
    now_ms: i64,
) -> Result<AccountId, AuthError> {
    if !valid_login(login) {
        return Err(AuthError::BadLogin);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword);
    }
    let hash = hash_password(password)?;
    Ok(store.add_account(station, login, &hash, now_ms)?)
}

/// Create a county console account (ADR 0020) that reads `stations` (the admin CLI's
/// `account add-county`); at least one station.
pub fn add_county_account<S: ServerStore>(
    store: &S,
    login: &str,
    password: &str,
    stations: &[StationId],
    now_ms: i64,
) -> Result<AccountId, AuthError> {
    if !valid_login(login) {
        return Err(AuthError::BadLogin);
    }
    if stations.is_empty() {
        return Err(AuthError::NoStation);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword);
    }
    let hash = hash_password(password)?;
    Ok(store.add_county_account(login, &hash, stations, now_ms)?)
}

/// A new session: the cookie value (given to the browser only) and its CSRF token.
#[derive(Debug)]
pub struct NewSession {
    pub cookie: String,
    pub session: Session,
}

/// Which limit refused a login (logged; never the login name or the address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// This login from this client.
    LoginFromClient,
    /// This client, whatever login it tries.
    Client,
    /// This login, from every client.
    Login,
}

impl Throttle {
    pub fn as_str(self) -> &'static str {
        match self {
            Throttle::LoginFromClient => "login_from_client",
            Throttle::Client => "client",
            Throttle::Login => "login",
        }
    }

    fn of(f: &LoginFailures) -> Option<Throttle> {
        if f.client >= MAX_CLIENT_FAILURES {
            Some(Throttle::Client)
        } else if f.login_from_client >= MAX_FAILURES {
            Some(Throttle::LoginFromClient)
        } else if f.login >= MAX_LOGIN_FAILURES {
            Some(Throttle::Login)
        } else {
            None
        }
    }
}

/// The key failed logins are counted under for a client address: the address, an IPv6
/// one by its /64 (what one subscriber is usually given), an IPv4-mapped one as IPv4.
pub fn client_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// A short tag of a client key for the server log: repeated failures from one client can be
/// told apart from many clients' without the log holding an address. Salted with a random
/// value made once per process (an unsalted hash of an IPv4 address is reversed by trying
/// them all), so tags compare within one server's run only.
pub fn client_tag(client: &str) -> String {
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let salt = SALT.get_or_init(new_token);
    hash_secret(&format!("{salt}:{client}"))[..8].to_owned()
}

/// Check a login from `client` (a [`client_key`]); on success open a session. Failed
/// attempts are counted per login name (known or not) and client; past the limits above,
/// attempts are refused (ADR 0028).
pub fn login<S: ServerStore>(
    store: &S,
    login: &str,
    password: &str,
    client: &str,
    now_ms: i64,
) -> Result<NewSession, AuthError> {
    let since = now_ms - THROTTLE_WINDOW_MS;
    if !valid_login(login) || password.len() > 1024 {
        return Err(AuthError::Wrong);
    }
    if let Some(t) = Throttle::of(&store.login_failures(login, client, since)?) {
        return Err(AuthError::Throttled(t));
    }
    let account = store.account_by_login(login)?;
    let ok = match &account {
        Some(a) => !a.disabled && verify_password(password, &a.password_hash),
        None => {
            // As slow as a real check, so timing does not tell which logins exist.
            let _ = hash_password(password);
            false
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        store.login_failed(login, client, now_ms, since)?;
        return Err(AuthError::Wrong);
    };
    let cookie = new_token();
    let csrf = new_token();
    let expires_at = now_ms + SESSION_MS;
    store.create_session(&hash_secret(&cookie), account.id, &csrf, now_ms, expires_at)?;
    Ok(NewSession {
        cookie,
        session: Session {
            account,
            csrf,
            expires_at,
        },
    })
}

/// The live session of a cookie value.
pub fn session<S: ServerStore>(
    store: &S,
    cookie: &str,
    now_ms: i64,
) -> Result<Option<Session>, StoreError> {
    if cookie.is_empty() || cookie.len() > 256 {
        return Ok(None);
    }
    Ok(store
        .session(&hash_secret(cookie), now_ms)?
        .filter(|s| !s.account.disabled))
}

/// End a session.
pub fn logout<S: ServerStore>(store: &S, cookie: &str) -> Result<(), StoreError> {
    store.delete_session(&hash_secret(cookie))
}

/// Compare two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_throttles_on_its_own() {
        let f = |login_from_client, client, login| LoginFailures {
            login_from_client,
            client,
            login,
        };
        assert_eq!(Throttle::of(&f(4, 19, 99)), None);
        assert_eq!(Throttle::of(&f(5, 5, 5)), Some(Throttle::LoginFromClient));
        assert_eq!(Throttle::of(&f(0, 20, 0)), Some(Throttle::Client));
        // Many addresses guessing one login: refused from a fresh address too.
        assert_eq!(Throttle::of(&f(0, 0, 100)), Some(Throttle::Login));
    }

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("2001:db8:1:2::5"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::9"), key("2001:db8:1:2::5"));
        assert_ne!(key("2001:db8:1:3::5"), key("2001:db8:1:2::5"));
        let tag = client_tag(&key("192.0.2.1"));
        assert_eq!(tag.len(), 8);
        assert!(!tag.contains("192"));
        assert_eq!(tag, client_tag("192.0.2.1"), "stable within a run");
    }
}
