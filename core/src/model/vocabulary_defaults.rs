//! The built-in vocabulary compiled into the core (ADR 0018): the categories the national
//! policies for children, social assistance, disability and the elderly name. A code here
//! is never renamed or reused; a new release may add codes (and raises
//! [`BUILTIN_VOCABULARY_VERSION`]), an app from before reads them as unknown.

use crate::model::vocabulary::CategoryKind::{self, *};

/// Raised whenever a release adds or relabels a built-in entry.
pub const BUILTIN_VOCABULARY_VERSION: u32 = 1;

/// One built-in entry: code, kind, parent, zh-CN label, English label.
pub(crate) type Default = (
    &'static str,
    CategoryKind,
    Option<&'static str>,
    &'static str,
    &'static str,
);

pub(crate) const DEFAULTS: &[Default] = &[
    // 孤儿
    ("child.orphan", Child, None, "孤儿", "Orphan"),
    (
        "child.orphan.centralised",
        Child,
        Some("child.orphan"),
        "孤儿（集中供养）",
        "Orphan, in institutional care",
    ),
    (
        "child.orphan.scattered",
        Child,
        Some("child.orphan"),
        "孤儿（散居）",
        "Orphan, in family-based care",
    ),
    // 事实无人抚养儿童, with the parents' situation
    (
        "child.unsupported",
        Child,
        None,
        "事实无人抚养儿童",
        "De facto unsupported child",
    ),
    (
        "child.unsupported.parent_severe_disability",
        Child,
        Some("child.unsupported"),
        "父母重残",
        "Parent severely disabled",
    ),
    (
        "child.unsupported.parent_serious_illness",
        Child,
        Some("child.unsupported"),
        "父母重病",
        "Parent seriously ill",
    ),
    (
        "child.unsupported.parent_imprisoned",
        Child,
        Some("child.unsupported"),
        "父母服刑在押",
        "Parent serving a sentence or in custody",
    ),
    (
        "child.unsupported.parent_compulsory_rehab",
        Child,
        Some("child.unsupported"),
        "父母强制隔离戒毒",
        "Parent in compulsory drug rehabilitation",
    ),
    (
        "child.unsupported.parent_restricted",
        Child,
        Some("child.unsupported"),
        "父母被执行其他限制人身自由措施",
        "Parent under another restriction of personal liberty",
    ),
    (
        "child.unsupported.parent_missing",
        Child,
        Some("child.unsupported"),
        "父母失联",
        "Parent missing",
    ),
    (
        "child.unsupported.parent_deceased",
        Child,
        Some("child.unsupported"),
        "父母死亡",
        "Parent deceased",
    ),
    (
        "child.unsupported.guardianship_revoked",
        Child,
        Some("child.unsupported"),
        "父母被撤销监护资格",
        "Parent's guardianship revoked",
    ),
    (
        "child.unsupported.parent_deported",
        Child,
        Some("child.unsupported"),
        "父母被遣送（驱逐）出境",
        "Parent deported",
    ),
    // 困境儿童
    (
        "child.difficult",
        Child,
        None,
        "困境儿童",
        "Child in difficulty",
    ),
    (
        "child.difficult.poverty",
        Child,
        Some("child.difficult"),
        "因贫困境儿童",
        "In difficulty through poverty",
    ),
    (
        "child.difficult.illness",
        Child,
        Some("child.difficult"),
        "因病困境儿童",
        "In difficulty through illness",
    ),
    (
        "child.difficult.disability",
        Child,
        Some("child.difficult"),
        "因残困境儿童",
        "In difficulty through disability",
    ),
    (
        "child.difficult.guardianship",
        Child,
        Some("child.difficult"),
        "监护缺失困境儿童",
        "In difficulty through lack of guardianship",
    ),
    // 留守儿童
    (
        "child.left_behind",
        Child,
        None,
        "留守儿童",
        "Left-behind child",
    ),
    // Households
    (
        "household.dibao",
        Household,
        None,
        "低保户",
        "Minimum living guarantee (dibao) household",
    ),
    (
        "household.dibao_marginal",
        Household,
        None,
        "低保边缘户",
        "Marginal dibao household",
    ),
    (
        "household.poverty_monitoring",
        Household,
        None,
        "防返贫监测户",
        "Household monitored against a return to poverty",
    ),
    // Persons of any age
    (
        "person.tekun",
        Person,
        None,
        "特困供养人员",
        "Person in extreme-poverty support (tekun)",
    ),
    (
        "person.disability",
        Person,
        None,
        "残疾人",
        "Person with a disability",
    ),
    (
        "person.disability.visual",
        Person,
        Some("person.disability"),
        "视力残疾",
        "Visual disability",
    ),
    (
        "person.disability.hearing",
        Person,
        Some("person.disability"),
        "听力残疾",
        "Hearing disability",
    ),
    (
        "person.disability.speech",
        Person,
        Some("person.disability"),
        "言语残疾",
        "Speech disability",
    ),
    (
        "person.disability.physical",
        Person,
        Some("person.disability"),
        "肢体残疾",
        "Physical disability",
    ),
    (
        "person.disability.intellectual",
        Person,
        Some("person.disability"),
        "智力残疾",
        "Intellectual disability",
    ),
    (
        "person.disability.mental",
        Person,
        Some("person.disability"),
        "精神残疾",
        "Mental disability",
    ),
    (
        "person.disability.multiple",
        Person,
        Some("person.disability"),
        "多重残疾",
        "Multiple disabilities",
    ),
    (
        "person.disability.grade_1",
        Person,
        Some("person.disability"),
        "一级残疾",
        "Disability grade 1 (most severe)",
    ),
    (
        "person.disability.grade_2",
        Person,
        Some("person.disability"),
        "二级残疾",
        "Disability grade 2",
    ),
    (
        "person.disability.grade_3",
        Person,
        Some("person.disability"),
        "三级残疾",
        "Disability grade 3",
    ),
    (
        "person.disability.grade_4",
        Person,
        Some("person.disability"),
        "四级残疾",
        "Disability grade 4 (least severe)",
    ),
    // The elderly
    (
        "elderly.empty_nest",
        Elderly,
        None,
        "空巢老人",
        "Empty-nest elderly person",
    ),
    (
        "elderly.living_alone",
        Elderly,
        None,
        "独居老人",
        "Elderly person living alone",
    ),
    (
        "elderly.disabled",
        Elderly,
        None,
        "失能老人",
        "Elderly person unable to care for themselves",
    ),
    (
        "elderly.semi_disabled",
        Elderly,
        None,
        "半失能老人",
        "Elderly person partly unable to care for themselves",
    ),
    (
        "elderly.advanced_age",
        Elderly,
        None,
        "高龄老人",
        "Elderly person of advanced age (80+)",
    ),
];

