//! A person's details in the bindings (issue 17): benefits, guardianships, parents' status,
//! 户籍, schooling, care levels, the visits-due list, and the code lists (benefit types,
//! parents' situations) with their labels.

use doorstep_core as core;
use doorstep_core::{BenefitId, Date, GuardianshipId, HouseholdId, PersonId};

use crate::error::Result;
use crate::types::{prov, Provenance};
use crate::{bounded, guarded, Doorstep};

/// Declares an FFI enum mirroring a core value enum, with conversions both ways.
macro_rules! mirror {
    ($(#[$doc:meta])* $name:ident => $core:path { $($v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
        pub enum $name { $($v),+ }
        impl From<$name> for $core {
            fn from(v: $name) -> Self { match v { $($name::$v => <$core>::$v),+ } }
        }
        impl From<$core> for $name {
            fn from(v: $core) -> Self { match v { $(<$core>::$v => $name::$v),+ } }
        }
    };
}

// `Unrecognised`: a value a newer version wrote; shown as such, never written.
mirror!(
    /// 户口性质.
    HukouType => core::HukouType { Agricultural, NonAgricultural, Resident, Unrecognised }
);
mirror!(
    /// 学段.
    SchoolStage => core::SchoolStage { NotInSchool, Preschool, Primary, JuniorSecondary, SeniorSecondary, Vocational, Higher, Unrecognised }
);
mirror!(
    /// 就学状态: 在读, 辍学, 休学, 送教上门, 随班就读, 特教学校.
    SchoolStatus => core::SchoolStatus { Enrolled, DroppedOut, Suspended, HomeTeaching, InclusiveClass, SpecialSchool, Unrecognised }
);
mirror!(
    /// 关爱等级: `High` every 30 days, `Medium` 90, `Low` 180.
    CareLevel => core::CareLevel { High, Medium, Low, Unrecognised }
);
mirror!(
    /// 法定监护人 (`Legal`) or 受委托照护人 (`Entrusted`).
    GuardianshipKind => core::GuardianshipKind { Legal, Entrusted, Unrecognised }
);
mirror!(
    /// 有能力, 能力较弱, 无能力.
    CareCapacity => core::CareCapacity { Capable, Limited, Incapable, Unrecognised }
);
mirror!(GuardianshipStatus => core::GuardianshipStatus { Active, Ended, Unrecognised });
mirror!(
    /// The built-in code lists.
    CodeList => core::CodeList { BenefitType, ParentStatus }
);

/// One code of a list with its labels; `known` is false for a code this version does not
/// know (a newer release's): show `code` as unknown.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CodeLabel {
    pub code: String,
    pub label_zh: String,
    pub label_en: String,
    pub known: bool,
}

/// The codes of a list, in the order to offer them.
#[uniffi::export]
pub fn code_list(list: CodeList) -> Vec<CodeLabel> {
    core::CodeList::from(list)
        .entries()
        .iter()
        .map(|&(code, zh, en)| CodeLabel {
            code: code.into(),
            label_zh: zh.into(),
            label_en: en.into(),
            known: true,
        })
        .collect()
}

/// What a stored code is (never an error: an unknown code has empty labels).
#[uniffi::export]
pub fn describe_code(list: CodeList, stored: String) -> CodeLabel {
    match core::CodeList::from(list).describe(&stored) {
        core::Coded::Known {
            code,
            label_zh,
            label_en,
        } => CodeLabel {
            code: code.into(),
            label_zh: label_zh.into(),
            label_en: label_en.into(),
            known: true,
        },
        core::Coded::Unknown(code) => CodeLabel {
            code,
            label_zh: String::new(),
            label_en: String::new(),
            known: false,
        },
    }
}

