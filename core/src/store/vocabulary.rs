//! Controlled vocabularies on the device (ADR 0018): the vocabulary in force (the built-in
//! defaults and the station's extension, indexed from the station document into
//! `ix_vocabulary`, schema 8), the check of a category code before it is written, and lists
//! and counts by code from `ix_categories`.

use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::query::{household_row, to_household, HouseholdSummary};
use super::Store;
use crate::error::Result;
use crate::model::vocabulary::{
    CategoryCode, CategoryKind, CategoryPlace, StationEntry, StationVocabulary, Vocabulary,
};

/// How many persons and households are counted under one code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryCount {
    pub code: CategoryCode,
    /// Persons with the code among their categories.
    pub persons: u64,
    /// Households with the code as a tag or on any of their persons.
    pub households: u64,
}

impl Store {
    /// The vocabulary in force on this device: the built-in defaults with the station's
    /// entries (as of the last sync). Never fails on what a newer server wrote: an entry it
    /// cannot read was skipped when indexed.
    pub fn vocabulary(&self) -> Result<Vocabulary> {
        self.reader_query(read_vocabulary)
    }

    /// The category codes to write at `place`, each checked against the vocabulary in
    /// force: a code neither built in nor in the station's extension is refused, and so is
    /// a household's code on a person and the other way round.
    pub(super) fn checked_categories(
        &self,
        values: &[String],
        place: CategoryPlace,
    ) -> Result<Vec<String>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let vocabulary = self.vocabulary()?;
        values
            .iter()
            .map(|v| Ok(vocabulary.check_writable(v, place)?.as_str().to_owned()))
            .collect()
    }

    /// Households counted under `code` or any code below it (`child.orphan` lists the
    /// centralised and the scattered orphans too), through a household tag or any person's
    /// category, by display code. Free text from before vocabularies is listed under the
    /// code it unambiguously means. A code this device does not know is listed as well.
    pub fn households_in_category(&self, code: &str) -> Result<Vec<HouseholdSummary>> {
        let code = CategoryCode::parse(code)?;
        let codes: Vec<String> = self
            .vocabulary()?
            .with_descendants(&code)
            .into_iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        let marks = vec!["?"; codes.len()].join(", ");
        self.reader_query(|c| {
            let mut st = c.prepare(&format!(
                "SELECT doorstep_id(h.household_id), h.code, h.village, h.address, h.status
                 FROM ix_households h
                 WHERE h.household_id IN (SELECT household_id FROM ix_categories WHERE code IN ({marks}))
                 ORDER BY h.code, h.household_id"
            ))?;
            let rows = st
                .query_map(params_from_iter(codes.iter()), household_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_household).collect()
        })
    }

    /// Persons and households by the exact code they carry (no roll-up to parents), by
    /// code. Free text no code means is not counted here (it stays on the person as written).
    pub fn category_counts(&self) -> Result<Vec<CategoryCount>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT code,
                        (SELECT count(DISTINCT k.entity_id) FROM ix_categories k
                         WHERE k.code = g.code AND k.entity_id <> k.household_id),
                        count(DISTINCT household_id)
                 FROM ix_categories g WHERE code IS NOT NULL GROUP BY code ORDER BY code",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(code, persons, households)| {
                    Ok(CategoryCount {
                        code: CategoryCode::parse(&code)?,
                        persons: u64::try_from(persons).unwrap_or(0),
                        households: u64::try_from(households).unwrap_or(0),
                    })
                })
                .collect()
        })
    }
}

fn read_vocabulary(c: &Connection) -> Result<Vocabulary> {
    let version: Option<i64> = c
        .prepare_cached("SELECT version FROM ix_vocabulary_version")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let rows = c
        .prepare_cached(
            "SELECT code, kind, parent, label_zh, label_en FROM ix_vocabulary ORDER BY code",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let entries = rows
        .into_iter()
        .filter_map(|(code, kind, parent, label_zh, label_en)| {
            Some(StationEntry {
                code: CategoryCode::parse(&code).ok()?,
                kind: CategoryKind::from_stored(&kind),
                parent: parent.and_then(|p| CategoryCode::parse(&p).ok()),
                label_zh,
                label_en,
            })
        })
        .collect();
    Ok(Vocabulary::with_station(&StationVocabulary {
        version: version.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        entries,
    }))
}
