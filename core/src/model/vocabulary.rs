//! Controlled vocabularies (ADR 0018): the categories a person or a household is counted
//! under, as stable ASCII codes (`child.orphan.centralised`) with a zh-CN and an English
//! label, a kind and a parent. The built-in defaults are compiled in
//! ([`super::vocabulary_defaults`]); a station extends them or relabels them through its
//! station document, written by the server only.
//!
//! Documents store the code in the person's `categories` / the household's `tags` set.
//! Reading never fails on a value: a code this app does not know (a newer release's, a
//! station entry not synced yet) reads as [`Category::Unknown`], and free text written
//! before vocabularies reads as [`Category::Text`] with the code it unambiguously means.
//! Writing through the typed API takes known codes only.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::model::vocabulary_defaults::{DEFAULTS, TEXT_ALIASES};
use crate::model::worker_label::invisible;

pub use crate::model::vocabulary_defaults::BUILTIN_VOCABULARY_VERSION;

/// Longest code, in characters.
pub const MAX_CATEGORY_CODE_CHARS: usize = 64;
/// Longest label, in characters.
pub const MAX_CATEGORY_LABEL_CHARS: usize = 64;
/// Codes a station adds start with this, so no later built-in code can ever collide with one.
pub const STATION_CODE_PREFIX: &str = "local.";

/// A category code: lowercase ASCII words (`a-z`, `0-9`, `_`, each starting with a letter)
/// joined by dots, at least two of them, at most 64 characters. Not personal data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryCode(String);

impl CategoryCode {
    pub fn parse(code: &str) -> Result<CategoryCode> {
        let code = code.trim();
        if looks_like_code(code) {
            Ok(CategoryCode(code.to_owned()))
        } else {
            Err(Error::InvalidInput(
                "a category code is lowercase ASCII words (a-z, 0-9, _) joined by dots, such \
                 as child.orphan, at most 64 characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A code a station added (`local.…`), which no built-in code can ever be.
    fn is_station_code(&self) -> bool {
        self.0.starts_with(STATION_CODE_PREFIX)
    }
}

impl fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a stored value is a code (otherwise it is free text from before vocabularies:
/// Chinese text is never code-shaped, and neither is a one-word ASCII tag).
pub fn looks_like_code(s: &str) -> bool {
    let segments: Vec<&str> = s.split('.').collect();
    s.len() <= MAX_CATEGORY_CODE_CHARS
        && segments.len() >= 2
        && segments.iter().all(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// What a category applies to, and the group an app shows it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CategoryKind {
    /// A child's situation (孤儿, 事实无人抚养儿童, 困境儿童, 留守儿童): persons.
    Child,
    /// A person of any age (特困供养, 残疾 and its type and grade): persons.
    Person,
    /// An elderly person's situation (空巢, 独居, 失能 ...): persons.
    Elderly,
    /// A household's (低保, 低保边缘, 防返贫监测户): household tags.
    Household,
    /// A group activity's type (交通安全教育, 防溺水宣传): activities (ADR 0021).
    Activity,
    /// A community resource's kind (志愿服务队, 社会组织): the resource register (ADR 0021).
    Resource,
    /// A kind a newer server wrote: readable, shown, not writable here.
    Unrecognised,
}

impl CategoryKind {
    pub const WRITABLE: [CategoryKind; 6] = [
        CategoryKind::Child,
        CategoryKind::Person,
        CategoryKind::Elderly,
        CategoryKind::Household,
        CategoryKind::Activity,
        CategoryKind::Resource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CategoryKind::Child => "child",
            CategoryKind::Person => "person",
            CategoryKind::Elderly => "elderly",
            CategoryKind::Household => "household",
            CategoryKind::Activity => "activity",
            CategoryKind::Resource => "resource",
            CategoryKind::Unrecognised => "unrecognised",
        }
    }

    /// Lenient: anything else is `Unrecognised`.
    pub fn from_stored(s: &str) -> CategoryKind {
        Self::WRITABLE
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(CategoryKind::Unrecognised)
    }

    /// Strict, for an admin typing one.
    pub fn parse(s: &str) -> Result<CategoryKind> {
        match Self::from_stored(s.trim()) {
            CategoryKind::Unrecognised => Err(Error::InvalidInput(
                "a category kind is child, person, elderly, household, activity or resource",
            )),
            k => Ok(k),
        }
    }

    /// Where a code of this kind may be written.
    pub fn place(self) -> Option<CategoryPlace> {
        match self {
            CategoryKind::Child | CategoryKind::Person | CategoryKind::Elderly => {
                Some(CategoryPlace::Person)
            }
            CategoryKind::Household => Some(CategoryPlace::Household),
            CategoryKind::Activity => Some(CategoryPlace::Activity),
            CategoryKind::Resource => Some(CategoryPlace::Resource),
            CategoryKind::Unrecognised => None,
        }
    }
}

/// Where a category is written: a person's `categories` or a household's `tags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CategoryPlace {
    Person,
    Household,
    /// An activity's type.
    Activity,
    /// A resource's kind.
    Resource,
}

/// Where an entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryOrigin {
    /// Compiled into this release.
    BuiltIn,
    /// A built-in code the station relabelled.
    StationOverride,
    /// A code the station added (`local.…`).
    Station,
}

/// One entry of the vocabulary in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VocabularyEntry {
    pub code: CategoryCode,
    pub kind: CategoryKind,
    /// The broader category it counts under (`child.orphan` for `child.orphan.centralised`).
    pub parent: Option<CategoryCode>,
    pub label_zh: String,
    /// May be empty for a station's entry.
    pub label_en: String,
    pub origin: EntryOrigin,
}

/// An entry as the station document carries it (written by the server only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationEntry {
    pub code: CategoryCode,
    pub kind: CategoryKind,
    pub parent: Option<CategoryCode>,
    pub label_zh: String,
    pub label_en: String,
}

/// The station's extension: its entries and their version (raised by each change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationVocabulary {
    pub version: u64,
    pub entries: Vec<StationEntry>,
}

