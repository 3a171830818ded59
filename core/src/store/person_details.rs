//! Benefits and guardianships on the device (issue 17), and the visits-due list that the
//! care levels of households and persons drive (`ix_care_levels`).

use uuid::Uuid;

use super::index::Scope;
use super::Store;
use crate::doc::{benefits, write};
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::person_details::{CareLevel, GuardianshipStatus};
use crate::model::policy::EntityKind;
use crate::model::records::*;
use crate::model::time::Date;

/// A household whose visit is due: its strictest care level allows no longer between
/// visits than `visit_every_days`, and its latest visit is at least that old (or it has
/// none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitDue {
    pub household: HouseholdId,
    pub code: String,
    pub village: String,
    /// The strictest level of the household's own and its persons'.
    pub care_level: CareLevel,
    pub visit_every_days: u32,
    /// The date of its latest visit (of any kind or status), `None` if never visited.
    pub last_visit: Option<Date>,
    /// `last_visit + visit_every_days`; `None` if never visited (due now).
    pub due_on: Option<Date>,
    /// Days from `due_on` to the date asked about (0: due that day); `None` if never
    /// visited.
    pub days_overdue: Option<u32>,
}

fn scope(kind: EntityKind, key: &Uuid) -> Scope {
    Scope::Record(kind, *key)
}

impl Store {
    // ----- benefits ------------------------------------------------------------------------

    /// Record a benefit a person of the household receives. `kind` is a code of
    /// `CodeList::BenefitType`; the amount is monthly, in fen, at most 10,000,000.
    pub fn add_benefit(&self, household: HouseholdId, new: &NewBenefit) -> Result<BenefitId> {
        let id = BenefitId::new();
        self.act(
            household,
            scope(EntityKind::Benefit, id.as_uuid()),
            |tx, p| benefits::add_benefit(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn edit_benefit(
        &self,
        household: HouseholdId,
        benefit: BenefitId,
        edit: &BenefitEdit,
    ) -> Result<()> {
        self.act(
            household,
            scope(EntityKind::Benefit, benefit.as_uuid()),
            |tx, p| benefits::edit_benefit(tx, benefit, edit, p),
        )
    }

    // ----- guardianships -------------------------------------------------------------------

    /// Record that a person of the household (the carer) looks after a child of the
    /// household. Both must exist and differ.
    pub fn add_guardianship(
        &self,
        household: HouseholdId,
        new: &NewGuardianship,
    ) -> Result<GuardianshipId> {
        let id = GuardianshipId::new();
        // Two records: the link, and the carer's `guardian` flag it sets.
        self.act(
            household,
            Scope::Records([
                (EntityKind::Guardianship, *id.as_uuid()),
                (EntityKind::Person, *new.carer.as_uuid()),
            ]),
            |tx, p| benefits::add_guardianship(tx, id, new, p),
        )?;
        Ok(id)
    }

    /// Edit a guardianship; its `kind` is identity-critical: an edit is refused while two
    /// kinds conflict (`Error::OpenConflict`; resolve it instead).
    pub fn edit_guardianship(
        &self,
        household: HouseholdId,
        guardianship: GuardianshipId,
        edit: &GuardianshipEdit,
    ) -> Result<()> {
        self.act(
            household,
            scope(EntityKind::Guardianship, guardianship.as_uuid()),
            |tx, p| benefits::edit_guardianship(tx, guardianship, edit, p),
        )
    }

    /// The guardianship no longer holds (status `ended`; the record stays).
    pub fn end_guardianship(
        &self,
        household: HouseholdId,
        guardianship: GuardianshipId,
    ) -> Result<()> {
        self.act(
            household,
            scope(EntityKind::Guardianship, guardianship.as_uuid()),
            |tx, p| {
                write::set_status(
                    tx,
                    EntityKind::Guardianship,
                    &guardianship.to_string(),
                    GuardianshipStatus::Ended.as_str(),
                    p,
                )
            },
        )
    }

    // ----- visits due ----------------------------------------------------------------------

    /// Active households with a care level (their own or a person's) whose latest visit is
    /// `visit_every_days` or more before `as_of`, or that were never visited: the never
    /// visited first (by code), then the most overdue first (ties by code). Read from the
    /// index: no document is loaded.
    pub fn visits_due(&self, as_of: Date) -> Result<Vec<VisitDue>> {
        type Row = (String, String, String, i64, Option<String>);
        let rows: Vec<Row> = self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT doorstep_id(h.household_id), h.code, h.village, l.interval_days,
                        (SELECT MAX(v.date) FROM ix_visits v WHERE v.household_id = h.household_id)
                 FROM ix_households h
                 JOIN (SELECT household_id, MIN(interval_days) AS interval_days
                       FROM ix_care_levels GROUP BY household_id) l
                   ON l.household_id = h.household_id
                 WHERE h.status = 'active'",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        let mut due = Vec::new();
        for (id, code, village, days, last) in rows {
            let days = u32::try_from(days).map_err(|_| Error::Damaged)?;
            // Each level has its own interval: the strictest interval names the level.
            let care_level = CareLevel::ALL
                .iter()
                .copied()
                .find(|l| l.visit_every_days() == Some(days))
                .ok_or(Error::Damaged)?;
            let last_visit = last
                .map(|d| Date::parse(&d).map_err(|_| Error::Damaged))
                .transpose()?;
            let due_on = last_visit
                .map(|d| d.add_days(i64::from(days)))
                .transpose()?;
            if due_on.is_some_and(|d| d > as_of) {
                continue;
            }
            let days_overdue = due_on
                .map(|d| u32::try_from(as_of.to_days() - d.to_days()).map_err(|_| Error::Damaged))
                .transpose()?;
            due.push(VisitDue {
                household: HouseholdId::parse(&id).map_err(|_| Error::Damaged)?,
                code,
                village,
                care_level,
                visit_every_days: days,
                last_visit,
                due_on,
                days_overdue,
            });
        }
        // Never visited (no count of days) sorts as the most overdue.
        let overdue = |d: &VisitDue| d.days_overdue.map_or(u64::MAX, u64::from);
        due.sort_by(|a, b| {
            overdue(b)
                .cmp(&overdue(a))
                .then_with(|| a.code.cmp(&b.code))
                .then_with(|| a.household.cmp(&b.household))
        });
        Ok(due)
    }
}
