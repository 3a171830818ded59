//! The monthly report (月报) of a station for a month in the station's time zone, counted
//! from the read model, with server-rendered SVG bar charts and CSV / XLSX exports.
//!
//! What is counted: visits by their recorded date (the worker's local day), by kind, by
//! the worker who opened the visit and by village; households visited, by category code (a
//! household tag or any of its persons' categories; ADR 0018), shown with the station's
//! zh-CN label and the code — free text from before vocabularies counts under the code it
//! unambiguously means, other text as written; needs and inquiries recorded that
//! month (their creation in station time) and how many of them are met / answered now;
//! cards issued that month; follow-ups due that month, done, and overdue (still open, due
//! before today); group activities held that month (their date), by type, and the
//! attendance they counted (ADR 0021); needs-survey responses recorded that month, not
//! withdrawn (ADR 0022).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use doorstep_core::{Date, HouseholdId, StationId, WorkerId};

use super::view;
use crate::store::console::HouseholdFilter;
use crate::store::{ServerStore, StoreError};

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub year: u16,
    pub month: u8,
}

impl Month {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let month = Month {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
        };
        Date::new(month.year, month.month, 1).ok()?;
        Some(month)
    }

    pub fn of(d: Date) -> Month {
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    pub fn first(self) -> Option<Date> {
        Date::new(self.year, self.month, 1).ok()
    }

    pub fn last(self) -> Option<Date> {
        let next = if self.month == 12 {
            Date::new(self.year.checked_add(1)?, 1, 1)
        } else {
            Date::new(self.year, self.month + 1, 1)
        };
        next.ok()?.add_days(-1).ok()
    }

    pub fn previous(self) -> Option<Month> {
        self.first()?.add_days(-1).ok().map(Month::of)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Counts by a label, largest first then by label.
pub type Tally = Vec<(String, u64)>;

fn tally(counts: BTreeMap<String, u64>) -> Tally {
    let mut v: Tally = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The monthly report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub month: String,
    pub visits: u64,
    pub visits_by_kind: Tally,
    pub visits_by_worker: Tally,
    pub visits_by_village: Tally,
    pub households_visited: u64,
    pub households_visited_by_category: Tally,
    /// Children of the visited households who have a child category (ADR 0018), each once.
    pub children_visited: u64,
    /// The same children by child category (a child with two counts under both).
    pub children_visited_by_category: Tally,
    pub needs_raised: u64,
    pub needs_met: u64,
    pub needs_by_category: Tally,
    pub inquiries: u64,
    pub inquiries_answered: u64,
    pub inquiries_by_topic: Tally,
    pub cards_issued: u64,
    pub follow_ups_due: u64,
    pub follow_ups_done: u64,
    pub follow_ups_overdue: u64,
    pub activities: u64,
    /// Attendance the month's activities counted (an activity without a count adds 0).
    pub activity_attendees: u64,
    pub activities_by_type: Tally,
    pub survey_responses: u64,
}

/// Count a station's month. `today` (station time) decides what is overdue.
pub fn monthly<S: ServerStore>(
    store: &S,
    station: StationId,
    month: Month,
    today: Date,
) -> Result<Report, StoreError> {
    let (Some(first), Some(last)) = (month.first(), month.last()) else {
        return Ok(Report::default());
    };
    let (from, to) = (first.to_string(), last.to_string());
    let labels = store.worker_labels(station)?;
    let households: HashMap<HouseholdId, (String, Vec<String>)> = store
        .households(
            station,
            &HouseholdFilter {
                limit: usize::MAX >> 1,
                ..HouseholdFilter::default()
            },
        )?
        .into_iter()
        .map(|h| (h.doc, (h.village, h.categories)))
        .collect();
    let mut r = Report {
        month: month.to_string(),
        ..Report::default()
    };
    let (mut kinds, mut workers, mut villages) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut needs, mut topics) = (BTreeMap::new(), BTreeMap::new());
    let mut visited: BTreeSet<HouseholdId> = BTreeSet::new();
    let mut activity_types: BTreeMap<String, u64> = BTreeMap::new();
    // (person, categories) of the visited households' persons with categories.
    let mut persons_visited: BTreeMap<String, String> = BTreeMap::new();
    for f in store.facts_between(station, &from, &to)? {
        match f.fact.as_str() {
            "visit" => {
                r.visits += 1;
                *kinds.entry(f.dim1.clone()).or_insert(0) += 1;
                let worker = WorkerId::parse(&f.dim2)
                    .map(|w| view::worker_label(&labels, w))
                    .unwrap_or_else(|_| "?".into());
                *workers.entry(worker).or_insert(0) += 1;
                let village = households
                    .get(&f.doc)
                    .map(|h| h.0.clone())
                    .unwrap_or_default();
                *villages.entry(village).or_insert(0) += 1;
                visited.insert(f.doc);
            }
            "need" => {
                r.needs_raised += 1;
                r.needs_met += u64::from(f.dim2 == "met");
                *needs.entry(f.dim1.clone()).or_insert(0) += 1;
            }
            "inquiry" => {
                r.inquiries += 1;
                r.inquiries_answered += u64::from(f.dim2 == "answered");
                *topics.entry(f.dim1.clone()).or_insert(0) += 1;
            }
            "person_visited" => {
                persons_visited.insert(f.dim2.clone(), f.dim1.clone());
            }
            "card" => r.cards_issued += 1,
            "response" => r.survey_responses += 1,
            "activity" => {
                r.activities += 1;
                r.activity_attendees += f.dim2.parse::<u64>().unwrap_or(0);
                *activity_types.entry(f.dim1.clone()).or_insert(0) += 1;
            }
            _ => {}
        }
    }
    let vocabulary = crate::vocabulary::station_vocabulary(store, station).unwrap_or_else(|e| {
        tracing::warn!(station = %station, error = %e, "the station's vocabulary was not read; the report uses the built-in one");
        doorstep_core::Vocabulary::builtin()
    });
    let mut by_type = BTreeMap::new();
    for (code, n) in activity_types {
        *by_type
            .entry(category_item(&vocabulary, &code))
            .or_insert(0) += n;
    }
    r.activities_by_type = tally(by_type);
    let mut categories = BTreeMap::new();
    for doc in &visited {
        if let Some((_, cats)) = households.get(doc) {
            // A household counts once per code, however many of its values mean it.
            let shown: BTreeSet<String> =
                cats.iter().map(|c| category_item(&vocabulary, c)).collect();
            for c in shown {
                *categories.entry(c).or_insert(0) += 1;
            }
        }
    }
    let mut children: BTreeMap<String, u64> = BTreeMap::new();
    for cats in persons_visited.values() {
        let shown: BTreeSet<String> = cats
            .split('\u{1f}')
            .filter_map(|c| child_category_item(&vocabulary, c))
            .collect();
        r.children_visited += u64::from(!shown.is_empty());
        for c in shown {
            *children.entry(c).or_insert(0) += 1;
        }
    }
    r.children_visited_by_category = tally(children);
    let today = today.to_string();
    for f in store.follow_ups_due_between(station, &from, &to)? {
        r.follow_ups_due += 1;
        r.follow_ups_done += u64::from(f.status == "done");
        r.follow_ups_overdue += u64::from(f.status == "open" && f.due < today);
    }
    r.households_visited = visited.len() as u64;
    r.visits_by_kind = tally(kinds);
    r.visits_by_worker = tally(workers);
    r.visits_by_village = tally(villages);
    r.households_visited_by_category = tally(categories);
    r.needs_by_category = tally(needs);
    r.inquiries_by_topic = tally(topics);
    Ok(r)
}

/// A category value's report item if it is a child category (kind `child`); `None` for
/// other kinds, unknown codes and free text no code means.
pub fn child_category_item(vocabulary: &doorstep_core::Vocabulary, stored: &str) -> Option<String> {
    use doorstep_core::{Category, CategoryKind};
    let entry = match vocabulary.describe(stored) {
        Category::Known(e) => Some(e.clone()),
        Category::Text {
            code: Some(code), ..
        } => vocabulary.lookup(code.as_str()).cloned(),
        _ => None,
    }?;
    (entry.kind == CategoryKind::Child).then(|| format!("{} {}", entry.label_zh, entry.code))
}

/// How the report names a category value: the label and the code of a code the vocabulary
/// knows ("低保户 household.dibao"), an unknown code as itself, text no code means as written.
pub fn category_item(vocabulary: &doorstep_core::Vocabulary, stored: &str) -> String {
    use doorstep_core::Category;
    match vocabulary.describe(stored) {
        Category::Known(e) => format!("{} {}", e.label_zh, e.code),
        Category::Unknown(code) => code.to_string(),
        Category::Text {
            code: Some(code), ..
        } => match vocabulary.lookup(code.as_str()) {
            Some(e) => format!("{} {}", e.label_zh, e.code),
            None => code.to_string(),
        },
        Category::Text { text, code: None } => text,
    }
}

/// The report as rows (section, item, count): the table, the CSV and the XLSX.
pub fn rows(r: &Report) -> Vec<(&'static str, String, u64)> {
    let mut out = vec![
        ("visits", "total".to_owned(), r.visits),
        (
            "households_visited",
            "total".to_owned(),
            r.households_visited,
        ),
        ("needs_raised", "total".to_owned(), r.needs_raised),
        ("needs_met", "total".to_owned(), r.needs_met),
        ("inquiries", "total".to_owned(), r.inquiries),
        (
            "inquiries_answered",
            "total".to_owned(),
            r.inquiries_answered,
        ),
        ("cards_issued", "total".to_owned(), r.cards_issued),
        ("follow_ups_due", "total".to_owned(), r.follow_ups_due),
        ("follow_ups_done", "total".to_owned(), r.follow_ups_done),
        (
            "follow_ups_overdue",
            "total".to_owned(),
            r.follow_ups_overdue,
        ),
        ("children_visited", "total".to_owned(), r.children_visited),
        ("activities", "total".to_owned(), r.activities),
        (
            "activity_attendees",
            "total".to_owned(),
            r.activity_attendees,
        ),
        ("survey_responses", "total".to_owned(), r.survey_responses),
    ];
    for (section, t) in [
        ("visits_by_kind", &r.visits_by_kind),
        ("visits_by_worker", &r.visits_by_worker),
        ("visits_by_village", &r.visits_by_village),
        (
            "households_visited_by_category",
            &r.households_visited_by_category,
        ),
        (
            "children_visited_by_category",
            &r.children_visited_by_category,
        ),
        ("needs_by_category", &r.needs_by_category),
        ("inquiries_by_topic", &r.inquiries_by_topic),
        ("activities_by_type", &r.activities_by_type),
    ] {
        out.extend(t.iter().map(|(k, n)| (section, k.clone(), *n)));
    }
    out
}

/// Text safe inside SVG / HTML.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A horizontal bar chart as inline SVG (no script, no external font or file).
pub fn bar_chart(title: &str, data: &[(String, u64)]) -> String {
    const ROW: u64 = 26;
    const LABEL: u64 = 200;
    const BARS: u64 = 330;
    let max = data.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let height = 30 + ROW * data.len().max(1) as u64;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{t}" width="{w}" height="{height}" viewBox="0 0 {w} {height}"><text x="0" y="18" font-size="15" font-weight="bold">{t}</text>"##,
        t = escape(title),
        w = LABEL + BARS + 60,
    );
    if data.is_empty() {
        svg.push_str(r##"<text x="0" y="44" font-size="13" fill="#666">—</text>"##);
    }
    for (i, (label, n)) in data.iter().enumerate() {
        let y = 30 + ROW * i as u64;
        let width = (BARS * n / max).max(1);
        svg.push_str(&format!(
            r##"<text x="{lx}" y="{ty}" font-size="13" text-anchor="end">{label}</text><rect x="{LABEL}" y="{ry}" width="{width}" height="18" fill="#1f4e79"/><text x="{vx}" y="{ty}" font-size="13">{n}</text>"##,
            lx = LABEL - 8,
            ty = y + 14,
            ry = y + 1,
            vx = LABEL + width + 6,
            label = escape(label),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The report as an XLSX workbook (one sheet: section, item, count).
pub fn xlsx(r: &Report) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(format!("月报 {}", r.month))?;
    sheet.write_string(0, 0, "section")?;
    sheet.write_string(0, 1, "item")?;
    sheet.write_string(0, 2, "count")?;
    for (i, (section, item, n)) in rows(r).iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        sheet.write_string(row, 0, *section)?;
        sheet.write_string(row, 1, item)?;
        sheet.write_number(row, 2, *n as f64)?;
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_bound() {
        let m = Month::parse("2026-02").expect("a month");
        assert_eq!(
            m.last().map(|d| d.to_string()).as_deref(),
            Some("2026-02-28")
        );
        assert_eq!(
            Month::parse("2028-02")
                .and_then(Month::last)
                .map(|d| d.to_string())
                .as_deref(),
            Some("2028-02-29")
        );
        assert_eq!(
            Month::parse("2026-12")
                .and_then(Month::last)
                .map(|d| d.to_string())
                .as_deref(),
            Some("2026-12-31")
        );
        assert_eq!(
            Month::parse("2026-01")
                .and_then(Month::previous)
                .map(|m| m.to_string())
                .as_deref(),
            Some("2025-12")
        );
        for bad in ["2026-13", "2026-1", "26-01", "", "2026-00", "abcd-ef"] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn categories_are_named_by_label_and_code() {
        let v = doorstep_core::Vocabulary::builtin();
        assert_eq!(
            category_item(&v, "household.dibao"),
            "低保户 household.dibao"
        );
        assert_eq!(category_item(&v, "低保"), "低保户 household.dibao");
        assert_eq!(category_item(&v, "child.from_later"), "child.from_later");
        assert_eq!(category_item(&v, "重点关注"), "重点关注");
    }

    #[test]
    fn charts_escape_labels() {
        let svg = bar_chart("<t>", &[("a<b".into(), 2), ("c".into(), 1)]);
        assert!(svg.contains("a&lt;b") && svg.contains("&lt;t&gt;") && !svg.contains("<t>"));
    }
}
