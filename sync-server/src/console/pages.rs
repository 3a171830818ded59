//! The console's handlers: session check, the work on a blocking thread (storage and
//! automerge are synchronous), the access log, the page.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_core::read_model::{field_versions, read_case_file, CaseFile};
use doorstep_core::{EntityRef, FieldRef, FieldVersion, HouseholdId, StationId, WorkerId};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::auth::{self, AuthError, SESSION_COOKIE, SESSION_MS};
use super::view::{self, Lang};
use super::{harden, plain, Console};
use crate::store::console::{HouseholdFilter, Session};
use crate::store::{ServerStore, StoreError};
use crate::{now_ms, snapshot};

const LANG_COOKIE: &str = "doorstep_lang";
const LOGIN_CSRF_COOKIE: &str = "doorstep_login_csrf";
/// Households listed on one page.
const LIST_LIMIT: usize = 500;

type Shared<S> = State<Arc<Console<S>>>;

/// Why a page was not shown.
#[derive(Debug)]
enum PageError {
    NotFound,
    BadInput(&'static str),
    Store(StoreError),
    Render,
    Unreadable,
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl PageError {
    fn response(self) -> Response {
        match self {
            PageError::NotFound => plain(StatusCode::NOT_FOUND, "not found\n"),
            PageError::BadInput(why) => plain(StatusCode::BAD_REQUEST, why),
            PageError::Store(e) => {
                tracing::error!(error = %e, "console: storage error");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
            }
            PageError::Render => plain(StatusCode::INTERNAL_SERVER_ERROR, "page error\n"),
            PageError::Unreadable => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the document does not read\n",
            ),
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

/// A signed-in request.
struct Ctx {
    session: Session,
    lang: Lang,
}

impl Ctx {
    fn station(&self) -> StationId {
        self.session.account.station
    }
}

impl<S: ServerStore> Console<S> {
    fn render(
        &self,
        name: &str,
        lang: Lang,
        session: Option<&Session>,
        page: Value,
    ) -> Result<String, PageError> {
        let other = match lang {
            Lang::Zh => "en",
            Lang::En => "zh",
        };
        let base = context! {
            lang => lang.code(),
            t => view::words(lang),
            other_lang => other,
            account => session.map(|s| s.account.login.clone()),
            csrf => session.map(|s| s.csrf.clone()),
        };
        self.templates
            .get_template(name)
            .and_then(|t| t.render(context! { ..page, ..base }))
            .map_err(|e| {
                tracing::error!(template = name, error = %e, "console: render failed");
                PageError::Render
            })
    }

    fn html(&self, name: &str, ctx: &Ctx, page: Value) -> Result<Response, PageError> {
        let body = self.render(name, ctx.lang, Some(&ctx.session), page)?;
        Ok(html(body))
    }

    fn log(&self, ctx: &Ctx, what: &str, target: Option<&str>) -> Result<(), PageError> {
        self.store.log_access(
            ctx.session.account.id,
            ctx.station(),
            what,
            target,
            now_ms(),
        )?;
        Ok(())
    }

    fn labels(&self, station: StationId) -> Result<Vec<(WorkerId, String)>, PageError> {
        Ok(self.store.worker_labels(station)?)
    }

    fn station_name(&self, station: StationId) -> Result<String, PageError> {
        Ok(self
            .store
            .stations()?
            .into_iter()
            .find(|(s, _)| *s == station)
            .map(|(_, n)| n)
            .unwrap_or_default())
    }

    /// A case file of the session's station, read from the stored document.
    fn case_file(
        &self,
        station: StationId,
        id: HouseholdId,
    ) -> Result<(automerge::Automerge, CaseFile), PageError> {
        if self.store.document_station(id)? != Some(station) {
            return Err(PageError::NotFound);
        }
        let stored = self.store.load_document(id)?.ok_or(PageError::NotFound)?;
        let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
            .map_err(|_| PageError::Unreadable)?
            .map_err(|_| PageError::Unreadable)?;
        let file = read_case_file(&doc).map_err(|_| PageError::NotFound)?;
        Ok((doc, file))
    }
}

fn html(body: String) -> Response {
    harden(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

fn redirect(to: &str) -> Response {
    harden((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response())
}

fn set_cookie(resp: &mut Response, value: String) {
    if let Ok(v) = header::HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie_attrs<S: ServerStore>(c: &Console<S>) -> &'static str {
    if c.config.secure_cookies {
        "; Path=/console; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/console; HttpOnly; SameSite=Strict"
    }
}

/// Run a signed-in page on a blocking thread; without a live session, to the login page.
async fn page<S: ServerStore>(
    st: Arc<Console<S>>,
    headers: HeaderMap,
    f: impl FnOnce(&Console<S>, &Ctx) -> Result<Response, PageError> + Send + 'static,
) -> Response {
    let lang = lang_of(&headers);
    let cookie = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    blocking(move || {
        let Some(cookie) = cookie else {
            return Ok(redirect("/console/login"));
        };
        let Some(session) = auth::session(st.store.as_ref(), &cookie, now_ms())? else {
            return Ok(redirect("/console/login"));
        };
        f(&st, &Ctx { session, lang })
    })
    .await
}

async fn blocking(f: impl FnOnce() -> Result<Response, PageError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    })
    .await
    {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(e))) => e.response(),
        _ => {
            tracing::error!("console: a page panicked");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

// ----- login, logout, language

pub(super) async fn login_form<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
) -> Response {
    login_page(&st, lang_of(&headers), None)
}

fn login_page<S: ServerStore>(
    st: &Console<S>,
    lang: Lang,
    error: Option<&'static str>,
) -> Response {
    // Login CSRF: a random value in a cookie and in the form, compared on POST.
    let token = crate::credentials::new_token();
    let body = st.render(
        "login.html",
        lang,
        None,
        context! { login_csrf => token.clone(), error => error.map(|k| view::words(lang).get(k).copied().unwrap_or(k)) },
    );
    match body {
        Ok(body) => {
            let mut resp = html(body);
            if error.is_some() {
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
            }
            set_cookie(
                &mut resp,
                format!("{LOGIN_CSRF_COOKIE}={token}{}", cookie_attrs(st)),
            );
            resp
        }
        Err(e) => e.response(),
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(super) async fn login<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_token(expected, &form.csrf) {
        return plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n");
    }
    let st2 = st.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        auth::login(
            st2.store.as_ref(),
            form.login.trim(),
            &form.password,
            now_ms(),
        )
    })
    .await;
    match outcome {
        Ok(Ok(new)) => {
            let _ = st.store.log_access(
                new.session.account.id,
                new.session.account.station,
                "login",
                None,
                now_ms(),
            );
            let mut resp = redirect("/console");
            set_cookie(
                &mut resp,
                format!(
                    "{SESSION_COOKIE}={}; Max-Age={}{}",
                    new.cookie,
                    SESSION_MS / 1000,
                    cookie_attrs(&st)
                ),
            );
            resp
        }
        Ok(Err(AuthError::Throttled)) => {
            tracing::info!("console: login throttled");
            let mut r = login_page(&st, lang, Some("throttled"));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Ok(Err(AuthError::Wrong)) => {
            tracing::info!("console: login failed");
            login_page(&st, lang, Some("wrong_login"))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console: login error");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "login error\n")
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "login error\n"),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn logout<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let cookie_value = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    let attrs = cookie_attrs(&st);
    page(st, headers, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        if let Some(v) = cookie_value {
            auth::logout(c.store.as_ref(), &v)?;
        }
        c.log(ctx, "logout", None)?;
        let mut resp = redirect("/console/login");
        set_cookie(&mut resp, format!("{SESSION_COOKIE}=; Max-Age=0{attrs}"));
        Ok(resp)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct LangQuery {
    #[serde(default)]
    to: String,
}

pub(super) async fn lang(Query(q): Query<LangQuery>) -> Response {
    let v = if q.to == "en" { "en" } else { "zh" };
    let mut resp = redirect("/console");
    set_cookie(
        &mut resp,
        format!("{LANG_COOKIE}={v}; Path=/console; Max-Age=31536000; SameSite=Strict"),
    );
    resp
}

// ----- dashboard

pub(super) async fn dashboard<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
) -> Response {
    page(st, headers, |c, ctx| {
        c.log(ctx, "dashboard", None)?;
        let station = ctx.station();
        let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock"))?;
        let month_start = format!("{:04}-{:02}-01", today.year(), today.month());
        let month_end = format!("{:04}-{:02}-31", today.year(), today.month());
        let households = c.store.households(
            station,
            &HouseholdFilter {
                limit: usize::MAX >> 1,
                ..HouseholdFilter::default()
            },
        )?;
        let visits = c.store.visits_between(station, &month_start, &month_end)?;
        let yesterday = today
            .add_days(-1)
            .map_err(|_| PageError::BadInput("clock"))?;
        let overdue = c.store.open_follow_ups(station, &yesterday.to_string())?;
        c.html(
            "dashboard.html",
            ctx,
            context! {
                station => c.station_name(station)?,
                today => today.to_string(),
                households => households.len(),
                visits_month => visits.len(),
                open_needs => households.iter().map(|h| h.open_needs).sum::<u64>(),
                overdue => overdue.len(),
                conflicts => households.iter().map(|h| h.conflicts).sum::<u64>(),
            },
        )
    })
    .await
}

// ----- households

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    village: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl ListQuery {
    fn filter(&self, limit: usize) -> Result<HouseholdFilter, PageError> {
        let text = non_empty(&self.q).map(|t| t.to_lowercase());
        if text.as_ref().is_some_and(|t| t.chars().count() > 100)
            || self.village.len() > 400
            || self.category.len() > 400
        {
            return Err(PageError::BadInput("search text too long\n"));
        }
        Ok(HouseholdFilter {
            village: non_empty(&self.village),
            category: non_empty(&self.category),
            status: non_empty(&self.status),
            text,
            limit,
        })
    }
}

#[derive(Serialize)]
struct ListRow {
    id: String,
    code: String,
    village: String,
    categories: String,
    status: String,
    visits: u64,
    last_visit: String,
    open_needs: u64,
    conflicts: u64,
}

pub(super) async fn households<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        c.log(ctx, "households", None)?;
        let station = ctx.station();
        let rows = c.store.households(station, &q.filter(LIST_LIMIT)?)?;
        let mut villages: Vec<String> = c
            .store
            .households(station, &HouseholdFilter { limit: usize::MAX >> 1, ..Default::default() })?
            .into_iter()
            .map(|h| h.village)
            .filter(|v| !v.is_empty())
            .collect();
        villages.sort();
        villages.dedup();
        let rows: Vec<ListRow> = rows
            .into_iter()
            .map(|h| ListRow {
                id: h.doc.to_string(),
                code: h.code,
                village: h.village,
                categories: h.categories.join("、"),
                status: h.status,
                visits: h.visits,
                last_visit: h.last_visit.unwrap_or_default(),
                open_needs: h.open_needs,
                conflicts: h.conflicts,
            })
            .collect();
        c.html(
            "households.html",
            ctx,
            context! { rows, villages, q => q.q, village => q.village, category => q.category, status => q.status },
        )
    })
    .await
}

// ----- a case file

#[derive(Serialize)]
struct Version {
    value: String,
    who: String,
    device: String,
    when: String,
    /// What a resolution form sends back for this value (`resolve::value_digest`).
    digest: String,
}

#[derive(Serialize)]
struct FieldView {
    key: String,
    /// `kind:key:field`, for the history link.
    path: String,
    label: String,
    versions: Vec<Version>,
}

fn version(labels: &[(WorkerId, String)], v: &FieldVersion, mask: bool) -> Version {
    let value = v.value.clone().unwrap_or_default();
    Version {
        value: if mask {
            view::mask_id_number(&value)
        } else {
            value
        },
        who: view::worker_label(labels, v.provenance.worker),
        device: view::device_label(v.provenance.device),
        when: view::local_time(v.provenance.at.0),
        digest: super::resolve::value_digest(v.value.as_deref()),
    }
}

fn fields(
    doc: &automerge::Automerge,
    entity: EntityRef,
    names: &[&str],
    labels: &[(WorkerId, String)],
    words: &std::collections::BTreeMap<&str, &str>,
) -> Vec<FieldView> {
    names
        .iter()
        .filter_map(|name| {
            let versions = field_versions(doc, &FieldRef::new(entity, name)).ok()?;
            if versions.is_empty() {
                return None;
            }
            Some(FieldView {
                key: (*name).to_owned(),
                path: super::resolve::field_path(&FieldRef::new(entity, name)),
                label: words.get(name).copied().unwrap_or(name).to_owned(),
                versions: versions
                    .iter()
                    .map(|v| version(labels, v, *name == "id_number"))
                    .collect(),
            })
        })
        .collect()
}

fn parse_household(id: &str) -> Result<HouseholdId, PageError> {
    HouseholdId::parse(id).map_err(|_| PageError::NotFound)
}

pub(super) async fn household<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let id = parse_household(&id)?;
        let station = ctx.station();
        let (doc, file) = c.case_file(station, id)?;
        c.log(ctx, "household", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let words = view::words(ctx.lang);
        let h = &file.household;
        let who = |p: &doorstep_core::Provenance| view::worker_label(&labels, p.worker);
        let when = |p: &doorstep_core::Provenance| view::local_time(p.at.0);
        let profile = fields(&doc, EntityRef::Household, &["code", "village", "address", "status"], &labels, &words);
        let persons: Vec<Value> = h
            .persons
            .iter()
            .map(|p| {
                context! {
                    name => p.name.clone(),
                    fields => fields(&doc, EntityRef::Person(p.id), &["name", "sex", "birth_date", "id_number", "relation", "guardian"], &labels, &words),
                }
            })
            .collect();
        let visits: Vec<Value> = h
            .visits
            .iter()
            .map(|v| {
                context! {
                    date => v.date.to_string(),
                    kind => v.kind.as_str(),
                    status => v.status.as_str(),
                    workers => v.workers.iter().map(|w| view::worker_label(&labels, *w)).collect::<Vec<_>>().join("、"),
                    who => who(&v.created),
                    device => view::device_label(v.created.device),
                    when => when(&v.created),
                    sections => v.sections.iter().filter(|(_, t)| !t.is_empty()).map(|(s, t)| context! { name => s.as_str(), text => t.clone() }).collect::<Vec<_>>(),
                }
            })
            .collect();
        let conflicts: Vec<Value> = file
            .conflicts
            .iter()
            .map(|cf| {
                let mask = cf.field.field == "id_number";
                context! {
                    field => format!("{} {}", cf.field.entity.kind().name(), words.get(cf.field.field.as_str()).copied().unwrap_or(&cf.field.field)),
                    values => cf.values.iter().map(|v| version(&labels, v, mask)).collect::<Vec<_>>(),
                }
            })
            .collect();
        c.html(
            "household.html",
            ctx,
            context! {
                doc => id.to_string(),
                h => context! {
                    code => h.code.clone(),
                    village => h.village.clone(),
                    summary => h.summary.clone(),
                    tags => h.tags.join("、"),
                    phones => h.phones.join("、"),
                },
                profile,
                persons,
                visits,
                conflicts,
                needs => h.needs.iter().map(|n| context! { category => n.category.clone(), description => n.description.clone(), status => n.status.as_str(), who => who(&n.created), when => when(&n.created) }).collect::<Vec<_>>(),
                inquiries => h.inquiries.iter().map(|i| context! { question => i.question.clone(), answer => i.answer.clone().unwrap_or_default(), status => i.status.as_str(), who => who(&i.created), when => when(&i.created) }).collect::<Vec<_>>(),
                follow_ups => h.follow_ups.iter().map(|f| context! { what => f.what.clone(), due => f.due.to_string(), assignee => view::worker_label(&labels, f.assignee), status => f.status.as_str() }).collect::<Vec<_>>(),
                cards => h.cards.iter().map(|cd| context! { serial => cd.serial.clone(), status => cd.status.as_str(), who => who(&cd.created), when => when(&cd.created) }).collect::<Vec<_>>(),
            },
        )
    })
    .await
}

// ----- conflicts, follow-ups

pub(super) async fn conflicts<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
) -> Response {
    page(st, headers, |c, ctx| {
        c.log(ctx, "conflicts", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let words = view::words(ctx.lang);
        let mut out: Vec<Value> = Vec::new();
        let all = c.store.households(station, &HouseholdFilter { limit: usize::MAX >> 1, ..Default::default() })?;
        for h in all.into_iter().filter(|h| h.conflicts > 0) {
            let Ok((_, file)) = c.case_file(station, h.doc) else { continue };
            for cf in &file.conflicts {
                let mask = cf.field.field == "id_number";
                out.push(context! {
                    path => super::resolve::field_path(&cf.field),
                    resolvable => cf.kind == doorstep_core::ConflictKind::ConcurrentValues,
                    doc => h.doc.to_string(),
                    code => h.code.clone(),
                    field => format!("{} {}", cf.field.entity.kind().name(), words.get(cf.field.field.as_str()).copied().unwrap_or(&cf.field.field)),
                    values => cf.values.iter().map(|v| version(&labels, v, mask)).collect::<Vec<_>>(),
                });
            }
        }
        c.html("conflicts.html", ctx, context! { conflicts => out })
    })
    .await
}

pub(super) async fn follow_ups<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
) -> Response {
    page(st, headers, |c, ctx| {
        c.log(ctx, "follow_ups", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock"))?;
        let horizon = today
            .add_days(14)
            .map_err(|_| PageError::BadInput("clock"))?;
        let due = c.store.open_follow_ups(station, &horizon.to_string())?;
        let codes: std::collections::HashMap<HouseholdId, String> = c
            .store
            .households(
                station,
                &HouseholdFilter {
                    limit: usize::MAX >> 1,
                    ..Default::default()
                },
            )?
            .into_iter()
            .map(|h| (h.doc, h.code))
            .collect();
        let mut by_worker: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        let today_s = today.to_string();
        for f in due {
            by_worker
                .entry(view::worker_label(&labels, f.assignee))
                .or_default()
                .push(context! {
                    due => f.due.clone(),
                    overdue => f.due < today_s,
                    what => f.what.clone(),
                    doc => f.doc.to_string(),
                    code => codes.get(&f.doc).cloned().unwrap_or_default(),
                });
        }
        let groups: Vec<Value> = by_worker
            .into_iter()
            .map(|(worker, items)| context! { worker, items })
            .collect();
        c.html("follow_ups.html", ctx, context! { groups })
    })
    .await
}

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

pub(super) async fn export_households_csv<S: ServerStore>(
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

// ----- resolving a conflict

#[derive(Deserialize)]
pub(super) struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    doc: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    chosen: String,
}

pub(super) async fn resolve<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<ResolveForm>,
) -> Response {
    use super::resolve::{parse_field_path, ResolveError};
    page(st, headers, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n"));
        }
        let doc = parse_household(&form.doc)?;
        let field = parse_field_path(&form.field).map_err(|_| PageError::BadInput("bad field\n"))?;
        c.log(ctx, "resolve_conflict", Some(&doc.to_string()))?;
        match super::resolve::resolve(c.store.as_ref(), &c.sync, &ctx.session.account, doc, &field, &form.chosen) {
            Ok(resolution) => {
                tracing::info!(%doc, %resolution, account = %ctx.session.account.id, "console: conflict resolved");
                Ok(redirect("/console/conflicts"))
            }
            Err(ResolveError::NotFound) => Err(PageError::NotFound),
            Err(ResolveError::BadField) => Err(PageError::BadInput("bad field\n")),
            Err(ResolveError::Changed) => Ok(plain(
                StatusCode::CONFLICT,
                "the conflict is no longer as shown: go back and look again\n",
            )),
            Err(ResolveError::Store(e)) => Err(PageError::Store(e)),
            Err(e) => {
                tracing::warn!(%doc, error = %e, "console: resolution refused");
                Ok(plain(StatusCode::UNPROCESSABLE_ENTITY, "the decision was refused\n"))
            }
        }
    })
    .await
}

