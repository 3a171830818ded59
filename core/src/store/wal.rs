//! Telling a damaged write-ahead log from a torn one, before SQLite opens it.
//!
//! SQLite's WAL recovery reads frames while their cumulative checksum holds and takes the
//! first frame that fails for the end of the log: after a power cut the last transaction
//! may be half written (a torn write), and it was never acknowledged. But a byte flipped at
//! rest in an earlier, acknowledged transaction fails the same way, and SQLite then drops
//! that transaction and every later one without an error (`docs/reliability.md`,
//! finding 3). This check tells the two apart with two facts about how SQLite writes a WAL
//! with `synchronous=FULL`:
//!
//! - a transaction's frames are written, then fsynced, before the next transaction's first
//!   frame is written; so a frame that belongs to a transaction *after* a commit frame
//!   proves that commit was durable, and a bad frame before it is damage, not a torn write;
//! - a new WAL header is fsynced before its first frame is written; so frames with the
//!   header's salt prove the header was durable, and a header that fails its checksum is
//!   damage.
//!
//! Each frame's checksum is checked on its own, seeded with the previous frame's stored
//! checksum (or the running one): one damaged frame does not hide the frames after it.
//! The store writes a small "seal" transaction after each acknowledged one (see
//! `Store`'s writer guard), so the last acknowledged transaction is never the last in the
//! log and damage to it is caught too; damage to the seal itself loses nothing.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MAGIC: u32 = 0x377f_0682;
const VERSION: u32 = 3_007_000;
const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// SQLCipher's page size: used when the header's own is unreadable.
const DEFAULT_PAGE: usize = 4096;

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// SQLite's WAL checksum (`walChecksumBytes`) over `data` (a multiple of 8 bytes).
fn checksum(big_endian: bool, data: &[u8], seed: (u32, u32)) -> (u32, u32) {
    let (mut s1, mut s2) = seed;
    for chunk in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            if big_endian {
                be32(b)
            } else {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }
        };
        s1 = s1.wrapping_add(word(&chunk[..4])).wrapping_add(s2);
        s2 = s2.wrapping_add(word(&chunk[4..])).wrapping_add(s1);
    }
    (s1, s2)
}

/// `Err(Damaged)` if the WAL next to `db` holds acknowledged transactions that SQLite's
/// recovery would drop; `Ok` if there is no WAL, or it is whole, or only its unacknowledged
/// end is torn.
pub(crate) fn check(db: &Path) -> Result<()> {
    let file = match std::fs::File::open(wal_path(db)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut header = [0u8; HEADER];
    if read_full(&mut reader, &mut header)? < HEADER {
        return Ok(());
    }
    let magic = be32(&header[0..4]);
    let magic_ok = magic & !1 == MAGIC;
    let endians: &[bool] = if magic_ok {
        if magic & 1 == 1 {
            &[true]
        } else {
            &[false]
        }
    } else {
        &[false, true]
    };
    for &big_endian in endians {
        // The frames again for the second byte order (only when the magic is damaged).
        reader.seek(std::io::SeekFrom::Start(HEADER as u64))?;
        if scan(&mut reader, &header, magic_ok, big_endian)? {
            return Err(Error::Damaged);
        }
    }
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// What is remembered of the previous frame.
struct Prev {
    stored: (u32, u32),
    computed: (u32, u32),
    commit: bool,
    ours: bool,
}

/// True if the frames show damage (see the module text).
fn scan(
    r: &mut impl Read,
    header: &[u8; HEADER],
    magic_ok: bool,
    big_endian: bool,
) -> Result<bool> {
    let raw_page = be32(&header[8..12]) as usize;
    let page_ok = (512..=65536).contains(&raw_page) && raw_page.is_power_of_two();
    let page = if page_ok { raw_page } else { DEFAULT_PAGE };
    let stored_hdr = (be32(&header[24..28]), be32(&header[28..32]));
    let computed_hdr = checksum(big_endian, &header[..24], (0, 0));
    let header_ok =
        magic_ok && be32(&header[4..8]) == VERSION && page_ok && stored_hdr == computed_hdr;
    let (salt1, salt2) = (&header[16..20], &header[20..24]);
    // A whole header's frames carry both salts; with a damaged header, one may be hit.
    let ours = |f: &[u8]| {
        if header_ok {
            &f[8..12] == salt1 && &f[12..16] == salt2
        } else {
            &f[8..12] == salt1 || &f[12..16] == salt2
        }
    };
    let mut frame = vec![0u8; FRAME_HEADER + page];
    let mut prev = Prev {
        stored: stored_hdr,
        computed: computed_hdr,
        commit: false,
        ours: true,
    };
    // Whether every frame so far is valid as SQLite's recovery sees it (then the running
    // checksum is `prev.computed`); a damaged header breaks it before the first frame.
    let mut valid = header_ok;
    while read_full(r, &mut frame)? == frame.len() {
        let stored = (be32(&frame[16..20]), be32(&frame[20..24]));
        let sum = |seed| {
            checksum(
                big_endian,
                &frame[FRAME_HEADER..],
                checksum(big_endian, &frame[..8], seed),
            )
        };
        let from_stored = sum(prev.stored);
        let from_computed = sum(prev.computed);
        let is_ours = ours(&frame);
        let pgno = be32(&frame[0..4]);
        if valid {
            valid = is_ours && pgno != 0 && from_computed == stored;
        } else if prev.ours && prev.commit && is_ours {
            // This frame follows a commit after the break and chains from it: it was written
            // after that commit's fsync returned, so the commit was durable and the break
            // before it is damage. (The commit frame's own content need not be intact: its
            // header, with our salt, says commit, and a damaged header is damage too.)
            if from_stored == stored || from_computed == stored {
                return Ok(true);
            }
        }
        prev = Prev {
            stored,
            computed: from_computed,
            commit: be32(&frame[4..8]) != 0,
            ours: is_ours,
        };
    }
    Ok(false)
}
