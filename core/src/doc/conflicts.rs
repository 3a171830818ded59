//! Finding what needs a human in a household document, and recording a human's decision.

use crate::doc::{Doc, Tx};
use automerge::{ObjType, ROOT};

use crate::doc::cells::*;
use crate::doc::{identity, seal_more_of, seal_of};
use crate::error::{Error, Result};
use crate::model::ids::{HouseholdId, ResolutionId};
use crate::model::policy::{fields_of, policy, EntityKind, MergePolicy, ALL_KINDS};
use crate::model::provenance::*;
use crate::model::values::*;

/// Conflicts and parallel updates of one document, in a stable order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Review {
    pub conflicts: Vec<Conflict>,
    pub parallel: Vec<ParallelUpdate>,
}

fn distinct_values(versions: &[FieldVersion]) -> usize {
    let mut values: Vec<&Option<String>> = versions.iter().map(|v| &v.value).collect();
    values.sort();
    values.dedup();
    values.len()
}

/// Walk every field of every record and report concurrent values.
pub(crate) fn review<R: Doc>(doc: &R, household: HouseholdId) -> Result<Review> {
    let mut out = Review::default();
    let owners = Owners::default();
    for kind in ALL_KINDS {
        if kind == EntityKind::Amendment {
            continue;
        }
        let records: Vec<(Option<String>, ObjId)> = if kind == EntityKind::Household {
            entity_obj(doc, kind, None)?
                .map(|o| (None, o))
                .into_iter()
                .collect()
        } else {
            records_of(doc, kind)?
                .into_iter()
                .map(|(k, o)| (Some(k), o))
                .collect()
        };
        for (key, obj) in records {
            review_record(
                doc,
                household,
                kind,
                key.as_deref(),
                &obj,
                &owners,
                &mut out,
            )?;
        }
    }
    crate::doc::survey::review_duplicates(doc, household, &mut out)?;
    Ok(out)
}

/// Conflicts and parallel updates of one record (what `review` finds for it).
pub(crate) fn review_record<R: Doc>(
    doc: &R,
    household: HouseholdId,
    kind: EntityKind,
    key: Option<&str>,
    obj: &automerge::ObjId,
    owners: &Owners,
    out: &mut Review,
) -> Result<()> {
    let entity = EntityRef::from_parts(kind, key)?;
    for spec in fields_of(kind) {
        match spec.policy {
            MergePolicy::Identity | MergePolicy::Status | MergePolicy::LastWriterWins => {}
            _ => continue,
        }
        let Some(versions) = read_versions_if_several(doc, obj, spec.name, owners)? else {
            continue;
        };
        if distinct_values(&versions) < 2 {
            continue;
        }
        let field = FieldRef::new(entity, spec.name);
        if spec.policy == MergePolicy::LastWriterWins {
            let mut rest = versions;
            let shown = rest.remove(0);
            out.parallel.push(ParallelUpdate {
                household,
                field,
                shown,
                overshadowed: rest,
            });
        } else {
            out.conflicts.push(Conflict {
                household,
                field,
                kind: ConflictKind::ConcurrentValues,
                values: versions,
            });
        }
    }
    if kind == EntityKind::Visit && read_cell(doc, obj, "status")?.as_deref() == Some("final") {
        let seals = read_versions_with(doc, obj, "seal", owners)?;
        let path = format!("{}/{}/sections", kind.name(), key.unwrap_or_default());
        if !seals.is_empty() && !sealed_text_stands(doc, obj, &seals, &path)? {
            let values = seals
                .into_iter()
                .map(|s| FieldVersion {
                    value: Some("final".into()),
                    provenance: s.provenance,
                })
                .collect();
            out.conflicts.push(Conflict {
                household,
                field: FieldRef::new(entity, "sections"),
                kind: ConflictKind::EditedAfterFinalise,
                values,
            });
        }
    }
    Ok(())
}