pub(super) async fn export_households_xlsx<S: ServerStore>(
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

// ----- the monthly report

#[derive(Deserialize, Default)]
pub(super) struct MonthQuery {
    #[serde(default)]
    month: String,
}

impl MonthQuery {
    fn month(&self) -> Result<super::report::Month, PageError> {
        if self.month.trim().is_empty() {
            let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock\n"))?;
            return Ok(super::report::Month::of(today));
        }
        super::report::Month::parse(&self.month)
            .ok_or(PageError::BadInput("month must be YYYY-MM\n"))
    }
}

fn report_of<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    q: &MonthQuery,
) -> Result<super::report::Report, PageError> {
    let month = q.month()?;
    let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock\n"))?;
    Ok(super::report::monthly(
        c.store.as_ref(),
        ctx.station(),
        month,
        today,
    )?)
}

pub(super) async fn report<S: ServerStore>(
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
        .map(|(title, data)| Value::from_safe_string(super::report::bar_chart(&word(title), data)))
        .collect();
        c.html(
            "report.html",
            ctx,
            context! { r, charts, station => c.station_name(ctx.station())? },
        )
    })
    .await
}

pub(super) async fn report_csv<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_csv", Some(&r.month))?;
        let mut out = String::from("\u{feff}section,item,count\r\n");
        for (section, item, n) in super::report::rows(&r) {
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

pub(super) async fn report_xlsx<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Query(q): Query<MonthQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let r = report_of(c, ctx, &q)?;
        c.log(ctx, "export_report_xlsx", Some(&r.month))?;
        let bytes = super::report::xlsx(&r).map_err(|e| {
            tracing::error!(error = %e, "console: xlsx failed");
            PageError::Render
        })?;
        Ok(attachment(XLSX, &format!("report-{}.xlsx", r.month), bytes))
    })
    .await
}

