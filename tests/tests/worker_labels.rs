//! Names for ids (ADR 0017), against a real server: a phone learns its station's workers'
//! labels at its next sync, a relabelling reaches it the same way, a station from before
//! labels is backfilled when the server starts, and another station's labels never reach
//! it (not through the API, not in any byte of its store).
#![allow(clippy::unwrap_used)]

use doorstep_server::now_ms;
use doorstep_server::store::ServerStore;
use doorstep_server::workers;
use doorstep_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_learns_its_stations_labels_and_never_another_stations() {
    let mut server = TestServer::start().await;
    let (mine, theirs) = (
        server.station("石桥镇社工站"),
        server.station("河口镇社工站"),
    );
    let url = server.url();
    let mut phone = server.device(mine, "A", &url).await;
    let other_phone = server.device(theirs, "B", &url).await;
    phone.sync().await;
    other_phone.sync().await;
    assert_eq!(phone.store.worker_labels().unwrap(), vec![]);

    // The admin adds a worker to each station (`worker add`).
    let s = server.store.as_ref();
    let zhang = workers::add_worker(s, mine, "W01 / 张丽", now_ms()).unwrap();
    let wang = workers::add_worker(s, theirs, "W01 / 王芳", now_ms()).unwrap();
    assert_eq!(
        phone.store.worker_label(zhang).unwrap(),
        None,
        "not synced yet"
    );
    phone.sync().await;
    other_phone.sync().await;
    assert_eq!(
        phone.store.worker_label(zhang).unwrap().as_deref(),
        Some("W01 / 张丽")
    );
    // The station's other workers (added before labels were published) come along.
    assert_eq!(
        phone
            .store
            .worker_label(phone.store.worker())
            .unwrap()
            .as_deref(),
        Some("A")
    );
    assert_eq!(phone.store.worker_label(wang).unwrap(), None);
    assert_eq!(
        other_phone.store.worker_label(wang).unwrap().as_deref(),
        Some("W01 / 王芳")
    );
    assert_eq!(other_phone.store.worker_label(zhang).unwrap(), None);

    // A relabelling (`worker label`) reaches the phone at its next sync; the other
    // station's relabelling does not.
    workers::set_label(s, zhang, "W01 / 张丽华").unwrap();
    workers::set_label(s, wang, "W01 / 王芳芳").unwrap();
    phone.sync().await;
    assert_eq!(
        phone.store.worker_label(zhang).unwrap().as_deref(),
        Some("W01 / 张丽华")
    );
    assert_eq!(phone.store.worker_label(wang).unwrap(), None);

    // A worker added by a server from before labels (the store alone, no publication) is
    // published when the server starts again, and reaches the phone at its next sync.
    let old = server
        .store
        .add_worker(mine, "W02 / 李娜", now_ms())
        .unwrap();
    phone.sync().await;
    assert_eq!(phone.store.worker_label(old).unwrap(), None);
    server.crash_and_restart().await;
    phone.retarget(&server.url());
    phone.sync().await;
    assert_eq!(
        phone.store.worker_label(old).unwrap().as_deref(),
        Some("W02 / 李娜")
    );
    let mut labels: Vec<String> = phone
        .store
        .worker_labels()
        .unwrap()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    labels.sort();
    assert_eq!(labels, ["A", "W01 / 张丽华", "W02 / 李娜"]);

    // Not a byte of the other station's labels in the phone's store, though its own are
    // there in plain text once decrypted (so the search can find a label).
    let pages = phone.pages();
    assert!(pages::decrypts(&pages));
    assert_eq!(
        pages::found(&pages, &["张丽华", "王芳", "W01 / 王芳芳"]),
        ["张丽华"]
    );

    // A new phone of the station gets every label in its first download.
    let newcomer = server.device(mine, "C", &server.url()).await;
    newcomer.sync().await;
    assert_eq!(
        newcomer.store.worker_label(zhang).unwrap().as_deref(),
        Some("W01 / 张丽华")
    );
    assert_eq!(newcomer.store.worker_label(wang).unwrap(), None);
    server.stop().await;
}
