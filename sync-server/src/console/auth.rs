//! Console accounts and sessions: Argon2id password hashes, session cookies stored as
//! SHA-256 hashes, one CSRF token per session, and login throttling per login name.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use doorstep_core::StationId;

use crate::credentials::{hash_secret, new_token};
use crate::store::console::{AccountId, Session};
use crate::store::{ServerStore, StoreError};

/// Name of the session cookie. The `__Host-` prefix would require HTTPS on every hop;
/// the console sits behind a TLS proxy (docs/operations.md), so the plain name is used and
/// the cookie is `Secure` unless the console is told it is served over plain HTTP.
pub const SESSION_COOKIE: &str = "doorstep_session";
/// How long a session lasts.
pub const SESSION_MS: i64 = 8 * 3600 * 1000;
/// Failed logins per login name allowed in `THROTTLE_WINDOW_MS` …
pub const MAX_FAILURES: u64 = 5;
/// … after which the login is refused (even with the right password) until the window
/// has passed.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Passwords shorter than this are refused when an account is made.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong login or password")]
    Wrong,
    #[error("too many failed logins: wait and try again")]
    Throttled,
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

/// Check a login; on success open a session. Failed attempts are counted per login name
/// (known or not), and past `MAX_FAILURES` in the window every attempt is refused.
pub fn login<S: ServerStore>(
    store: &S,
    login: &str,
    password: &str,
    now_ms: i64,
) -> Result<NewSession, AuthError> {
    let since = now_ms - THROTTLE_WINDOW_MS;
    if !valid_login(login) || password.len() > 1024 {
        return Err(AuthError::Wrong);
    }
    if store.login_failures(login, since)? >= MAX_FAILURES {
        return Err(AuthError::Throttled);
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
        store.login_failed(login, now_ms, since)?;
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
