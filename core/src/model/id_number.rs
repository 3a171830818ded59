//! Citizen identity numbers (公民身份号码) as GB 11643-1999 defines them: 17 digits — a
//! 6-digit address code, the birth date as `YYYYMMDD`, a 3-digit sequence code whose last
//! digit is odd for men and even for women — and a check character computed with
//! ISO 7064 MOD 11-2 (`0`–`9` or `X`).
//!
//! Numbers are checked when the app writes them, never when a document is read: numbers
//! stored before this check existed stay readable and syncable as they are. Nothing here
//! puts a number into an error or a `Debug` text, so neither can leak one into a log.

use std::fmt;

use crate::error::Error;
use crate::model::time::Date;
use crate::model::values::{BirthDate, Sex};

/// The ISO 7064 MOD 11-2 weights of the first 17 digits (2^(17-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum modulo 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// Why a text is not a valid 18-character identity number. No variant carries the number
/// or any part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IdNumberError {
    /// Not 18 characters (after spaces are removed); a 15-digit first-generation number
    /// is refused here too.
    #[error("an ID number has 18 characters")]
    WrongLength,
    /// Not 17 digits followed by a digit or `X`.
    #[error("an ID number is 17 digits and a digit or X")]
    NotDigits,
    /// The check character does not match the first 17 digits: a character was mistyped.
    #[error("the ID number's check character does not match (a digit is mistyped)")]
    WrongCheckCharacter,
    /// The birth date it holds (characters 7–14) is not a day of the calendar.
    #[error("the ID number's birth date does not exist")]
    ImpossibleBirthDate,
    /// The birth date it holds is after today.
    #[error("the ID number's birth date is in the future")]
    BirthDateInFuture,
    /// The birth date it holds is before 1900.
    #[error("the ID number's birth date is before 1900")]
    BirthDateBefore1900,
}

impl IdNumberError {
    /// The message, as the core's errors carry it.
    pub const fn message(self) -> &'static str {
        match self {
            IdNumberError::WrongLength => "an ID number has 18 characters",
            IdNumberError::NotDigits => "an ID number is 17 digits and a digit or X",
            IdNumberError::WrongCheckCharacter => {
                "the ID number's check character does not match (a digit is mistyped)"
            }
            IdNumberError::ImpossibleBirthDate => "the ID number's birth date does not exist",
            IdNumberError::BirthDateInFuture => "the ID number's birth date is in the future",
            IdNumberError::BirthDateBefore1900 => "the ID number's birth date is before 1900",
        }
    }
}

impl From<IdNumberError> for Error {
    fn from(e: IdNumberError) -> Self {
        Error::InvalidInput(e.message())
    }
}

/// A valid identity number, in its canonical form: 18 ASCII characters, check character
/// `X` in upper case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber {
    text: String,
    birth_date: Date,
}

impl IdNumber {
    /// Check `text` as an identity number whose birth date is not after `today`.
    ///
    /// Spaces anywhere (a number read out in groups, `110105 19491231 002X`) are removed,
    /// full-width digits and `Ｘ` (typed with a Chinese input method) become ASCII, and a
    /// lower-case `x` becomes `X`. The address code is not checked against the register of
    /// administrative divisions.
    pub fn parse(text: &str, today: Date) -> Result<IdNumber, IdNumberError> {
        let mut chars = [0u8; 18];
        let mut len = 0usize;
        for c in text.chars() {
            let c = match c {
                ' ' | '\u{3000}' | '\t' => continue,
                '０'..='９' => char::from(b'0' + (u32::from(c) - u32::from('０')) as u8),
                'x' | 'Ｘ' | 'ｘ' => 'X',
                c => c,
            };
            if len == chars.len() {
                return Err(IdNumberError::WrongLength);
            }
            // A character outside ASCII is counted, then refused below as not a digit.
            chars[len] = if c.is_ascii() { c as u8 } else { 0 };
            len += 1;
        }
        if len != chars.len() {
            return Err(IdNumberError::WrongLength);
        }
        let (body, check) = chars.split_at(17);
        if !body.iter().all(u8::is_ascii_digit) || !(check[0].is_ascii_digit() || check[0] == b'X')
        {
            return Err(IdNumberError::NotDigits);
        }
        if check_character(body) != Some(check[0]) {
            return Err(IdNumberError::WrongCheckCharacter);
        }
        let birth_date = embedded_date(&body[6..14], today)?;
        // Every byte is an ASCII digit or `X` (checked above).
        let text = chars.iter().map(|&b| char::from(b)).collect();
        Ok(IdNumber { text, birth_date })
    }

