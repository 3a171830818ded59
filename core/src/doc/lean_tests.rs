//! Lean cells (ADR 0035): a value is a scalar under its field, credited to the registered
//! owner of the actor that wrote it at its change's time; legacy cells `{v, by, dev, at}`
//! still read beside them; the registry of actors cannot be forged; a generation keeps
//! every value's provenance.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ObjType, ReadDoc, ScalarValue, ROOT};

use super::cells::{
    entity_obj, read_cell, read_set, read_versions, registered, set_add, write_cell,
    write_legacy_cell, ACTORS,
};
use super::verify::{check_provenance, Author, Violation};
use super::write;
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::{EntityRef, FieldRef, Provenance};
use crate::model::records::NewHousehold;
use crate::model::time::Timestamp;

const T1: i64 = 1_780_000_000_000;
const T2: i64 = T1 + 60_000;
const T3: i64 = T1 + 120_000;

fn prov(at: i64) -> Provenance {
    Provenance {
        worker: WorkerId::new(),
        device: DeviceId::new(),
        at: Timestamp(at),
    }
}

fn author(p: &Provenance) -> Author {
    Author {
        worker: p.worker,
        device: p.device,
    }
}

fn actor(n: u8) -> ActorId {
    ActorId::from(vec![n; 16])
}

/// A household made by actor 1 as `p`, one change.
fn household(p: &Provenance) -> (Automerge, HouseholdId) {
    let id = HouseholdId::new();
    let mut doc = Automerge::new().with_actor(actor(1));
    let mut tx = doc.transaction();
    let new = NewHousehold {
        code: "HH-000001".into(),
        ..Default::default()
    };
    write::create_household(&mut tx, id, StationId::new(), &new, p).unwrap();
    tx.commit_with(CommitOptions::default().with_time(p.at.0));
    (doc, id)
}

fn hh_obj(doc: &Automerge) -> automerge::ObjId {
    entity_obj(doc, EntityKind::Household, None)
        .unwrap()
        .unwrap()
}

/// One change by `doc`'s actor at `at`, made by `edit`; returned as applied.
fn change(
    doc: &mut Automerge,
    at: i64,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Change {
    let mut tx = doc.transaction();
    edit(&mut tx);
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(at));
    doc.get_change_by_hash(&hash.unwrap()).unwrap()
}

#[test]
fn a_lean_value_is_credited_to_its_actors_owner_at_its_changes_time() {
    let pa = prov(T1);
    let (mut a, _) = household(&pa);
    let obj = hh_obj(&a);
    let mut b = a.fork().with_actor(actor(2));
    let pb = prov(T2);
    // Concurrently: A writes the village at T3, B at T2.
    let pa3 = Provenance {
        at: Timestamp(T3),
        ..pa
    };
    change(&mut a, T3, |tx| {
        write_cell(tx, &obj, "village", Some("石桥村"), &pa3).unwrap()
    });
    change(&mut b, T2, |tx| {
        write_cell(tx, &obj, "village", Some("河西村"), &pb).unwrap()
    });
    a.merge(&mut b).unwrap();
    let versions = read_versions(&a, &obj, "village").unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    // The shown value is the latest; each carries its writer and its change's time.
    assert_eq!(versions[0].value.as_deref(), Some("石桥村"));
    assert_eq!(versions[0].provenance, pa3);
    assert_eq!(versions[1].value.as_deref(), Some("河西村"));
    assert_eq!(versions[1].provenance, pb);
    assert_eq!(
        read_cell(&a, &obj, "village").unwrap().as_deref(),
        Some("石桥村")
    );
    // The value is a scalar: no `{v, by, dev, at}` map per write.
    let (value, _) = a.get(&obj, "village").unwrap().unwrap();
    assert!(matches!(value, automerge::Value::Scalar(_)), "{value:?}");
    // One registry entry per actor, naming its owner.
    assert_eq!(
        registered(&a, &actor(1)).unwrap(),
        Some((pa.worker, pa.device))
    );
    assert_eq!(
        registered(&a, &actor(2)).unwrap(),
        Some((pb.worker, pb.device))
    );
    assert_eq!(registered(&a, &actor(3)).unwrap(), None);
    // A conflict review sees the two values (village is last-writer-wins: a parallel update).
    let review = super::conflicts::review(&a, HouseholdId::new()).unwrap();
    assert_eq!(review.parallel.len(), 1, "{:?}", review.parallel);
}

