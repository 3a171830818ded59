//! A station's time zone (ADR 0028): a fixed offset from UTC, set per station with
//! `doorstep-server station timezone` (UTC+08:00, Beijing time, unless set). It decides the
//! monthly report's month boundaries, "today" and "this month" on the console, the dates
//! and times its pages and exports show, and the CLI's card listings.
//!
//! A fixed offset, not an IANA zone: China has one zone and has kept no summer time since
//! 1991, so `+08:00` is exact for every date a station in China records, and a fixed
//! offset needs no time-zone database in the binary. A station elsewhere sets its own.

use doorstep_core::Date;

const DAY_MS: i64 = 86_400_000;
/// The widest offsets in use: UTC−12:00 and UTC+14:00.
const MIN_MINUTES: i32 = -12 * 60;
const MAX_MINUTES: i32 = 14 * 60;

/// A fixed offset from UTC, in whole minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UtcOffset(i32);

/// Why an offset was not understood (the text is not repeated: it came from a person).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetError {
    #[error(
        "a time zone is an offset from UTC such as +08:00, -05:30 or UTC (or Asia/Shanghai, \
         which is +08:00)"
    )]
    Malformed,
    #[error("an offset from UTC lies between -12:00 and +14:00")]
    OutOfRange,
}

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset::BEIJING
    }
}

impl UtcOffset {
    /// Asia/Shanghai: UTC+08:00 all year. A station's zone unless set.
    pub const BEIJING: UtcOffset = UtcOffset(8 * 60);
    pub const UTC: UtcOffset = UtcOffset(0);

    /// An offset of `minutes` east of UTC, if it is one in use (−12:00 to +14:00).
    pub fn from_minutes(minutes: i64) -> Result<UtcOffset, OffsetError> {
        i32::try_from(minutes)
            .ok()
            .filter(|m| (MIN_MINUTES..=MAX_MINUTES).contains(m))
            .map(UtcOffset)
            .ok_or(OffsetError::OutOfRange)
    }

    pub fn minutes(self) -> i32 {
        self.0
    }

    fn ms(self) -> i64 {
        i64::from(self.0) * 60_000
    }

    /// `+08:00`, `+0800`, `+8`, `-05:30`, `UTC`, `Z`, `UTC+8`, or `Asia/Shanghai`.
    pub fn parse(s: &str) -> Result<UtcOffset, OffsetError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(OffsetError::Malformed);
        }
        if s.eq_ignore_ascii_case("Asia/Shanghai") {
            return Ok(UtcOffset::BEIJING);
        }
        let rest = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("utc"))
            .or_else(|| s.strip_prefix("GMT"))
            .unwrap_or(s);
        if rest.is_empty() || rest.eq_ignore_ascii_case("z") {
            return Ok(UtcOffset::UTC);
        }
        let (sign, digits) = match rest.as_bytes()[0] {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return Err(OffsetError::Malformed),
        };
        let (h, m) = match digits.split_once(':') {
            Some((h, m)) => (h, m),
            None if digits.len() == 4 => digits.split_at(2),
            None => (digits, "0"),
        };
        let num = |t: &str| -> Result<i64, OffsetError> {
            if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OffsetError::Malformed);
            }
            t.parse().map_err(|_| OffsetError::Malformed)
        };
        let (h, m) = (num(h)?, num(m)?);
        if m >= 60 {
            return Err(OffsetError::Malformed);
        }
        UtcOffset::from_minutes(sign * (h * 60 + m))
    }

    /// The calendar day at instant `ms` (since the Unix epoch) in this zone.
    pub fn date(self, ms: i64) -> Option<Date> {
        let days = ms.checked_add(self.ms())?.div_euclid(DAY_MS);
        Date::new(1970, 1, 1).ok()?.add_days(days).ok()
    }

    /// `YYYY-MM-DD HH:MM` in this zone (`?` for an instant no calendar holds).
    pub fn time(self, ms: i64) -> String {
        let (Some(date), Some(local)) = (self.date(ms), ms.checked_add(self.ms())) else {
            return "?".into();
        };
        let in_day = local.rem_euclid(DAY_MS) / 60_000;
        format!("{date} {:02}:{:02}", in_day / 60, in_day % 60)
    }

    /// The first millisecond of `day` in this zone.
    pub fn start_of(self, day: Date) -> i64 {
        day.to_days() * DAY_MS - self.ms()
    }
}

impl std::fmt::Display for UtcOffset {
    /// `UTC+08:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let m = self.0.unsigned_abs();
        write!(f, "UTC{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T23:30:00Z.
    const NOV_30_2330_UTC: i64 = 1_796_081_400_000;

    #[test]
    fn offsets_parse_in_the_forms_people_type() {
        for (s, minutes) in [
            ("+08:00", 480),
            ("+0800", 480),
            ("+8", 480),
            ("UTC+8", 480),
            ("Asia/Shanghai", 480),
            ("-05:30", -330),
            ("UTC", 0),
            ("Z", 0),
            ("+00:00", 0),
            ("+14:00", 840),
            ("-12:00", -720),
        ] {
            assert_eq!(
                UtcOffset::parse(s).map(UtcOffset::minutes),
                Ok(minutes),
                "{s}"
            );
        }
        for s in [
            "",
            "8",
            "+",
            "+8:60",
            "+123",
            "Europe/Paris",
            "+08:00:00",
            "+٨",
        ] {
            assert_eq!(UtcOffset::parse(s), Err(OffsetError::Malformed), "{s:?}");
        }
        for s in ["+15:00", "-13", "+99:00"] {
            assert_eq!(UtcOffset::parse(s), Err(OffsetError::OutOfRange), "{s}");
        }
        assert_eq!(UtcOffset::parse("-05:30").unwrap().to_string(), "UTC-05:30");
        assert_eq!(UtcOffset::default().to_string(), "UTC+08:00");
    }

    #[test]
    fn the_day_turns_at_the_stations_midnight() {
        let at = NOV_30_2330_UTC;
        assert_eq!(UtcOffset::BEIJING.time(at), "2026-12-01 07:30");
        assert_eq!(UtcOffset::UTC.time(at), "2026-11-30 23:30");
        assert_eq!(
            UtcOffset::parse("-05:00").unwrap().time(at),
            "2026-11-30 18:30"
        );
        let dec_1 = Date::new(2026, 12, 1).unwrap();
        assert!(UtcOffset::BEIJING.start_of(dec_1) <= at);
        assert!(UtcOffset::UTC.start_of(dec_1) > at);
        assert_eq!(UtcOffset::BEIJING.date(i64::MAX), None);
        assert_eq!(UtcOffset::BEIJING.time(i64::MIN), "?");
    }
}
