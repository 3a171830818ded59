//! Queries answered from the SQL index, without loading any document.

use std::collections::HashSet;

use rusqlite::{params, Connection, Row};

use super::Store;
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::*;
use crate::model::time::{Date, Timestamp};
use crate::model::values::*;

/// A household as listed on the app's screens.
#[derive(Clone, Debug, PartialEq)]
pub struct HouseholdSummary {
    pub id: HouseholdId,
    pub code: String,
    pub village: String,
    pub address: String,
    pub status: HouseholdStatus,
}

/// A visit as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitSummary {
    pub id: VisitId,
    pub household: HouseholdId,
    pub date: Date,
    pub kind: VisitKind,
    pub status: VisitStatus,
    pub started_at: Timestamp,
}

/// A follow-up as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowUpSummary {
    pub id: FollowUpId,
    pub household: HouseholdId,
    pub origin_visit: Option<VisitId>,
    pub due: Date,
    pub assignee: WorkerId,
    pub status: FollowUpStatus,
    /// Due before the date asked about.
    pub overdue: bool,
}

/// A card issuance as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct CardSummary {
    pub id: CardIssuanceId,
    pub household: HouseholdId,
    pub serial: String,
    pub visit: Option<VisitId>,
    pub person: Option<PersonId>,
    pub status: CardStatus,
    pub issued_by: WorkerId,
    pub issued_at: Timestamp,
}

/// Where a full-text query matched.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub household: HouseholdId,
    /// The record whose text matched (a visit, need, inquiry ... or the household).
    pub record: String,
    /// Which text: a visit section name, `summary`, `need`, `inquiry`, `follow_up`, `amendment`.
    pub field: String,
    /// Up to 40 characters either side of the first match.
    pub excerpt: String,
}

fn hid(s: String) -> Result<HouseholdId> {
    HouseholdId::parse(&s).map_err(|_| Error::Damaged)
}

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub(super) fn household_row(
    r: &Row<'_>,
) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn to_household(
    row: (String, String, String, String, String),
) -> Result<HouseholdSummary> {
    Ok(HouseholdSummary {
        id: hid(row.0)?,
        code: row.1,
        village: row.2,
        address: row.3,
        status: HouseholdStatus::read(&row.4),
    })
}

type VisitRow = (String, String, String, String, String, i64);

fn visit_row(r: &Row<'_>) -> rusqlite::Result<VisitRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_visit(row: VisitRow) -> Result<VisitSummary> {
    Ok(VisitSummary {
        id: VisitId::parse(&row.0)?,
        household: hid(row.1)?,
        date: Date::parse(&row.2)?,
        kind: VisitKind::read(&row.3),
        status: VisitStatus::read(&row.4),
        started_at: Timestamp(row.5),
    })
}

const VISIT_COLUMNS: &str =
    "doorstep_id(v.visit_id), doorstep_id(v.household_id), v.date, v.kind, v.status, v.started_at";

fn parse_versions(detail: &str) -> Result<Vec<FieldVersion>> {
    let list: Vec<serde_json::Value> = serde_json::from_str(detail).map_err(|_| Error::Damaged)?;
    list.into_iter()
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).ok_or(Error::Damaged);
            Ok(FieldVersion {
                value: v.get("value").and_then(|x| x.as_str()).map(str::to_owned),
                provenance: Provenance {
                    worker: WorkerId::parse(s("worker")?)?,
                    device: DeviceId::parse(s("device")?)?,
                    at: Timestamp(v.get("at").and_then(|x| x.as_i64()).ok_or(Error::Damaged)?),
                },
            })
        })
        .collect()
}

type ConflictRow = (String, String, String, String, String, String);

