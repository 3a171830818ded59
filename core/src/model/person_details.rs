//! What a social worker records about a person beyond identity (issue 17): the benefits
//! they receive, who looks after a child, the parents' situation, 户籍, schooling, and the
//! care level that says how often the household must be visited.
//!
//! Two kinds of value:
//! - closed lists as value enums (`HukouType`, `SchoolStage`, `SchoolStatus`, `CareLevel`,
//!   `GuardianshipKind`, `CareCapacity`, `GuardianshipStatus`): an unknown value reads as
//!   `Unrecognised`, is never written, and the server's validator refuses it (ADR 0013);
//! - code lists (`CodeList::BenefitType`, `CodeList::ParentStatus`) with the code rule of
//!   ADR 0018 (lowercase ASCII words joined by dots): the typed API writes only codes of the
//!   list, any code-shaped value reads (an unknown one is shown as unknown and kept, as a
//!   newer release's category is) and the validator accepts it; a value that is not
//!   code-shaped makes the household unreadable, and the server refuses it.

use crate::error::{Error, Result};
use crate::model::values::value_enum;
use crate::model::vocabulary::looks_like_code;
use std::fmt;

value_enum!(
    /// 户口性质: the kind of household registration.
    HukouType {
        Agricultural = "agricultural",
        NonAgricultural = "non_agricultural",
        /// 居民户口: the unified registration since the 2014 reform.
        Resident = "resident",
    }
);

value_enum!(
    /// 学段: the stage of schooling a child is at (or would be at).
    SchoolStage {
        /// Not of school age yet, or not in any school.
        NotInSchool = "not_in_school",
        Preschool = "preschool",
        Primary = "primary",
        JuniorSecondary = "junior_secondary",
        SeniorSecondary = "senior_secondary",
        Vocational = "vocational",
        Higher = "higher",
    }
);

value_enum!(
    /// 就学状态.
    SchoolStatus {
        /// 在读
        Enrolled = "enrolled",
        /// 辍学
        DroppedOut = "dropped_out",
        /// 休学
        Suspended = "suspended",
        /// 送教上门: taught at home by visiting teachers.
        HomeTeaching = "home_teaching",
        /// 随班就读: a child with a disability in an ordinary class.
        InclusiveClass = "inclusive_class",
        /// 特教学校
        SpecialSchool = "special_school",
    }
);

value_enum!(
    /// 关爱等级: how closely a household or a child is followed; it sets how often the
    /// household must be visited ([`CareLevel::visit_every_days`]).
    CareLevel {
        /// 高风险 / 重点关注: at least every 30 days.
        High = "high",
        /// 中风险 / 一般关注: at least every 90 days.
        Medium = "medium",
        /// 低风险 / 常规关注: at least every 180 days.
        Low = "low",
    }
);

impl CareLevel {
    /// The longest a household at this level may go without a visit, in days; `None` for
    /// a level this version does not know.
    pub const fn visit_every_days(self) -> Option<u32> {
        match self {
            CareLevel::High => Some(30),
            CareLevel::Medium => Some(90),
            CareLevel::Low => Some(180),
            CareLevel::Unrecognised => None,
        }
    }
}

value_enum!(
    /// Under what title a carer looks after a child.
    GuardianshipKind {
        /// 法定监护人
        Legal = "legal",
        /// 受委托照护人: a carer the guardians entrusted the child to.
        Entrusted = "entrusted",
    }
);

value_enum!(
    /// 监护能力评估: the worker's assessment of a carer's capacity.
    CareCapacity {
        /// 有能力
        Capable = "capable",
        /// 能力较弱
        Limited = "limited",
        /// 无能力
        Incapable = "incapable",
    }
);

value_enum!(
    /// Whether a guardianship still holds: `active`, then `ended` (never deleted).
    GuardianshipStatus { Active = "active", Ended = "ended" }
);

impl GuardianshipStatus {
    pub fn can_become(self, next: GuardianshipStatus) -> bool {
        matches!(
            (self, next),
            (GuardianshipStatus::Active, GuardianshipStatus::Ended)
        )
    }
}

/// A list of codes with labels, compiled into the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeList {
    /// The kind of a benefit (低保金, 孤儿基本生活费 ...).
    BenefitType,
    /// A parent's situation: `parent.normal`, or one of the situations that make a child
    /// 事实无人抚养 — the same codes as the child categories under `child.unsupported`.
    ParentStatus,
}

