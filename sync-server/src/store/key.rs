//! The key of the server's SQLite database (ADR 0014): 256 random bits, given to SQLCipher
//! as a raw key (no key derivation, as on the devices: ADR 0003), read from a file of mode
//! 0600 or from an environment variable. Its `Debug` output is redacted and no message
//! ever shows any part of it.

use std::fmt;
use std::io::Write;
use std::path::Path;

/// Why a key could not be read or written. Messages name the file or variable, never the
/// key's contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {why}")]
    Read { path: String, why: String },
    #[error(
        "key file {path} is readable or writable by others (mode {mode:04o}): it must be 0600 or \
         stricter, owned by the user that runs doorstep-server (chmod 600 {path})"
    )]
    Permissions { path: String, mode: u32 },
    #[error("{what} must hold 64 hexadecimal digits (a 256-bit key); it holds something else")]
    Format { what: String },
    #[error("environment variable {name} is not set (named by --key-env)")]
    EnvMissing { name: String },
    #[error("cannot write key file {path}: {why}")]
    Write { path: String, why: String },
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
}

/// A 256-bit key of the server's database or of a backup.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey([u8; 32]);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

impl ServerKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(ServerKey(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ServerKey(bytes)
    }

    /// 64 hex digits (surrounding whitespace ignored); `what` names the source in errors.
    pub fn from_hex(text: &str, what: &str) -> Result<Self, KeyError> {
        let text = text.trim().as_bytes();
        let bad = || KeyError::Format { what: what.into() };
        if text.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            bytes[i] = (hi * 16 + lo) as u8;
        }
        Ok(ServerKey(bytes))
    }

    /// Read a key file: refused unless only its owner may read or write it (mode 0600 or
    /// 0400), since anyone who can read it can read every child's file on the server.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| KeyError::Read {
            path: shown.clone(),
            why: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(KeyError::Read {
                path: shown,
                why: "not a regular file".into(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions { path: shown, mode });
            }
        }
        if meta.len() > 1024 {
            return Err(KeyError::Format {
                what: format!("key file {shown}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: shown.clone(),
            why: e.to_string(),
        })?;
        Self::from_hex(&text, &format!("key file {shown}"))
    }

    /// Read a key from the environment variable `name` (64 hex digits).
    pub fn from_env(name: &str) -> Result<Self, KeyError> {
        let text = std::env::var(name).map_err(|_| KeyError::EnvMissing { name: name.into() })?;
        Self::from_hex(&text, &format!("environment variable {name}"))
    }

    /// Write the key to a new file of mode 0600 (refused if the file exists).
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let err = |e: std::io::Error| KeyError::Write {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let mut f = private_file_options().open(path).map_err(err)?;
        f.write_all(format!("{}\n", self.hex()).as_bytes())
            .map_err(err)?;
        f.sync_all().map_err(err)?;
        Ok(())
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// SQLCipher's raw-key form `x'<64 hex digits>'`, for `PRAGMA key` or `ATTACH … KEY ?`.
    pub(crate) fn sqlcipher_raw(&self) -> String {
        format!("x'{}'", self.hex())
    }
}

/// Options that create a new file readable and writable by its owner only.
pub(crate) fn private_file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_input() {
        let k = ServerKey::generate().expect("key");
        assert_eq!(ServerKey::from_hex(&k.hex(), "t").expect("parse"), k);
        assert!(ServerKey::from_hex("abc", "t").is_err());
        assert!(ServerKey::from_hex(&"zz".repeat(32), "t").is_err());
        assert!(ServerKey::from_hex(&"é".repeat(32), "t").is_err());
        assert_eq!(format!("{k:?}"), "ServerKey(<redacted>)");
    }
}