fn conflict_rows(
    conn: &Connection,
    parallel: bool,
    household: Option<HouseholdId>,
) -> Result<Vec<ConflictRow>> {
    let op = if parallel { "=" } else { "<>" };
    let sql = format!(
        "SELECT doorstep_id(household_id), entity, doorstep_id(entity_id), field, kind, detail FROM ix_conflicts
         WHERE kind {op} 'parallel_update' AND (?1 IS NULL OR household_id = doorstep_key(?1))
         ORDER BY household_id, entity, entity_id, field"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st
        .query_map([household.map(|h| h.to_string())], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<Vec<ConflictRow>, _>>()?;
    Ok(rows)
}

fn field_ref(entity: &str, id: &str, field: String) -> Result<FieldRef> {
    let kind = EntityKind::from_name(entity).ok_or(Error::Damaged)?;
    let key = (!id.is_empty()).then_some(id);
    Ok(FieldRef {
        entity: EntityRef::from_parts(kind, key)?,
        field,
    })
}

impl Store {
    /// Households of a village, by display code.
    pub fn households_in_village(&self, village: &str) -> Result<Vec<HouseholdSummary>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT doorstep_id(household_id), code, village, address, status FROM ix_households
                 WHERE village = ?1 ORDER BY code",
            )?;
            let rows = st
                .query_map([village], household_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_household).collect()
        })
    }

    /// Households with a member whose name contains `part` (or whose code does).
    pub fn find_households_by_name(&self, part: &str) -> Result<Vec<HouseholdSummary>> {
        if part.trim().is_empty() {
            return Err(Error::InvalidInput("search text is required"));
        }
        let pattern = like_pattern(part.trim());
        self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT doorstep_id(h.household_id), h.code, h.village, h.address, h.status FROM ix_households h
                 WHERE h.code LIKE ?1 ESCAPE '\\'
                    OR h.household_id IN (SELECT household_id FROM ix_persons WHERE name LIKE ?1 ESCAPE '\\')
                 ORDER BY h.code",
            )?;
            let rows = st.query_map([&pattern], household_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_household).collect()
        })
    }

    /// Visits on dates `from..=to`, by date.
    pub fn visits_between(&self, from: Date, to: Date) -> Result<Vec<VisitSummary>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM ix_visits v WHERE v.date BETWEEN ?1 AND ?2 ORDER BY v.date, v.started_at, v.visit_id"
            ))?;
            let rows = st.query_map([from.to_string(), to.to_string()], visit_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_visit).collect()
        })
    }

    /// Visits a worker took part in on dates `from..=to`.
    pub fn visits_by_worker(
        &self,
        worker: WorkerId,
        from: Date,
        to: Date,
    ) -> Result<Vec<VisitSummary>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM ix_visit_workers w JOIN ix_visits v ON v.visit_id = w.visit_id
                 WHERE w.worker_id = doorstep_key(?1) AND w.date BETWEEN ?2 AND ?3 ORDER BY v.date, v.started_at, v.visit_id"
            ))?;
            let rows = st
                .query_map(params![worker.to_string(), from.to_string(), to.to_string()], visit_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_visit).collect()
        })
    }

    /// A household's visits, newest first.
    pub fn visits_of_household(&self, household: HouseholdId) -> Result<Vec<VisitSummary>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM ix_visits v WHERE v.household_id = doorstep_key(?1) ORDER BY v.date DESC, v.started_at DESC"
            ))?;
            let rows = st.query_map([household.to_string()], visit_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_visit).collect()
        })
    }

    /// Open follow-ups due on or before `as_of + within_days`, overdue ones flagged, by due date.
    pub fn follow_ups_due(&self, as_of: Date, within_days: u32) -> Result<Vec<FollowUpSummary>> {
        let until = as_of.add_days(i64::from(within_days))?;
        self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT doorstep_id(follow_up_id), doorstep_id(household_id), doorstep_id(origin_visit), due,
                        doorstep_id(assignee), status FROM ix_follow_ups
                 WHERE status = 'open' AND due <= ?1 ORDER BY due, follow_up_id",
            )?;
            let rows = st
                .query_map([until.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, h, v, due, a, s)| {
                    let due = Date::parse(&due)?;
                    Ok(FollowUpSummary {
                        id: FollowUpId::parse(&id)?,
                        household: hid(h)?,
                        origin_visit: v.map(|v| VisitId::parse(&v)).transpose()?,
                        due,
                        assignee: WorkerId::parse(&a)?,
                        status: FollowUpStatus::read(&s),
                        overdue: due < as_of,
                    })
                })
                .collect()
        })
    }

    /// Open follow-ups whose due date is before `as_of`.
    pub fn follow_ups_overdue(&self, as_of: Date) -> Result<Vec<FollowUpSummary>> {
        Ok(self
            .follow_ups_due(as_of, 0)?
            .into_iter()
            .filter(|f| f.overdue)
            .collect())
    }

    /// Issuances of a card serial (more than one active issuance is a problem to review).
    pub fn cards_by_serial(&self, serial: &str) -> Result<Vec<CardSummary>> {
        self.cards_where("serial = ?1", [serial.trim().to_owned()])
    }

    /// Card rows matching a SQL condition on `ix_cards`, by issue time.
    pub(crate) fn cards_where<P: rusqlite::Params>(
        &self,
        condition: &str,
        params: P,
    ) -> Result<Vec<CardSummary>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT doorstep_id(card_id), doorstep_id(household_id), serial, doorstep_id(visit_id),
                        doorstep_id(person_id), status, doorstep_id(issued_by), issued_at
                 FROM ix_cards WHERE {condition} ORDER BY issued_at, card_id"
            ))?;
            let rows = st
                .query_map(params, |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, h, serial, v, p, s, by, at)| {
                    Ok(CardSummary {
                        id: CardIssuanceId::parse(&id)?,
                        household: hid(h)?,
                        serial,
                        visit: v.map(|v| VisitId::parse(&v)).transpose()?,
                        person: p.map(|p| PersonId::parse(&p)).transpose()?,
                        status: CardStatus::read(&s),
                        issued_by: WorkerId::parse(&by)?,
                        issued_at: Timestamp(at),
                    })
                })
                .collect()
        })
    }

    /// Open conflicts (all households, or one), with every value and its provenance.
    pub fn conflicts(&self, household: Option<HouseholdId>) -> Result<Vec<Conflict>> {
        self.reader_query(|c| {
            conflict_rows(c, false, household)?
                .into_iter()
                .map(|(h, entity, id, field, kind, detail)| {
                    Ok(Conflict {
                        household: hid(h)?,
                        field: field_ref(&entity, &id, field)?,
                        kind: match kind.as_str() {
                            "edited_after_finalise" => ConflictKind::EditedAfterFinalise,
                            "duplicate_response" => ConflictKind::DuplicateResponse,
                            _ => ConflictKind::ConcurrentValues,
                        },
                        values: parse_versions(&detail)?,
                    })
                })
                .collect()
        })
    }

    /// Fields merged by last-writer-wins that hold overshadowed concurrent values.
    pub fn parallel_updates(&self, household: Option<HouseholdId>) -> Result<Vec<ParallelUpdate>> {
        self.reader_query(|c| {
            conflict_rows(c, true, household)?
                .into_iter()
                .map(|(h, entity, id, field, _, detail)| {
                    let mut values = parse_versions(&detail)?;
                    if values.is_empty() {
                        return Err(Error::Damaged);
                    }
                    let shown = values.remove(0);
                    Ok(ParallelUpdate {
                        household: hid(h)?,
                        field: field_ref(&entity, &id, field)?,
                        shown,
                        overshadowed: values,
                    })
                })
                .collect()
        })
    }

    /// Full-text search over visit sections, summaries, needs, inquiries, follow-ups and
    /// amendments: every record whose text contains `text`, letter case aside (any length;
    /// Chinese works, as the index is of 3-character windows). Hits come in household
    /// order, at most `limit` of them.
    ///
    /// Three or more characters: the trigram index gives the rows holding every trigram of
    /// the text. One or two: the index's vocabulary gives the rows holding a trigram that
    /// starts with the text (every text is indexed with two padding characters after it,
    /// so its last characters start a trigram too). Either way each candidate's text is
    /// then read and checked, so a hit always holds the text.
    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let needle = text.trim();
        if needle.is_empty() {
            return Err(Error::InvalidInput("search text is required"));
        }
        if needle.chars().count() > 200 {
            return Err(Error::InvalidInput("search text too long"));
        }
        if needle.contains(super::index::TEXT_PAD_CHAR) {
            return Err(Error::InvalidInput(
                "search text holds a reserved character",
            ));
        }
        let folded = needle.to_lowercase();
        let chars: Vec<char> = folded.chars().collect();
        // Text typed since the index was last brought up to date is indexed first (ADR 0027).
        self.flush_search_index_if_pending()?;
        self.reader_query(|c| {
            // The candidate rows, then the rows in household order: looked up one by one
            // when the candidates are few, or read off the covering index in order (and
            // stopped at `limit` hits) when so many rows are candidates that the first
            // `limit` of them come early. Reading a row costs a page decryption either way.
            let (candidates, args) = if chars.len() < 3 {
                (
                    "SELECT doc FROM ix_text_terms WHERE term >= ?1 AND term < ?2",
                    vec![folded.clone(), format!("{folded}\u{10FFFF}")],
                )
            } else {
                (
                    "SELECT rowid FROM ix_text WHERE ix_text MATCH ?1",
                    vec![trigram_query(&chars)],
                )
            };
            let ids: HashSet<i64> = c
                .prepare_cached(candidates)?
                .query_map(rusqlite::params_from_iter(&args), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let rows: i64 =
                c.query_row("SELECT coalesce(max(id), 0) FROM ix_text_src", [], |r| {
                    r.get(0)
                })?;
            let n = ids.len() as f64;
            let scan = n * n * 100.0 > f64::from(limit) * rows as f64;
            let mut st = if scan {
                c.prepare_cached(
                    "SELECT id, household_id, entity_id, field FROM ix_text_src
                     ORDER BY household_id, entity_id, field",
                )?
            } else {
                let mut st = c.prepare_cached(&format!(
                    "SELECT s.id, s.household_id, s.entity_id, s.field FROM ix_text_src s
                     WHERE s.id IN ({candidates}) ORDER BY s.household_id, s.entity_id, s.field"
                ))?;
                for (i, a) in args.iter().enumerate() {
                    st.raw_bind_parameter(i + 1, a.as_str())?;
                }
                st
            };
            let mut body_of = c.prepare_cached("SELECT body FROM ix_text_src WHERE id = ?1")?;
            let mut hits = Vec::new();
            let mut rows = st.raw_query();
            while let Some(r) = rows.next()? {
                if hits.len() >= limit as usize {
                    break;
                }
                let id: i64 = r.get(0)?;
                if !ids.contains(&id) {
                    continue;
                }
                let body = super::index::unpack_text(body_of.query_row([id], |b| b.get(0))?)?;
                if !body.to_lowercase().contains(&folded) {
                    continue;
                }
                let household = super::index::text_key_id(r.get(1)?)?;
                hits.push(SearchHit {
                    household: hid(household)?,
                    record: super::index::text_key_id(r.get(2)?)?,
                    field: r.get(3)?,
                    excerpt: excerpt(&body, needle),
                });
            }
            Ok(hits)
        })
    }
}