/// A stored category value read against a vocabulary. Reading never fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Category {
    /// A code of the vocabulary in force.
    Known(VocabularyEntry),
    /// A code this app does not know (a newer release's, or a station entry not synced
    /// yet): show the code as unknown; it is kept, counted and listed under its code.
    Unknown(CategoryCode),
    /// Free text written before vocabularies, kept as written; `code` is the one code the
    /// text unambiguously means (a built-in label or a common short form), if any.
    Text {
        text: String,
        code: Option<CategoryCode>,
    },
}

impl Category {
    /// The code it is counted under, if any.
    pub fn code(&self) -> Option<&CategoryCode> {
        match self {
            Category::Known(e) => Some(&e.code),
            Category::Unknown(c) => Some(c),
            Category::Text { code, .. } => code.as_ref(),
        }
    }
}

/// The code a stored value is counted under: the value itself when it is code-shaped, else
/// the code its text unambiguously means. A pure function of the value (the device index
/// stores it, and two replicas must index alike): the station's entries play no part.
pub fn code_of_stored(stored: &str) -> Option<CategoryCode> {
    let stored = stored.trim();
    if looks_like_code(stored) {
        return Some(CategoryCode(stored.to_owned()));
    }
    code_of_text(stored).map(|c| CategoryCode(c.to_owned()))
}

/// The built-in code free text means: a built-in zh-CN label or a listed short form.
fn code_of_text(text: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .filter(|d| {
            d.1.place()
                .is_some_and(|p| matches!(p, CategoryPlace::Person | CategoryPlace::Household))
        })
        .find(|d| d.3 == text)
        .map(|d| d.0)
        .or_else(|| TEXT_ALIASES.iter().find(|a| a.0 == text).map(|a| a.1))
}