    /// The canonical text (18 characters, `X` in upper case).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The birth date the number holds (characters 7–14).
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The sex the number records: the 17th digit is odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if (self.text.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Whether a person's birth date and sex agree with this number. An estimated birth
    /// date (`1950-01-01~`) and an unknown sex agree with any number: they say the value is
    /// not known exactly; the app may offer the number's own values instead
    /// ([`IdNumber::birth_date`], [`IdNumber::sex`]).
    pub fn check_consistent(&self, birth_date: Option<BirthDate>, sex: Sex) -> Result<(), Error> {
        if let Some(b) = birth_date {
            if !b.estimated && b.date != self.birth_date {
                return Err(Error::InvalidInput(
                    "the birth date contradicts the ID number",
                ));
            }
        }
        match sex {
            Sex::Female | Sex::Male if sex != self.sex() => {
                Err(Error::InvalidInput("the sex contradicts the ID number"))
            }
            _ => Ok(()),
        }
    }
}

/// Never the number itself: a `Debug` print of a record must not put it in a log.
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdNumber(<redacted>)")
    }
}

/// The ISO 7064 MOD 11-2 check character of 17 ASCII digits (`None` for anything else).
pub fn check_character(digits: &[u8]) -> Option<u8> {
    if digits.len() != 17 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(CHECK[(sum % 11) as usize])
}

