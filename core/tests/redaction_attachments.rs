//! Redaction and attachments (issue 20, ADR 0029): a generation drops the references of the
//! attachments of a removed person or visit (and one named alone, `attachment/<id>`), keeps
//! every other, and a phone's reference attached offline to what was redacted goes in the
//! rebase.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use automerge::{ActorId, Automerge, Change};
use common::*;
use doorstep_core::doc::attachments::referenced_hashes;
use doorstep_core::doc::generation::{self, Redaction};
use doorstep_core::*;

fn document(store: &Store, hh: HouseholdId) -> Automerge {
    let mut doc = Automerge::new();
    let changes: Vec<Change> = store
        .export_changes(hh, &[])
        .unwrap()
        .iter()
        .map(|b| Change::from_bytes(b.clone()).unwrap())
        .collect();
    doc.apply_changes(changes).unwrap();
    doc
}

fn attach(
    s: &Store,
    hh: HouseholdId,
    record: EntityRef,
    kind: AttachmentKind,
    bytes: &[u8],
) -> Attachment {
    let new = NewAttachment {
        record,
        kind,
        mime: "image/jpeg".into(),
    };
    s.add_attachment(hh, &new, bytes).unwrap()
}

fn hashes(doc: &Automerge, hh: HouseholdId) -> BTreeSet<BlobHash> {
    referenced_hashes(doc, hh).unwrap()
}

struct Case {
    _dir: tempfile::TempDir,
    a: Store,
    hh: HouseholdId,
    person: PersonId,
    visit: VisitId,
    of_person: Attachment,
    of_visit: Attachment,
    signature: Attachment,
    of_household: Attachment,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), "a.db", StationId::new());
    let hh = household(&a, "HH-000001");
    let person = a
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    let visit = visit(&a, hh, "2026-11-20");
    let photo = AttachmentKind::Photo;
    let of_person = attach(
        &a,
        hh,
        EntityRef::Person(person),
        photo,
        b"the child's photo",
    );
    let of_visit = attach(&a, hh, EntityRef::Visit(visit), photo, b"the room");
    let signature = attach(
        &a,
        hh,
        EntityRef::Visit(visit),
        AttachmentKind::Signature,
        b"a guardian's signature",
    );
    let of_household = attach(&a, hh, EntityRef::Household, photo, b"the house");
    Case {
        _dir: dir,
        a,
        hh,
        person,
        visit,
        of_person,
        of_visit,
        signature,
        of_household,
    }
}

#[test]
fn a_removed_record_takes_its_attachments_and_one_can_be_redacted_alone() {
    let c = case();
    let old = document(&c.a, c.hh);
    assert_eq!(hashes(&old, c.hh).len(), 4, "control");
    let all = |xs: &[&Attachment]| xs.iter().map(|a| a.hash).collect::<BTreeSet<_>>();

    let person = Redaction::parse(&format!("person/{}", c.person)).unwrap();
    let g = generation::build(&old, c.hh, &[person], 1).unwrap();
    doorstep_core::doc::verify::validate(&g.doc).unwrap();
    assert_eq!(
        hashes(&g.doc, c.hh),
        all(&[&c.of_visit, &c.signature, &c.of_household])
    );

    let visit = Redaction::parse(&format!("visit/{}", c.visit)).unwrap();
    let g = generation::build(&old, c.hh, &[visit], 1).unwrap();
    assert_eq!(hashes(&g.doc, c.hh), all(&[&c.of_person, &c.of_household]));

    // A field of a record leaves its attachments alone.
    let field = Redaction::parse(&format!("person/{}/relation", c.person)).unwrap();
    let g = generation::build(&old, c.hh, &[field], 1).unwrap();
    assert_eq!(hashes(&g.doc, c.hh).len(), 4);

    let text = format!("attachment/{}", c.of_household.id);
    let one = Redaction::parse(&text).unwrap();
    assert_eq!(one.to_string(), text);
    let g = generation::build(&old, c.hh, &[one], 1).unwrap();
    doorstep_core::doc::verify::validate(&g.doc).unwrap();
    assert_eq!(
        hashes(&g.doc, c.hh),
        all(&[&c.of_person, &c.of_visit, &c.signature])
    );
    let hex = c.of_household.hash.to_hex();
    assert!(!String::from_utf8_lossy(&g.doc.save_nocompress()).contains(&hex));
    assert!(String::from_utf8_lossy(&old.save_nocompress()).contains(&hex));
}

#[test]
fn bad_attachment_redactions_are_refused() {
    let c = case();
    let old = document(&c.a, c.hh);
    let upper = format!("attachment/{}", c.of_visit.id).to_uppercase();
    for bad in [
        "attachment",
        "attachment/",
        "attachment/x",
        "attachment/../x",
        upper.as_str(),
        "attachment/0190f4a2-0000-7000-8000-000000000000/kind",
    ] {
        assert!(
            matches!(Redaction::parse(bad), Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
    }
    let absent = Redaction::parse(&format!("attachment/{}", AttachmentId::new())).unwrap();
    assert!(matches!(
        generation::build(&old, c.hh, &[absent], 1),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn an_attachment_made_offline_on_a_redacted_record_goes_in_the_rebase() {
    let c = case();
    let base = document(&c.a, c.hh);
    // Offline, after what the server redacts from: one more photo of the child (removed on
    // the server) and one of the house (kept).
    let photo = AttachmentKind::Photo;
    let lost = attach(
        &c.a,
        c.hh,
        EntityRef::Person(c.person),
        photo,
        b"another of the child",
    );
    let kept = attach(&c.a, c.hh, EntityRef::Household, photo, b"the yard");
    let mine = document(&c.a, c.hh);
    let person = Redaction::parse(&format!("person/{}", c.person)).unwrap();
    for conservative in [false, true] {
        let mut g = generation::build(&base, c.hh, std::slice::from_ref(&person), 1).unwrap();
        let rebased = generation::rebase(
            &mine,
            &base.get_heads(),
            &mut g.doc,
            c.hh,
            &ActorId::from(c.a.actor_id()),
            conservative,
        )
        .unwrap();
        assert!(rebased.dropped >= 1, "{rebased:?}");
        let got = hashes(&g.doc, c.hh);
        assert!(got.contains(&kept.hash), "conservative: {conservative}");
        assert!(!got.contains(&lost.hash), "conservative: {conservative}");
        assert!(!got.contains(&c.of_person.hash));
        doorstep_core::doc::verify::validate(&g.doc).unwrap();
    }
}
