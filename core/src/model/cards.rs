//! Contact-card serials (爱心联系卡): `PREFIX-NNNNNN-C`, where `C` is a Damm check digit
//! over the six digits. The Damm algorithm catches every single-digit error and every
//! transposition of adjacent digits, so a mistyped serial is caught on the phone.

use std::fmt;

use crate::error::Error;

/// Largest card number (six digits).
pub const MAX_CARD_NUMBER: u32 = 999_999;

/// Damm's totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm check digit of a string of decimal digits.
pub fn damm_check(digits: &str) -> u8 {
    digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u8, |interim, d| {
            DAMM[usize::from(interim)][usize::from(d - b'0')]
        })
}

/// A card serial: batch prefix and number; the check digit is derived.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardSerial {
    prefix: String,
    number: u32,
}

impl CardSerial {
    /// A serial from its parts: prefix of 1–8 ASCII capital letters, number 1–999999.
    pub fn new(prefix: &str, number: u32) -> Result<Self, Error> {
        let p = prefix.trim().to_ascii_uppercase();
        if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::InvalidInput("card prefix must be 1-8 letters"));
        }
        if number == 0 || number > MAX_CARD_NUMBER {
            return Err(Error::InvalidInput("card number must be 1-999999"));
        }
        Ok(CardSerial { prefix: p, number })
    }

    /// Parse a serial as typed: `HG-000123-4`, `hg0001234`, `HG 000123 4` ... The check
    /// digit must match.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '_'))
            .collect::<String>()
            .to_ascii_uppercase();
        let split = compact
            .find(|c: char| c.is_ascii_digit())
            .ok_or(Error::InvalidInput("card serial must be like HG-000123-4"))?;
        let (prefix, digits) = compact.split_at(split);
        if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidInput("card serial must be like HG-000123-4"));
        }
        if damm_check(digits) != 0 {
            return Err(Error::InvalidInput(
                "card serial check digit does not match: mistyped?",
            ));
        }
        let number: u32 = digits[..6]
            .parse()
            .map_err(|_| Error::InvalidInput("card serial must be like HG-000123-4"))?;
        CardSerial::new(prefix, number)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    pub fn check_digit(&self) -> u8 {
        damm_check(&format!("{:06}", self.number))
    }
}

impl fmt::Display for CardSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{:06}-{}",
            self.prefix,
            self.number,
            self.check_digit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_round_trip() {
        let s = CardSerial::new("hg", 123).unwrap();
        let text = s.to_string();
        assert!(text.starts_with("HG-000123-"));
        assert_eq!(CardSerial::parse(&text).unwrap(), s);
        assert_eq!(
            CardSerial::parse(&text.to_lowercase().replace('-', " ")).unwrap(),
            s
        );
        assert!(
            CardSerial::parse("HG-000123").is_err(),
            "the check digit is required"
        );
        assert!(CardSerial::parse("123-000123-4").is_err());
        assert!(CardSerial::new("HG", 0).is_err());
    }

    /// Every single-digit error and every adjacent transposition of a sample of serials is
    /// caught (the Damm algorithm's guarantee, checked exhaustively on the sample).
    #[test]
    fn mistyped_serials_are_caught() {
        let mut checked = 0;
        for number in (1..=MAX_CARD_NUMBER).step_by(997) {
            let good = CardSerial::new("HG", number).unwrap().to_string();
            let digits: Vec<u8> = good.bytes().filter(u8::is_ascii_digit).collect();
            for i in 0..digits.len() {
                for wrong in b'0'..=b'9' {
                    if wrong == digits[i] {
                        continue;
                    }
                    let mut d = digits.clone();
                    d[i] = wrong;
                    let typed = format!("HG-{}", String::from_utf8(d).unwrap());
                    assert!(
                        CardSerial::parse(&typed).is_err(),
                        "{typed} (from {good}) accepted"
                    );
                    checked += 1;
                }
                if i + 1 < digits.len() && digits[i] != digits[i + 1] {
                    let mut d = digits.clone();
                    d.swap(i, i + 1);
                    let typed = format!("HG-{}", String::from_utf8(d).unwrap());
                    assert!(
                        CardSerial::parse(&typed).is_err(),
                        "{typed} (from {good}) accepted"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 60_000);
    }
}
