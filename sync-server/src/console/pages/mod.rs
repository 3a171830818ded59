//! The console's handlers: session check, the work on a blocking thread (storage and
//! automerge are synchronous), the access log, the page.

mod access;
mod cards;
mod cases;
mod devices;
mod erasures;
mod exports;
mod responses;
mod session;
mod stations;
mod work;

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_core::read_model::{field_versions, read_case_file};
use doorstep_core::{EntityRef, FieldRef, FieldVersion, HouseholdId, StationId, WorkerId};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::auth::{self, AuthError, SESSION_COOKIE, SESSION_MS};
use super::case_files::LoadedCaseFile;
use super::view::{self, Lang};
use super::{harden, plain, Console};
use crate::station_time::UtcOffset;
use crate::store::console::{AccountRole, HouseholdFilter, Session};
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
    /// A county account asked to change something (ADR 0020).
    ReadOnly,
    /// A county account asked for the station's own work, which is in no county
    /// account's scope (ADR 0021 §5, ADR 0022 §1).
    StationWork,
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
            PageError::ReadOnly => plain(
                StatusCode::FORBIDDEN,
                "a county account reads only: it cannot resolve conflicts, assign, erase, \
                 enrol or revoke phones, add workers or register, lease or return cards; \
                 nothing was changed\n",
            ),
            PageError::StationWork => plain(
                StatusCode::FORBIDDEN,
                "a county account does not see a station's group activities, resource \
                 register or needs surveys\n",
            ),
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

/// The station a request names in its path (`/console/s/{station}/…`, ADR 0020), set by
/// `console::in_station` before the request reaches a page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChosenStation(pub StationId);

/// What a page handler needs of its request: the headers (cookies) and the station the
/// path chose, if any.
pub(in crate::console) struct Visit {
    headers: HeaderMap,
    station: Option<StationId>,
}

impl<St: Send + Sync> axum::extract::FromRequestParts<St> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &St,
    ) -> Result<Self, Self::Rejection> {
        Ok(Visit {
            headers: parts.headers.clone(),
            station: parts.extensions.get::<ChosenStation>().map(|c| c.0),
        })
    }
}

/// A signed-in request about one station.
struct Ctx {
    session: Session,
    lang: Lang,
    /// The station it reads: the supervisor's own, or the one a county account chose.
    station: StationId,
    /// Where this station's pages are: `/console`, or `/console/s/{station}` when the
    /// path named it (how a county account's pages link to each other).
    base: String,
    /// A county account's station name, shown in the header (a supervisor has one).
    station_label: Option<String>,
    /// The station's time zone (ADR 0028): its dates, "today" and its months.
    zone: UtcOffset,
}

impl Ctx {
    fn station(&self) -> StationId {
        self.station
    }

    /// Today in the station's time zone.
    fn today(&self) -> Result<doorstep_core::Date, PageError> {
        self.zone
            .date(now_ms())
            .ok_or(PageError::BadInput("clock\n"))
    }

    fn read_only(&self) -> bool {
        self.session.account.role == AccountRole::County
    }
}

