//! Trust the record (ADR 0012, ADR 0013): the attacks a device with one enrolled phone can
//! mount, each against a real server on 127.0.0.1 and each refused — forged authorship, a
//! colleague's actor, a finalised visit rewritten four ways, a value the phones cannot read,
//! a squatted station id and a card row of another station — while honest work (a
//! concurrent edit of a visit being finalised, its review and resolution) goes through.
//!
//! The attacker is a real device of the station whose signing key the test holds
//! (`RawDevice`): its pushes are signed and pass the signature check, so what refuses them
//! is the check aimed at each attack.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_tests::raw_device::RawDevice;
use doorstep_tests::*;

/// A device of `station` whose key the test holds, enrolled over HTTP; its token.
async fn attacker(server: &TestServer, station: StationId, seed: u8) -> (RawDevice, String) {
    let code = server.enrolment_code(station, &format!("X{seed}"));
    let e = enroll(&server.url(), &code).await.unwrap();
    let auth = DeviceAuth {
        device: e.device,
        worker: e.worker,
        station: e.station,
        revoked: false,
    };
    (RawDevice::new(auth, seed), e.token)
}

/// Sync a raw device's store over HTTP, as the app would.
async fn sync_raw(server: &TestServer, raw: &RawDevice, token: &str) {
    HttpTransport::new(&server.url(), token, Duration::from_secs(10))
        .unwrap()
        .sync(&raw.store)
        .await
        .unwrap();
}

/// Push a request over HTTP; the response.
async fn post(server: &TestServer, token: &str, req: &SyncRequest) -> SyncResponse {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.url()))
        .bearer_auth(token)
        .body(req.encode())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    SyncResponse::decode(&resp.bytes().await.unwrap()).unwrap()
}

/// The code the server answered for `doc` (`None`: acknowledged).
fn code_of(resp: &SyncResponse, doc: HouseholdId) -> Option<DocErrorCode> {
    match resp.errors.iter().find(|e| e.doc == doc) {
        Some(e) => Some(e.code),
        None => {
            assert!(
                resp.acks.iter().any(|a| a.doc == doc),
                "neither acked nor refused"
            );
            None
        }
    }
}

fn map(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> ObjId {
    doc.get(obj, key).unwrap().unwrap().1
}

fn record(doc: &impl ReadDoc, col: &str, rec: &str) -> ObjId {
    map(doc, &map(doc, &ROOT, col), rec)
}

/// Who a cell or `created` map names.
#[derive(Clone, Copy)]
struct Who {
    worker: WorkerId,
    device: DeviceId,
    at: i64,
}

impl Who {
    fn of(auth: &DeviceAuth) -> Who {
        Who {
            worker: auth.worker,
            device: auth.device,
            at: Timestamp::now().0,
        }
    }
}

fn put_prov(tx: &mut Transaction<'_>, obj: &ObjId, who: Who) {
    tx.put(obj, "by", who.worker.to_string()).unwrap();
    tx.put(obj, "dev", who.device.to_string()).unwrap();
    tx.put(obj, "at", who.at).unwrap();
}

fn put_cell(tx: &mut Transaction<'_>, obj: &ObjId, field: &str, value: Option<&str>, who: Who) {
    let cell = tx.put_object(obj, field, ObjType::Map).unwrap();
    match value {
        Some(v) => tx.put(&cell, "v", v).unwrap(),
        None => tx.put(&cell, "v", automerge::ScalarValue::Null).unwrap(),
    }
    put_prov(tx, &cell, who);
}

/// A whole person record as the app writes it, credited to `who`.
fn put_person(tx: &mut Transaction<'_>, name: &str, who: Who) {
    let persons = map(tx, &ROOT, "persons");
    let rec = tx
        .put_object(&persons, PersonId::new().to_string(), ObjType::Map)
        .unwrap();
    let created = tx.put_object(&rec, "created", ObjType::Map).unwrap();
    put_prov(tx, &created, who);
    for (f, v) in [
        ("name", Some(name)),
        ("sex", Some("unknown")),
        ("birth_date", None),
        ("id_number", None),
        ("relation", Some("邻居")),
        ("guardian", Some("false")),
        ("school", None),
        ("grade", None),
    ] {
        put_cell(tx, &rec, f, v, who);
    }
    tx.put_object(&rec, "categories", ObjType::Map).unwrap();
}

/// Edit a copy of the attacker's document (as of `at`) and push what is new, signed by the
/// attacker (or with `sign` replaced).
/// Who forges: the server it talks to, the attacker's device and token.
struct Att<'a> {
    server: &'a TestServer,
    x: &'a RawDevice,
    token: &'a str,
}

