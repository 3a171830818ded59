//! Attachments (issue 20, ADR 0023): photos captured on one phone, uploaded in chunks over
//! a link that is cut at random bytes, fetched on another phone on demand over a link cut
//! the same way; every blob ends with identical bytes and hash. The seed is printed; set
//! `DOORSTEP_SEED` to replay one.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use doorstep_core::protocol::blobs::{self, BlobStatus, UPLOAD_CHUNK};
use doorstep_core::transport::HttpTransport;
use doorstep_core::*;
use doorstep_server::store::blobs::{BlobKey, BlobStore};
use doorstep_server::ServerConfig;
use doorstep_tests::in_process::Rng;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::*;

fn seed() -> u64 {
    let seed = std::env::var("DOORSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("attachments: DOORSTEP_SEED={seed}");
    seed
}

fn rng(seed: u64) -> Rng {
    Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
}

/// Bytes that look like a photo to nobody and start with a marker a scan can find.
fn photo(rng: &mut Rng, marker: &[u8], len: usize) -> Vec<u8> {
    let mut v = marker.to_vec();
    while v.len() < len {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}

fn new_photo() -> NewAttachment {
    NewAttachment {
        record: EntityRef::Household,
        kind: AttachmentKind::Photo,
        mime: "image/jpeg".into(),
    }
}

/// Upload until the queue is empty of pending work, whatever the network does.
async fn upload_until_done(t: &HttpTransport, d: &Device, seed: u64) -> u64 {
    let mut sent = 0;
    for _ in 0..2000 {
        match t.upload_attachments(&d.store).await {
            Ok(r) => {
                sent += r.bytes_sent;
                if d.store.pending_attachment_uploads().unwrap().is_empty() {
                    return sent;
                }
            }
            Err(Error::Network { .. }) | Err(Error::Server(_)) => {}
            Err(e) => panic!("seed {seed}: upload failed: {e}"),
        }
    }
    panic!("seed {seed}: uploads did not finish");
}

async fn fetch_until_done(
    t: &HttpTransport,
    d: &Device,
    hh: HouseholdId,
    hash: BlobHash,
    seed: u64,
) -> Vec<u8> {
    for _ in 0..2000 {
        match t.fetch_attachment(&d.store, hh, hash).await {
            Ok(b) => return b,
            Err(Error::Network { .. }) | Err(Error::Server(_)) => {}
            Err(e) => panic!("seed {seed}: download failed: {e}"),
        }
    }
    panic!("seed {seed}: download did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_cut_at_random_bytes_resume_to_identical_hashes() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A", &server.url()).await;
    let b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let mut photos = Vec::new();
    for i in 0..3 {
        let len = 100_000 + rng.below(250_000);
        let bytes = photo(&mut rng, format!("PHOTO-{i}-").as_bytes(), len);
        let att = a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
        photos.push((att, bytes));
    }
    // Notes and references first; the bytes follow on their own endpoint.
    a.sync().await;
    let faults: Vec<Fault> = (0..400)
        .map(|_| match rng.below(3) {
            0 => Fault::CutRequest(rng.below(UPLOAD_CHUNK + 600)),
            _ => Fault::Pass,
        })
        .collect();
    let cuts = faults.iter().filter(|f| **f != Fault::Pass).count();
    proxy.plan(faults);
    let via_proxy = HttpTransport::new(&proxy.url(), &a.token, Duration::from_secs(10)).unwrap();
    upload_until_done(&via_proxy, &a, seed).await;
    for u in a.store.attachment_uploads().unwrap() {
        assert_eq!(u.state, AttachmentUploadState::Done, "seed {seed}");
        assert_eq!(u.sent, u.size, "seed {seed}");
    }
    for (att, _) in &photos {
        let row = server
            .store
            .blob(&BlobKey::new(station, att.hash))
            .unwrap()
            .unwrap();
        assert!(row.complete, "seed {seed}");
        assert_eq!(row.size, att.size, "seed {seed}");
    }
    eprintln!("seed {seed}: {cuts} cuts planned for the uploads");

    // B receives the references with sync, and fetches the bytes when it asks.
    b.sync().await;
    let listed = b.store.attachments(hh).unwrap();
    assert_eq!(listed.len(), 3, "seed {seed}");
    assert!(listed.iter().all(|a| !a.local), "seed {seed}");
    proxy.plan((0..400).map(|_| match rng.below(2) {
        0 => Fault::CutResponse(rng.below(blobs::DOWNLOAD_PIECE + 400)),
        _ => Fault::Pass,
    }));
    let b_proxy = HttpTransport::new(&proxy.url(), &b.token, Duration::from_secs(10)).unwrap();
    for (att, bytes) in &photos {
        let got = fetch_until_done(&b_proxy, &b, hh, att.hash, seed).await;
        assert_eq!(BlobHash::of(&got), att.hash, "seed {seed}");
        assert_eq!(&got, bytes, "seed {seed}");
        // Kept: asked again, nothing travels.
        assert_eq!(
            b.store.attachment_bytes(hh, att.hash).unwrap().unwrap(),
            *bytes
        );
    }
    assert!(b.store.attachments(hh).unwrap().iter().all(|a| a.local));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_the_server_holds_is_never_sent_again() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let bytes = photo(&mut rng, b"SAME", 200_000);
    a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    a.sync().await;
    let first = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(first.completed, 1);
    assert_eq!(first.bytes_sent, 200_000);
    // A colleague attaches the same bytes (the same scan) to the household.
    b.sync().await;
    b.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    b.sync().await;
    let second = b.transport.upload_attachments(&b.store).await.unwrap();
    assert_eq!(second.already_held, 1);
    assert_eq!(second.bytes_sent, 0, "a duplicate costs no body bytes");
    assert_eq!(second.requests, 1, "one status request");
    // Nothing left to do on either phone.
    let again = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(again.requests, 0);
}

async fn raw_status(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    hh: HouseholdId,
    hash: &str,
    size: u64,
) -> reqwest::Response {
    client
        .get(format!("{url}/v1/blobs/{hash}/status"))
        .bearer_auth(token)
        .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
        .header(blobs::SIZE_HEADER, size.to_string())
        .send()
        .await
        .unwrap()
}

// Every part of the request is what a test varies.
#[allow(clippy::too_many_arguments)]
async fn raw_put(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    hh: HouseholdId,
    hash: &str,
    offset: &str,
    claimed: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    client
        .put(format!("{url}/v1/blobs/{hash}/{offset}"))
        .bearer_auth(token)
        .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
        .header(blobs::CHUNK_SHA256_HEADER, claimed)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn refusal(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let code = resp
        .json::<blobs::BlobRefusal>()
        .await
        .map(|r| r.error)
        .unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_chunks_and_blobs_are_refused_and_nothing_is_kept() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let bytes = photo(&mut rng, b"TAMPER", 100_000);
    let att = a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    a.sync().await;
    let (url, token, hash) = (server.url(), a.token.clone(), att.hash.to_hex());
    let c = reqwest::Client::new();
    let s: BlobStatus = raw_status(&c, &url, &token, hh, &hash, 100_000)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        s,
        BlobStatus {
            received: 0,
            complete: false,
            tail: 0,
        }
    );

    // A chunk changed on the way (its hash is of the bytes sent): refused, not kept.
    let chunk = bytes[..50_000].to_vec();
    let mut tampered = chunk.clone();
    tampered[rng.below(50_000)] ^= 0x5a;
    let claimed = BlobHash::of(&chunk).to_hex();
    let r = raw_put(&c, &url, &token, hh, &hash, "0", &claimed, tampered).await;
    assert_eq!(refusal(r).await, (422, "chunk_corrupt".to_owned()));
    assert_eq!(
        server
            .store
            .blob(&BlobKey::new(station, att.hash))
            .unwrap()
            .unwrap()
            .received,
        0
    );

    // Chunks that each match their own hash but make another blob: the whole is refused
    // at the end and dropped.
    let mut other = bytes.clone();
    other[99_999] ^= 1;
    for (offset, part) in [(0usize, &other[..50_000]), (50_000, &other[50_000..])] {
        let r = raw_put(
            &c,
            &url,
            &token,
            hh,
            &hash,
            &offset.to_string(),
            &BlobHash::of(part).to_hex(),
            part.to_vec(),
        )
        .await;
        if offset == 0 {
            assert_eq!(r.status().as_u16(), 200);
        } else {
            assert_eq!(refusal(r).await, (422, "blob_corrupt".to_owned()));
        }
    }
    let row = server
        .store
        .blob(&BlobKey::new(station, att.hash))
        .unwrap()
        .unwrap();
    assert!(!row.complete);
    assert_eq!(row.received, 0, "a blob that fails its hash starts over");
    let got = c
        .get(format!("{url}/v1/blobs/{hash}"))
        .bearer_auth(&token)
        .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.status().as_u16(),
        404,
        "an incomplete blob is never served"
    );

    // The real upload then goes through.
    let r = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(r.completed, 1);
    assert!(
        server
            .store
            .blob(&BlobKey::new(station, att.hash))
            .unwrap()
            .unwrap()
            .complete
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unauthorised_blob_requests_get_4xx() {
    let seed = seed();
    let mut rng = rng(seed);
    let config = ServerConfig {
        blob_quota: 150_000,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let station = server.station("站");
    let other_station = server.station("别的站");
    let a = server.device(station, "A", &server.url()).await;
    let stranger = server.device(other_station, "S", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let bytes = photo(&mut rng, b"LIMITS", 100_000);
    let att = a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    let unsynced = a.store.add_attachment(hh, &new_photo(), b"later").unwrap();
    let (url, token, hash) = (server.url(), a.token.clone(), att.hash.to_hex());
    let c = reqwest::Client::new();

    // Before the household's document arrives, the server does not know the reference.
    let r = raw_status(&c, &url, &token, hh, &hash, 100_000).await;
    assert_eq!(refusal(r).await, (403, "not_referenced".to_owned()));
    let report = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(report.waiting, 2);
    assert_eq!(report.bytes_sent, 0);
    a.sync().await;
    let _ = unsynced;

    for (what, status) in [
        (
            "not a hash",
            raw_status(&c, &url, &token, hh, "abc", 1).await.status(),
        ),
        (
            "upper-case hash",
            raw_status(&c, &url, &token, hh, &hash.to_uppercase(), 100_000)
                .await
                .status(),
        ),
        (
            "size unlike the reference's",
            raw_status(&c, &url, &token, hh, &hash, 99).await.status(),
        ),
        (
            "no token",
            c.get(format!("{url}/v1/blobs/{hash}/status"))
                .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
                .send()
                .await
                .unwrap()
                .status(),
        ),
        (
            "no household",
            c.get(format!("{url}/v1/blobs/{hash}/status"))
                .bearer_auth(&token)
                .header(blobs::SIZE_HEADER, "100000")
                .send()
                .await
                .unwrap()
                .status(),
        ),
        (
            "another station's device",
            raw_status(&c, &url, &stranger.token, hh, &hash, 100_000)
                .await
                .status(),
        ),
        (
            "a household the server does not hold",
            raw_status(&c, &url, &token, HouseholdId::new(), &hash, 100_000)
                .await
                .status(),
        ),
        (
            "bad offset",
            raw_put(&c, &url, &token, hh, &hash, "-1", &hash, vec![1])
                .await
                .status(),
        ),
        (
            "chunk over the limit",
            // Its own connection: the server answers before the body and closes it.
            raw_put(
                &reqwest::Client::new(),
                &url,
                &token,
                hh,
                &hash,
                "0",
                &hash,
                vec![0; blobs::MAX_CHUNK + 1],
            )
            .await
            .status(),
        ),
        (
            "download of a blob not uploaded",
            c.get(format!("{url}/v1/blobs/{hash}?from=0"))
                .bearer_auth(&token)
                .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
                .send()
                .await
                .unwrap()
                .status(),
        ),
        (
            "download past the end",
            c.get(format!("{url}/v1/blobs/{hash}?from=zz"))
                .bearer_auth(&token)
                .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
                .send()
                .await
                .unwrap()
                .status(),
        ),
    ] {
        assert!(status.is_client_error(), "{what}: {status}");
    }

    // The device's limit: the first blob fits, the next does not, with a clear reason.
    let big = photo(&mut rng, b"QUOTA", 60_000);
    let over = a.store.add_attachment(hh, &new_photo(), &big).unwrap();
    a.sync().await;
    let report = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(report.completed, 2, "{report:?}");
    assert_eq!(report.failed, 1, "{report:?}");
    let failed = a
        .store
        .attachment_uploads()
        .unwrap()
        .into_iter()
        .find(|u| u.hash == over.hash)
        .unwrap();
    assert_eq!(
        failed.state,
        AttachmentUploadState::Failed {
            reason: "quota".into()
        }
    );
    assert!(server
        .store
        .blob(&BlobKey::new(station, over.hash))
        .unwrap()
        .is_none());
    // A stranger cannot fetch what the station holds.
    let r = c
        .get(format!("{url}/v1/blobs/{hash}"))
        .bearer_auth(&stranger.token)
        .header(blobs::HOUSEHOLD_HEADER, hh.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_sync_in_one_round_trip_while_a_large_upload_is_stalled() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A", &proxy.url()).await;
    let b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let big = photo(&mut rng, b"LARGE", 3 * 1024 * 1024);
    a.store.add_attachment(hh, &new_photo(), &big).unwrap();
    a.sync().await;
    // The status passes; the first chunk stalls on the link.
    let before = proxy.log.lock().unwrap().len();
    proxy.plan([Fault::Pass, Fault::Delay(Duration::from_secs(3600))]);
    let stalled = HttpTransport::new(&proxy.url(), &a.token, Duration::from_secs(7200)).unwrap();
    let uploading = stalled.upload_attachments(&a.store);
    let edit_and_sync = async {
        // Wait until the chunk is held up in the proxy (no clock involved).
        while proxy.log.lock().unwrap().len() < before + 2 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let v = a.visit(hh);
        a.type_into(hh, v, Section::Concerns, "照片还在传，笔记先到。");
        let report = a.sync().await;
        (v, report)
    };
    let (v, report) = tokio::select! {
        r = edit_and_sync => r,
        r = uploading => panic!("the stalled upload ended first: {r:?}"),
    };
    assert_eq!(report.round_trips, 1, "one round trip for the notes");
    b.sync().await;
    assert_eq!(
        b.section_text(hh, v, Section::Concerns),
        "照片还在传，笔记先到。"
    );
    let pending = a.store.pending_attachment_uploads().unwrap();
    assert_eq!(pending.len(), 1, "the photo waits, queued");
    assert!(pending[0].sent < pending[0].size);
}

/// The raw bytes of a store's files (database and WAL), as they lie on the disk.
fn raw_files(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", path.display())) {
            out.extend(b);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_bytes_are_encrypted_at_rest_and_erased_with_their_household() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let b = server.device(station, "B", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let keep = a.new_household("HH-000002");
    let marker = b"PLANTED-ATTACHMENT-MARKER-0123456789";
    let bytes = photo(&mut rng, marker, 120_000);
    let att = a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    let kept_bytes = photo(&mut rng, b"KEPT-ATTACHMENT", 70_000);
    let kept = a
        .store
        .add_attachment(keep, &new_photo(), &kept_bytes)
        .unwrap();
    a.sync().await;
    a.transport.upload_attachments(&a.store).await.unwrap();
    b.sync().await;
    b.transport
        .fetch_attachment(&b.store, hh, att.hash)
        .await
        .unwrap();

    // Not in plain form in any file of either phone or of the server ...
    for (who, raw) in [
        ("phone A", raw_files(&a.path)),
        ("phone B", raw_files(&b.path)),
        ("server", raw_files(&server.dir.path().join("server.db"))),
    ] {
        assert!(!raw.is_empty(), "{who}");
        assert!(
            !contains(&raw, marker),
            "{who}: the bytes lie in plain form"
        );
    }
    // ... though they are there, encrypted (the control: decrypted pages hold them).
    assert!(a.pages().iter().any(|p| contains(p, marker)));
    assert!(server.pages().iter().any(|p| contains(p, marker)));

    // Erasure removes them from the server and from every phone.
    server.erase(station, hh, protocol::ErasureReason::SubjectRequest);
    assert!(server
        .store
        .blob(&BlobKey::new(station, att.hash))
        .unwrap()
        .is_none());
    assert!(server
        .store
        .blob(&BlobKey::new(station, kept.hash))
        .unwrap()
        .is_some());
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        assert!(d.store.attachment_bytes(hh, att.hash).unwrap().is_none());
        assert!(d
            .store
            .attachment_uploads()
            .unwrap()
            .iter()
            .all(|u| u.household != hh));
        assert!(
            !d.pages().iter().any(|p| contains(p, marker)),
            "{}: erased bytes stay in the store's pages",
            d.label
        );
    }
    assert!(
        !server.pages().iter().any(|p| contains(p, marker)),
        "erased bytes stay in the server's pages"
    );
    assert_eq!(
        a.store.attachment_bytes(keep, kept.hash).unwrap().unwrap(),
        kept_bytes
    );
}

/// The benchmark of issue 20 (docs/benchmarks.md, "Attachments"): 50 photos of 300 KB
/// through a link cut a few times, with a note synced meanwhile. Bytes on the wire (HTTP
/// heads and bodies, as the proxy forwards them) stay within 1.02× the photos' bytes; the
/// note goes in one round trip. The figures are printed; the time on a 100 kbit/s link is
/// computed from the bytes, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_photos_over_a_cut_link_cost_at_most_two_percent_more_than_their_bytes() {
    const PHOTOS: usize = 50;
    const SIZE: usize = 300 * 1000;
    // Three cuts by default (`DOORSTEP_BENCH_CUTS` for more): a cut costs the bytes in
    // flight and one status request, as the server keeps what arrived of a cut chunk.
    let cuts: usize = std::env::var("DOORSTEP_BENCH_CUTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "A", &server.url()).await;
    let hh = a.new_household("HH-000001");
    for i in 0..PHOTOS {
        let bytes = photo(&mut rng, format!("P{i:02}").as_bytes(), SIZE);
        a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    }
    a.sync().await;
    // About four requests a photo (a status and three chunks): cuts among the first 190.
    let mut plan = vec![Fault::Pass; 190];
    for _ in 0..cuts {
        plan[rng.below(190)] = Fault::CutRequest(rng.below(UPLOAD_CHUNK + 400));
    }
    proxy.plan(plan);
    let link = HttpTransport::new(&proxy.url(), &a.token, Duration::from_secs(60)).unwrap();
    let started = std::time::Instant::now();
    let uploads = upload_until_done(&link, &a, seed);
    let note = async {
        while proxy.log.lock().unwrap().len() < 100 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let v = a.visit(hh);
        a.type_into(hh, v, Section::Concerns, "上传照片时写的笔记。");
        a.sync().await
    };
    let (_, report) = tokio::join!(uploads, note);
    let elapsed = started.elapsed();
    assert_eq!(
        report.round_trips, 1,
        "seed {seed}: the note took more than one sync"
    );
    let blobs = (PHOTOS * SIZE) as u64;
    let wire = proxy.wire.total();
    let requests = proxy.log.lock().unwrap().len();
    let ratio = wire as f64 / blobs as f64;
    eprintln!(
        "attachments benchmark (seed {seed}): {PHOTOS} photos x {SIZE} B = {blobs} B; \
         on the wire {wire} B (up {} B, down {} B) in {requests} \
         requests with {cuts} cuts: {ratio:.4}x the photos; at 100 kbit/s {:.0} s; \
         wall clock on loopback {:.1} s",
        proxy.wire.up.load(std::sync::atomic::Ordering::Relaxed),
        proxy.wire.down.load(std::sync::atomic::Ordering::Relaxed),
        wire as f64 * 8.0 / 100_000.0,
        elapsed.as_secs_f64(),
    );
    assert!(ratio <= 1.02, "seed {seed}: {ratio:.4}x on the wire");
    for (i, u) in a.store.attachment_uploads().unwrap().iter().enumerate() {
        assert_eq!(
            u.state,
            AttachmentUploadState::Done,
            "seed {seed}: photo {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_chunk_resumes_at_the_next_byte() {
    use tokio::io::AsyncWriteExt;
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let bytes = photo(&mut rng, b"CUT", 200_000);
    let att = a.store.add_attachment(hh, &new_photo(), &bytes).unwrap();
    a.sync().await;
    let (url, token, hash) = (server.url(), a.token.clone(), att.hash.to_hex());
    let c = reqwest::Client::new();
    let s = raw_status(&c, &url, &token, hh, &hash, 200_000).await;
    assert_eq!(s.status().as_u16(), 200);
    // The first chunk (128 KiB) is cut after `arrived` bytes of its body.
    let chunk = &bytes[..UPLOAD_CHUNK];
    let arrived = 1 + rng.below(UPLOAD_CHUNK - 1);
    let head = format!(
        "PUT /v1/blobs/{hash}/0 HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         {}: {hh}\r\n{}: {}\r\ncontent-length: {}\r\n\r\n",
        server.addr,
        blobs::HOUSEHOLD_HEADER,
        blobs::CHUNK_SHA256_HEADER,
        BlobHash::of(chunk).to_hex(),
        chunk.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&chunk[..arrived]).await.unwrap();
    tcp.flush().await.unwrap();
    tcp.shutdown().await.unwrap();
    drop(tcp);
    // The server keeps what arrived (once it has seen the cut).
    let mut status = None;
    for _ in 0..1000 {
        let s: BlobStatus = raw_status(&c, &url, &token, hh, &hash, 200_000)
            .await
            .json()
            .await
            .unwrap();
        if s.tail > 0 {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = status.unwrap_or_else(|| panic!("seed {seed}: no tail kept"));
    assert_eq!(status.received, 0, "seed {seed}");
    assert_eq!(status.tail, arrived as u64, "seed {seed}");
    // The device sends only the rest: every byte once.
    let report = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(report.completed, 1, "seed {seed}");
    assert_eq!(report.bytes_sent, 200_000 - arrived as u64, "seed {seed}");
    let row = server
        .store
        .blob(&BlobKey::new(station, att.hash))
        .unwrap()
        .unwrap();
    assert!(row.complete);
    assert_eq!(
        server
            .store
            .read_blob(&BlobKey::new(station, att.hash), 0, 300_000)
            .unwrap(),
        bytes
    );

    // A tail that is not what the device holds fails the chunk's hash: dropped, sent whole.
    let other = photo(&mut rng, b"CUT2", 150_000);
    let att2 = a.store.add_attachment(hh, &new_photo(), &other).unwrap();
    a.sync().await;
    let hash2 = att2.hash.to_hex();
    raw_status(&c, &url, &token, hh, &hash2, 150_000).await;
    server
        .store
        .set_blob_tail(
            &BlobKey::new(station, att2.hash),
            0,
            b"forged bytes that are not the photo",
            1,
        )
        .unwrap();
    let report = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!(report.completed, 1, "seed {seed}: {report:?}");
    assert_eq!(
        server
            .store
            .read_blob(&BlobKey::new(station, att2.hash), 0, 300_000)
            .unwrap(),
        other
    );
}

/// Blobs are deduplicated within a station only (ADR 0032): a device of another station
/// that holds the same bytes learns nothing from the status (nothing received) and sends
/// every byte; a second household of that station then costs no body bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_deduplicated_within_its_station_only() {
    let seed = seed();
    let mut rng = rng(seed);
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("站"), server.station("别的站"));
    let a = server.device(sa, "A", &server.url()).await;
    let b = server.device(sb, "B", &server.url()).await;
    let b2 = server.device(sb, "B2", &server.url()).await;
    let bytes = photo(&mut rng, b"SHARED", 150_000);
    let ha = a.new_household("HH-000001");
    a.store.add_attachment(ha, &new_photo(), &bytes).unwrap();
    a.sync().await;
    let up = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!((up.completed, up.bytes_sent), (1, 150_000), "{up:?}");

    let hb = b.new_household("HH-000002");
    let att = b.store.add_attachment(hb, &new_photo(), &bytes).unwrap();
    b.sync().await;
    let c = reqwest::Client::new();
    let r = raw_status(&c, &server.url(), &b.token, hb, &att.hash.to_hex(), 150_000).await;
    assert_eq!(r.status().as_u16(), 200);
    let status: BlobStatus = r.json().await.unwrap();
    assert_eq!((status.received, status.complete), (0, false), "{status:?}");
    let up = b.transport.upload_attachments(&b.store).await.unwrap();
    assert_eq!((up.completed, up.already_held), (1, 0), "{up:?}");
    assert_eq!(up.bytes_sent, 150_000, "station B sends every byte");
    assert!(
        server
            .store
            .blob(&BlobKey::new(sa, att.hash))
            .unwrap()
            .unwrap()
            .complete
    );

    // Within station B the bytes are not sent again.
    let hb2 = b2.new_household("HH-000003");
    b2.store.add_attachment(hb2, &new_photo(), &bytes).unwrap();
    b2.sync().await;
    let up = b2.transport.upload_attachments(&b2.store).await.unwrap();
    assert_eq!((up.already_held, up.bytes_sent), (1, 0), "{up:?}");
    // A new phone of station B fetches its station's copy.
    let b3 = server.device(sb, "B3", &server.url()).await;
    b3.sync().await;
    let fetched = b3
        .transport
        .fetch_attachment(&b3.store, hb2, att.hash)
        .await
        .unwrap();
    assert_eq!(fetched, bytes, "seed {seed}");
    server.stop().await;
}
