//! A document's changes on the wire without the bytes the receiver can work out (ADR 0031).
//!
//! An automerge change chunk is `magic (4) ‖ checksum (4) ‖ type (1) ‖ uLEB length ‖ body`,
//! and its body begins with its dependencies: a uLEB count, then 32-byte hashes. In a run of
//! one document's changes almost every dependency is the change just before, and its hash,
//! like the checksum, is a function of bytes already in the message. Neither compresses:
//! they were 36 of the bytes of every change, about a third of the week's download. So a
//! change travels as its dependencies — each a reference back into the list, or a hash when
//! it is not in the list — and the rest of its body; the receiver rebuilds the exact chunk,
//! byte for byte, so its hash and every signature over it are unchanged.
//!
//! Pure functions, no IO. A chunk this encoder does not recognise (a DEFLATE-compressed
//! change, a non-canonical length) travels whole.

use sha2::{Digest, Sha256};

/// The magic bytes that start every automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of an uncompressed change.
const CHANGE: u8 = 1;
/// A change sent whole.
pub(super) const FORM_WHOLE: u8 = 0;
/// A change sent as dependencies and the rest of its body.
pub(super) const FORM_ELIDED: u8 = 1;
/// A dependency sent as a hash (not a reference back into the list).
pub(super) const DEP_HASH: u64 = 0;

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn uleb_len(v: u64) -> usize {
    let mut n = 1;
    let mut v = v >> 7;
    while v != 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Reads a uLEB128 at the start of `b`: (value, bytes read). Only values a chunk can hold.
fn read_uleb(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(9) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// An uncompressed change chunk, split.
struct Split<'a> {
    hash: [u8; 32],
    deps: Vec<[u8; 32]>,
    /// The body after the dependencies.
    rest: &'a [u8],
}

/// An uncompressed change chunk's dependencies and the rest of its body (no hashing).
fn parts(chunk: &[u8]) -> Option<(Vec<[u8; 32]>, &[u8])> {
    if chunk.len() < 10 || chunk[..4] != MAGIC || chunk[8] != CHANGE {
        return None;
    }
    let (len, n) = read_uleb(&chunk[9..])?;
    let body = &chunk[9 + n..];
    if usize::try_from(len).ok()? != body.len() || uleb_len(len) != n {
        return None;
    }
    let (count, m) = read_uleb(body)?;
    if uleb_len(count) != m {
        return None;
    }
    let count = usize::try_from(count).ok()?;
    let deps_end = count.checked_mul(32)?.checked_add(m)?;
    let deps_bytes = body.get(m..deps_end)?;
    let deps = deps_bytes
        .chunks_exact(32)
        .map(|d| {
            let mut h = [0u8; 32];
            h.copy_from_slice(d);
            h
        })
        .collect();
    Some((deps, &body[deps_end..]))
}

fn split(chunk: &[u8]) -> Option<Split<'_>> {
    let (deps, rest) = parts(chunk)?;
    let hash: [u8; 32] = Sha256::digest(&chunk[8..]).into();
    Some(Split { hash, deps, rest })
}

/// [`split`] of a chunk whose hash is known.
fn split_with(chunk: &[u8], hash: [u8; 32]) -> Option<Split<'_>> {
    let (deps, rest) = parts(chunk)?;
    debug_assert_eq!(
        hash,
        <[u8; 32]>::from(Sha256::digest(&chunk[8..])),
        "a known hash that is not the chunk's"
    );
    Some(Split { hash, deps, rest })
}

/// The actor of an uncompressed change chunk: the length-prefixed bytes that open its body
/// after the dependencies (what a signature may leave implied, ADR 0037).
pub(super) fn actor_of(chunk: &[u8]) -> Option<&[u8]> {
    let (_, rest) = parts(chunk)?;
    let (len, n) = read_uleb(rest)?;
    let end = usize::try_from(len).ok()?.checked_add(n)?;
    rest.get(n..end)
}

/// The hash of a chunk sent whole, when it is an uncompressed change a later change may
/// name by reference.
pub(super) fn whole_hash(chunk: &[u8]) -> Option<[u8; 32]> {
    split(chunk).map(|s| s.hash)
}

/// Rebuilds a change chunk from its dependencies and the rest of its body: (hash, chunk).
pub(super) fn rebuild(deps: &[[u8; 32]], rest: &[u8]) -> ([u8; 32], Vec<u8>) {
    let mut body = Vec::with_capacity(rest.len() + deps.len() * 32 + 2);
    uleb(&mut body, deps.len() as u64);
    for d in deps {
        body.extend_from_slice(d);
    }
    body.extend_from_slice(rest);
    let mut typed = Vec::with_capacity(body.len() + 6);
    typed.push(CHANGE);
    uleb(&mut typed, body.len() as u64);
    typed.extend_from_slice(&body);
    let hash: [u8; 32] = Sha256::digest(&typed).into();
    let mut chunk = Vec::with_capacity(typed.len() + 8);
    chunk.extend_from_slice(&MAGIC);
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend_from_slice(&typed);
    (hash, chunk)
}

/// Appends `changes` (one document's, in causal order) in the compact form: a uLEB count,
/// then per change a form byte and either `bytes whole` or `list<dep> ‖ bytes rest`.
/// Returns each change's hash as the receiver will know it (`None` for a chunk that is not
/// an uncompressed change), which the document's signatures may refer to.
pub fn encode(out: &mut Vec<u8>, changes: &[Vec<u8>]) -> Vec<Option<[u8; 32]>> {
    encode_known(out, changes, None)
}