/// The birth date in `YYYYMMDD` (8 ASCII digits), checked against the calendar and `today`.
fn embedded_date(digits: &[u8], today: Date) -> Result<Date, IdNumberError> {
    let num = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    if year < 1900 {
        return Err(IdNumberError::BirthDateBefore1900);
    }
    if year > today.year() {
        return Err(IdNumberError::BirthDateInFuture);
    }
    // Month and day are at most 99: they fit a u8.
    let date =
        Date::new(year, month as u8, day as u8).map_err(|_| IdNumberError::ImpossibleBirthDate)?;
    if date > today {
        return Err(IdNumberError::BirthDateInFuture);
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::parse("2026-11-29").unwrap()
    }

    /// The check character computed from the standard's definition, independently of the
    /// code under test: weight of position i (1-based from the left) is 2^(18-i) mod 11,
    /// and the check character c makes sum(a_i * W_i) + c ≡ 1 (mod 11), `X` standing for 10.
    fn reference_check(first17: &str) -> char {
        let sum: u64 = first17
            .chars()
            .enumerate()
            .map(|(i, c)| u64::from(c.to_digit(10).unwrap()) * ((1u64 << (17 - i)) % 11))
            .sum();
        let c = (12 - sum % 11) % 11;
        if c == 10 {
            'X'
        } else {
            char::from_digit(c as u32, 10).unwrap()
        }
    }

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", reference_check(first17))
    }

    #[test]
    fn the_reference_agrees_with_published_numbers() {
        // The standard's own example, and the sample in GB 11643-1999's appendix.
        assert_eq!(with_check("11010519491231002"), "11010519491231002X");
        assert_eq!(with_check("44052418800101001"), "440524188001010014");
    }

    #[test]
    fn valid_numbers_give_their_birth_date_and_sex() {
        let n = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert_eq!(n.as_str(), "11010519491231002X");
        assert_eq!(n.birth_date(), Date::parse("1949-12-31").unwrap());
        assert_eq!(n.sex(), Sex::Female, "17th digit 2 is even");

        let boy = with_check("11010120140308001");
        let n = IdNumber::parse(&boy, today()).unwrap();
        assert_eq!(n.birth_date(), Date::parse("2014-03-08").unwrap());
        assert_eq!(n.sex(), Sex::Male, "17th digit 1 is odd");

        // Leap day, the first day allowed, today itself.
        for first17 in [
            "32010220000229004",
            "32010219000101004",
            "32010220261129004",
        ] {
            let n = with_check(first17);
            assert!(IdNumber::parse(&n, today()).is_ok(), "{first17}");
        }
        // Many numbers with each possible check character, X included.
        let mut seen = std::collections::BTreeSet::new();
        for seq in 0..200u32 {
            let n = with_check(&format!("51102719860714{seq:03}"));
            seen.insert(n.chars().last().unwrap());
            assert_eq!(IdNumber::parse(&n, today()).unwrap().as_str(), n);
        }
        assert_eq!(seen.len(), 11, "every check character was exercised");
    }

    #[test]
    fn typing_variants_are_normalised() {
        let canonical = "11010519491231002X";
        for typed in [
            "11010519491231002x",
            " 11010519491231002X ",
            "110105 19491231 002X",
            "１１０１０５１９４９１２３１００２Ｘ",
            "110105\u{3000}19491231002ｘ",
        ] {
            let n = IdNumber::parse(typed, today()).unwrap();
            assert_eq!(n.as_str(), canonical, "{typed:?}");
        }
    }

    #[test]
    fn a_wrong_check_character_is_refused() {
        let good = with_check("11010120140308001");
        let last = good.chars().last().unwrap();
        for c in "0123456789X".chars().filter(|c| *c != last) {
            let bad = format!("{}{c}", &good[..17]);
            assert_eq!(
                IdNumber::parse(&bad, today()),
                Err(IdNumberError::WrongCheckCharacter),
                "{bad}"
            );
        }
        // One mistyped digit, and two neighbours swapped.
        assert_eq!(
            IdNumber::parse("11010519491231003X", today()),
            Err(IdNumberError::WrongCheckCharacter)
        );
        assert_eq!(
            IdNumber::parse("11015019491231002X", today()),
            Err(IdNumberError::WrongCheckCharacter)
        );
    }

    #[test]
    fn impossible_and_out_of_range_dates_are_refused() {
        let cases = [
            ("11010120150230001", IdNumberError::ImpossibleBirthDate), // 30 February
            ("11010119000229001", IdNumberError::ImpossibleBirthDate), // 1900 is no leap year
            ("11010120231301001", IdNumberError::ImpossibleBirthDate), // month 13
            ("11010120230001001", IdNumberError::ImpossibleBirthDate), // month 0
            ("11010120230400001", IdNumberError::ImpossibleBirthDate), // day 0
            ("11010120230431001", IdNumberError::ImpossibleBirthDate), // 31 April
            ("11010118991231001", IdNumberError::BirthDateBefore1900),
            ("11010100000101001", IdNumberError::BirthDateBefore1900),
            ("11010120261130001", IdNumberError::BirthDateInFuture), // tomorrow
            ("11010120270101001", IdNumberError::BirthDateInFuture),
            ("11010199991231001", IdNumberError::BirthDateInFuture),
        ];
        for (first17, why) in cases {
            let n = with_check(first17);
            assert_eq!(IdNumber::parse(&n, today()), Err(why), "{first17}");
        }
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused() {
        for (text, why) in [
            ("", IdNumberError::WrongLength),
            ("   ", IdNumberError::WrongLength),
            ("110105194912310", IdNumberError::WrongLength), // a 15-digit old number
            ("11010519491231002", IdNumberError::WrongLength),
            ("11010519491231002X0", IdNumberError::WrongLength),
            ("11010519491231002XX", IdNumberError::WrongLength),
            ("1101051949123100XX", IdNumberError::NotDigits),
            ("A1010519491231002X", IdNumberError::NotDigits),
            ("11010519491231002Y", IdNumberError::NotDigits),
            ("110105-9491231002X", IdNumberError::NotDigits),
            ("11010519491231002王", IdNumberError::NotDigits),
            ("11010519491231002\u{0}", IdNumberError::NotDigits),
        ] {
            assert_eq!(IdNumber::parse(text, today()), Err(why), "{text:?}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        let n = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert!(!format!("{n:?}").contains("1101"));
        for bad in ["11010519491231003X", "1101051949123", "11010120150230001X"] {
            let e = IdNumber::parse(bad, today()).unwrap_err();
            let text = format!("{e} {e:?} {}", Error::from(e));
            assert!(!text.contains("1101"), "{text}");
            assert_eq!(e.to_string(), e.message());
        }
    }

    #[test]
    fn consistency_with_birth_date_and_sex() {
        let n = IdNumber::parse("11010519491231002X", today()).unwrap();
        let date = |s: &str| Some(BirthDate::parse(s).unwrap());
        assert!(n.check_consistent(date("1949-12-31"), Sex::Female).is_ok());
        assert!(n.check_consistent(None, Sex::Unknown).is_ok());
        assert!(n
            .check_consistent(date("1950-01-01~"), Sex::Unknown)
            .is_ok());
        assert!(n.check_consistent(None, Sex::Unrecognised).is_ok());
        assert!(matches!(
            n.check_consistent(date("1949-12-30"), Sex::Female),
            Err(Error::InvalidInput(m)) if m.contains("birth date")
        ));
        assert!(matches!(
            n.check_consistent(None, Sex::Male),
            Err(Error::InvalidInput(m)) if m.contains("sex")
        ));
    }
}