/// Check a label: trimmed, 1 to 64 characters (`required`) or empty, one line, no invisible
/// or direction-changing characters. Errors name the rule, never the label.
pub fn check_label(label: &str, required: bool) -> Result<String> {
    let v = label.trim();
    if v.is_empty() && required {
        return Err(Error::InvalidInput(
            "a category's zh-CN label must not be empty",
        ));
    }
    if v.chars().count() > MAX_CATEGORY_LABEL_CHARS {
        return Err(Error::InvalidInput(
            "a category label is at most 64 characters",
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "control characters (line breaks, tabs ...) are not allowed in a category label",
        ));
    }
    if v.chars().any(invisible) {
        return Err(Error::InvalidInput(
            "invisible or direction-changing characters are not allowed in a category label",
        ));
    }
    Ok(v.to_owned())
}

/// The vocabulary in force: the built-in defaults, overlaid with a station's extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    pub builtin_version: u32,
    pub station_version: u64,
    entries: BTreeMap<CategoryCode, VocabularyEntry>,
}

impl Vocabulary {
    /// The defaults compiled into this release.
    pub fn builtin() -> Vocabulary {
        let entries = DEFAULTS
            .iter()
            .map(|&(code, kind, parent, zh, en)| {
                let code = CategoryCode(code.to_owned());
                let entry = VocabularyEntry {
                    code: code.clone(),
                    kind,
                    parent: parent.map(|p| CategoryCode(p.to_owned())),
                    label_zh: zh.to_owned(),
                    label_en: en.to_owned(),
                    origin: EntryOrigin::BuiltIn,
                };
                (code, entry)
            })
            .collect();
        Vocabulary {
            builtin_version: BUILTIN_VOCABULARY_VERSION,
            station_version: 0,
            entries,
        }
    }

    /// The defaults with a station's entries: a built-in code's entry relabels it (its kind
    /// and parent stay the built-in ones); any other code is added as the station wrote it.
    pub fn with_station(station: &StationVocabulary) -> Vocabulary {
        let mut v = Vocabulary::builtin();
        v.station_version = station.version;
        for s in &station.entries {
            match v.entries.get_mut(&s.code) {
                Some(e) => {
                    e.label_zh = s.label_zh.clone();
                    if !s.label_en.is_empty() {
                        e.label_en = s.label_en.clone();
                    }
                    e.origin = EntryOrigin::StationOverride;
                }
                None => {
                    v.entries.insert(
                        s.code.clone(),
                        VocabularyEntry {
                            code: s.code.clone(),
                            kind: s.kind,
                            parent: s.parent.clone(),
                            label_zh: s.label_zh.clone(),
                            label_en: s.label_en.clone(),
                            origin: EntryOrigin::Station,
                        },
                    );
                }
            }
        }
        v
    }

    /// Every entry, by code.
    pub fn entries(&self) -> impl Iterator<Item = &VocabularyEntry> {
        self.entries.values()
    }

    pub fn lookup(&self, code: &str) -> Option<&VocabularyEntry> {
        self.entries.get(&CategoryCode(code.trim().to_owned()))
    }

    /// What a stored value (a code, or free text from before vocabularies) is. Never fails.
    pub fn describe(&self, stored: &str) -> Category {
        let stored = stored.trim();
        if looks_like_code(stored) {
            return match self.lookup(stored) {
                Some(e) => Category::Known(e.clone()),
                None => Category::Unknown(CategoryCode(stored.to_owned())),
            };
        }
        Category::Text {
            text: stored.to_owned(),
            code: code_of_text(stored).map(|c| CategoryCode(c.to_owned())),
        }
    }

