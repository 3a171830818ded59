//! Replays the fuzz corpora on stable (suite 5, `docs/fuzzing.md`): every file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` goes through the same function
//! its cargo-fuzz target calls (`doorstep_tests::fuzzing`), so the targets' code, their
//! seeds, what the fuzzer kept and every crasher it found (now fixed) run in every CI build.
//! A panic here is a regression.
//!
//! `write_world_and_seeds` (ignored) rewrites `fuzz/world/` and the seed files.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]
// The suite prints its figures.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use doorstep_tests::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(target: &str, f: fuzzing::Target) {
    let mut corpus = 0;
    let mut artifacts = 0;
    for (kind, count) in [("corpus", &mut corpus), ("artifacts", &mut artifacts)] {
        for path in files(&fuzz_dir().join(kind).join(target)) {
            let bytes = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| f(&bytes));
            assert!(run.is_ok(), "{target}: {} panicked", path.display());
            *count += 1;
        }
    }
    println!(
        "fuzz_corpus {target}: {corpus} corpus and {artifacts} artifact inputs passed; \
         {} panics inside automerge contained; open findings hit so far: {:?}",
        fuzzing::contained_automerge_panics(),
        fuzzing::open_findings_seen()
    );
    assert!(corpus > 0, "{target} has no corpus (see docs/fuzzing.md)");
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "sync_request",
            "sync_response",
            "enroll",
            "document",
            "device_response",
            "server_push",
            "blobs",
            "attachment_refs"
        ]
    );
}

fn target(name: &str) -> fuzzing::Target {
    TARGETS.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn sync_request() {
    replay("sync_request", target("sync_request"));
}

#[test]
fn sync_response() {
    replay("sync_response", target("sync_response"));
}

#[test]
fn enroll() {
    replay("enroll", target("enroll"));
}

#[test]
fn document() {
    replay("document", target("document"));
}

#[test]
fn device_response() {
    replay("device_response", target("device_response"));
}

#[test]
fn server_push() {
    replay("server_push", target("server_push"));
}

#[test]
fn blobs() {
    replay("blobs", target("blobs"));
}

#[test]
fn attachment_refs() {
    replay("attachment_refs", target("attachment_refs"));
}

/// Write the seeds of the attachment targets alone (`blobs`, `attachment_refs`: they need
/// no world), with `DOORSTEP_WRITE_FUZZ_SEEDS=1`.
#[test]
#[ignore = "writes fuzz/corpus/{blobs,attachment_refs}/seed-*; run by hand"]
fn write_attachment_seeds() {
    if std::env::var_os("DOORSTEP_WRITE_FUZZ_SEEDS").is_none() {
        println!("set DOORSTEP_WRITE_FUZZ_SEEDS=1 to rewrite the attachment targets' seeds");
        return;
    }
    fuzzing::write_attachment_seeds(&fuzz_dir());
}

/// The inputs of the open findings (`fuzz/artifacts/<target>/open-<finding>-*`), replayed
/// with open findings fatal: passes once they are fixed (then drop them from
/// `fuzzing::OPEN_FINDINGS`; their inputs stay as regression tests).
#[test]
fn open_findings_are_fixed() {
    fuzzing::set_strict(true);
    let mut failed = Vec::new();
    for (target, f) in TARGETS {
        for path in files(&fuzz_dir().join("artifacts").join(target)) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("open-") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| f(&bytes)).is_err() {
                failed.push(format!("{target}/{name}"));
            }
        }
    }
    fuzzing::set_strict(false);
    assert!(failed.is_empty(), "still open: {failed:?}");
}

/// Rewrite `fuzz/world/` and the seed corpora (see `docs/fuzzing.md`); it runs only with
/// `DOORSTEP_WRITE_FUZZ_WORLD=1`, so that `--ignored` does not rewrite them by accident.
#[test]
#[ignore = "writes fuzz/world and fuzz/corpus/*/seed-*; run by hand"]
fn write_world_and_seeds() {
    if std::env::var_os("DOORSTEP_WRITE_FUZZ_WORLD").is_none() {
        println!("set DOORSTEP_WRITE_FUZZ_WORLD=1 to rewrite fuzz/world and the seeds");
        return;
    }
    fuzzing::write_world_and_seeds(&fuzz_dir());
}
