//! The console's handlers: session check, the work on a blocking thread (storage and
//! automerge are synchronous), the access log, the page.

mod access;
mod cards;
mod cases;
mod devices;
mod erasures;
mod exports;
mod session;

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
