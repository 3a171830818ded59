//! Who wrote a change, verified: every device holds an Ed25519 key made on the phone and
//! signs, per document, the newest change its own automerge actor wrote. A change's hash
//! commits to all its ancestors, and each change of an actor descends from that actor's
//! earlier ones, so one signature vouches for every change of that actor up to the signed
//! one ("covers" it). The server and the phones check signatures against the key the
//! device registered for its actor ([ADR 0012](../../../docs/adr/0012-signed-changes.md)).
//!
//! Pure functions: the key's randomness comes from the caller.

use automerge::ChangeHash;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use uuid::Uuid;

/// What a signature is over: a domain tag, the document, the change hash. Binding the
/// document stops a signature being replayed for another document.
fn message(doc: &Uuid, hash: &ChangeHash) -> [u8; 16 + 16 + 32] {
    let mut m = [0u8; 64];
    m[..16].copy_from_slice(b"doorstep/sig/v1\0");
    m[16..32].copy_from_slice(doc.as_bytes());
    m[32..].copy_from_slice(&hash.0);
    m
}

/// A device's signing key (the secret stays in the encrypted store).
pub struct DeviceKey(SigningKey);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        DeviceKey(SigningKey::from_bytes(seed))
    }

    /// The secret seed, to keep.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key the device registers with the server.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Sign `hash`, a change of document `doc`.
    pub fn sign(&self, doc: &Uuid, hash: &ChangeHash) -> ChangeSignature {
        ChangeSignature {
            hash: *hash,
            sig: self.0.sign(&message(doc, hash)).to_bytes(),
        }
    }
}

/// A signature over one change of one document: vouches for that change and every
/// earlier change of the same actor in that document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeSignature {
    pub hash: ChangeHash,
    pub sig: [u8; 64],
}

impl ChangeSignature {
    /// Whether the holder of `public` signed this for document `doc`. Strict verification:
    /// no malleable or small-order keys.
    pub fn verify(&self, public: &[u8; 32], doc: &Uuid) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(public) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        key.verify_strict(&message(doc, &self.hash), &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_document_and_hash() {
        let key = DeviceKey::from_seed(&[7; 32]);
        let other = DeviceKey::from_seed(&[8; 32]);
        let doc = Uuid::from_u128(1);
        let hash = ChangeHash([3; 32]);
        let s = key.sign(&doc, &hash);
        assert!(s.verify(&key.public(), &doc));
        assert!(!s.verify(&other.public(), &doc));
        assert!(!s.verify(&key.public(), &Uuid::from_u128(2)));
        let moved = ChangeSignature {
            hash: ChangeHash([4; 32]),
            ..s
        };
        assert!(!moved.verify(&key.public(), &doc));
        let mut flipped = s;
        flipped.sig[10] ^= 1;
        assert!(!flipped.verify(&key.public(), &doc));
        assert!(!s.verify(&[0; 32], &doc));
        assert_eq!(DeviceKey::from_seed(&key.seed()).public(), key.public());
    }
}
