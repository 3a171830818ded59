//! Identifier newtypes. Ids are UUIDs made on the device (v7: time-ordered), never bare
//! strings across the API.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// Parse the hyphenated text form; an invalid id is an [`Error::InvalidInput`].
            pub fn parse(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| Error::InvalidInput(concat!("malformed ", $what, " id")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// One household's case file (one automerge document).
    HouseholdId, "household"
);
id_type!(
    /// A person in a household.
    PersonId, "person"
);
id_type!(
    /// A visit (home, phone, school ...).
    VisitId, "visit"
);
id_type!(
    /// An amendment to a finalised visit.
    AmendmentId, "amendment"
);
id_type!(
    /// A need recorded for a household or person.
    NeedId, "need"
);
id_type!(
    /// A question a household asked (e.g. about a subsidy policy).
    InquiryId, "inquiry"
);
id_type!(
    /// A follow-up task.
    FollowUpId, "follow-up"
);
id_type!(
    /// One issuance of a contact card (爱心联系卡).
    CardIssuanceId, "card issuance"
);
id_type!(
    /// A benefit (subsidy) a person receives.
    BenefitId, "benefit"
);
id_type!(
    /// A guardianship: a carer of the household looking after a child of the household.
    GuardianshipId, "guardianship"
);
id_type!(
    /// A conflict resolution record.
    ResolutionId, "resolution"
);
id_type!(
    /// A group activity of a station (its own document, ADR 0021).
    ActivityId, "activity"
);
id_type!(
    /// An organisation or team of the station's community resource register (its own
    /// document, ADR 0021).
    ResourceId, "resource"
);
id_type!(
    /// A needs survey (questionnaire) of a station (its own document, ADR 0022).
    SurveyId, "survey"
);
id_type!(
    /// One published, frozen version of a survey's questions (ADR 0022).
    SurveyVersionId, "survey version"
);
id_type!(
    /// One person's answers to one survey (a record of their household, ADR 0022).
    ResponseId, "response"
);
id_type!(
    /// A photo, signature or scanned paper attached to a record of a household (its
    /// reference in the household's document; the bytes are addressed by their SHA-256,
    /// ADR 0023).
    AttachmentId, "attachment"
);
id_type!(
    /// A social worker.
    WorkerId, "worker"
);
id_type!(
    /// One install of the app on one phone (one store).
    DeviceId, "device"
);
id_type!(
    /// A township social-work station.
    StationId, "station"
);
id_type!(
    /// A printed batch of contact cards registered for a station.
    CardBatchId, "card batch"
);
id_type!(
    /// A range of a card batch leased to one device.
    CardLeaseId, "card lease"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = VisitId::new();
        assert_eq!(VisitId::parse(&id.to_string()).unwrap(), id);
        assert!(matches!(
            VisitId::parse("not-a-uuid"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(VisitId::parse(""), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn v7_ids_are_time_ordered() {
        let a = HouseholdId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = HouseholdId::new();
        assert!(a < b);
    }
}