/// A benefit a person receives. `monthly_fen`: 分 per month (115000 = ¥1,150.00).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Benefit {
    pub id: BenefitId,
    pub person_id: PersonId,
    /// A code of `CodeList.BENEFIT_TYPE` (`describeCode`).
    pub kind: String,
    pub monthly_fen: u64,
    /// `YYYY-MM-DD` (`from` is a keyword in Python)
    pub from_date: Option<Date>,
    pub until_date: Option<Date>,
    pub source: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewBenefit {
    pub person_id: PersonId,
    pub kind: String,
    pub monthly_fen: u64,
    pub from_date: Option<Date>,
    pub until_date: Option<Date>,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum BenefitEdit {
    Kind { kind: String },
    MonthlyFen { monthly_fen: u64 },
    From { from_date: Option<Date> },
    Until { until_date: Option<Date> },
    Source { source: String },
}

/// A carer of the household looking after a child of the household.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Guardianship {
    pub id: GuardianshipId,
    pub carer_person_id: PersonId,
    pub child_person_id: PersonId,
    pub kind: GuardianshipKind,
    pub relationship: String,
    pub capacity: Option<CareCapacity>,
    pub status: GuardianshipStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewGuardianship {
    pub carer_person_id: PersonId,
    pub child_person_id: PersonId,
    pub kind: GuardianshipKind,
    pub relationship: String,
    pub capacity: Option<CareCapacity>,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum GuardianshipEdit {
    Kind { kind: GuardianshipKind },
    Relationship { relationship: String },
    Capacity { capacity: Option<CareCapacity> },
}

/// A household whose visit is due (`visitsDue`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VisitDue {
    pub household_id: HouseholdId,
    pub code: String,
    pub village: String,
    pub care_level: CareLevel,
    pub visit_every_days: u32,
    /// `YYYY-MM-DD`; `None`: never visited.
    pub last_visit: Option<Date>,
    pub due_on: Option<Date>,
    /// 0: due that day; `None`: never visited.
    pub days_overdue: Option<u32>,
}

impl NewBenefit {
    fn to_core(&self) -> Result<core::NewBenefit> {
        bounded(&self.source)?;
        Ok(core::NewBenefit {
            person: self.person_id,
            kind: self.kind.clone(),
            monthly_fen: self.monthly_fen,
            from: self.from_date,
            until: self.until_date,
            source: self.source.clone(),
        })
    }
}

impl BenefitEdit {
    fn to_core(&self) -> Result<core::BenefitEdit> {
        use core::BenefitEdit as E;
        Ok(match self {
            BenefitEdit::Kind { kind } => E::Kind(kind.clone()),
            BenefitEdit::MonthlyFen { monthly_fen } => E::MonthlyFen(*monthly_fen),
            BenefitEdit::From { from_date } => E::From(*from_date),
            BenefitEdit::Until { until_date } => E::Until(*until_date),
            BenefitEdit::Source { source } => {
                bounded(source)?;
                E::Source(source.clone())
            }
        })
    }
}

impl NewGuardianship {
    fn to_core(&self) -> Result<core::NewGuardianship> {
        Ok(core::NewGuardianship {
            carer: self.carer_person_id,
            child: self.child_person_id,
            kind: self.kind.into(),
            relationship: self.relationship.clone(),
            capacity: self.capacity.map(Into::into),
        })
    }
}

impl GuardianshipEdit {
    fn to_core(&self) -> core::GuardianshipEdit {
        use core::GuardianshipEdit as E;
        match self {
            GuardianshipEdit::Kind { kind } => E::Kind((*kind).into()),
            GuardianshipEdit::Relationship { relationship } => {
                E::Relationship(relationship.clone())
            }
            GuardianshipEdit::Capacity { capacity } => E::Capacity(capacity.map(Into::into)),
        }
    }
}

impl From<core::Benefit> for Benefit {
    fn from(b: core::Benefit) -> Self {
        Benefit {
            id: b.id,
            person_id: b.person,
            kind: b.kind,
            monthly_fen: b.monthly.0,
            from_date: b.from,
            until_date: b.until,
            source: b.source,
            created: prov(b.created),
        }
    }
}

impl From<core::Guardianship> for Guardianship {
    fn from(g: core::Guardianship) -> Self {
        Guardianship {
            id: g.id,
            carer_person_id: g.carer,
            child_person_id: g.child,
            kind: g.kind.into(),
            relationship: g.relationship,
            capacity: g.capacity.map(Into::into),
            status: g.status.into(),
            created: prov(g.created),
        }
    }
}

impl From<core::VisitDue> for VisitDue {
    fn from(d: core::VisitDue) -> Self {
        VisitDue {
            household_id: d.household,
            code: d.code,
            village: d.village,
            care_level: d.care_level.into(),
            visit_every_days: d.visit_every_days,
            last_visit: d.last_visit,
            due_on: d.due_on,
            days_overdue: d.days_overdue,
        }
    }
}

#[uniffi::export]
impl Doorstep {
    /// Record a benefit a person of the household receives; its id.
    pub fn add_benefit(&self, household_id: HouseholdId, benefit: NewBenefit) -> Result<BenefitId> {
        guarded(|| {
            let benefit = benefit.to_core()?;
            self.write(household_id, |s, h| s.add_benefit(h, &benefit))
        })
    }

    pub fn edit_benefit(
        &self,
        household_id: HouseholdId,
        benefit_id: BenefitId,
        edit: BenefitEdit,
    ) -> Result<()> {
        guarded(|| {
            let (id, edit) = (benefit_id, edit.to_core()?);
            self.write(household_id, |s, h| s.edit_benefit(h, id, &edit))
        })
    }

    /// Record that a carer of the household looks after a child of the household; its id.
    pub fn add_guardianship(
        &self,
        household_id: HouseholdId,
        guardianship: NewGuardianship,
    ) -> Result<GuardianshipId> {
        guarded(|| {
            let g = guardianship.to_core()?;
            self.write(household_id, |s, h| s.add_guardianship(h, &g))
        })
    }

    /// `Kind` is identity-critical: refused (`OpenConflict`) while two kinds conflict.
    pub fn edit_guardianship(
        &self,
        household_id: HouseholdId,
        guardianship_id: GuardianshipId,
        edit: GuardianshipEdit,
    ) -> Result<()> {
        guarded(|| {
            let (id, edit) = (guardianship_id, edit.to_core());
            self.write(household_id, |s, h| s.edit_guardianship(h, id, &edit))
        })
    }

    /// The guardianship no longer holds (status `ENDED`; the record stays).
    pub fn end_guardianship(
        &self,
        household_id: HouseholdId,
        guardianship_id: GuardianshipId,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.end_guardianship(h, guardianship_id)))
    }

    /// Active households with a care level whose latest visit is as old as the level
    /// allows, or older, or that were never visited: never visited first, then the most
    /// overdue.
    pub fn visits_due(&self, as_of: Date) -> Result<Vec<VisitDue>> {
        guarded(|| {
            Ok(self
                .store()?
                .visits_due(as_of)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
}