/// What a page does: reads, or changes something (a supervisor's alone).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
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
        let page = context! {
            ..page,
            ..context! {
                // Made here of a parsed station id: nothing to escape (autoescaping would
                // write every `/` as `&#x2f;`).
                base => Value::from_safe_string(ctx.base.clone()),
                read_only => ctx.read_only(),
                station_label => ctx.station_label.clone(),
                zone => ctx.zone.to_string(),
            }
        };
        let body = self.render(name, ctx.lang, Some(&ctx.session), page)?;
        Ok(html(body))
    }

    /// The station a signed-in request is about (ADR 0020): the one its path names, if the
    /// account may read it — a station it may not read answers exactly like one that does
    /// not exist (`NotFound`) — else a supervisor's own; `None` for a county account that
    /// has not chosen.
    fn station_of(
        &self,
        session: &Session,
        chosen: Option<StationId>,
    ) -> Result<Option<StationId>, PageError> {
        match (session.account.role, chosen) {
            (AccountRole::Supervisor(own), None) => Ok(Some(own)),
            (AccountRole::Supervisor(own), Some(s)) if s == own => Ok(Some(s)),
            (AccountRole::County, Some(s))
                if self
                    .store
                    .account_stations(session.account.id)?
                    .iter()
                    .any(|(g, _)| *g == s) =>
            {
                Ok(Some(s))
            }
            (AccountRole::County, None) => Ok(None),
            _ => Err(PageError::NotFound),
        }
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

    /// A case file of the session's station, read from the stored document (or kept from
    /// an earlier page at the same log sequence: `case_files.rs`).
    fn case_file(
        &self,
        station: StationId,
        id: HouseholdId,
    ) -> Result<Arc<LoadedCaseFile>, PageError> {
        if self.store.document_station(id)? != Some(station) {
            self.case_files.forget(id);
            return Err(PageError::NotFound);
        }
        let seq = self.store.document_seq(id)?;
        self.case_files.get(id, seq, || {
            let stored = self.store.load_document(id)?.ok_or(PageError::NotFound)?;
            let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
                .map_err(|_| PageError::Unreadable)?
                .map_err(|_| PageError::Unreadable)?;
            let file = read_case_file(&doc).map_err(|_| PageError::NotFound)?;
            Ok(LoadedCaseFile { doc, file })
        })
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

/// Run a page that reads a station on a blocking thread; without a live session, to the
/// login page; a county account that has not chosen a station, to its list of stations.
async fn page<S: ServerStore>(
    st: Arc<Console<S>>,
    visit: Visit,
    f: impl FnOnce(&Console<S>, &Ctx) -> Result<Response, PageError> + Send + 'static,
) -> Response {
    station_page(st, visit, Access::Read, f).await
}

/// Run a page that changes something: a supervisor's alone. A county account is refused
/// (`403`) before anything is read or checked, its CSRF token included.
async fn write_page<S: ServerStore>(
    st: Arc<Console<S>>,
    visit: Visit,
    f: impl FnOnce(&Console<S>, &Ctx) -> Result<Response, PageError> + Send + 'static,
) -> Response {
    station_page(st, visit, Access::Write, f).await
}

async fn station_page<S: ServerStore>(
    st: Arc<Console<S>>,
    visit: Visit,
    access: Access,
    f: impl FnOnce(&Console<S>, &Ctx) -> Result<Response, PageError> + Send + 'static,
) -> Response {
    account_page(st, visit, move |c, session, lang, chosen| {
        let station = c.station_of(&session, chosen)?;
        if access == Access::Write && session.account.role == AccountRole::County {
            tracing::info!(account = %session.account.id, "console: a county account's write refused");
            return Err(PageError::ReadOnly);
        }
        let Some(station) = station else {
            return Ok(redirect("/console/stations"));
        };
        let (base, station_label) = match session.account.role {
            AccountRole::County => (
                format!("/console/s/{station}"),
                Some(c.station_name(station)?),
            ),
            AccountRole::Supervisor(_) => match chosen {
                Some(_) => (format!("/console/s/{station}"), None),
                None => ("/console".to_owned(), None),
            },
        };
        // Read on every request: a change from the CLI holds from the next page on.
        let zone = c.store.station_zone(station)?;
        f(
            c,
            &Ctx {
                session,
                lang,
                station,
                base,
                station_label,
                zone,
            },
        )
    })
    .await
}

/// Run a signed-in page that is about no station (the list of stations, logging out) on a
/// blocking thread; without a live session, to the login page.
async fn account_page<S: ServerStore>(
    st: Arc<Console<S>>,
    visit: Visit,
    f: impl FnOnce(&Console<S>, Session, Lang, Option<StationId>) -> Result<Response, PageError>
        + Send
        + 'static,
) -> Response {
    let lang = lang_of(&visit.headers);
    let cookie = cookie(&visit.headers, SESSION_COOKIE).map(str::to_owned);
    let chosen = visit.station;
    blocking(move || {
        let Some(cookie) = cookie else {
            return Ok(redirect("/console/login"));
        };
        let Some(session) = auth::session(st.store.as_ref(), &cookie, now_ms())? else {
            return Ok(redirect("/console/login"));
        };
        f(&st, session, lang, chosen)
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

pub(super) use access::access;
pub(super) use cards::{add_card_batch, cards, lease_cards, return_card_lease};
pub(super) use cases::{
    assign, conflicts, dashboard, follow_ups, history, household, households, resolve,
};
pub(super) use devices::{add_worker, devices, enroll, revoke};
pub(super) use erasures::erasures;
pub(super) use exports::{
    export_households_csv, export_households_xlsx, export_visits_csv, export_visits_xlsx, report,
    report_csv, report_xlsx,
};
pub(super) use session::{lang, login, login_form, logout};
pub(super) use stations::stations;
pub(super) use work::{activities, activity, resource, resources, survey, surveys};