/// An FTS5 query for rows holding every trigram of `chars` (each a quoted string): what
/// an index of trigrams without positions (`detail=none`) can answer; each row it gives
/// is then checked for the text itself. The server's console searches the same way.
pub fn trigram_query(chars: &[char]) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut q = String::new();
    for w in chars.windows(3) {
        let t: String = w.iter().collect();
        if !seen.insert(t.clone()) {
            continue;
        }
        if !q.is_empty() {
            q.push_str(" AND ");
        }
        q.push('"');
        q.push_str(&t.replace('"', "\"\""));
        q.push('"');
    }
    q
}

fn excerpt(body: &str, needle: &str) -> String {
    let lower = body.to_lowercase();
    let at = lower
        .find(&needle.to_lowercase())
        .map(|b| lower[..b].chars().count())
        .unwrap_or(0);
    let start = at.saturating_sub(40);
    body.chars()
        .skip(start)
        .take(40 + needle.chars().count() + 40)
        .collect()
}

/// Every index row as text, sorted (test support).
pub(crate) fn dump(conn: &Connection) -> Result<Vec<String>> {
    let tables = [
        (
            "ix_households",
            "household_id, station_id, code, village, address, status",
        ),
        (
            "ix_persons",
            "person_id, household_id, name, birth_date, relation, guardian, categories",
        ),
        ("ix_categories", "household_id, entity_id, stored, code"),
        (
            "ix_care_levels",
            "household_id, entity_id, level, interval_days",
        ),
        (
            "ix_visits",
            "visit_id, household_id, date, kind, status, started_at",
        ),
        (
            "ix_visit_workers",
            "visit_id, worker_id, household_id, date",
        ),
        (
            "ix_follow_ups",
            "follow_up_id, household_id, origin_visit, due, assignee, status",
        ),
        (
            "ix_cards",
            "card_id, household_id, serial, visit_id, person_id, status, issued_by, issued_at",
        ),
        (
            "ix_conflicts",
            "household_id, entity, entity_id, field, kind, detail",
        ),
        ("ix_text_src", "household_id, entity_id, field, body"),
        (
            "ix_activities",
            "activity_id, type, date, place, attendee_count",
        ),
        ("ix_resources", "resource_id, kind, name, member_count"),
        ("ix_attendance", "activity_id, person_id, household_id"),
        ("ix_referrals", "need_id, household_id, resource_id"),
        ("ix_surveys", "survey_id, title, versions"),
        (
            "ix_responses",
            "response_id, household_id, person_id, survey_id, version_id, status",
        ),
        (
            "ix_survey_answers",
            "response_id, question, option, household_id, survey_id, version_id, number",
        ),
    ];
    let mut out = Vec::new();
    for (table, cols) in tables {
        let mut st = conn.prepare(&format!("SELECT {cols} FROM {table}"))?;
        let n = st.column_count();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let mut line = String::from(table);
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                line.push_str(&format!("|{v:?}"));
            }
            out.push(line);
        }
    }
    // The words indexed for each text row, by the row's address (rowids differ between a
    // live index and a rebuild); a word of a row that no longer exists shows as orphan.
    let mut st = conn.prepare(
        "SELECT t.term, s.entity_id, s.field FROM ix_text_terms t
         LEFT JOIN ix_text_src s ON s.id = t.doc",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let term: String = r.get(0)?;
        let entity: rusqlite::types::Value = r.get(1)?;
        let field: Option<String> = r.get(2)?;
        out.push(format!("ix_text|{term}|{entity:?}|{field:?}"));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters left unbound are NULL: the plan does not depend on them.
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(r.get::<_, String>(3).unwrap());
        }
        out.join("; ")
    }

    /// Search reads text rows in household order off the covering index, without a sort,
    /// so that it can stop after `limit` hits (the plan decides whether it can).
    #[test]
    fn text_rows_in_household_order_need_no_sort() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let p = plan(
            &conn,
            "SELECT id, household_id, entity_id, field FROM ix_text_src
             ORDER BY household_id, entity_id, field",
        );
        assert!(p.contains("COVERING INDEX"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
    }

    /// A key compared through `doorstep_key(?)` (schema 3) still uses the index.
    #[test]
    fn stored_keys_are_looked_up_by_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for (sql, index) in [
            (
                "SELECT date FROM ix_visits WHERE household_id = doorstep_key(?1)",
                "ix_visits_household",
            ),
            (
                "SELECT date FROM ix_visit_workers WHERE worker_id = doorstep_key(?1) AND date > ?2",
                "ix_visit_workers_worker",
            ),
            ("DELETE FROM ix_cards WHERE card_id = doorstep_key(?1)", "PRIMARY KEY"),
        ] {
            let p = plan(&conn, sql);
            assert!(p.contains(index) && !p.starts_with("SCAN"), "{sql}: {p}");
        }
    }
}
