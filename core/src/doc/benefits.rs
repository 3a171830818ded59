//! Edits of a household's benefits and guardianships (issue 17), written through the cells
//! of `cells.rs` like every other record (`write.rs`).

use crate::doc::Tx;

use crate::doc::cells::*;
use crate::doc::write::{guard_conflict, new_record, record, require_person, write_enum};
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::person_details::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::Provenance;
use crate::model::records::*;
use crate::model::time::Date;
use crate::model::values::optional_line;

/// `from` must not be after `until` when both are given.
fn check_period(from: Option<Date>, until: Option<Date>) -> Result<()> {
    match (from, until) {
        (Some(f), Some(u)) if f > u => Err(Error::InvalidInput(
            "a benefit's start date is after its end date",
        )),
        _ => Ok(()),
    }
}

fn date_text(d: Option<Date>) -> Option<String> {
    d.map(|d| d.to_string())
}

pub(crate) fn add_benefit<T: Tx>(
    tx: &mut T,
    id: BenefitId,
    new: &NewBenefit,
    p: &Provenance,
) -> Result<()> {
    let kind = CodeList::BenefitType.check_writable(&new.kind)?;
    let monthly = Fen::monthly(new.monthly_fen)?;
    check_period(new.from, new.until)?;
    let source = optional_line(&new.source)?;
    require_person(tx, &new.person)?;
    let obj = new_record(tx, EntityKind::Benefit, &id.to_string(), p)?;
    write_cell(tx, &obj, "person", Some(&new.person.to_string()), p)?;
    write_cell(tx, &obj, "kind", Some(kind), p)?;
    write_cell(tx, &obj, "monthly_fen", Some(&monthly.to_string()), p)?;
    write_cell(tx, &obj, "from", date_text(new.from).as_deref(), p)?;
    write_cell(tx, &obj, "until", date_text(new.until).as_deref(), p)?;
    write_cell(tx, &obj, "source", Some(&source), p)
}

pub(crate) fn edit_benefit<T: Tx>(
    tx: &mut T,
    id: BenefitId,
    edit: &BenefitEdit,
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, EntityKind::Benefit, &id.to_string())?;
    // Dates as shown; a stored one that does not parse counts as absent (the reader of
    // this version refuses such a document anyway).
    let shown = |tx: &T, field: &str| -> Result<Option<Date>> {
        Ok(read_cell(tx, &obj, field)?.and_then(|d| Date::parse(&d).ok()))
    };
    match edit {
        BenefitEdit::Kind(k) => {
            let kind = CodeList::BenefitType.check_writable(k)?;
            write_cell(tx, &obj, "kind", Some(kind), p)
        }
        BenefitEdit::MonthlyFen(f) => {
            let monthly = Fen::monthly(*f)?;
            write_cell(tx, &obj, "monthly_fen", Some(&monthly.to_string()), p)
        }
        BenefitEdit::From(d) => {
            check_period(*d, shown(tx, "until")?)?;
            write_cell(tx, &obj, "from", date_text(*d).as_deref(), p)
        }
        BenefitEdit::Until(d) => {
            check_period(shown(tx, "from")?, *d)?;
            write_cell(tx, &obj, "until", date_text(*d).as_deref(), p)
        }
        BenefitEdit::Source(v) => write_cell(tx, &obj, "source", Some(&optional_line(v)?), p),
    }
}

pub(crate) fn add_guardianship<T: Tx>(
    tx: &mut T,
    id: GuardianshipId,
    new: &NewGuardianship,
    p: &Provenance,
) -> Result<()> {
    if new.carer == new.child {
        return Err(Error::InvalidInput("a person cannot be their own carer"));
    }
    let kind = new.kind.to_write()?;
    let capacity = new.capacity.map(|c| c.to_write()).transpose()?;
    let relationship = optional_line(&new.relationship)?;
    require_person(tx, &new.carer)?;
    require_person(tx, &new.child)?;
    let obj = new_record(tx, EntityKind::Guardianship, &id.to_string(), p)?;
    write_cell(tx, &obj, "carer", Some(&new.carer.to_string()), p)?;
    write_cell(tx, &obj, "child", Some(&new.child.to_string()), p)?;
    write_cell(tx, &obj, "kind", Some(kind), p)?;
    write_cell(tx, &obj, "relationship", Some(&relationship), p)?;
    write_cell(tx, &obj, "capacity", capacity, p)?;
    write_cell(
        tx,
        &obj,
        "status",
        Some(GuardianshipStatus::Active.as_str()),
        p,
    )?;
    // The carer's `guardian` flag says the same thing more coarsely: recording the link
    // sets it, so the two never disagree for a new link (a flag in conflict is left for the
    // human who settles it; ending a link leaves the flag, which may rest on another one).
    let carer = record(tx, EntityKind::Person, &new.carer.to_string())?;
    let flag = crate::doc::cells::read_values(tx, &carer, "guardian")?;
    let settled = flag.iter().all(|v| *v == flag[0]);
    if settled && flag.first().and_then(|v| v.as_deref()) != Some("true") {
        write_cell(tx, &carer, "guardian", Some("true"), p)?;
    }
    Ok(())
}

pub(crate) fn edit_guardianship<T: Tx>(
    tx: &mut T,
    id: GuardianshipId,
    edit: &GuardianshipEdit,
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, EntityKind::Guardianship, &id.to_string())?;
    match edit {
        GuardianshipEdit::Kind(k) => {
            guard_conflict(tx, &obj, "kind")?;
            write_cell(tx, &obj, "kind", Some(k.to_write()?), p)
        }
        GuardianshipEdit::Relationship(v) => {
            write_cell(tx, &obj, "relationship", Some(&optional_line(v)?), p)
        }
        GuardianshipEdit::Capacity(c) => {
            write_enum(tx, &obj, "capacity", c.map(|c| c.to_write()), p)
        }
    }
}