#[test]
fn writing_the_shown_value_again_is_still_a_write() {
    let pa = prov(T1);
    let (mut a, _) = household(&pa);
    let obj = hh_obj(&a);
    change(&mut a, T1, |tx| {
        write_cell(tx, &obj, "address", Some("一组"), &pa).unwrap()
    });
    let mut b = a.fork().with_actor(actor(2));
    let pb = prov(T2);
    // B confirms the address as it was while A changes it: both are writes.
    change(&mut b, T2, |tx| {
        write_cell(tx, &obj, "address", Some("一组"), &pb).unwrap()
    });
    change(&mut a, T3, |tx| {
        write_cell(tx, &obj, "address", Some("二组"), &pa).unwrap()
    });
    a.merge(&mut b).unwrap();
    let versions = read_versions(&a, &obj, "address").unwrap();
    let got: Vec<_> = versions
        .iter()
        .map(|v| (v.value.clone(), v.provenance.worker))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("二组".into()), pa.worker),
            (Some("一组".into()), pb.worker)
        ]
    );
}

#[test]
fn legacy_cells_read_beside_lean_ones() {
    let pa = prov(T1);
    let (mut a, _) = household(&pa);
    let obj = hh_obj(&a);
    // A document from before ADR 0035: the phone wrote `{v, by, dev, at}`.
    let old = Provenance {
        at: Timestamp(T1 - 5),
        ..pa
    };
    change(&mut a, T1, |tx| {
        write_legacy_cell(tx, &obj, "address", Some(&ScalarValue::from("旧址")), &old).unwrap()
    });
    assert_eq!(
        read_cell(&a, &obj, "address").unwrap().as_deref(),
        Some("旧址")
    );
    assert_eq!(
        read_versions(&a, &obj, "address").unwrap()[0].provenance,
        old
    );
    // A new phone writes concurrently (lean); both are read, each with its provenance.
    let mut b = a.fork().with_actor(actor(2));
    change(&mut a, T1, |tx| {
        write_legacy_cell(
            tx,
            &obj,
            "address",
            Some(&ScalarValue::from("旧址二")),
            &old,
        )
        .unwrap()
    });
    let pb = prov(T2);
    change(&mut b, T2, |tx| {
        write_cell(tx, &obj, "address", Some("新址"), &pb).unwrap()
    });
    a.merge(&mut b).unwrap();
    let versions = read_versions(&a, &obj, "address").unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (versions[0].value.as_deref(), versions[0].provenance),
        (Some("新址"), pb)
    );
    assert_eq!(
        (versions[1].value.as_deref(), versions[1].provenance),
        (Some("旧址二"), old)
    );
    // The field's history lists every write, legacy and lean (the first is the empty
    // address the household was made with).
    let history =
        crate::read_model::field_history(&a, &FieldRef::new(EntityRef::Household, "address"))
            .unwrap();
    let values: Vec<_> = history.iter().map(|v| v.value.clone().unwrap()).collect();
    assert_eq!(values, ["旧址", "旧址二", "", "新址"], "{history:?}");
}

#[test]
fn a_set_element_is_credited_to_whoever_added_it() {
    let pa = prov(T1);
    let (mut a, _) = household(&pa);
    let obj = hh_obj(&a);
    let mut b = a.fork().with_actor(actor(2));
    let pb = prov(T2);
    change(&mut b, T2, |tx| {
        set_add(tx, &obj, "phones", "13800000000", &pb).unwrap()
    });
    a.merge(&mut b).unwrap();
    assert_eq!(read_set(&a, &obj, "phones").unwrap(), ["13800000000"]);
    let versions =
        super::conflicts::field_versions(&a, &FieldRef::new(EntityRef::Household, "phones"))
            .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].provenance, pb);
}

