//! Checking a citizen identity number as the worker types it, and what it says (birth date
//! and sex), so a form can show the problem at once and offer the number's own values. The
//! store runs the same check when a number is saved (`addPerson`, `editPerson`).

use doorstep_core as core;

use crate::types::Sex;

/// What is wrong with a typed ID number (GB 11643-1999, 18 characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum IdNumberProblem {
    /// Not 18 characters (a 15-digit first-generation number too).
    WrongLength,
    /// Not 17 digits followed by a digit or X.
    NotDigits,
    /// The check character does not match: a character was mistyped.
    WrongCheckCharacter,
    /// The birth date it holds does not exist (e.g. 30 February).
    ImpossibleBirthDate,
    /// The birth date it holds is after today (in China).
    BirthDateInFuture,
    /// The birth date it holds is before 1900.
    BirthDateBefore1900,
}

impl From<core::IdNumberError> for IdNumberProblem {
    fn from(e: core::IdNumberError) -> Self {
        use core::IdNumberError as E;
        match e {
            E::WrongLength => IdNumberProblem::WrongLength,
            E::NotDigits => IdNumberProblem::NotDigits,
            E::WrongCheckCharacter => IdNumberProblem::WrongCheckCharacter,
            E::ImpossibleBirthDate => IdNumberProblem::ImpossibleBirthDate,
            E::BirthDateInFuture => IdNumberProblem::BirthDateInFuture,
            E::BirthDateBefore1900 => IdNumberProblem::BirthDateBefore1900,
        }
    }
}

/// The verdict on a typed ID number.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum IdNumberCheck {
    /// A valid number: its canonical form (spaces removed, `X` upper case; what the store
    /// saves), the birth date it holds (`YYYY-MM-DD`) and the sex it records (never
    /// `UNKNOWN`).
    Valid {
        id_number: String,
        birth_date: String,
        sex: Sex,
    },
    /// Not a valid number, and why; `message` is an English sentence naming the rule (no
    /// part of the number).
    Invalid {
        problem: IdNumberProblem,
        message: String,
    },
}

/// Check an ID number and read its birth date and sex (today: the phone's clock, in China).
/// Nothing is stored; no error is thrown for a bad number.
#[uniffi::export]
pub fn check_id_number(id_number: String) -> IdNumberCheck {
    let today = core::Date::in_china(core::Timestamp::now());
    match today.map(|today| core::IdNumber::parse(&id_number, today)) {
        Ok(Ok(n)) => IdNumberCheck::Valid {
            id_number: n.as_str().to_owned(),
            birth_date: n.birth_date().to_string(),
            sex: n.sex(),
        },
        Ok(Err(e)) => IdNumberCheck::Invalid {
            problem: e.into(),
            message: e.message().to_owned(),
        },
        // The phone's clock is outside 1900-2200: no birth date can be judged against it.
        Err(_) => IdNumberCheck::Invalid {
            problem: IdNumberProblem::BirthDateInFuture,
            message: "the phone's clock is wrong".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_number_says_its_birth_date_and_sex() {
        assert_eq!(
            check_id_number(" 11010519491231002x".into()),
            IdNumberCheck::Valid {
                id_number: "11010519491231002X".into(),
                birth_date: "1949-12-31".into(),
                sex: Sex::Female,
            }
        );
    }

    #[test]
    fn a_bad_number_says_why_without_the_number() {
        let IdNumberCheck::Invalid { problem, message } =
            check_id_number("11010519491231003X".into())
        else {
            panic!("accepted a mistyped number");
        };
        assert_eq!(problem, IdNumberProblem::WrongCheckCharacter);
        assert!(
            !message.is_empty() && !message.contains("1101"),
            "{message}"
        );
        assert!(matches!(
            check_id_number("1101051949".into()),
            IdNumberCheck::Invalid {
                problem: IdNumberProblem::WrongLength,
                ..
            }
        ));
    }
}