// ----- a field's history

#[derive(Deserialize)]
pub(super) struct FieldQuery {
    #[serde(default)]
    field: String,
}

pub(super) async fn history<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FieldQuery>,
) -> Response {
    page(st, headers, move |c, ctx| {
        let id = parse_household(&id)?;
        let field = super::resolve::parse_field_path(&q.field)
            .map_err(|_| PageError::BadInput("bad field\n"))?;
        let station = ctx.station();
        let (doc, file) = c.case_file(station, id)?;
        c.log(ctx, "field_history", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let mask = field.field == "id_number";
        let now = field_versions(&doc, &field).map_err(|_| PageError::NotFound)?;
        let all = doorstep_core::read_model::field_history(&doc, &field)
            .map_err(|_| PageError::NotFound)?;
        let versions: Vec<Value> = all
            .iter()
            .rev()
            .map(|v| {
                let shown = version(&labels, v, mask);
                context! {
                    current => now.contains(v),
                    value => shown.value,
                    who => shown.who,
                    device => shown.device,
                    when => shown.when,
                }
            })
            .collect();
        let words = view::words(ctx.lang);
        c.html(
            "history.html",
            ctx,
            context! {
                doc => id.to_string(),
                code => file.household.code.clone(),
                field => format!("{} {}", field.entity.kind().name(), words.get(field.field.as_str()).copied().unwrap_or(&field.field)),
                versions,
            },
        )
    })
    .await
}

// ----- workers and devices

/// The devices page, with a just-made enrolment code if there is one.
fn devices_page<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    enrolled: Option<Value>,
) -> Result<Response, PageError> {
    let station = ctx.station();
    let words = view::words(ctx.lang);
    let word = |k: &str| words.get(k).copied().unwrap_or(k).to_owned();
    let devices = c.store.station_devices(station, now_ms())?;
    let workers: Vec<Value> = c
        .labels(station)?
        .into_iter()
        .map(|(w, label)| {
            let mine: Vec<_> = devices.iter().filter(|d| d.worker == w).collect();
            let console = mine.iter().any(|d| d.console);
            let rows: Vec<Value> = mine
                .iter()
                .map(|d| {
                    let state = if d.console {
                        "state_console"
                    } else if d.revoked_at.is_some() {
                        "state_revoked"
                    } else if d.enrolled_at.is_some() {
                        "state_enrolled"
                    } else if d.code_waiting {
                        "state_waiting"
                    } else {
                        "state_expired"
                    };
                    context! {
                        id => d.device.to_string(),
                        short => view::device_label(d.device),
                        state => word(state),
                        enrolled => d.enrolled_at.map(view::local_time).unwrap_or_default(),
                        revocable => !d.console && d.revoked_at.is_none(),
                    }
                })
                .collect();
            context! { id => w.to_string(), label, devices => rows, console }
        })
        .collect();
    c.html("devices.html", ctx, context! { workers, enrolled })
}

