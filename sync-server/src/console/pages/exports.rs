//! CSV and XLSX exports, and the monthly report.

use super::cases::ListQuery;
use super::*;

// ----- exports

/// A CSV field, quoted when it must be (RFC 4180); a leading `=`, `+`, `-` or `@` is
/// prefixed with `'` so a spreadsheet does not run it as a formula.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub(in crate::console) async fn export_households_csv<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        c.log(ctx, "export_households_csv", None)?;
        let rows = c
            .store
            .households(ctx.station(), &q.filter(usize::MAX >> 1)?)?;
        let rows = rows.into_iter().map(|h| {
            vec![
                h.code,
                h.village,
                h.categories.join(" "),
                h.status,
                h.visits.to_string(),
                h.last_visit.unwrap_or_default(),
                h.open_needs.to_string(),
                h.conflicts.to_string(),
                h.doc.to_string(),
            ]
        });
        Ok(csv_attachment("households.csv", &HOUSEHOLD_COLUMNS, rows))
    })
    .await
}

pub(in crate::console) async fn export_households_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        c.log(ctx, "export_households_xlsx", None)?;
        let rows = c
            .store
            .households(ctx.station(), &q.filter(usize::MAX >> 1)?)?;
        let bytes = households_xlsx(&rows).map_err(xlsx_failed)?;
        Ok(attachment(XLSX, "households.xlsx", bytes))
    })
    .await
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const HOUSEHOLD_COLUMNS: [&str; 9] = [
    "code",
    "village",
    "categories",
    "status",
    "visits",
    "last_visit",
    "open_needs",
    "conflicts",
    "household_id",
];

/// A CSV download: UTF-8 with a byte-order mark (so Excel reads the Chinese text right), a
/// header line, every field through [`csv_field`], CRLF line ends.
fn csv_attachment(
    name: &str,
    columns: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Response {
    let mut out = format!("\u{feff}{}\r\n", columns.join(","));
    for row in rows {
        let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    attachment("text/csv; charset=utf-8", name, out.into_bytes())
}

/// An XLSX that could not be written (logged; the page answers with a render error).
fn xlsx_failed(e: rust_xlsxwriter::XlsxError) -> PageError {
    tracing::error!(error = %e, "console: xlsx failed");
    PageError::Render
}

fn attachment(content_type: &'static str, name: &str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    harden(resp)
}

fn households_xlsx(
    rows: &[crate::store::console::HouseholdRow],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("households")?;
    for (col, h) in HOUSEHOLD_COLUMNS.iter().enumerate() {
        sheet.write_string(0, col as u16, *h)?;
    }
    for (i, h) in rows.iter().enumerate() {
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        sheet.write_string(r, 0, &h.code)?;
        sheet.write_string(r, 1, &h.village)?;
        sheet.write_string(r, 2, h.categories.join(" "))?;
        sheet.write_string(r, 3, &h.status)?;
        sheet.write_number(r, 4, h.visits as f64)?;
        sheet.write_string(r, 5, h.last_visit.as_deref().unwrap_or(""))?;
        sheet.write_number(r, 6, h.open_needs as f64)?;
        sheet.write_number(r, 7, h.conflicts as f64)?;
        sheet.write_string(r, 8, h.doc.to_string())?;
    }
    book.save_to_buffer()
}

/// The visits of a month, one row each: date, household code, kind, status, the workers'
/// labels, ids. No notes: the sections stay in the case file.
fn visits_of_month<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    q: &MonthQuery,
) -> Result<(String, Vec<[String; 7]>), PageError> {
    let month = q.month(ctx)?;
    let (Some(first), Some(last)) = (month.first(), month.last()) else {
        return Err(PageError::BadInput("month must be YYYY-MM\n"));
    };
    let station = ctx.station();
    let codes: std::collections::HashMap<HouseholdId, String> = c
        .store
        .households(
            station,
            &crate::store::console::HouseholdFilter {
                limit: usize::MAX >> 1,
                ..Default::default()
            },
        )?
        .into_iter()
        .map(|h| (h.doc, h.code))
        .collect();
    let labels: std::collections::HashMap<WorkerId, String> =
        c.store.worker_labels(station)?.into_iter().collect();
    let rows = c
        .store
        .visits_between(station, &first.to_string(), &last.to_string())?
        .into_iter()
        .map(|v| {
            let workers: Vec<String> = v
                .workers
                .iter()
                .map(|w| labels.get(w).cloned().unwrap_or_else(|| w.to_string()))
                .collect();
            [
                v.date,
                codes.get(&v.doc).cloned().unwrap_or_default(),
                v.kind,
                v.status,
                workers.join(" "),
                v.visit.to_string(),
                v.doc.to_string(),
            ]
        })
        .collect();
    Ok((month.to_string(), rows))
}

const VISIT_COLUMNS: [&str; 7] = [
    "date",
    "household_code",
    "kind",
    "status",
    "workers",
    "visit_id",
    "household_id",
];

pub(in crate::console) async fn export_visits_csv<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let (month, rows) = visits_of_month(c, ctx, &q)?;
        c.log(ctx, "export_visits_csv", Some(&month))?;
        Ok(csv_attachment(
            &format!("visits-{month}.csv"),
            &VISIT_COLUMNS,
            rows.into_iter().map(Vec::from),
        ))
    })
    .await
}

