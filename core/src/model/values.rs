//! Small value types of the domain and their canonical text form (how they are stored in a
//! document cell and shown in conflicts).

use std::fmt;

use crate::error::Error;
use crate::model::time::Date;

/// Declares a closed enum with a stable lowercase text form.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::InvalidInput(concat!("unknown ", stringify!($name)))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Declares a closed enum of values stored in documents, with a stable lowercase text form
/// and one more variant, `Unrecognised`: a value this version does not know (written by a
/// newer version, ADR 0013). Reading is lenient (`read`: the field shows as unrecognised,
/// the household still opens); `parse` is strict and never yields it, and nothing writes it
/// (`is_recognised`), so the server's validator (`doc::verify::validate`) refuses it.
macro_rules! value_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this version does not know (a newer version wrote it).
            Unrecognised,
        }

        impl $name {
            /// The values this version knows (not `Unrecognised`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unrecognised => "unrecognised",
                }
            }
            /// Strict: only the values this version knows.
            pub fn parse(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::InvalidInput(concat!("unknown ", stringify!($name)))),
                }
            }
            /// Lenient, for showing what a document holds: an unknown value reads as
            /// `Unrecognised`.
            pub fn read(s: &str) -> Self {
                Self::parse(s).unwrap_or($name::Unrecognised)
            }
            pub const fn is_recognised(self) -> bool {
                !matches!(self, $name::Unrecognised)
            }
            /// The text to write; an unrecognised value is never written.
            pub fn to_write(self) -> Result<&'static str, Error> {
                if self.is_recognised() {
                    Ok(self.as_str())
                } else {
                    Err(Error::InvalidInput(concat!("an unrecognised ", stringify!($name), " cannot be written")))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use value_enum;

value_enum!(
    /// Whether the household is still followed by the station.
    HouseholdStatus { Active = "active", MovedAway = "moved_away", Closed = "closed" }
);

value_enum!(
    /// Sex as recorded.
    Sex { Female = "female", Male = "male", Unknown = "unknown" }
);

value_enum!(
    /// How a visit took place.
    VisitKind {
        Home = "home",
        Phone = "phone",
        School = "school",
        NeighbourCheck = "neighbour_check",
        FollowUp = "follow_up",
    }
);

value_enum!(
    /// A visit is a draft until finalised; a final visit is frozen evidence.
    VisitStatus { Draft = "draft", Final = "final" }
);

text_enum!(
    /// The collaborative text sections of a visit record. `Health` and `Study` came later
    /// (2026-12): a visit started before them has neither (ADR 0024).
    Section {
        PersonalSituation = "personal_situation",
        FamilySituation = "family_situation",
        ActualNeeds = "actual_needs",
        QuestionsAsked = "questions_asked",
        Concerns = "concerns",
        AdviceGiven = "advice_given",
        Health = "health",
        Study = "study",
    }
);

impl Section {
    /// The sections every visit has, and the visit's `seal` covers (as every version of
    /// the app computes it).
    pub const ORIGINAL: &'static [Section] = &[
        Section::PersonalSituation,
        Section::FamilySituation,
        Section::ActualNeeds,
        Section::QuestionsAsked,
        Section::Concerns,
        Section::AdviceGiven,
    ];
    /// The sections added later: a visit started since has them, and its `seal_more` covers
    /// them (ADR 0024).
    pub const LATER: &'static [Section] = &[Section::Health, Section::Study];
}

value_enum!(
    /// Life of a recorded need.
    NeedStatus { Open = "open", Referred = "referred", Met = "met", Closed = "closed" }
);

value_enum!(
    /// Life of a question the household asked.
    InquiryStatus { Open = "open", Answered = "answered", Referred = "referred" }
);

value_enum!(
    /// Life of a follow-up task: open, then done or cancelled.
    FollowUpStatus { Open = "open", Done = "done", Cancelled = "cancelled" }
);

value_enum!(
    /// Life of an issued contact card.
    CardStatus { Issued = "issued", Replaced = "replaced", Lost = "lost", Void = "void" }
);

impl NeedStatus {
    pub fn can_become(self, next: NeedStatus) -> bool {
        use NeedStatus::*;
        matches!(
            (self, next),
            (Open, Referred | Met | Closed) | (Referred, Met | Closed)
        )
    }
}

impl InquiryStatus {
    pub fn can_become(self, next: InquiryStatus) -> bool {
        use InquiryStatus::*;
        matches!(
            (self, next),
            (Open, Answered | Referred) | (Referred, Answered)
        )
    }
}