pub(super) async fn devices<S: ServerStore>(State(st): Shared<S>, headers: HeaderMap) -> Response {
    page(st, headers, |c, ctx| {
        c.log(ctx, "devices", None)?;
        devices_page(c, ctx, None)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct EnrollForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    worker: String,
}

/// An SVG QR code of a one-time code, for the worker's phone to scan.
fn qr_svg(code: &str) -> Option<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    // Inline in the page: without the XML declaration.
    Some(match svg.find("<svg") {
        Some(at) => svg[at..].to_owned(),
        None => svg,
    })
}

pub(super) async fn enroll<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<EnrollForm>,
) -> Response {
    page(st, headers, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n"));
        }
        let station = ctx.station();
        let worker = WorkerId::parse(&form.worker).map_err(|_| PageError::NotFound)?;
        let labels = c.labels(station)?;
        let label = labels
            .iter()
            .find(|(w, _)| *w == worker)
            .map(|(_, l)| l.clone())
            .ok_or(PageError::NotFound)?;
        let consoles: Vec<WorkerId> = c
            .store
            .station_devices(station, now_ms())?
            .into_iter()
            .filter(|d| d.console)
            .map(|d| d.worker)
            .collect();
        if consoles.contains(&worker) {
            return Err(PageError::BadInput("a supervisor's console identity takes no phone\n"));
        }
        let now = now_ms();
        let (device, code) = crate::credentials::enroll_device(c.store.as_ref(), worker, now)?;
        c.log(ctx, "enroll_device", Some(&device.to_string()))?;
        tracing::info!(%device, %worker, account = %ctx.session.account.id, "console: device enrolled");
        let enrolled = context! {
            worker => label,
            qr => Value::from_safe_string(qr_svg(&code).unwrap_or_default()),
            code,
            expires => view::local_time(now + crate::credentials::CODE_VALID_MS),
        };
        let mut resp = devices_page(c, ctx, Some(enrolled))?;
        // The code is on this page only: never cached (harden sets no-store already).
        resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        Ok(resp)
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device: String,
}

pub(super) async fn revoke<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    page(st, headers, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        let device =
            doorstep_core::DeviceId::parse(&form.device).map_err(|_| PageError::NotFound)?;
        let row = c
            .store
            .station_devices(ctx.station(), now_ms())?
            .into_iter()
            .find(|d| d.device == device)
            .ok_or(PageError::NotFound)?;
        if row.console {
            return Err(PageError::BadInput(
                "a console identity is not revoked here\n",
            ));
        }
        c.store.revoke_device(device, now_ms())?;
        c.log(ctx, "revoke_device", Some(&device.to_string()))?;
        tracing::info!(%device, account = %ctx.session.account.id, "console: device revoked");
        Ok(redirect("/console/devices"))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct WorkerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

pub(super) async fn add_worker<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
    Form(form): Form<WorkerForm>,
) -> Response {
    page(st, headers, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        let label = form.label.trim();
        if label.is_empty() || label.chars().count() > 32 {
            return Err(PageError::BadInput(
                "a worker label is 1 to 32 characters\n",
            ));
        }
        let worker = c.store.add_worker(ctx.station(), label, now_ms())?;
        c.log(ctx, "add_worker", Some(&worker.to_string()))?;
        Ok(redirect("/console/devices"))
    })
    .await
}