/// Whether a final visit's text is what was sealed, or what a resolution accepted: its
/// original sections match one of its `seal`s or a resolution's `chosen`, and its later
/// sections (if it has them) match one of its `seal_more`s or a resolution's
/// `chosen_more` (ADR 0024). A visit finalised by a version that did not seal the later
/// sections has no `seal_more`: there is nothing to compare them with.
fn sealed_text_stands<R: Doc>(
    doc: &R,
    visit: &ObjId,
    seals: &[FieldVersion],
    path: &str,
) -> Result<bool> {
    let accepted = accepted_seals(doc, path)?;
    let now = seal_of(doc, visit)?;
    let original = seals.iter().any(|s| s.value.as_ref() == Some(&now))
        || accepted.iter().any(|(chosen, _)| chosen == &now);
    let later = match seal_more_of(doc, visit)? {
        None => true,
        Some(more) => {
            let sealed = read_versions(doc, visit, "seal_more")?;
            sealed.is_empty()
                || sealed.iter().any(|s| s.value.as_ref() == Some(&more))
                || accepted
                    .iter()
                    .any(|(_, chosen)| chosen.as_ref() == Some(&more))
        }
    };
    Ok(original && later)
}

/// The seals that resolutions of `path` (`visit/<id>/sections`) accepted, as (`chosen`,
/// `chosen_more`): a finalised visit is never written again (ADR 0013), so accepting merged
/// text as the record is a resolution holding the seals of that text.
fn accepted_seals<R: Doc>(doc: &R, path: &str) -> Result<Vec<(String, Option<String>)>> {
    let Some(col) = get_map(doc, &ROOT, "resolutions")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for k in doc.keys(&col) {
        let Some(rec) = get_map(doc, &col, &k)? else {
            continue;
        };
        if read_cell(doc, &rec, "field")?.as_deref() == Some(path) {
            if let Some(chosen) = read_cell(doc, &rec, "chosen")? {
                out.push((chosen, read_cell(doc, &rec, "chosen_more")?));
            }
        }
    }
    Ok(out)
}

/// Check a value a human chose for a field, and return its canonical form.
fn canonical(kind: EntityKind, field: &str, value: &str) -> Result<String> {
    Ok(match (kind, field) {
        (EntityKind::Person, "name") => required_line(value, "name is required")?,
        (EntityKind::Person, "birth_date") => BirthDate::parse(value)?.to_string(),
        (EntityKind::Person, "id_number") => optional_line(value)?,
        (EntityKind::Person, "guardian") => match value {
            "true" | "false" => value.to_owned(),
            _ => return Err(Error::InvalidInput("guardian is 'true' or 'false'")),
        },
        (EntityKind::Person, "father_status" | "mother_status") => {
            crate::model::person_details::CodeList::ParentStatus
                .read(value.trim())
                .map_err(|_| {
                    Error::InvalidInput("a parent's status is a code (parent.normal ...)")
                })?
        }
        (EntityKind::Guardianship, "kind") => {
            crate::model::person_details::GuardianshipKind::parse(value)?
                .as_str()
                .to_owned()
        }
        (_, "status") => value.to_owned(),
        _ => return Err(Error::InvalidInput("this field does not take a resolution")),
    })
}