/// One change made on a copy of a document.
type Edit = Box<dyn FnOnce(&mut Transaction<'_>)>;

async fn forge(
    att: &Att<'_>,
    hh: HouseholdId,
    at: Option<&[ChangeHash]>,
    actor: Option<ActorId>,
    edit: impl FnOnce(&mut Transaction<'_>),
    sign: impl FnOnce(&RawDevice, &[automerge::Change]) -> Vec<AuthorSignature>,
) -> Option<DocErrorCode> {
    let (server, x, token) = (att.server, att.x, att.token);
    let base = x.document(hh);
    let mut doc = match at {
        Some(h) => base.fork_at(h).unwrap(),
        None => base.fork(),
    }
    .with_actor(actor.unwrap_or_else(|| x.actor.clone()));
    let since = doc.get_heads();
    let mut tx = doc.transaction();
    edit(&mut tx);
    tx.commit();
    let changes = doc.get_changes(&since);
    let mut req = x.request(hh, &changes);
    req.push[0].signatures = sign(x, &changes);
    code_of(&post(server, token, &req).await, hh)
}

fn signed(x: &RawDevice, c: &[automerge::Change]) -> Vec<AuthorSignature> {
    x.sign(HouseholdId::from_uuid(uuid::Uuid::nil()), c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_authorship_is_refused_and_never_reaches_a_colleague() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let url = server.url();
    let w01 = server.device(sa, "W01", &url).await;
    let other = server.device(sb, "B01", &url).await;
    let hh = w01.new_household("HH-000001");
    w01.sync().await;
    other.sync().await;
    let (x, token) = attacker(&server, sa, 0x51).await;
    let att = Att {
        server: &server,
        x: &x,
        token: &token,
    };
    sync_raw(&server, &x, &token).await;
    let w01_auth = server.store.device(w01.device_id).unwrap().unwrap();
    let b01_auth = server.store.device(other.device_id).unwrap().unwrap();
    let me = Who::of(&x.auth);
    let as_w01 = Who::of(&w01_auth);
    let as_b01 = Who::of(&b01_auth);
    let by_w01_on_my_device = Who {
        device: x.auth.device,
        ..as_w01
    };
    let my_sig = |x: &RawDevice, c: &[automerge::Change]| x.sign(hh, c);

    // A new person "created by W01".
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| put_person(tx, "冒名", as_w01),
        my_sig,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a record credited to a colleague"
    );
    // The same naming W01 but the attacker's device, and a worker of another station.
    for who in [by_w01_on_my_device, as_b01] {
        let refused = forge(
            &att,
            hh,
            None,
            None,
            |tx| put_person(tx, "冒名", who),
            my_sig,
        )
        .await;
        assert_eq!(refused, Some(DocErrorCode::Unattributed));
    }
    // A need "孩子说谎，不需要保护" put into the household's summary cell as W01.
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(tx, &h, "address", Some("孩子说谎，不需要保护"), as_w01);
        },
        my_sig,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a cell credited to a colleague"
    );
    // W01's values are lean (ADR 0035): credited to W01's actor by the document's registry.
    // W01's entry rewritten (every value of W01's would read as the attacker's, or the
    // attacker's own entry pointed at W01).
    let w01_key = ActorId::from(w01.store.actor_id()).to_hex_string();
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let registry = map(tx, &ROOT, "actors");
            let entry = map(tx, &registry, &w01_key);
            tx.put(&entry, "by", me.worker.to_string()).unwrap();
        },
        my_sig,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a colleague's registry entry edited in place"
    );
    // The attacker's own actor registered as W01, with a lean value (it would read as
    // W01's word).
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let registry = map(tx, &ROOT, "actors");
            let key = x.actor.to_hex_string();
            let entry = tx
                .put_object(&registry, key.as_str(), ObjType::Map)
                .unwrap();
            tx.put(&entry, "by", as_w01.worker.to_string()).unwrap();
            tx.put(&entry, "dev", as_w01.device.to_string()).unwrap();
            let h = map(tx, &ROOT, "household");
            tx.put(&h, "address", "孩子说谎，不需要保护").unwrap();
        },
        my_sig,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "an actor registered as a colleague"
    );
    // A lean value with no registry entry at all (its author could not be read).
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            tx.put(&h, "address", "篡改").unwrap();
        },
        my_sig,
    )
    .await;
    // The validator reads every value with its author first: one it cannot credit makes
    // the document unreadable, refused as invalid before provenance is checked.
    assert_eq!(
        refused,
        Some(DocErrorCode::Invalid),
        "a value of an unregistered actor"
    );
    // Dated a year ahead (it would win every last-writer-wins field for a year).
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(
                tx,
                &h,
                "address",
                Some("未来"),
                Who {
                    at: me.at + 365 * 86_400_000,
                    ..me
                },
            );
        },
        my_sig,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a time far in the future"
    );
    // W01's actor (not a secret: it is in every change W01 made) with the attacker's key,
    // and an honest-looking change left unsigned.
    let w01_actor = ActorId::from(w01.store.actor_id());
    let refused = forge(
        &att,
        hh,
        None,
        Some(w01_actor.clone()),
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(tx, &h, "address", Some("冒名"), as_w01);
        },
        |x, c| {
            c.iter()
                .map(|c| AuthorSignature {
                    actor: w01_actor.to_bytes().to_vec(),
                    signature: x.key.sign(hh.as_uuid(), &c.hash()),
                })
                .collect()
        },
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a colleague's actor"
    );
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(tx, &h, "address", Some("无签名"), me);
        },
        |_, _| Vec::new(),
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "an unsigned change"
    );
    // A signature for another document does not vouch for this one.
    let refused = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(tx, &h, "address", Some("错签"), me);
        },
        signed,
    )
    .await;
    assert_eq!(
        refused,
        Some(DocErrorCode::Unattributed),
        "a signature over another document"
    );

    // A new household whose root `created` names W01: refused (code 1 at a new id).
    let fake = HouseholdId::new();
    let mut doc = Automerge::new().with_actor(x.actor.clone());
    doc.transact(|tx| {
        tx.put(ROOT, "schema", 1_i64)?;
        tx.put(ROOT, "kind", "household")?;
        tx.put(ROOT, "id", fake.to_string())?;
        tx.put(ROOT, "station", sa.to_string())?;
        let created = tx.put_object(ROOT, "created", ObjType::Map)?;
        put_prov(tx, &created, as_w01);
        let h = tx.put_object(ROOT, "household", ObjType::Map)?;
        put_cell(tx, &h, "code", Some("HH-FAKE"), as_w01);
        Ok::<_, automerge::AutomergeError>(())
    })
    .unwrap();
    let resp = post(&server, &token, &x.request(fake, &doc.get_changes(&[]))).await;
    assert_eq!(
        code_of(&resp, fake),
        Some(DocErrorCode::NotFoundOrForbidden)
    );

    // The honest edit still goes through, and W01 sees only what was really written.
    let ok = forge(
        &att,
        hh,
        None,
        None,
        |tx| {
            let h = map(tx, &ROOT, "household");
            put_cell(tx, &h, "address", Some("石桥村二组"), me);
        },
        my_sig,
    )
    .await;
    assert_eq!(ok, None, "an honest edit");
    w01.sync().await;
    let seen = w01.store.household(hh).unwrap();
    assert_eq!(seen.address, "石桥村二组");
    assert!(seen.persons.is_empty(), "no forged person reached W01");
    assert!(w01.store.household(fake).is_err());
    let history = w01
        .store
        .field_history(hh, &FieldRef::new(EntityRef::Household, "address"))
        .unwrap();
    assert_eq!(
        history[0].provenance.worker, x.auth.worker,
        "credited to its real author"
    );
}