/// One code of a list: code, zh-CN label, English label.
pub type CodeEntry = (&'static str, &'static str, &'static str);

const BENEFIT_TYPES: &[CodeEntry] = &[
    (
        "benefit.dibao",
        "最低生活保障金（低保）",
        "Minimum living guarantee (dibao)",
    ),
    (
        "benefit.tekun",
        "特困人员救助供养金",
        "Extreme-poverty support (tekun)",
    ),
    (
        "benefit.orphan",
        "孤儿基本生活费",
        "Orphan's basic living allowance",
    ),
    (
        "benefit.unsupported_child",
        "事实无人抚养儿童基本生活补贴",
        "De facto unsupported child's basic living allowance",
    ),
    (
        "benefit.difficult_child",
        "困境儿童基本生活补贴",
        "Allowance for a child in difficulty",
    ),
    (
        "benefit.disability_living",
        "困难残疾人生活补贴",
        "Living allowance for people with disabilities in hardship",
    ),
    (
        "benefit.disability_care",
        "重度残疾人护理补贴",
        "Care allowance for people with severe disabilities",
    ),
    ("benefit.elderly_age", "高龄津贴", "Advanced-age allowance"),
    (
        "benefit.other",
        "其他补贴",
        "Other benefit (named in the source)",
    ),
];

const PARENT_STATUSES: &[CodeEntry] = &[
    ("parent.normal", "正常", "No difficulty"),
    (
        "child.unsupported.parent_severe_disability",
        "重残",
        "Severely disabled",
    ),
    (
        "child.unsupported.parent_serious_illness",
        "重病",
        "Seriously ill",
    ),
    (
        "child.unsupported.parent_imprisoned",
        "服刑在押",
        "Serving a sentence or in custody",
    ),
    (
        "child.unsupported.parent_compulsory_rehab",
        "强制隔离戒毒",
        "In compulsory drug rehabilitation",
    ),
    (
        "child.unsupported.parent_restricted",
        "被执行其他限制人身自由措施",
        "Under another restriction of personal liberty",
    ),
    ("child.unsupported.parent_missing", "失联", "Missing"),
    ("child.unsupported.parent_deceased", "死亡", "Deceased"),
    (
        "child.unsupported.guardianship_revoked",
        "被撤销监护资格",
        "Guardianship revoked",
    ),
    (
        "child.unsupported.parent_deported",
        "被遣送（驱逐）出境",
        "Deported",
    ),
];

/// A stored code read against its list. Reading never fails on a code-shaped value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coded {
    Known {
        code: &'static str,
        label_zh: &'static str,
        label_en: &'static str,
    },
    /// A code this version does not know (a newer release's): shown as unknown, kept.
    Unknown(String),
}

impl CodeList {
    pub const ALL: [CodeList; 2] = [CodeList::BenefitType, CodeList::ParentStatus];

    pub const fn name(self) -> &'static str {
        match self {
            CodeList::BenefitType => "benefit type",
            CodeList::ParentStatus => "parent status",
        }
    }

    pub fn entries(self) -> &'static [CodeEntry] {
        match self {
            CodeList::BenefitType => BENEFIT_TYPES,
            CodeList::ParentStatus => PARENT_STATUSES,
        }
    }

    /// What a stored value is (it must be code-shaped: see [`CodeList::read`]).
    pub fn describe(self, stored: &str) -> Coded {
        match self.entries().iter().find(|e| e.0 == stored) {
            Some(&(code, label_zh, label_en)) => Coded::Known {
                code,
                label_zh,
                label_en,
            },
            None => Coded::Unknown(stored.to_owned()),
        }
    }

    /// The code to write: one of this list (surrounding spaces dropped). Errors name the
    /// rule; codes are not personal data.
    pub fn check_writable(self, code: &str) -> Result<&'static str> {
        let code = code.trim();
        self.entries()
            .iter()
            .find(|e| e.0 == code)
            .map(|e| e.0)
            .ok_or(Error::InvalidInput(match self {
                CodeList::BenefitType => {
                    "unknown benefit type: use a code of the benefit list (benefit.dibao ...)"
                }
                CodeList::ParentStatus => {
                    "unknown parent status: use parent.normal or a child.unsupported.parent_… code"
                }
            }))
    }

    /// A stored value as the reader takes it: any code-shaped value (a newer release may
    /// have added codes); anything else is not a value of a code list.
    pub(crate) fn read(self, stored: &str) -> Result<String> {
        if looks_like_code(stored) {
            Ok(stored.to_owned())
        } else {
            Err(Error::NotAHousehold(match self {
                CodeList::BenefitType => "malformed benefit type",
                CodeList::ParentStatus => "malformed parent status",
            }))
        }
    }
}