impl FollowUpStatus {
    pub fn can_become(self, next: FollowUpStatus) -> bool {
        use FollowUpStatus::*;
        matches!((self, next), (Open, Done | Cancelled))
    }
}

impl CardStatus {
    pub fn can_become(self, next: CardStatus) -> bool {
        use CardStatus::*;
        matches!(
            (self, next),
            (Issued, Replaced | Lost | Void) | (Lost, Void)
        )
    }
}

/// A GPS point in WGS-84 degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Result<Self, Error> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(Error::InvalidInput("GPS point out of range"));
        }
        Ok(GeoPoint { lat, lon })
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidInput("GPS point must be 'lat,lon'");
        let (a, b) = s.split_once(',').ok_or_else(bad)?;
        GeoPoint::new(
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        )
    }
}

impl fmt::Display for GeoPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6},{:.6}", self.lat, self.lon)
    }
}

/// A birth date, possibly estimated (common for elderly people without papers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BirthDate {
    pub date: Date,
    pub estimated: bool,
}

impl BirthDate {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.strip_suffix('~') {
            Some(d) => Ok(BirthDate {
                date: Date::parse(d)?,
                estimated: true,
            }),
            None => Ok(BirthDate {
                date: Date::parse(s)?,
                estimated: false,
            }),
        }
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.date, if self.estimated { "~" } else { "" })
    }
}

/// Longest single-line value (names, codes, addresses ...), in characters.
pub const MAX_LINE_CHARS: usize = 500;
/// Longest text inserted by one call, in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;

/// A required one-line value: trimmed, not empty, no control characters, bounded.
pub(crate) fn required_line(value: &str, what: &'static str) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::InvalidInput(what));
    }
    optional_line(v)
}

/// A one-line value that may be empty.
pub(crate) fn optional_line(value: &str) -> Result<String, Error> {
    let v = value.trim();
    if v.chars().count() > MAX_LINE_CHARS {
        return Err(Error::InvalidInput("value too long"));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "control characters are not allowed in a one-line value",
        ));
    }
    Ok(v.to_owned())
}

/// Line breaks as the model keeps them: `\r\n` and a lone `\r` (text pasted from Windows
/// or old Mac files) become `\n`. Borrowed unchanged when there is no `\r`. The store applies
/// it to every free-text value before [`free_text`] checks it, so a paste is saved, not
/// refused as a control character.
pub fn normalise_line_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    }
}

/// Free text (may hold line breaks), bounded.
pub(crate) fn free_text(value: &str) -> Result<&str, Error> {
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::InvalidInput("text too long"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidInput(
            "control characters are not allowed in text",
        ));
    }
    Ok(value)
}

/// A Chinese phone number as dialled: 5–20 digits, optionally with a leading `+`.
pub(crate) fn phone(value: &str) -> Result<String, Error> {
    let v: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = v.strip_prefix('+').unwrap_or(&v);
    if !(5..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidInput("phone number must be 5-20 digits"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_their_text() {
        for s in Section::ALL {
            assert_eq!(Section::parse(s.as_str()).unwrap(), *s);
        }
        // Every section is original or later, once.
        let mut split: Vec<Section> = Section::ORIGINAL
            .iter()
            .chain(Section::LATER)
            .copied()
            .collect();
        split.sort_by_key(|s| s.as_str());
        let mut all = Section::ALL.to_vec();
        all.sort_by_key(|s| s.as_str());
        assert_eq!(split, all);
        assert!(VisitKind::parse("telepathy").is_err());
    }

    #[test]
    fn transitions_follow_the_status_machines() {
        assert!(FollowUpStatus::Open.can_become(FollowUpStatus::Done));
        assert!(!FollowUpStatus::Done.can_become(FollowUpStatus::Cancelled));
        assert!(!FollowUpStatus::Cancelled.can_become(FollowUpStatus::Open));
        assert!(CardStatus::Issued.can_become(CardStatus::Void));
        assert!(!CardStatus::Void.can_become(CardStatus::Issued));
    }

    #[test]
    fn values_validate() {
        assert!(phone("138 0013 8000").is_ok());
        assert!(phone("12ab").is_err());
        assert!(required_line("   ", "name").is_err());
        assert!(required_line("张三\u{0}", "name").is_err());
        assert!(required_line(&"长".repeat(MAX_LINE_CHARS + 1), "name").is_err());
        assert_eq!(
            BirthDate::parse("1950-01-01~").unwrap().to_string(),
            "1950-01-01~"
        );
        assert!(GeoPoint::parse("91,0").is_err());
        assert_eq!(
            GeoPoint::parse("31.5,120.25").unwrap().to_string(),
            "31.500000,120.250000"
        );
    }
}