    /// The code to write at `place`: a code of this vocabulary whose kind belongs there.
    /// An unknown code is refused (the typed API writes only what the station can count).
    pub fn check_writable(&self, code: &str, place: CategoryPlace) -> Result<CategoryCode> {
        let code = CategoryCode::parse(code)?;
        let entry = self.entries.get(&code).ok_or(Error::InvalidInput(
            "unknown category code: not in the built-in vocabulary or the station's",
        ))?;
        match (entry.kind.place(), place) {
            (Some(CategoryPlace::Person), CategoryPlace::Person)
            | (Some(CategoryPlace::Household), CategoryPlace::Household)
            | (Some(CategoryPlace::Activity), CategoryPlace::Activity)
            | (Some(CategoryPlace::Resource), CategoryPlace::Resource) => Ok(code),
            (Some(CategoryPlace::Activity), _) => Err(Error::InvalidInput(
                "this code is an activity type: it goes on a group activity",
            )),
            (Some(CategoryPlace::Resource), _) => Err(Error::InvalidInput(
                "this code is a resource kind: it goes on a resource of the register",
            )),
            (Some(_), CategoryPlace::Activity) => Err(Error::InvalidInput(
                "an activity's type is a code of kind activity",
            )),
            (Some(_), CategoryPlace::Resource) => Err(Error::InvalidInput(
                "a resource's kind is a code of kind resource",
            )),
            (Some(CategoryPlace::Household), CategoryPlace::Person) => Err(Error::InvalidInput(
                "this category is a household's: add it to the household's tags",
            )),
            (Some(CategoryPlace::Person), CategoryPlace::Household) => Err(Error::InvalidInput(
                "this category is a person's: add it to the person's categories",
            )),
            (None, _) => Err(Error::InvalidInput(
                "this category's kind is not known to this app version",
            )),
        }
    }

    /// `code` and every code under it (children, grandchildren ...), sorted: what a list
    /// "by category" matches.
    pub fn with_descendants(&self, code: &CategoryCode) -> Vec<CategoryCode> {
        let mut out = vec![code.clone()];
        let mut i = 0;
        while i < out.len() {
            let at = out[i].clone();
            for e in self.entries.values() {
                if e.parent.as_ref() == Some(&at) && !out.contains(&e.code) {
                    out.push(e.code.clone());
                }
            }
            i += 1;
        }
        out.sort();
        out
    }