/// Largest monthly amount the API writes, in fen (¥100,000.00): a typo guard, not policy.
pub const MAX_MONTHLY_FEN: u64 = 10_000_000;

/// An amount of money in fen (分, 1/100 yuan), stored as canonical decimal text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub u64);

impl Fen {
    /// A monthly amount to write: at most [`MAX_MONTHLY_FEN`].
    pub fn monthly(fen: u64) -> Result<Fen> {
        if fen > MAX_MONTHLY_FEN {
            return Err(Error::InvalidInput(
                "a monthly amount is at most 10,000,000 fen (100,000 yuan)",
            ));
        }
        Ok(Fen(fen))
    }

    /// The stored form: decimal digits without sign or leading zeros. Anything else (a
    /// sign, a decimal point, yuan with a unit) is not an amount in fen.
    pub(crate) fn read(stored: &str) -> Result<Fen> {
        let bad = || Error::NotAHousehold("malformed amount in fen");
        if stored.is_empty()
            || !stored.bytes().all(|b| b.is_ascii_digit())
            || (stored.len() > 1 && stored.starts_with('0'))
        {
            return Err(bad());
        }
        stored.parse().map(Fen).map_err(|_| bad())
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_are_code_shaped_unique_and_reuse_the_child_categories() {
        let vocabulary = crate::model::vocabulary::Vocabulary::builtin();
        for list in CodeList::ALL {
            let mut seen = std::collections::HashSet::new();
            for (code, zh, en) in list.entries() {
                assert!(looks_like_code(code), "{code}");
                assert!(seen.insert(*code), "{code} twice");
                assert!(!zh.is_empty() && !en.is_empty());
                assert_eq!(list.check_writable(&format!(" {code} ")).unwrap(), *code);
            }
        }
        // Every parent situation is the child category it makes a child (事实无人抚养).
        for (code, _, _) in &PARENT_STATUSES[1..] {
            let entry = vocabulary.lookup(code).expect(code);
            assert_eq!(entry.parent.as_ref().unwrap().as_str(), "child.unsupported");
        }
        let situations = vocabulary
            .entries()
            .filter(|e| {
                e.parent
                    .as_ref()
                    .is_some_and(|p| p.as_str() == "child.unsupported")
            })
            .count();
        assert_eq!(situations, PARENT_STATUSES.len() - 1);
    }

    #[test]
    fn unknown_codes_read_and_are_not_written() {
        let newer = "benefit.county_flood_relief";
        assert_eq!(
            CodeList::BenefitType.describe(newer),
            Coded::Unknown(newer.into())
        );
        assert_eq!(CodeList::BenefitType.read(newer).unwrap(), newer);
        assert!(matches!(
            CodeList::BenefitType.check_writable(newer),
            Err(Error::InvalidInput(_))
        ));
        // A parent status is not a benefit, nor the other way round.
        assert!(CodeList::BenefitType
            .check_writable("parent.normal")
            .is_err());
        assert!(CodeList::ParentStatus
            .check_writable("benefit.dibao")
            .is_err());
        for bad in ["低保", "", "Benefit.Dibao", "benefit", "benefit. dibao"] {
            assert!(
                matches!(
                    CodeList::BenefitType.read(bad),
                    Err(Error::NotAHousehold(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn amounts_are_canonical_fen() {
        assert_eq!(Fen::read("0").unwrap(), Fen(0));
        assert_eq!(Fen::read("123456").unwrap(), Fen(123_456));
        for bad in [
            "",
            "-1",
            "+1",
            "012",
            "12.5",
            "1e3",
            "¥100",
            " 1",
            "99999999999999999999999",
        ] {
            assert!(Fen::read(bad).is_err(), "{bad:?}");
        }
        assert!(Fen::monthly(MAX_MONTHLY_FEN).is_ok());
        assert!(matches!(
            Fen::monthly(MAX_MONTHLY_FEN + 1),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn care_levels_have_intervals() {
        assert_eq!(CareLevel::High.visit_every_days(), Some(30));
        assert_eq!(CareLevel::read("critical"), CareLevel::Unrecognised);
        assert_eq!(CareLevel::Unrecognised.visit_every_days(), None);
        assert!(GuardianshipStatus::Active.can_become(GuardianshipStatus::Ended));
        assert!(!GuardianshipStatus::Ended.can_become(GuardianshipStatus::Active));
    }
}
