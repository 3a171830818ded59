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
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        c.log(ctx, "export_households_csv", None)?;
        let rows = c.store.households(ctx.station(), &q.filter(usize::MAX >> 1)?)?;
        // UTF-8 with a byte-order mark, so Excel reads the Chinese text right.
        let mut out = String::from("\u{feff}code,village,categories,status,visits,last_visit,open_needs,conflicts,household_id\r\n");
        for h in rows {
            let line = [
                csv_field(&h.code),
                csv_field(&h.village),
                csv_field(&h.categories.join(" ")),
                csv_field(&h.status),
                h.visits.to_string(),
                csv_field(h.last_visit.as_deref().unwrap_or("")),
                h.open_needs.to_string(),
                h.conflicts.to_string(),
                h.doc.to_string(),
            ]
            .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
        }
        Ok(harden(
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"households.csv\""),
                ],
                out,
            )
                .into_response(),
        ))
    })
    .await
}

pub(in crate::console) async fn export_households_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        c.log(ctx, "export_households_xlsx", None)?;
        let rows = c
            .store
            .households(ctx.station(), &q.filter(usize::MAX >> 1)?)?;
        let bytes = households_xlsx(&rows).map_err(|e| {
            tracing::error!(error = %e, "console: xlsx failed");
            PageError::Render
        })?;
        Ok(attachment(XLSX, "households.xlsx", bytes))
    })
    .await
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

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
    let head = [
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
    for (col, h) in head.iter().enumerate() {
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
    let month = q.month()?;
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
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let (month, rows) = visits_of_month(c, ctx, &q)?;
        c.log(ctx, "export_visits_csv", Some(&month))?;
        // UTF-8 with a byte-order mark, so Excel reads the Chinese text right.
        let mut out = format!("\u{feff}{}\r\n", VISIT_COLUMNS.join(","));
        for row in rows {
            let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        Ok(attachment(
            "text/csv; charset=utf-8",
            &format!("visits-{month}.csv"),
            out.into_bytes(),
        ))
    })
    .await
}

pub(in crate::console) async fn export_visits_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
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
        .map_err(|e| {
            tracing::error!(error = %e, "console: xlsx failed");
            PageError::Render
        })?;
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
    fn month(&self) -> Result<crate::console::report::Month, PageError> {
        if self.month.trim().is_empty() {
            let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock\n"))?;
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
    let month = q.month()?;
    let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock\n"))?;
    Ok(crate::console::report::monthly(
        c.store.as_ref(),
        ctx.station(),
        month,
        today,
    )?)
}

pub(in crate::console) async fn report<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
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
            ("chart_needs", &r.needs_by_category),
            ("chart_topics", &r.inquiries_by_topic),
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
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_csv", Some(&r.month))?;
        let mut out = String::from("\u{feff}section,item,count\r\n");
        for (section, item, n) in crate::console::report::rows(&r) {
            out.push_str(&format!("{section},{},{n}\r\n", csv_field(&item)));
        }
        Ok(attachment(
            "text/csv; charset=utf-8",
            &format!("report-{}.csv", r.month),
            out.into_bytes(),
        ))
    })
    .await
}

pub(in crate::console) async fn report_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_xlsx", Some(&r.month))?;
        let bytes = crate::console::report::xlsx(&r).map_err(|e| {
            tracing::error!(error = %e, "console: xlsx failed");
            PageError::Render
        })?;
        Ok(attachment(XLSX, &format!("report-{}.xlsx", r.month), bytes))
    })
    .await
}