pub(in crate::console) async fn export_visits_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let (month, rows) = visits_of_month(c, ctx, &q)?;
        c.log(ctx, "export_visits_xlsx", Some(&month))?;
        let bytes = (|| -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
            let mut book = rust_xlsxwriter::Workbook::new();
            let sheet = book.add_worksheet();
            sheet.set_name("visits")?;
            for (col, h) in VISIT_COLUMNS.iter().enumerate() {
                sheet.write_string(0, col as u16, *h)?;
            }
            for (i, row) in rows.iter().enumerate() {
                let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
                for (col, f) in row.iter().enumerate() {
                    sheet.write_string(r, col as u16, f)?;
                }
            }
            book.save_to_buffer()
        })()
        .map_err(xlsx_failed)?;
        Ok(attachment(XLSX, &format!("visits-{month}.xlsx"), bytes))
    })
    .await
}

// ----- the monthly report

#[derive(Deserialize, Default)]
pub(in crate::console) struct MonthQuery {
    #[serde(default)]
    month: String,
}

impl MonthQuery {
    pub(super) fn month(&self, ctx: &Ctx) -> Result<crate::console::report::Month, PageError> {
        if self.month.trim().is_empty() {
            let today = ctx.today()?;
            return Ok(crate::console::report::Month::of(today));
        }
        crate::console::report::Month::parse(&self.month)
            .ok_or(PageError::BadInput("month must be YYYY-MM\n"))
    }
}

fn report_of<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    q: &MonthQuery,
) -> Result<crate::console::report::Report, PageError> {
    let month = q.month(ctx)?;
    let today = ctx.today()?;
    Ok(crate::console::report::monthly(
        c.store.as_ref(),
        ctx.station(),
        month,
        today,
    )?)
}

pub(in crate::console) async fn report<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let mut r = report_of(c, ctx, &q)?;
        c.log(ctx, "report", Some(&r.month))?;
        let words = view::words(ctx.lang);
        let word = |k: &str| words.get(k).copied().unwrap_or(k).to_owned();
        for (kind, _) in r.visits_by_kind.iter_mut() {
            *kind = word(&format!("kind_{kind}"));
        }
        let charts: Vec<Value> = [
            ("chart_kind", &r.visits_by_kind),
            ("chart_worker", &r.visits_by_worker),
            ("chart_village", &r.visits_by_village),
            ("chart_category", &r.households_visited_by_category),
            ("chart_children", &r.children_visited_by_category),
            ("chart_needs", &r.needs_by_category),
            ("chart_topics", &r.inquiries_by_topic),
            ("chart_activities", &r.activities_by_type),
        ]
        .iter()
        .map(|(title, data)| {
            Value::from_safe_string(crate::console::report::bar_chart(&word(title), data))
        })
        .collect();
        c.html(
            "report.html",
            ctx,
            context! { r, charts, station => c.station_name(ctx.station())? },
        )
    })
    .await
}

pub(in crate::console) async fn report_csv<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_csv", Some(&r.month))?;
        let rows = crate::console::report::rows(&r)
            .into_iter()
            .map(|(section, item, n)| vec![section.to_string(), item, n.to_string()]);
        Ok(csv_attachment(
            &format!("report-{}.csv", r.month),
            &["section", "item", "count"],
            rows,
        ))
    })
    .await
}

pub(in crate::console) async fn report_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_xlsx", Some(&r.month))?;
        let bytes = crate::console::report::xlsx(&r).map_err(xlsx_failed)?;
        Ok(attachment(XLSX, &format!("report-{}.xlsx", r.month), bytes))
    })
    .await
}
