//! The store file: encryption at rest, keys, damaged and foreign files, migrations.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Seek, SeekFrom, Write};

use common::*;
use doorstep_core::*;

const PLANTED: &str = "PLANTED-困境儿童-7f3a9c";

fn all_bytes_next_to(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let dir = path.parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn planted_text_never_appears_in_plain_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let store = Store::open(options(&path, WorkerId::new(), StationId::new())).unwrap();
    let hh = household(&store, "HH-000001");
    let v = visit(&store, hh, "2026-11-20");
    store
        .splice_section(hh, v, Section::Concerns, 0, 0, PLANTED)
        .unwrap();
    store
        .add_person(hh, &NewPerson::named(PLANTED, "孙子"))
        .unwrap();
    assert_eq!(store.search("7f3a9c", 5).unwrap().len(), 1);
    // While open (WAL holds recent pages) and after close (checkpointed).
    for (phase, files) in [
        ("open", all_bytes_next_to(&path)),
        ("closed", {
            drop(store);
            all_bytes_next_to(&path)
        }),
    ] {
        assert!(!files.is_empty());
        for (name, bytes) in files {
            for needle in [
                PLANTED.as_bytes(),
                "7f3a9c".as_bytes(),
                "石桥村".as_bytes(),
                b"SQLite format 3",
            ] {
                assert!(
                    !contains(&bytes, needle),
                    "{phase}: plain bytes {needle:?} found in {name}"
                );
            }
        }
    }
}

#[test]
fn wrong_key_foreign_file_and_damage_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let worker = WorkerId::new();
    let station = StationId::new();
    {
        let store = Store::open(options(&path, worker, station)).unwrap();
        for i in 0..30 {
            let hh = household(&store, &format!("HH-{i:06}"));
            let v = visit(&store, hh, "2026-11-20");
            store
                .splice_section(hh, v, Section::Concerns, 0, 0, &"记录".repeat(200))
                .unwrap();
        }
    }
    // Wrong key.
    let mut o = options(&path, worker, station);
    o.key = StoreKey::Raw([1; 32]);
    assert!(
        matches!(Store::open(o), Err(Error::WrongKey)),
        "wrong raw key"
    );
    let mut o = options(&path, worker, station);
    o.key = StoreKey::Passphrase("guess".into());
    assert!(
        matches!(Store::open(o), Err(Error::WrongKey)),
        "wrong passphrase"
    );

    // Not a store: text, a plain SQLite database, an empty-ish file.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "这不是数据库。".repeat(2000)).unwrap();
    assert!(matches!(
        Store::open(options(&text, worker, station)),
        Err(Error::NotAStore)
    ));
    let plain = dir.path().join("plain.db");
    rusqlite_plain(&plain);
    assert!(matches!(
        Store::open(options(&plain, worker, station)),
        Err(Error::NotAStore)
    ));
    let short = dir.path().join("short.db");
    std::fs::write(&short, [0xabu8; 100]).unwrap();
    assert!(matches!(
        Store::open(options(&short, worker, station)),
        Err(Error::NotAStore)
    ));

    // Damage to the first page: the right key still authenticates the other pages.
    let damaged = dir.path().join("damaged.db");
    std::fs::copy(&path, &damaged).unwrap();
    flip(&damaged, 2000);
    assert!(
        matches!(
            Store::open(options(&damaged, worker, station)),
            Err(Error::Damaged)
        ),
        "page 1 damage"
    );

    // Damage deeper in the file shows when that page is read, as Damaged, never a panic.
    let damaged2 = dir.path().join("damaged2.db");
    std::fs::copy(&path, &damaged2).unwrap();
    let len = std::fs::metadata(&damaged2).unwrap().len();
    for at in (4096 * 2..len).step_by(4096) {
        flip(&damaged2, at + 100);
    }
    let result = Store::open(options(&damaged2, worker, station)).and_then(|s| {
        s.rebuild_index()?;
        s.integrity_check()
    });
    assert!(
        matches!(result, Err(Error::Damaged)),
        "deep damage gave {result:?}"
    );

    // The original is untouched by all this and opens fine.
    let store = Store::open(options(&path, worker, station)).unwrap();
    assert_eq!(store.household_ids().unwrap().len(), 30);
    store.integrity_check().unwrap();
}

fn flip(path: &std::path::Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x55]).unwrap();
}

fn rusqlite_plain(path: &std::path::Path) {
    // A plain (unencrypted) SQLite file: header bytes as SQLite writes them.
    let mut page = vec![0u8; 4096];
    page[..16].copy_from_slice(b"SQLite format 3\0");
    std::fs::write(path, page).unwrap();
}

#[test]
fn a_store_belongs_to_one_worker_and_keeps_its_actor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let worker = WorkerId::new();
    let station = StationId::new();
    let device = Store::open(options(&path, worker, station))
        .unwrap()
        .device();
    assert_eq!(
        Store::open(options(&path, worker, station))
            .unwrap()
            .device(),
        device
    );
    assert!(matches!(
        Store::open(options(&path, WorkerId::new(), station)),
        Err(Error::InvalidInput(_))
    ));
    // A copy restored elsewhere is a new file: a different store gets a different device.
    let other = Store::open(options(&dir.path().join("other.db"), worker, station)).unwrap();
    assert_ne!(other.device(), device);
}

/// A bootstrap snapshot arrives as automerge's encoding without DEFLATE (the server's
/// response is compressed as a whole). The device stores it as a zstd frame, not at its
/// uncompressed size, and reads it back after reopening.
#[test]
fn a_bootstrapped_snapshot_is_stored_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let source = open_signing(dir.path(), "source.db", station, [0x5b; 32]);
    let hh = household(&source, "HH-000001");
    let summary = "祖孙二人生活，孙子在镇中心小学读三年级，爷爷患有高血压。".repeat(40);
    source.splice_summary(hh, 0, 0, &summary).unwrap();
    let doc = automerge::Automerge::load(&source.export_document(hh).unwrap()).unwrap();
    let sent = doc.save_nocompress();

    let path = dir.path().join("device.db");
    let worker = WorkerId::new();
    let device = Store::open(options(&path, worker, station)).unwrap();
    let (signer, signature) = vouch(&source, [0x5b; 32], hh);
    let response = protocol::SyncResponse {
        signers: vec![signer],
        signer_known: false,
        epoch: uuid::Uuid::now_v7(),
        epoch_reset: false,
        more: false,
        cursor: protocol::Cursor {
            epoch: uuid::Uuid::now_v7(),
            seq: 1,
            phase: protocol::Phase::Log,
        },
        acks: vec![],
        errors: vec![],
        snapshots: vec![protocol::DocSnapshot {
            signatures: vec![signature],
            doc: hh,
            bytes: sent.clone(),
        }],
        pull: vec![],
        erasures: vec![],
        scope: None,
        redactions: vec![],
        bootstrap_remaining: None,
    };
    let outcome = device.apply_response(&response).unwrap();
    assert!(outcome.quarantined.is_empty(), "{outcome:?}");
    drop(device);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .unwrap();
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT snapshot FROM documents WHERE doc_id = ?1",
            [hh.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    assert!(
        stored.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "a zstd frame"
    );
    assert!(
        stored.len() * 2 < sent.len(),
        "{} bytes stored for {} received",
        stored.len(),
        sent.len()
    );

    let device = Store::open(options(&path, worker, station)).unwrap();
    // The helper's household already has a summary; ours was typed in front of it.
    assert_eq!(
        device.household(hh).unwrap().summary,
        source.household(hh).unwrap().summary
    );
    assert!(device.household(hh).unwrap().summary.starts_with(&summary));
}