/// Free text written before vocabularies, with the one code each means. Besides these, a
/// built-in zh-CN label maps to its code. Only texts with one meaning are here: "散居" (an
/// orphan? an elderly person?) is not, and stays text.
pub(crate) const TEXT_ALIASES: &[(&str, &str)] = &[
    ("集中供养孤儿", "child.orphan.centralised"),
    ("散居孤儿", "child.orphan.scattered"),
    ("事实无人抚养", "child.unsupported"),
    ("困境", "child.difficult"),
    ("因贫", "child.difficult.poverty"),
    ("因病", "child.difficult.illness"),
    ("因残", "child.difficult.disability"),
    ("监护缺失", "child.difficult.guardianship"),
    ("留守", "child.left_behind"),
    ("低保", "household.dibao"),
    ("低保边缘", "household.dibao_marginal"),
    ("防返贫监测", "household.poverty_monitoring"),
    ("特困", "person.tekun"),
    ("特困供养", "person.tekun"),
    ("特困人员", "person.tekun"),
    ("残疾", "person.disability"),
    ("空巢", "elderly.empty_nest"),
    ("独居", "elderly.living_alone"),
    ("失能", "elderly.disabled"),
    ("半失能", "elderly.semi_disabled"),
    ("高龄", "elderly.advanced_age"),
];