    /// Check an entry a station admin wants to add or relabel (the server's rule). A
    /// built-in code may be relabelled only (same kind); a new code must start with
    /// `local.`; a parent must exist, be of the same kind and not be the code itself or
    /// under it.
    pub fn check_station_entry(&self, entry: &StationEntry) -> Result<()> {
        if entry.kind == CategoryKind::Unrecognised {
            return Err(Error::InvalidInput(
                "a category kind is child, person, elderly, household, activity or resource",
            ));
        }
        check_label(&entry.label_zh, true)?;
        check_label(&entry.label_en, false)?;
        if let Some(builtin) = DEFAULTS.iter().find(|d| d.0 == entry.code.as_str()) {
            if builtin.1 != entry.kind {
                return Err(Error::InvalidInput(
                    "a built-in category keeps its kind: only its labels can be changed",
                ));
            }
            if entry.parent.as_ref().map(CategoryCode::as_str) != builtin.2 {
                return Err(Error::InvalidInput(
                    "a built-in category keeps its parent: only its labels can be changed",
                ));
            }
            return Ok(());
        }
        if !entry.code.is_station_code() {
            return Err(Error::InvalidInput(
                "a station's own category code starts with local. (the other codes are \
                 reserved for built-in categories)",
            ));
        }
        if let Some(parent) = &entry.parent {
            let p = self.entries.get(parent).ok_or(Error::InvalidInput(
                "the parent category is not in the vocabulary",
            ))?;
            if p.kind != entry.kind {
                return Err(Error::InvalidInput(
                    "a category's parent must be of the same kind",
                ));
            }
            if self.with_descendants(&entry.code).contains(parent) {
                return Err(Error::InvalidInput("a category cannot be under itself"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn code(s: &str) -> CategoryCode {
        CategoryCode::parse(s).unwrap()
    }

    #[test]
    fn every_default_code_is_well_formed_unique_and_labelled() {
        let mut seen = BTreeSet::new();
        for (c, kind, parent, zh, en) in DEFAULTS {
            assert!(looks_like_code(c), "{c}");
            assert!(seen.insert(*c), "{c} twice");
            assert!(!c.starts_with(STATION_CODE_PREFIX), "{c}");
            assert_ne!(*kind, CategoryKind::Unrecognised, "{c}");
            assert_eq!(check_label(zh, true).unwrap(), *zh, "{c}");
            assert_eq!(check_label(en, true).unwrap(), *en, "{c}");
            assert!(!zh.is_ascii(), "{c}: the zh-CN label is Chinese");
            if let Some(p) = parent {
                let p = DEFAULTS.iter().find(|d| d.0 == *p).unwrap_or_else(|| {
                    panic!("{c}: parent {p} is not a built-in code");
                });
                assert_eq!(p.1, *kind, "{c}: parent of another kind");
                assert!(
                    c.starts_with(&format!("{}.", p.0)),
                    "{c} lies under its parent"
                );
            }
        }
        let v = Vocabulary::builtin();
        assert_eq!(v.entries().count(), DEFAULTS.len());
        let zh: BTreeSet<&str> = v.entries().map(|e| e.label_zh.as_str()).collect();
        assert_eq!(zh.len(), DEFAULTS.len(), "zh-CN labels are unique");
    }

    #[test]
    fn the_issue_s_categories_are_all_there() {
        let v = Vocabulary::builtin();
        for zh in [
            "孤儿（集中供养）",
            "孤儿（散居）",
            "事实无人抚养儿童",
            "父母重残",
            "父母重病",
            "父母服刑在押",
            "父母强制隔离戒毒",
            "父母失联",
            "父母死亡",
            "父母被撤销监护资格",
            "因贫困境儿童",
            "因病困境儿童",
            "因残困境儿童",
            "监护缺失困境儿童",
            "留守儿童",
            "低保户",
            "低保边缘户",
            "特困供养人员",
            "防返贫监测户",
            "肢体残疾",
            "一级残疾",
            "四级残疾",
            "空巢老人",
            "独居老人",
            "失能老人",
            "半失能老人",
            "高龄老人",
        ] {
            assert!(v.entries().any(|e| e.label_zh == zh), "{zh}");
        }
    }

    #[test]
    fn text_aliases_are_unambiguous_and_point_at_built_in_codes() {
        let mut seen = BTreeSet::new();
        for (text, c) in TEXT_ALIASES {
            assert!(seen.insert(*text), "{text} listed twice");
            assert!(DEFAULTS.iter().any(|d| d.0 == *c), "{text} -> {c}");
            assert!(
                !DEFAULTS.iter().any(|d| d.3 == *text),
                "{text} is a label already"
            );
        }
    }

    #[test]
    fn lookup_and_describe() {
        let v = Vocabulary::builtin();
        let e = v.lookup("child.orphan.centralised").unwrap();
        assert_eq!(e.label_zh, "孤儿（集中供养）");
        assert_eq!(e.parent, Some(code("child.orphan")));
        assert_eq!(e.origin, EntryOrigin::BuiltIn);
        assert!(v.lookup("child.orphan.nope").is_none());
        assert!(
            matches!(v.describe(" child.left_behind "), Category::Known(e) if e.label_en == "Left-behind child")
        );
        assert_eq!(
            v.describe("child.from_a_newer_release"),
            Category::Unknown(code("child.from_a_newer_release"))
        );
        assert_eq!(
            v.describe("留守"),
            Category::Text {
                text: "留守".into(),
                code: Some(code("child.left_behind"))
            }
        );
        assert_eq!(
            v.describe("事实无人抚养儿童").code(),
            Some(&code("child.unsupported"))
        );
        // Text with no one meaning stays text, counted under no code.
        assert_eq!(
            v.describe("散居"),
            Category::Text {
                text: "散居".into(),
                code: None
            }
        );
        assert_eq!(v.describe("orphan").code(), None);
        assert_eq!(
            code_of_stored("独居老人"),
            Some(code("elderly.living_alone"))
        );
        assert_eq!(code_of_stored("x.y"), Some(code("x.y")));
        assert_eq!(code_of_stored("重点关注"), None);
    }

    #[test]
    fn codes_are_checked() {
        for bad in [
            "",
            "child",
            "Child.orphan",
            "child..orphan",
            "child.orphan.",
            "孤儿.x",
            "1child.x",
            "child.or phan",
            "child.-x",
        ] {
            assert!(CategoryCode::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CategoryCode::parse(&format!("local.{}", "a".repeat(59))).is_err());
        assert_eq!(code(" local.flood_2026 ").as_str(), "local.flood_2026");
    }

    #[test]
    fn writing_takes_known_codes_at_their_place() {
        let v = Vocabulary::builtin();
        assert_eq!(
            v.check_writable("child.orphan", CategoryPlace::Person)
                .unwrap(),
            code("child.orphan")
        );
        assert!(v
            .check_writable("household.dibao", CategoryPlace::Household)
            .is_ok());
        for (c, place, why) in [
            ("child.unknown_here", CategoryPlace::Person, "unknown"),
            ("留守儿童", CategoryPlace::Person, "lowercase ASCII"),
            ("household.dibao", CategoryPlace::Person, "household's"),
            ("elderly.living_alone", CategoryPlace::Household, "person's"),
        ] {
            match v.check_writable(c, place) {
                Err(Error::InvalidInput(m)) => assert!(m.contains(why), "{c}: {m}"),
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    fn entry(c: &str, kind: CategoryKind, parent: Option<&str>, zh: &str) -> StationEntry {
        StationEntry {
            code: code(c),
            kind,
            parent: parent.map(code),
            label_zh: zh.into(),
            label_en: String::new(),
        }
    }

    #[test]
    fn a_station_extends_and_relabels() {
        let station = StationVocabulary {
            version: 3,
            entries: vec![
                entry(
                    "local.flood_2026",
                    CategoryKind::Child,
                    Some("child.difficult"),
                    "因灾困境儿童",
                ),
                entry(
                    "child.left_behind",
                    CategoryKind::Child,
                    None,
                    "农村留守儿童",
                ),
            ],
        };
        let v = Vocabulary::with_station(&station);
        assert_eq!(v.station_version, 3);
        assert_eq!(v.builtin_version, BUILTIN_VOCABULARY_VERSION);
        let l = v.lookup("child.left_behind").unwrap();
        assert_eq!(
            (l.label_zh.as_str(), l.label_en.as_str(), l.origin),
            (
                "农村留守儿童",
                "Left-behind child",
                EntryOrigin::StationOverride
            )
        );
        assert_eq!(
            v.lookup("local.flood_2026").unwrap().origin,
            EntryOrigin::Station
        );
        assert!(v
            .check_writable("local.flood_2026", CategoryPlace::Person)
            .is_ok());
        assert!(Vocabulary::builtin()
            .check_writable("local.flood_2026", CategoryPlace::Person)
            .is_err());
        assert_eq!(
            v.with_descendants(&code("child.difficult")),
            vec![
                code("child.difficult"),
                code("child.difficult.disability"),
                code("child.difficult.guardianship"),
                code("child.difficult.illness"),
                code("child.difficult.poverty"),
                code("local.flood_2026"),
            ]
        );
    }

    #[test]
    fn the_station_rule() {
        let v = Vocabulary::builtin();
        let refused = |e: StationEntry| match v.check_station_entry(&e) {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(v
            .check_station_entry(&entry(
                "local.x",
                CategoryKind::Child,
                Some("child.orphan"),
                "甲"
            ))
            .is_ok());
        assert!(v
            .check_station_entry(&entry("child.orphan", CategoryKind::Child, None, "孤儿们"))
            .is_ok());
        assert!(refused(entry("child.new", CategoryKind::Child, None, "甲")).contains("local."));
        assert!(refused(entry("child.orphan", CategoryKind::Elderly, None, "甲")).contains("kind"));
        assert!(refused(entry(
            "child.orphan.scattered",
            CategoryKind::Child,
            None,
            "甲"
        ))
        .contains("parent"));
        assert!(refused(entry(
            "local.x",
            CategoryKind::Elderly,
            Some("child.orphan"),
            "甲"
        ))
        .contains("same kind"));
        assert!(refused(entry(
            "local.x",
            CategoryKind::Child,
            Some("local.nope"),
            "甲"
        ))
        .contains("not in the vocabulary"));
        assert!(refused(entry("local.x", CategoryKind::Child, None, " ")).contains("empty"));
        assert!(refused(entry("local.x", CategoryKind::Child, None, "甲\n乙")).contains("control"));
        let m = refused(entry("local.x", CategoryKind::Child, None, "张\u{202E}丽"));
        assert!(m.contains("invisible") && !m.contains('张'));
    }
}