/// A draft visit typed and finalised by W01; the attacker has synced it.
struct Finalised {
    server: TestServer,
    w01: Device,
    x: RawDevice,
    token: String,
    hh: HouseholdId,
    visit: VisitId,
    /// Heads of the household just before the finalisation.
    before_final: Vec<ChangeHash>,
}

impl Finalised {
    fn att(&self) -> Att<'_> {
        Att {
            server: &self.server,
            x: &self.x,
            token: &self.token,
        }
    }
}

const NOTE: &str = "孩子手臂有淤青，疑似被父亲殴打，需上报";

async fn finalised() -> Finalised {
    let server = TestServer::start().await;
    let sa = server.station("A站");
    let url = server.url();
    let w01 = server.device(sa, "W01", &url).await;
    let hh = w01.new_household("HH-000001");
    let visit = w01.visit(hh);
    w01.type_into(hh, visit, Section::Concerns, NOTE);
    w01.sync().await;
    let before_final = w01.store.heads(hh).unwrap();
    w01.store.finalise_visit(hh, visit).unwrap();
    w01.sync().await;
    let (x, token) = attacker(&server, sa, 0x52).await;
    sync_raw(&server, &x, &token).await;
    Finalised {
        server,
        w01,
        x,
        token,
        hh,
        visit,
        before_final,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finalised_visit_cannot_be_rewritten_four_ways() {
    let f = finalised().await;
    let (hh, v) = (f.hh, f.visit.to_string());
    let me = Who::of(&f.x.auth);
    let rewrite = |tx: &mut Transaction<'_>, v: &str| {
        let text = map(tx, &record(tx, "visits", v), "concerns");
        let n = tx.length(&text);
        tx.splice_text(&text, 0, n as isize, "孩子情况良好，无需干预")
            .unwrap();
    };
    let sig = |x: &RawDevice, c: &[automerge::Change]| x.sign(hh, c);
    let ways: [(&str, Edit); 4] = [
        ("rewrite and re-seal", {
            let v = v.clone();
            Box::new(move |tx| {
                rewrite(tx, &v);
                let rec = record(tx, "visits", &v);
                put_cell(tx, &rec, "seal", Some("0000000000000000"), me);
            })
        }),
        ("rewrite and delete the seal", {
            let v = v.clone();
            Box::new(move |tx| {
                rewrite(tx, &v);
                let rec = record(tx, "visits", &v);
                tx.delete(&rec, "seal").unwrap();
            })
        }),
        ("status back to draft, then rewrite", {
            let v = v.clone();
            Box::new(move |tx| {
                let rec = record(tx, "visits", &v);
                put_cell(tx, &rec, "status", Some("draft"), me);
                rewrite(tx, &v);
            })
        }),
        ("plain rewrite", {
            let v = v.clone();
            Box::new(move |tx| rewrite(tx, &v))
        }),
    ];
    for (what, edit) in ways {
        let got = forge(&f.att(), hh, None, None, edit, sig).await;
        assert_eq!(got, Some(DocErrorCode::Finalised), "{what}");
    }
    // The note as finalised is what every phone has.
    let fresh = f
        .server
        .device(f.w01.store.station(), "W03", &f.server.url())
        .await;
    fresh.sync().await;
    assert_eq!(fresh.section_text(hh, f.visit, Section::Concerns), NOTE);
    assert!(fresh.store.conflicts(None).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_concurrent_with_finalisation_is_kept_for_review_and_resolved() {
    let f = finalised().await;
    let (hh, v) = (f.hh, f.visit.to_string());
    // Typed on a phone that had not yet heard of the finalisation.
    let before = f.before_final.clone();
    let got = forge(
        &f.att(),
        hh,
        Some(&before),
        None,
        move |tx| {
            let text = map(tx, &record(tx, "visits", &v), "concerns");
            let n = tx.length(&text);
            tx.splice_text(&text, n, 0, "（已联系村委会）").unwrap();
        },
        |x, c| x.sign(hh, c),
    )
    .await;
    assert_eq!(got, None, "a concurrent edit is accepted");
    f.w01.sync().await;
    let conflicts = f.w01.store.conflicts(Some(hh)).unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].kind, ConflictKind::EditedAfterFinalise);
    // The supervisor accepts the merged text: a resolution, the visit itself untouched.
    f.w01
        .store
        .resolve_conflict(hh, &conflicts[0].field, None)
        .unwrap();
    f.w01.sync().await;
    assert!(
        f.w01.store.unsynced_households().unwrap().is_empty(),
        "the resolution is accepted"
    );
    assert!(f.w01.store.conflicts(Some(hh)).unwrap().is_empty());
    let fresh = f
        .server
        .device(f.w01.store.station(), "W03", &f.server.url())
        .await;
    fresh.sync().await;
    assert!(fresh.store.conflicts(Some(hh)).unwrap().is_empty());
    assert_eq!(
        fresh.section_text(hh, f.visit, Section::Concerns),
        format!("{NOTE}（已联系村委会）")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_no_phone_can_read_are_refused_and_the_station_keeps_syncing() {
    let server = TestServer::start().await;
    let sa = server.station("A站");
    let url = server.url();
    let w01 = server.device(sa, "W01", &url).await;
    let hh = w01.new_household("HH-000001");
    let visit = w01.visit(hh);
    w01.sync().await;
    let (x, token) = attacker(&server, sa, 0x53).await;
    let att = Att {
        server: &server,
        x: &x,
        token: &token,
    };
    sync_raw(&server, &x, &token).await;
    let me = Who::of(&x.auth);
    let v = visit.to_string();
    let sig = |x: &RawDevice, c: &[automerge::Change]| x.sign(hh, c);
    let got = forge(
        &att,
        hh,
        None,
        None,
        move |tx| {
            let rec = record(tx, "visits", &v);
            put_cell(tx, &rec, "kind", Some("x"), me);
        },
        sig,
    )
    .await;
    assert_eq!(got, Some(DocErrorCode::Invalid), "an unknown visit kind");
    let got = forge(
        &att,
        hh,
        None,
        None,
        |tx| tx.delete(ROOT, "schema").unwrap(),
        sig,
    )
    .await;
    assert_eq!(got, Some(DocErrorCode::Invalid), "no schema");
    let got = forge(
        &att,
        hh,
        None,
        None,
        |tx| tx.put(ROOT, "schema", "二").unwrap(),
        sig,
    )
    .await;
    assert_eq!(
        got,
        Some(DocErrorCode::Invalid),
        "a schema that is not a number"
    );
    // Every phone of the station still reads the household and syncs; a new phone
    // bootstraps.
    w01.type_into(hh, visit, Section::Concerns, "正常记录");
    w01.sync().await;
    assert!(w01.store.household(hh).is_ok());
    let fresh = server.device(sa, "W03", &url).await;
    fresh.sync().await;
    assert_eq!(fresh.section_text(hh, visit, Section::Concerns), "正常记录");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_ids_cannot_be_squatted_and_card_rows_stay_per_household() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let (x, token) = attacker(&server, sa, 0x54).await;
    let att = Att {
        server: &server,
        x: &x,
        token: &token,
    };
    // A "household" at station B's id (its station document's id, not yet written).
    let squat = HouseholdId::from_uuid(*sb.as_uuid());
    let made = x
        .store
        .create_household(&NewHousehold {
            code: "HH-SQUAT".into(),
            ..Default::default()
        })
        .unwrap();
    let doc = x.document(made);
    // The same content under B's id: refused like any forbidden id.
    let mut req = x.request(made, &doc.get_changes(&[]));
    req.push[0].doc = squat;
    req.push[0].signatures = x.sign(squat, &doc.get_changes(&[]));
    let resp = post(&server, &token, &req).await;
    assert_eq!(
        code_of(&resp, squat),
        Some(DocErrorCode::NotFoundOrForbidden)
    );
    // B's admin can still register card batches (its station document is B's).
    doorstep_server::cards::add_batch(server.store.as_ref(), sb, "HG", 1, 100).unwrap();

    // Card rows: a household of A carrying a card id that B's household has adds its own
    // row; B's row is not replaced.
    let url = server.url();
    let b1 = server.device(sb, "B1", &url).await;
    let hb = b1.new_household("HH-B00001");
    b1.sync().await;
    let serial = CardSerial::new("HG", 1).unwrap().to_string();
    let card_b = b1
        .store
        .record_card_issuance(
            hb,
            &NewCardIssuance {
                serial: serial.clone(),
                visit: None,
                person: None,
                replaces: None,
            },
        )
        .unwrap();
    b1.sync().await;
    assert!(b1.store.unsynced_households().unwrap().is_empty());
    let me = Who::of(&x.auth);
    sync_raw(&server, &x, &token).await;
    let ha = made;
    let serial_a = serial.clone();
    let got = forge(
        &att,
        ha,
        None,
        None,
        move |tx| {
            let serial = serial_a;
            let cards = match tx.get(ROOT, "cards").unwrap() {
                Some((_, c)) => c,
                None => tx.put_object(ROOT, "cards", ObjType::Map).unwrap(),
            };
            let rec = tx
                .put_object(&cards, card_b.to_string(), ObjType::Map)
                .unwrap();
            let created = tx.put_object(&rec, "created", ObjType::Map).unwrap();
            put_prov(tx, &created, me);
            for (f, v) in [
                ("serial", Some(serial.as_str())),
                ("visit", None),
                ("person", None),
                ("replaces", None),
                ("status", Some("issued")),
            ] {
                put_cell(tx, &rec, f, v, me);
            }
        },
        |x, c| x.sign(ha, c),
    )
    .await;
    assert_eq!(
        got, None,
        "A's own card record (any serial: A has no batches)"
    );
    let rows = server.store.cards_by_serial(sb, &serial).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].household, hb, "B's row is still B's");
}

/// Issue 13, item 5: a push at an id of another station gets the answer a push at an
/// absent id gets, and goes through the same work (decoded and checked against an empty
/// document that is then thrown away; see `sync-server/src/sync/push.rs`) — so neither the
/// code nor the time tells a device that the id exists. The time is measured by
/// `tests/benches/oracle.rs`, not here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_id_answers_like_an_absent_one() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let (x, token) = attacker(&server, sa, 0x4f).await;
    let url = server.url();
    let b1 = server.device(sb, "B1", &url).await;
    let foreign = b1.new_household("HH-B00002");
    b1.sync().await;
    let b_heads = server
        .store
        .load_document(foreign)
        .unwrap()
        .map(|d| d.changes.len());

    let made = x
        .store
        .create_household(&NewHousehold {
            code: "HH-A00001".into(),
            ..Default::default()
        })
        .unwrap();
    let own = x.document(made);
    // The attacker's creation, re-aimed at `target`: the same changes, plus one of the
    // attacker's that names `target` as the document's id (so the header matches).
    let aimed = |target: HouseholdId| {
        let mut doc = own.fork().with_actor(x.actor.clone());
        let mut tx = doc.transaction();
        tx.put(ROOT, "id", target.to_string()).unwrap();
        tx.commit();
        doc.get_changes(&[])
    };
    type Variant<'a> = (&'static str, Box<dyn Fn(HouseholdId) -> SyncRequest + 'a>);
    let variants: Vec<Variant<'_>> = vec![
        (
            "bytes that are no change",
            Box::new(|id| {
                let mut req = x.request(made, &own.get_changes(&[]));
                req.push[0].doc = id;
                req.push[0].changes = vec![b"\x85o\x4a\x83 not a change".to_vec()];
                req.push[0].signatures.clear();
                req
            }),
        ),
        (
            "content naming another id",
            Box::new(|id| {
                let changes = own.get_changes(&[]);
                let mut req = x.request(made, &changes);
                req.push[0].doc = id;
                req.push[0].signatures = x.sign(id, &changes);
                req
            }),
        ),
        (
            "unsigned",
            Box::new(|id| {
                let changes = aimed(id);
                let mut req = x.request(made, &changes);
                req.push[0].doc = id;
                req.push[0].signatures.clear();
                req
            }),
        ),
        (
            "signed for another document",
            Box::new(|id| {
                let changes = aimed(id);
                let mut req = x.request(made, &changes);
                req.push[0].doc = id;
                req.push[0].signatures = x.sign(made, &changes);
                req
            }),
        ),
    ];
    for (what, req) in &variants {
        let absent = HouseholdId::new();
        let at_absent = code_of(&post(&server, &token, &req(absent)).await, absent);
        let at_foreign = code_of(&post(&server, &token, &req(foreign)).await, foreign);
        assert_eq!(
            at_foreign, at_absent,
            "{what}: the answer at a foreign id differs from an absent id's"
        );
        assert_eq!(
            at_foreign,
            Some(DocErrorCode::NotFoundOrForbidden),
            "{what}"
        );
    }
    // A well-formed, signed creation at the foreign id is refused and B's document is
    // untouched. (At an absent id the same creation is a new household: an answer cannot
    // differ less without acknowledging what is then thrown away — see docs/protocol.md.)
    let changes = aimed(foreign);
    let mut req = x.request(made, &changes);
    req.push[0].doc = foreign;
    req.push[0].signatures = x.sign(foreign, &changes);
    assert_eq!(
        code_of(&post(&server, &token, &req).await, foreign),
        Some(DocErrorCode::NotFoundOrForbidden)
    );
    let absent = HouseholdId::new();
    let changes = aimed(absent);
    let mut req = x.request(made, &changes);
    req.push[0].doc = absent;
    req.push[0].signatures = x.sign(absent, &changes);
    assert_eq!(
        code_of(&post(&server, &token, &req).await, absent),
        None,
        "the same creation at an absent id is accepted (so the refusal above is scope's)"
    );
    assert_eq!(
        server
            .store
            .load_document(foreign)
            .unwrap()
            .map(|d| d.changes.len()),
        b_heads
    );
    assert_eq!(
        server.store.document_station(foreign).unwrap(),
        Some(sb),
        "B's household is still B's"
    );
}

