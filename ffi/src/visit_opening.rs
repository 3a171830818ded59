//! Opening a visit with what it found, in one change (issue 14, ADR 0031).

use doorstep_core as core;
use doorstep_core::{CardIssuanceId, FollowUpId, HouseholdId, NeedId, VisitId};

use crate::error::Result;
use crate::types::{NewCardIssuance, NewFollowUp, NewNeed, NewVisit};
use crate::{guarded, Doorstep};

/// A visit and what it found, recorded at once. The needs', follow-ups' and card's own
/// visit ids are ignored: they belong to the visit opened.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VisitOpening {
    pub visit: NewVisit,
    pub needs: Vec<NewNeed>,
    pub follow_ups: Vec<NewFollowUp>,
    pub card: Option<NewCardIssuance>,
}

/// The ids `openVisit` gave, in the order of the opening's lists.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OpenedVisit {
    pub visit_id: VisitId,
    pub need_ids: Vec<NeedId>,
    pub follow_up_ids: Vec<FollowUpId>,
    pub card_id: Option<CardIssuanceId>,
}

#[uniffi::export]
impl Doorstep {
    /// Open a visit with its needs, follow-ups and card: one durable action and one change
    /// (the same checks as `startVisit`, `addNeed`, `addFollowUp`, `recordCardIssuance`;
    /// if any fails nothing is written).
    pub fn open_visit(
        &self,
        household_id: HouseholdId,
        opening: VisitOpening,
    ) -> Result<OpenedVisit> {
        guarded(|| {
            let opening = core::VisitOpening {
                visit: opening.visit.to_core()?,
                needs: opening
                    .needs
                    .iter()
                    .map(NewNeed::to_core)
                    .collect::<Result<_>>()?,
                follow_ups: opening
                    .follow_ups
                    .iter()
                    .map(NewFollowUp::to_core)
                    .collect::<Result<_>>()?,
                card: opening
                    .card
                    .as_ref()
                    .map(NewCardIssuance::to_core)
                    .transpose()?,
            };
            let o = self.write(household_id, |s, h| s.open_visit(h, &opening))?;
            Ok(OpenedVisit {
                visit_id: o.visit,
                need_ids: o.needs,
                follow_up_ids: o.follow_ups,
                card_id: o.card,
            })
        })
    }
}
