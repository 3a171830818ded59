//! Calendar dates and instants, without a timezone library: the app supplies the local
//! date of a visit; instants are milliseconds since the Unix epoch.

use std::fmt;

use crate::error::Error;

/// Milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The system clock now.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A calendar date (proleptic Gregorian), ordered, written `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A checked date: year 1900–2200, a real day of that month.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, Error> {
        if !(1900..=2200).contains(&year) || !(1..=12).contains(&month) {
            return Err(Error::InvalidInput("date out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(Error::InvalidInput("date out of range"));
        }
        Ok(Date { year, month, day })
    }

    /// Parse `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = Error::InvalidInput("date must be YYYY-MM-DD");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad);
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, Error> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(Error::InvalidInput("date must be YYYY-MM-DD"));
            }
            part.parse()
                .map_err(|_| Error::InvalidInput("date must be YYYY-MM-DD"))
        };
        Date::new(num(0..4)?, num(5..7)? as u8, num(8..10)? as u8)
    }

    pub fn year(&self) -> u16 {
        self.year
    }
    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before).
    pub fn to_days(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The calendar date in China (UTC+8, no daylight saving time) at instant `at`: the
    /// day an ID number's birth date and a household's records are counted in.
    pub fn in_china(at: Timestamp) -> Result<Self, Error> {
        const DAY_MS: i64 = 86_400_000;
        const UTC_PLUS_8_MS: i64 = 8 * 3_600_000;
        let days = at.0.saturating_add(UTC_PLUS_8_MS).div_euclid(DAY_MS);
        Date::new(1970, 1, 1)?.add_days(days)
    }

    /// The date `days` after this one (or before, if negative).
    pub fn add_days(&self, days: i64) -> Result<Self, Error> {
        let z = self.to_days() + days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let y = u16::try_from(y).map_err(|_| Error::InvalidInput("date out of range"))?;
        Date::new(y, m as u8, d as u8)
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl std::str::FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Date::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_validates() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "24-01-01",
            "2024-1-01",
            "",
            "abcd-ef-gh",
            "2024-01-3a",
            "１２３４-01-01",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn the_date_in_china_turns_at_16_00_utc() {
        // 2026-11-29 15:59:59.999 UTC is 23:59:59.999 in Beijing; a millisecond later the
        // next day has begun there.
        let before = Timestamp(1_795_967_999_999);
        assert_eq!(Date::in_china(before).unwrap().to_string(), "2026-11-29");
        let after = Timestamp(before.0 + 1);
        assert_eq!(Date::in_china(after).unwrap().to_string(), "2026-11-30");
        assert_eq!(
            Date::in_china(Timestamp(0)).unwrap().to_string(),
            "1970-01-01"
        );
        assert!(
            Date::in_china(Timestamp(i64::MAX)).is_err(),
            "out of range, no panic"
        );
        assert!(
            Date::in_china(Timestamp(i64::MIN)).is_err(),
            "out of range, no panic"
        );
    }

    #[test]
    fn day_arithmetic_round_trips() {
        let d = Date::parse("2026-11-29").unwrap();
        assert_eq!(d.add_days(3).unwrap().to_string(), "2026-12-02");
        assert_eq!(d.add_days(-334).unwrap().to_string(), "2025-12-30");
        assert_eq!(Date::parse("1970-01-01").unwrap().to_days(), 0);
        for n in -5000..5000 {
            assert_eq!(d.add_days(n).unwrap().to_days(), d.to_days() + n);
        }
    }
}