/// Phones verify what they pull (ADR 0012): a server that stores what it should have
/// refused — here written straight into its log, as a compromised server would — cannot
/// make a colleague's phone show it. A change no signature of its author covers, and a
/// signed change that credits someone else, each quarantine their household on the phone
/// with the reason; an honest household in the same response applies, and the sync
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_server_cannot_make_a_phone_show_what_its_author_did_not_write() {
    let server = TestServer::start().await;
    let sa = server.station("A站");
    let url = server.url();
    let w01 = server.device(sa, "W01", &url).await;
    let w02 = server.device(sa, "W02", &url).await;
    let forged_name = w01.new_household("HH-000001");
    let unsigned = w01.new_household("HH-000002");
    w01.sync().await;
    w02.sync().await;
    let (x, token) = attacker(&server, sa, 0x5a).await;
    sync_raw(&server, &x, &token).await;
    let as_w01 = Who::of(&server.store.device(w01.device_id).unwrap().unwrap());

    // What the server should have refused, appended to its log without the checks.
    let smuggle = |hh: HouseholdId, actor: ActorId, signed: bool| {
        let base = x.document(hh);
        let mut doc = base.fork().with_actor(actor);
        let since = doc.get_heads();
        let mut tx = doc.transaction();
        put_person(&mut tx, "冒名顶替", as_w01);
        tx.commit();
        let changes = doc.get_changes(&since);
        let append = doorstep_server::store::DocAppend {
            doc: hh,
            kind: doorstep_core::doc::DocKind::Household,
            changes: changes
                .iter()
                .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                .collect(),
            snapshot: None,
            cards: Vec::new(),
            expected_seq: None,
            signatures: if signed {
                x.sign(hh, &changes)
            } else {
                Vec::new()
            },
        };
        server.store.commit(sa, x.auth.device, &[append]).unwrap();
    };
    // Signed by the attacker's own key, but crediting W01.
    smuggle(forged_name, x.actor.clone(), true);
    // No signature at all, under an actor nobody owns.
    smuggle(unsigned, ActorId::random(), false);
    // An honest edit in the same response.
    let honest = w01.new_household("HH-000003");
    w01.sync().await;

    let outcome = w02.sync().await;
    let quarantined = w02.store.quarantined().unwrap();
    let reason = |hh| {
        quarantined
            .iter()
            .find(|q| q.household == hh)
            .map(|q| q.reason.clone())
    };
    for hh in [forged_name, unsigned] {
        let why = reason(hh).unwrap_or_else(|| panic!("{hh} not quarantined: {outcome:?}"));
        assert!(why.contains("unattributed"), "{why}");
        let names: Vec<String> = w02
            .store
            .household(hh)
            .unwrap()
            .persons
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert!(
            !names.iter().any(|n| n == "冒名顶替"),
            "the phone shows what W01 never wrote: {names:?}"
        );
    }
    assert_eq!(reason(honest), None);
    assert_eq!(w02.store.household(honest).unwrap().code, "HH-000003");

    // A phone enrolled now receives each household whole, as a snapshot: the changes
    // inside it are checked as pulled ones are.
    let w03 = server.device(sa, "W03", &url).await;
    let outcome = w03.sync().await;
    let quarantined = w03.store.quarantined().unwrap();
    for hh in [forged_name, unsigned] {
        let why = quarantined
            .iter()
            .find(|q| q.household == hh)
            .map(|q| q.reason.clone())
            .unwrap_or_else(|| panic!("{hh} not quarantined in a snapshot: {outcome:?}"));
        assert!(why.contains("unattributed"), "{why}");
        let shown = w03
            .store
            .household(hh)
            .map(|h| h.persons.iter().any(|p| p.name == "冒名顶替"));
        assert!(
            !matches!(shown, Ok(true)),
            "a new phone shows what W01 never wrote"
        );
    }
    assert_eq!(w03.store.household(honest).unwrap().code, "HH-000003");
}

