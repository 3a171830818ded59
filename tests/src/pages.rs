//! Every page of an encrypted store file, decrypted the way SQLCipher 4 does it (AES-256-CBC
//! with the raw key, a per-page IV in the page's reserved tail), so a test can look for
//! planted text in **every** page of a database or its WAL: live, freed and stale ones
//! alike. SQLite's own reads see only live rows; an erasure must leave nothing in the rest.
//!
//! Defaults of SQLCipher 4 (both the device store and the server use them): 4096-byte
//! pages, 80 reserved bytes at the end of each (16 of IV, 64 of HMAC), the file's 16-byte
//! salt in place of page 1's first 16 bytes.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};

const PAGE: usize = 4096;
const RESERVE: usize = 80;
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

type Decryptor = cbc::Decryptor<aes::Aes256>;

/// One page (`number` counts from 1) decrypted; `None` if it is not whole.
fn page(bytes: &[u8], number: u32, key: &[u8; 32]) -> Option<Vec<u8>> {
    if bytes.len() != PAGE {
        return None;
    }
    let start = if number == 1 { 16 } else { 0 };
    let iv = &bytes[PAGE - RESERVE..PAGE - RESERVE + 16];
    let mut data = bytes[start..PAGE - RESERVE].to_vec();
    Decryptor::new(key.into(), iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut data)
        .ok()?;
    Some(data)
}

/// The plaintext of every page of a SQLCipher database file.
pub fn database(file: &[u8], key: &[u8; 32]) -> Vec<Vec<u8>> {
    file.chunks(PAGE)
        .enumerate()
        .filter_map(|(i, p)| page(p, i as u32 + 1, key))
        .collect()
}

/// The plaintext of every frame of a SQLCipher database's WAL file.
pub fn wal(file: &[u8], key: &[u8; 32]) -> Vec<Vec<u8>> {
    if file.len() < WAL_HEADER {
        return Vec::new();
    }
    file[WAL_HEADER..]
        .chunks(FRAME_HEADER + PAGE)
        .filter(|f| f.len() == FRAME_HEADER + PAGE)
        .filter_map(|f| {
            let number = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            page(&f[FRAME_HEADER..], number, key)
        })
        .collect()
}

/// The plaintext of a database and its WAL (`<path>-wal`, if present) together.
pub fn store_files(path: &std::path::Path, key: &[u8; 32]) -> Vec<Vec<u8>> {
    let mut pages = database(&std::fs::read(path).unwrap_or_default(), key);
    let mut wal_path = path.as_os_str().to_owned();
    wal_path.push("-wal");
    pages.extend(wal(&std::fs::read(&wal_path).unwrap_or_default(), key));
    pages
}

/// Whether page 1 decrypted to a SQLite header (page size 4096, 80 reserved bytes): the
/// key and the layout above are right, so a search of the pages means something.
pub fn decrypts(pages: &[Vec<u8>]) -> bool {
    // Page 1 as decrypted starts at byte 16 of the header: the page size, then the write
    // and read versions, then the reserved bytes per page.
    pages
        .first()
        .is_some_and(|p| p.len() > 4 && p[0..2] == [0x10, 0x00] && p[4] as usize == RESERVE)
}

/// Which of `needles` occur in any page.
pub fn found<'a>(pages: &[Vec<u8>], needles: &[&'a str]) -> Vec<&'a str> {
    needles
        .iter()
        .copied()
        .filter(|n| {
            let n = n.as_bytes();
            pages.iter().any(|p| p.windows(n.len()).any(|w| w == n))
        })
        .collect()
}
