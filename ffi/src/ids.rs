//! The core's ids and dates as UniFFI custom types: a hyphenated UUID string (a `YYYY-MM-DD`
//! string for a date) in Kotlin, Swift and Python, the core's newtype in Rust. The bindings
//! parse and print them, so no method or record of this crate converts by hand (ADR 0030).
//!
//! A malformed id or date passed by the app is refused before the call runs, with
//! `DoorstepError::InvalidInput` (UniFFI hands the lift error back as the call's error
//! because it is a `DoorstepError`).

use doorstep_core::{
    ActivityId, AmendmentId, AttachmentId, BenefitId, CardBatchId, CardIssuanceId, CardLeaseId,
    Date, DeviceId, FollowUpId, GuardianshipId, HouseholdId, InquiryId, NeedId, PersonId,
    ResolutionId, ResourceId, ResponseId, StationId, SurveyId, SurveyVersionId, VisitId, WorkerId,
};

use crate::error::DoorstepError;

macro_rules! string_types {
    ($($t:ident),+ $(,)?) => {$(
        uniffi::custom_type!($t, String, {
            remote,
            lower: |v| v.to_string(),
            try_lift: |s| Ok($t::parse(&s).map_err(DoorstepError::from)?),
        });
    )+};
}

string_types!(
    HouseholdId,
    PersonId,
    VisitId,
    AmendmentId,
    NeedId,
    InquiryId,
    FollowUpId,
    CardIssuanceId,
    BenefitId,
    GuardianshipId,
    ResolutionId,
    ActivityId,
    ResourceId,
    SurveyId,
    SurveyVersionId,
    ResponseId,
    AttachmentId,
    WorkerId,
    DeviceId,
    StationId,
    CardBatchId,
    CardLeaseId,
    Date,
);

#[cfg(test)]
mod tests {
    use super::*;
    use uniffi::{Lift, Lower};

    type Tag = crate::UniFfiTag;

    #[test]
    fn an_id_crosses_as_its_hyphenated_text() {
        let id = HouseholdId::new();
        let lowered = <HouseholdId as Lower<Tag>>::lower(id);
        let back = <HouseholdId as Lift<Tag>>::try_lift(lowered).expect("lifts");
        assert_eq!(back, id);
        let text = <String as Lift<Tag>>::try_lift(<HouseholdId as Lower<Tag>>::lower(id))
            .expect("a string");
        assert_eq!(text, id.to_string());
    }

    #[test]
    fn a_malformed_id_or_date_is_invalid_input() {
        for bad in ["", "not-a-uuid", "2026-13-45"] {
            let lowered = <String as Lower<Tag>>::lower(bad.to_owned());
            let err = <VisitId as Lift<Tag>>::try_lift(lowered).expect_err("refused");
            let err = err.downcast::<DoorstepError>().expect("a DoorstepError");
            assert!(matches!(err, DoorstepError::InvalidInput { .. }), "{err:?}");
        }
        let lowered = <String as Lower<Tag>>::lower("2026-13-45".to_owned());
        let err = <Date as Lift<Tag>>::try_lift(lowered).expect_err("refused");
        assert!(err.downcast::<DoorstepError>().is_ok());
    }
}