/// A published survey version is frozen (ADR 0022) on the phones too: a server that stores
/// a change rewriting one — here appended straight to its log, as a compromised server
/// would, signed and attributed to the attacker's own device so that only the frozen check
/// can catch it — cannot make a colleague's phone count answers against other questions.
/// The phone quarantines the survey with the reason, keeps the questions as published, and
/// the rest of the response applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_server_cannot_change_a_published_survey_version_on_a_phone() {
    let server = TestServer::start().await;
    let sa = server.station("A站");
    let url = server.url();
    let w01 = server.device(sa, "W01", &url).await;
    let w02 = server.device(sa, "W02", &url).await;
    let question = Question {
        id: "living".into(),
        label: "居住情况".into(),
        kind: QuestionKind::Single {
            options: vec![SurveyOption {
                code: "alone".into(),
                label: "独居".into(),
            }],
        },
    };
    let survey = w01
        .store
        .create_survey("需求调查", std::slice::from_ref(&question))
        .unwrap();
    let doc_id = HouseholdId::from_uuid(*survey.as_uuid());
    w01.sync().await;
    w02.sync().await;
    assert_eq!(
        w02.store.survey(survey).unwrap().versions[0].questions[0].label,
        "居住情况"
    );
    let (x, token) = attacker(&server, sa, 0x6b).await;
    sync_raw(&server, &x, &token).await;

    let base = x.document(doc_id);
    let mut doc = base.fork().with_actor(x.actor.clone());
    let since = doc.get_heads();
    let mut tx = doc.transaction();
    let versions = map(&tx, &map(&tx, &ROOT, "survey"), "versions");
    let key = tx.keys(&versions).next().unwrap();
    let v = map(&tx, &versions, &key);
    // The attacker's actor registered honestly (ADR 0035), so that only the freeze stops it.
    let registry = map(&tx, &ROOT, "actors");
    let entry = tx
        .put_object(&registry, x.actor.to_hex_string(), ObjType::Map)
        .unwrap();
    tx.put(&entry, "by", x.auth.worker.to_string()).unwrap();
    tx.put(&entry, "dev", x.auth.device.to_string()).unwrap();
    tx.put(
        &v,
        "questions",
        r#"[{"id":"living","label":"是否愿意搬走","type":"single","options":[{"code":"alone","label":"愿意"}]}]"#,
    )
    .unwrap();
    tx.commit();
    let changes = doc.get_changes(&since);
    let append = doorstep_server::store::DocAppend {
        doc: doc_id,
        kind: doorstep_core::doc::DocKind::Work(WorkKind::Survey),
        changes: changes
            .iter()
            .map(|c| (c.hash(), c.raw_bytes().to_vec()))
            .collect(),
        snapshot: None,
        cards: Vec::new(),
        expected_seq: None,
        signatures: x.sign(doc_id, &changes),
    };
    server.store.commit(sa, x.auth.device, &[append]).unwrap();
    // An honest household in the same response.
    let honest = w01.new_household("HH-000009");
    w01.sync().await;

    let outcome = w02.sync().await;
    let why = w02
        .store
        .quarantined()
        .unwrap()
        .into_iter()
        .find(|q| q.household == doc_id)
        .map(|q| q.reason)
        .unwrap_or_else(|| panic!("the survey was not quarantined: {outcome:?}"));
    assert!(why.contains("frozen"), "{why}");
    assert_eq!(
        w02.store.survey(survey).unwrap().versions[0].questions[0].label,
        "居住情况",
        "the phone counts against the questions as published"
    );
    assert_eq!(w02.store.household(honest).unwrap().code, "HH-000009");
}