/// The change a device of actor 2, owned by `p`, makes with `edit` on a copy of `doc`,
/// checked as the server checks a push.
fn pushed(
    doc: &Automerge,
    p: &Provenance,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Result<(), Violation> {
    let mut fork = doc.fork().with_actor(actor(2));
    let c = change(&mut fork, p.at.0, edit);
    let mut after = doc.clone();
    after.apply_changes([c.clone()]).unwrap();
    check_provenance(&after, &c, &author(p), T3)
}

#[test]
fn the_registry_of_actors_cannot_be_forged() {
    let pa = prov(T1);
    let (a, _) = household(&pa);
    let obj = hh_obj(&a);
    let pb = prov(T2);
    // The honest write passes.
    assert_eq!(
        pushed(&a, &pb, |tx| write_cell(
            tx,
            &obj,
            "village",
            Some("村"),
            &pb
        )
        .unwrap()),
        Ok(())
    );
    // A lean value without an entry for its actor.
    assert_eq!(
        pushed(&a, &pb, |tx| tx.put(&obj, "village", "村").unwrap()),
        Err(Violation::ForgedProvenance)
    );
    // An entry naming another worker (a colleague would then be credited with the value).
    let colleague = Provenance {
        worker: pa.worker,
        ..pb
    };
    assert_eq!(
        pushed(&a, &pb, |tx| write_cell(
            tx,
            &obj,
            "village",
            Some("村"),
            &colleague
        )
        .unwrap()),
        Err(Violation::ForgedProvenance)
    );
    // An entry for another actor (actor 3's values would be credited to this device).
    assert_eq!(
        pushed(&a, &pb, |tx| {
            let reg = tx.get(&ROOT, ACTORS).unwrap().unwrap().1;
            let e = tx
                .put_object(&reg, actor(3).to_hex_string(), ObjType::Map)
                .unwrap();
            tx.put(&e, "by", pb.worker.to_string()).unwrap();
            tx.put(&e, "dev", pb.device.to_string()).unwrap();
        }),
        Err(Violation::ForgedProvenance)
    );
    // Overwriting or deleting A's entry, or replacing the whole registry.
    let a_key = actor(1).to_hex_string();
    assert_eq!(
        pushed(&a, &pb, |tx| {
            let reg = tx.get(&ROOT, ACTORS).unwrap().unwrap().1;
            tx.delete(&reg, a_key.as_str()).unwrap();
        }),
        Err(Violation::ForgedProvenance)
    );
    assert_eq!(
        pushed(&a, &pb, |tx| {
            let reg = tx.get(&ROOT, ACTORS).unwrap().unwrap().1;
            let e = tx.put_object(&reg, a_key.as_str(), ObjType::Map).unwrap();
            tx.put(&e, "by", pb.worker.to_string()).unwrap();
        }),
        Err(Violation::ForgedProvenance)
    );
    assert_eq!(
        pushed(&a, &pb, |tx| {
            tx.put_object(&ROOT, ACTORS, ObjType::Map).unwrap();
            write_cell(tx, &obj, "village", Some("村"), &pb).unwrap();
        }),
        Err(Violation::ForgedProvenance)
    );
}

#[test]
fn a_generation_keeps_every_values_provenance() {
    let pa = prov(T1);
    let (mut a, id) = household(&pa);
    let obj = hh_obj(&a);
    let mut b = a.fork().with_actor(actor(2));
    let pb = prov(T2);
    let pa3 = Provenance {
        at: Timestamp(T3),
        ..pa
    };
    change(&mut a, T3, |tx| {
        write_cell(tx, &obj, "village", Some("石桥村"), &pa3).unwrap();
        write_cell(tx, &obj, "address", Some("一组"), &pa3).unwrap();
        set_add(tx, &obj, "phones", "13800000000", &pa3).unwrap();
    });
    change(&mut b, T2, |tx| {
        write_cell(tx, &obj, "village", Some("河西村"), &pb).unwrap()
    });
    a.merge(&mut b).unwrap();
    let item = super::generation::Redaction::parse("household//address").unwrap();
    let g = super::generation::build(&a, id, &[item], 1).unwrap().doc;
    let gobj = hh_obj(&g);
    assert_eq!(
        read_versions(&g, &gobj, "village").unwrap(),
        read_versions(&a, &obj, "village").unwrap()
    );
    assert_eq!(read_cell(&g, &gobj, "address").unwrap(), None);
    let field = FieldRef::new(EntityRef::Household, "phones");
    assert_eq!(
        super::conflicts::field_versions(&g, &field).unwrap(),
        super::conflicts::field_versions(&a, &field).unwrap()
    );
    super::verify::validate(&g).unwrap();
}
