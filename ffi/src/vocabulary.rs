//! Controlled vocabularies in the bindings (ADR 0018): the categories in force on this
//! device (built in, and the station's own from its station document), what a stored
//! category value is, and lists and counts by code. Person `categories` and household
//! `tags` carry codes (`child.orphan.centralised`); show them with these labels.

use doorstep_core as core;

use crate::error::Result;
use crate::types::HouseholdSummary;
use crate::{bounded, Doorstep};

/// What a category applies to: `Child`, `Person` and `Elderly` codes go in a person's
/// `categories`, `Household` codes in a household's `tags`. `Unrecognised`: a kind a newer
/// server wrote (shown, not writable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CategoryKind {
    Child,
    Person,
    Elderly,
    Household,
    /// A group activity's type.
    Activity,
    /// A resource's kind in the register.
    Resource,
    Unrecognised,
}

impl From<core::CategoryKind> for CategoryKind {
    fn from(k: core::CategoryKind) -> Self {
        match k {
            core::CategoryKind::Child => CategoryKind::Child,
            core::CategoryKind::Person => CategoryKind::Person,
            core::CategoryKind::Elderly => CategoryKind::Elderly,
            core::CategoryKind::Household => CategoryKind::Household,
            core::CategoryKind::Activity => CategoryKind::Activity,
            core::CategoryKind::Resource => CategoryKind::Resource,
            core::CategoryKind::Unrecognised => CategoryKind::Unrecognised,
        }
    }
}

/// Where an entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum EntryOrigin {
    /// Compiled into this version.
    BuiltIn,
    /// A built-in code the station relabelled.
    StationOverride,
    /// A code the station added (`local.…`).
    Station,
}

/// One category of the vocabulary in force.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VocabularyEntry {
    pub code: String,
    pub kind: CategoryKind,
    /// The broader category it counts under (`child.orphan` for `child.orphan.centralised`).
    pub parent: Option<String>,
    pub label_zh: String,
    /// May be empty for a station's own entry.
    pub label_en: String,
    pub origin: EntryOrigin,
}

/// The vocabulary in force: the built-in version of this library, the version of the
/// station's extension as last synced (0: none), every entry by code.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Vocabulary {
    pub builtin_version: u32,
    pub station_version: u64,
    pub entries: Vec<VocabularyEntry>,
}

/// What a stored category value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CategoryState {
    /// A code of the vocabulary in force: `entry` names it.
    Known,
    /// A code this version does not know (a newer release's, a station entry not synced
    /// yet): show `code` as an unknown category. It is kept and counted.
    Unknown,
    /// Free text written before vocabularies, kept as written; `code` is the one code it
    /// means, if any.
    Text,
}

/// A stored category value read against the vocabulary in force. Never an error.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CategoryValue {
    /// The value as the person or household holds it.
    pub stored: String,
    pub state: CategoryState,
    /// The code it counts under (for `Text`, the code the text means, if any).
    pub code: Option<String>,
    /// The entry of `code` when the vocabulary has it.
    pub entry: Option<VocabularyEntry>,
}

/// How many persons and households carry one code.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CategoryCount {
    pub code: String,
    pub persons: u64,
    pub households: u64,
}

fn entry(e: &core::VocabularyEntry) -> VocabularyEntry {
    VocabularyEntry {
        code: e.code.to_string(),
        kind: e.kind.into(),
        parent: e.parent.as_ref().map(ToString::to_string),
        label_zh: e.label_zh.clone(),
        label_en: e.label_en.clone(),
        origin: match e.origin {
            core::EntryOrigin::BuiltIn => EntryOrigin::BuiltIn,
            core::EntryOrigin::StationOverride => EntryOrigin::StationOverride,
            core::EntryOrigin::Station => EntryOrigin::Station,
        },
    }
}

#[uniffi::export]
impl Doorstep {
    /// The categories in force on this device: built in, and the station's own as of the
    /// last sync. Read once per screen.
    pub fn vocabulary(&self) -> Result<Vocabulary> {
        crate::guarded(|| {
            let v = self.store()?.vocabulary()?;
            Ok(Vocabulary {
                builtin_version: v.builtin_version,
                station_version: v.station_version,
                entries: v.entries().map(entry).collect(),
            })
        })
    }

    /// What a value of a person's `categories` or a household's `tags` is, with its labels.
    pub fn describe_category(&self, stored: String) -> Result<CategoryValue> {
        crate::guarded(|| {
            bounded(&stored)?;
            let v = self.store()?.vocabulary()?;
            let (state, code) = match v.describe(&stored) {
                core::Category::Known(e) => (CategoryState::Known, Some(e.code)),
                core::Category::Unknown(c) => (CategoryState::Unknown, Some(c)),
                core::Category::Text { code, .. } => (CategoryState::Text, code),
            };
            Ok(CategoryValue {
                entry: code.as_ref().and_then(|c| v.lookup(c.as_str())).map(entry),
                code: code.map(|c| c.to_string()),
                stored,
                state,
            })
        })
    }

    /// Households counted under `code` or a code below it, by display code.
    pub fn households_in_category(&self, code: String) -> Result<Vec<HouseholdSummary>> {
        crate::guarded(|| {
            bounded(&code)?;
            Ok(self.store()?.households_in_category(&code)?)
        })
    }

    /// Persons and households by the exact code they carry, by code.
    pub fn category_counts(&self) -> Result<Vec<CategoryCount>> {
        crate::guarded(|| {
            Ok(self
                .store()?
                .category_counts()?
                .into_iter()
                .map(|c| CategoryCount {
                    code: c.code.to_string(),
                    persons: c.persons,
                    households: c.households,
                })
                .collect())
        })
    }
}