/// Resolve a conflict: write the chosen value over every concurrent one and keep a
/// resolution record with the values it replaced and who decided.
pub(crate) fn resolve<T: Tx>(
    tx: &mut T,
    household: HouseholdId,
    field: &FieldRef,
    chosen: Option<&str>,
    id: ResolutionId,
    p: &Provenance,
) -> Result<()> {
    let kind = field.entity.kind();
    let key = field.entity.key();
    let obj = entity_obj(tx, kind, key.as_deref())?.ok_or(Error::NotFound(kind.name()))?;
    let current = review(tx, household)?;
    let conflict = current
        .conflicts
        .into_iter()
        .find(|c| &c.field == field)
        .ok_or(Error::NoConflict)?;
    // The seal of the later sections' text a resolution accepts (ADR 0024).
    let mut chosen_more = None;
    let chosen_value = match conflict.kind {
        ConflictKind::EditedAfterFinalise => {
            // Accept the merged text as the record: the resolution holds its seals (the
            // finalised visit itself is never written again).
            chosen_more = seal_more_of(tx, &obj)?;
            Some(seal_of(tx, &obj)?)
        }
        ConflictKind::DuplicateResponse => {
            crate::doc::survey::keep_response(tx, &conflict, chosen, p)?
        }
        ConflictKind::ConcurrentValues => {
            let pol = policy(kind, &field.field).ok_or(Error::InvalidInput("unknown field"))?;
            let value = match chosen {
                Some(v) => Some(canonical(kind, &field.field, v)?),
                // A name and a guardianship's kind are required: they cannot be cleared.
                None if pol == MergePolicy::Identity
                    && !matches!(
                        (kind, field.field.as_str()),
                        (EntityKind::Person, "name") | (EntityKind::Guardianship, "kind")
                    ) =>
                {
                    None
                }
                None => return Err(Error::InvalidInput("a value must be chosen")),
            };
            // Keeping a value already recorded adds nothing new: it is not checked again (an
            // ID number stored before numbers were checked can be kept, and the console,
            // which only chooses among the recorded values, can always settle a conflict).
            // A corrected value is checked as an edit of the field is.
            let recorded = conflict.values.iter().any(|v| v.value == value);
            let value = match (kind, field.field.as_str(), value) {
                (_, _, value) if recorded => value,
                (EntityKind::Person, "id_number", Some(v)) if v.is_empty() => None,
                (EntityKind::Person, "id_number", Some(v)) => {
                    Some(identity::checked_id_number(tx, &obj, &v, p)?)
                }
                (EntityKind::Person, "father_status" | "mother_status", Some(v)) => Some(
                    crate::model::person_details::CodeList::ParentStatus
                        .check_writable(&v)?
                        .to_owned(),
                ),
                (EntityKind::Person, "birth_date", Some(v)) => {
                    let birth_date = BirthDate::parse(&v)?;
                    identity::check_against_id_number(tx, &obj, Some(birth_date), Sex::Unknown, p)?;
                    Some(v)
                }
                (_, _, value) => value,
            };
            // A status can only become one of the states someone actually reached.
            if pol == MergePolicy::Status && !conflict.values.iter().any(|v| v.value == value) {
                return Err(Error::InvalidInput("choose one of the conflicting states"));
            }
            write_cell(tx, &obj, &field.field, value.as_deref(), p)?;
            value
        }
    };
    let discarded: Vec<serde_json::Value> = conflict
        .values
        .iter()
        .map(|v| {
            serde_json::json!({
                "value": v.value, "by": v.provenance.worker.to_string(),
                "dev": v.provenance.device.to_string(), "at": v.provenance.at.0,
            })
        })
        .collect();
    let resolutions = match get_map(tx, &ROOT, "resolutions")? {
        Some(r) => r,
        None => tx.put_object(&ROOT, "resolutions", ObjType::Map)?,
    };
    let rec = tx.put_object(&resolutions, id.to_string(), ObjType::Map)?;
    let created = tx.put_object(&rec, "created", ObjType::Map)?;
    put_provenance(tx, &created, p)?;
    let path = format!(
        "{}/{}/{}",
        kind.name(),
        key.unwrap_or_default(),
        field.field
    );
    write_cell(tx, &rec, "field", Some(&path), p)?;
    write_cell(tx, &rec, "chosen", chosen_value.as_deref(), p)?;
    if let Some(more) = &chosen_more {
        write_cell(tx, &rec, "chosen_more", Some(more), p)?;
    }
    write_cell(
        tx,
        &rec,
        "replaced",
        Some(&serde_json::Value::Array(discarded).to_string()),
        p,
    )?;
    Ok(())
}

/// Every value a field holds now, the shown one first (provenance of a field).
pub(crate) fn field_versions<R: Doc>(doc: &R, field: &FieldRef) -> Result<Vec<FieldVersion>> {
    let kind = field.entity.kind();
    let pol = policy(kind, &field.field).ok_or(Error::InvalidInput("unknown field"))?;
    let key = field.entity.key();
    let obj = entity_obj(doc, kind, key.as_deref())?.ok_or(Error::NotFound(kind.name()))?;
    match pol {
        MergePolicy::Text => {
            // Text has per-character authorship inside automerge; report the record's creation.
            let c = get_map(doc, &obj, "created")?
                .or_else(|| get_map(doc, &ROOT, "created").ok().flatten())
                .ok_or(Error::NotAHousehold("no provenance"))?;
            let provenance = read_provenance(doc, &c)?;
            Ok(vec![FieldVersion {
                value: Some(read_text(doc, &obj, &field.field)?),
                provenance,
            }])
        }
        MergePolicy::AddWinsSet => {
            let mut out = Vec::new();
            if let Some(set) = get_map(doc, &obj, &field.field)? {
                for k in doc.keys(&set).collect::<Vec<_>>() {
                    if let Some((value, e)) = doc.get(&set, k.as_str())? {
                        out.push(FieldVersion {
                            provenance: crate::doc::cells::provenance_of(doc, &value, &e)?,
                            value: Some(k),
                        });
                    }
                }
            }
            Ok(out)
        }
        _ => read_versions(doc, &obj, &field.field),
    }
}
