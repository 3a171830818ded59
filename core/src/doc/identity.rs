//! A person's identity fields checked against each other when the app writes one of them:
//! a valid ID number (`model::id_number`) says a birth date and a sex, and the person's own
//! birth date and sex must not contradict it. Only writes are checked: a number stored
//! before numbers were checked stays as it is, and nothing is checked against it.

use crate::doc::Tx;

use crate::doc::cells::{read_cell, ObjId};
use crate::error::Result;
use crate::model::id_number::IdNumber;
use crate::model::provenance::Provenance;
use crate::model::time::Date;
use crate::model::values::{BirthDate, Sex};

/// Today's date, for the checks of an ID number: the writer's clock, in China.
pub(crate) fn today(p: &Provenance) -> Result<Date> {
    Date::in_china(p.at)
}

/// The person's ID number as shown, if it is a valid one. A number stored before numbers
/// were checked may be invalid: it stays as it is, and nothing is checked against it.
fn valid_id_number<T: Tx>(tx: &T, obj: &ObjId, today: Date) -> Result<Option<IdNumber>> {
    Ok(read_cell(tx, obj, "id_number")?.and_then(|text| IdNumber::parse(&text, today).ok()))
}

/// A new ID number for a person, checked, and checked against the birth date and sex
/// shown; its canonical text.
pub(crate) fn checked_id_number<T: Tx>(
    tx: &T,
    obj: &ObjId,
    text: &str,
    p: &Provenance,
) -> Result<String> {
    let number = IdNumber::parse(text, today(p)?)?;
    // A stored value that does not parse (a reader of this version refuses such a
    // document) counts as unknown.
    let birth_date = read_cell(tx, obj, "birth_date")?.and_then(|b| BirthDate::parse(&b).ok());
    let sex = read_cell(tx, obj, "sex")?.map_or(Sex::Unknown, |s| Sex::read(&s));
    number.check_consistent(birth_date, sex)?;
    Ok(number.as_str().to_owned())
}

/// A new birth date or sex for a person, checked against the valid ID number shown.
pub(crate) fn check_against_id_number<T: Tx>(
    tx: &T,
    obj: &ObjId,
    birth_date: Option<BirthDate>,
    sex: Sex,
    p: &Provenance,
) -> Result<()> {
    match valid_id_number(tx, obj, today(p)?)? {
        Some(number) => number.check_consistent(birth_date, sex),
        None => Ok(()),
    }
}