/// [`encode`], given the changes' hashes where the caller holds them already (the server's
/// log keeps each change's hash): they are not computed again. A hash is taken only when
/// `known` has one per change and its first four bytes are the chunk's checksum; otherwise
/// it is computed, so a misplaced list costs time, never a wrong encoding.
pub fn encode_known(
    out: &mut Vec<u8>,
    changes: &[Vec<u8>],
    known: Option<&[[u8; 32]]>,
) -> Vec<Option<[u8; 32]>> {
    let known = known.filter(|k| k.len() == changes.len());
    uleb(out, changes.len() as u64);
    let mut seen: Vec<Option<[u8; 32]>> = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        let parsed = match known.map(|k| &k[i]) {
            Some(hash) if c.get(4..8) == Some(&hash[..4]) => split_with(c, *hash),
            _ => split(c),
        };
        match parsed {
            Some(Split { hash, deps, rest }) => {
                out.push(FORM_ELIDED);
                uleb(out, deps.len() as u64);
                for d in &deps {
                    let back = seen
                        .iter()
                        .rev()
                        .position(|h| h.as_ref() == Some(d))
                        .map(|p| p as u64 + 1);
                    match back {
                        Some(k) => uleb(out, k),
                        None => {
                            uleb(out, DEP_HASH);
                            out.extend_from_slice(d);
                        }
                    }
                }
                uleb(out, rest.len() as u64);
                out.extend_from_slice(rest);
                seen.push(Some(hash));
            }
            None => {
                out.push(FORM_WHOLE);
                uleb(out, c.len() as u64);
                out.extend_from_slice(c);
                seen.push(None);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::{decode_changes, WireError};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn changes_of(doc: &mut AutoCommit) -> Vec<Vec<u8>> {
        doc.get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    fn sample() -> Vec<Vec<u8>> {
        let mut a = AutoCommit::new();
        let text = a.put_object(ROOT, "note", ObjType::Text).unwrap();
        for i in 0..20 {
            a.splice_text(&text, 0, 0, &format!("孩子{i}")).unwrap();
            a.commit();
        }
        let mut b = a.fork();
        b.put(ROOT, "phone", "13800000000").unwrap();
        b.commit();
        a.put(ROOT, "address", "幸福村").unwrap();
        a.commit();
        a.merge(&mut b).unwrap();
        a.put(ROOT, "after", true).unwrap();
        a.commit();
        changes_of(&mut a)
    }

    fn round_trip(changes: &[Vec<u8>]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        encode(&mut out, changes);
        let back = decode_changes(&out).unwrap();
        (out, back)
    }

    #[test]
    fn changes_come_back_byte_for_byte_and_smaller() {
        let changes = sample();
        let (encoded, back) = round_trip(&changes);
        assert_eq!(back, changes);
        for c in &back {
            automerge::Change::from_bytes(c.clone()).unwrap();
        }
        let whole: usize = changes.iter().map(|c| c.len() + 2).sum();
        // 23 changes, each of whose in-list dependencies costs one byte instead of 32 and
        // whose checksum is gone.
        assert!(
            encoded.len() + 30 * (changes.len() - 1) < whole,
            "{} vs {whole}",
            encoded.len()
        );
    }

    #[test]
    fn known_hashes_give_the_same_bytes_and_a_misplaced_list_is_not_taken() {
        let changes = sample();
        let mut plain = Vec::new();
        let hashes = encode(&mut plain, &changes);
        let known: Vec<[u8; 32]> = hashes.iter().map(|h| h.unwrap()).collect();
        let mut with = Vec::new();
        assert_eq!(encode_known(&mut with, &changes, Some(&known)), hashes);
        assert_eq!(with, plain);
        // Shifted by one: no chunk's checksum matches its neighbour's hash, so every hash is
        // computed and the bytes are the same again.
        let mut shifted = known.clone();
        shifted.rotate_left(1);
        let mut again = Vec::new();
        assert_eq!(encode_known(&mut again, &changes, Some(&shifted)), hashes);
        assert_eq!(again, plain);
        // A list of another length is ignored.
        let mut short = Vec::new();
        encode_known(&mut short, &changes, Some(&known[1..]));
        assert_eq!(short, plain);
        assert_eq!(decode_changes(&with).unwrap(), changes);
    }

    #[test]
    fn a_suffix_of_the_history_keeps_its_outside_dependencies() {
        let changes = sample();
        let tail = &changes[5..];
        let (_, back) = round_trip(tail);
        assert_eq!(back, tail);
    }

    #[test]
    fn chunks_it_does_not_know_travel_whole() {
        let mut changes = sample();
        changes.insert(3, b"not a change".to_vec());
        let mut compressed = changes[4].clone();
        compressed[8] = 2; // as if DEFLATE-compressed: kept whole, never referenced
        changes.push(compressed);
        let (_, back) = round_trip(&changes);
        assert_eq!(back, changes);
    }

    #[test]
    fn bad_references_and_truncations_are_errors() {
        let changes = sample();
        let mut out = Vec::new();
        encode(&mut out, &changes);
        for cut in 0..out.len() {
            assert!(decode_changes(&out[..cut]).is_err(), "cut at {cut}");
        }
        // One change whose dependency points before the list.
        let mut bad = Vec::new();
        uleb(&mut bad, 1);
        bad.extend_from_slice(&[FORM_ELIDED, 1, 1, 0]);
        assert_eq!(
            decode_changes(&bad),
            Err(WireError::Malformed("dependency before the list"))
        );
        let mut form = Vec::new();
        uleb(&mut form, 1);
        form.extend_from_slice(&[7, 0]);
        assert_eq!(
            decode_changes(&form),
            Err(WireError::Malformed("change form"))
        );
    }
}
