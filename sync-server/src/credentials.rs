//! Device tokens and one-time enrolment codes. Only their SHA-256 hashes are stored.

use sha2::{Digest, Sha256};

use doorstep_core::{DeviceId, WorkerId};

use crate::store::{DeviceAuth, ServerStore, StoreResult};

/// How long an enrolment code stays valid.
pub const CODE_VALID_MS: i64 = 7 * 24 * 3600 * 1000;

/// Letters and digits that cannot be confused when read aloud or typed (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn random_bytes(n: usize) -> Vec<u8> {
    // UUID v4 comes from the operating system's CSPRNG (getrandom).
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new device token: 48 bytes from three UUID v4 (366 random bits), hex.
pub fn new_token() -> String {
    random_bytes(48)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new one-time code: 12 characters (about 59 bits), grouped XXXX-XXXX-XXXX.
pub fn new_code() -> String {
    let mut code = String::new();
    for (i, b) in random_bytes(12).iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char);
    }
    code
}

/// Normalise a code as typed (case, spaces) before hashing.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Enrol a new device for a worker: returns the device id and the one-time code to give to
/// the worker (shown once, stored hashed).
pub fn enroll_device<S: ServerStore>(
    store: &S,
    worker: WorkerId,
    now_ms: i64,
) -> StoreResult<(DeviceId, String)> {
    let code = new_code();
    let device = store.enroll_device(
        worker,
        &hash_secret(&normalise_code(&code)),
        now_ms + CODE_VALID_MS,
    )?;
    Ok((device, code))
}

/// Exchange a one-time code (as typed: spaces, dashes and case do not matter) for a new
/// device token: the device's credentials and the token to hand to it (shown once, stored
/// hashed); `None` if the code is unknown, used or expired.
pub fn redeem_code<S: ServerStore + ?Sized>(
    store: &S,
    code: &str,
    now_ms: i64,
) -> StoreResult<Option<(DeviceAuth, String)>> {
    let token = new_token();
    let auth = store.redeem_code(
        &hash_secret(&normalise_code(code)),
        &hash_secret(&token),
        now_ms,
    )?;
    Ok(auth.map(|a| (a, token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_tokens_are_random_and_well_formed() {
        let a = new_code();
        assert_eq!(a.len(), 14);
        assert_ne!(a, new_code());
        assert_eq!(new_token().len(), 96);
        assert_eq!(normalise_code(" abcd-efgh-jkmn "), "ABCDEFGHJKMN");
        assert_eq!(hash_secret("x"), hash_secret(" x "));
    }
}
