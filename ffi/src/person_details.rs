//! A person's details in the bindings (issue 17): benefits, guardianships, parents' status,
//! 户籍, schooling, care levels, the visits-due list, and the code lists (benefit types,
//! parents' situations) with their labels.

use doorstep_core as core;

use crate::error::Result;
use crate::types::{date, person_id, prov, Provenance};
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
    pub id: String,
    pub person_id: String,
    /// A code of `CodeList.BENEFIT_TYPE` (`describeCode`).
    pub kind: String,
    pub monthly_fen: u64,
    /// `YYYY-MM-DD` (`from` is a keyword in Python)
    pub from_date: Option<String>,
    pub until_date: Option<String>,
    pub source: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewBenefit {
    pub person_id: String,
    pub kind: String,
    pub monthly_fen: u64,
    pub from_date: Option<String>,
    pub until_date: Option<String>,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum BenefitEdit {
    Kind { kind: String },
    MonthlyFen { monthly_fen: u64 },
    From { from_date: Option<String> },
    Until { until_date: Option<String> },
    Source { source: String },
}

/// A carer of the household looking after a child of the household.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Guardianship {
    pub id: String,
    pub carer_person_id: String,
    pub child_person_id: String,
    pub kind: GuardianshipKind,
    pub relationship: String,
    pub capacity: Option<CareCapacity>,
    pub status: GuardianshipStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewGuardianship {
    pub carer_person_id: String,
    pub child_person_id: String,
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
    pub household_id: String,
    pub code: String,
    pub village: String,
    pub care_level: CareLevel,
    pub visit_every_days: u32,
    /// `YYYY-MM-DD`; `None`: never visited.
    pub last_visit: Option<String>,
    pub due_on: Option<String>,
    /// 0: due that day; `None`: never visited.
    pub days_overdue: Option<u32>,
}

fn opt_date(d: &Option<String>) -> Result<Option<core::Date>> {
    d.as_deref().map(date).transpose()
}

fn benefit_id(s: &str) -> Result<core::BenefitId> {
    Ok(core::BenefitId::parse(s)?)
}

fn guardianship_id(s: &str) -> Result<core::GuardianshipId> {
    Ok(core::GuardianshipId::parse(s)?)
}

impl NewBenefit {
    fn to_core(&self) -> Result<core::NewBenefit> {
        bounded(&self.source)?;
        Ok(core::NewBenefit {
            person: person_id(&self.person_id)?,
            kind: self.kind.clone(),
            monthly_fen: self.monthly_fen,
            from: opt_date(&self.from_date)?,
            until: opt_date(&self.until_date)?,
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
            BenefitEdit::From { from_date } => E::From(opt_date(from_date)?),
            BenefitEdit::Until { until_date } => E::Until(opt_date(until_date)?),
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
            carer: person_id(&self.carer_person_id)?,
            child: person_id(&self.child_person_id)?,
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
            id: b.id.to_string(),
            person_id: b.person.to_string(),
            kind: b.kind,
            monthly_fen: b.monthly.0,
            from_date: b.from.map(|d| d.to_string()),
            until_date: b.until.map(|d| d.to_string()),
            source: b.source,
            created: prov(b.created),
        }
    }
}

impl From<core::Guardianship> for Guardianship {
    fn from(g: core::Guardianship) -> Self {
        Guardianship {
            id: g.id.to_string(),
            carer_person_id: g.carer.to_string(),
            child_person_id: g.child.to_string(),
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
            household_id: d.household.to_string(),
            code: d.code,
            village: d.village,
            care_level: d.care_level.into(),
            visit_every_days: d.visit_every_days,
            last_visit: d.last_visit.map(|d| d.to_string()),
            due_on: d.due_on.map(|d| d.to_string()),
            days_overdue: d.days_overdue,
        }
    }
}

#[uniffi::export]
impl Doorstep {
    /// Record a benefit a person of the household receives; its id.
    pub fn add_benefit(&self, household_id: String, benefit: NewBenefit) -> Result<String> {
        guarded(|| {
            let benefit = benefit.to_core()?;
            Ok(self
                .write(&household_id, |s, h| s.add_benefit(h, &benefit))?
                .to_string())
        })
    }

    pub fn edit_benefit(
        &self,
        household_id: String,
        benefit_id: String,
        edit: BenefitEdit,
    ) -> Result<()> {
        guarded(|| {
            let (id, edit) = (self::benefit_id(&benefit_id)?, edit.to_core()?);
            self.write(&household_id, |s, h| s.edit_benefit(h, id, &edit))
        })
    }

    /// Record that a carer of the household looks after a child of the household; its id.
    pub fn add_guardianship(
        &self,
        household_id: String,
        guardianship: NewGuardianship,
    ) -> Result<String> {
        guarded(|| {
            let g = guardianship.to_core()?;
            Ok(self
                .write(&household_id, |s, h| s.add_guardianship(h, &g))?
                .to_string())
        })
    }

    /// `Kind` is identity-critical: refused (`OpenConflict`) while two kinds conflict.
    pub fn edit_guardianship(
        &self,
        household_id: String,
        guardianship_id: String,
        edit: GuardianshipEdit,
    ) -> Result<()> {
        guarded(|| {
            let (id, edit) = (self::guardianship_id(&guardianship_id)?, edit.to_core());
            self.write(&household_id, |s, h| s.edit_guardianship(h, id, &edit))
        })
    }

    /// The guardianship no longer holds (status `ENDED`; the record stays).
    pub fn end_guardianship(&self, household_id: String, guardianship_id: String) -> Result<()> {
        guarded(|| {
            let id = self::guardianship_id(&guardianship_id)?;
            self.write(&household_id, |s, h| s.end_guardianship(h, id))
        })
    }

    /// Active households with a care level whose latest visit is as old as the level
    /// allows, or older, or that were never visited: never visited first, then the most
    /// overdue.
    pub fn visits_due(&self, as_of: String) -> Result<Vec<VisitDue>> {
        guarded(|| {
            let as_of = date(&as_of)?;
            Ok(self
                .store()?
                .visits_due(as_of)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
}
