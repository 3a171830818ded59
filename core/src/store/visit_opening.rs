//! Opening a visit with what it found in one durable action (issue 14): the visit, its
//! needs, its follow-ups and the contact card left are one automerge change instead of one
//! each, which saves a change header and its provenance per record on every phone that
//! receives it.

use super::index::Scope;
use super::Store;
use crate::doc::write;
use crate::error::Result;
use crate::model::ids::{CardIssuanceId, FollowUpId, HouseholdId, NeedId, VisitId};
use crate::model::records::{NewCardIssuance, NewFollowUp, NewNeed, NewVisit};
use crate::model::values::normalise_line_breaks as lines;

/// A visit and what it found, recorded at once. The needs', follow-ups' and card's own
/// visit fields are ignored: they belong to the visit opened.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitOpening {
    pub visit: NewVisit,
    pub needs: Vec<NewNeed>,
    pub follow_ups: Vec<NewFollowUp>,
    pub card: Option<NewCardIssuance>,
}

/// The ids `Store::open_visit` gave, in the order of the opening's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedVisit {
    pub visit: VisitId,
    pub needs: Vec<NeedId>,
    pub follow_ups: Vec<FollowUpId>,
    pub card: Option<CardIssuanceId>,
}

impl Store {
    /// Open a visit (a draft, the signed-in worker on it) with its needs, follow-ups and
    /// card: one durable action and one change. The same checks as `start_visit`,
    /// `add_need`, `add_follow_up` and `record_card_issuance` apply; if any fails nothing is
    /// written.
    pub fn open_visit(
        &self,
        household: HouseholdId,
        opening: &VisitOpening,
    ) -> Result<OpenedVisit> {
        let opened = OpenedVisit {
            visit: VisitId::new(),
            needs: opening.needs.iter().map(|_| NeedId::new()).collect(),
            follow_ups: opening
                .follow_ups
                .iter()
                .map(|_| FollowUpId::new())
                .collect(),
            card: opening.card.as_ref().map(|_| CardIssuanceId::new()),
        };
        let visit = Some(opened.visit);
        self.act(household, Scope::OpenedVisit(opened.visit), |tx, p| {
            write::start_visit(tx, opened.visit, &opening.visit, p)?;
            for (id, need) in opened.needs.iter().zip(&opening.needs) {
                let need = NewNeed {
                    description: lines(&need.description).into_owned(),
                    visit,
                    ..need.clone()
                };
                write::add_need(tx, *id, &need, p)?;
            }
            for (id, follow_up) in opened.follow_ups.iter().zip(&opening.follow_ups) {
                let follow_up = NewFollowUp {
                    origin_visit: visit,
                    ..follow_up.clone()
                };
                write::add_follow_up(tx, *id, &follow_up, p)?;
            }
            if let (Some(id), Some(card)) = (opened.card, &opening.card) {
                let card = NewCardIssuance {
                    visit,
                    ..card.clone()
                };
                write::add_card(tx, id, &card, p)?;
            }
            Ok(())
        })?;
        Ok(opened)
    }
}
