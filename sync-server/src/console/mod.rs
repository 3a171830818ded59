//! The station console: server-rendered pages for a station's supervisor, under
//! `/console` on the server's address (docs/console.md, ADR 0015). Pages read the read
//! model (`read_model`) for lists and counts, and the stored document (with the core's
//! readers) for a case file and its provenance. Every page view and export is written to
//! the access log. Forms work without JavaScript; nothing is fetched from elsewhere.

pub mod auth;
mod card_forms;
pub mod case_files;
mod pages;
pub mod read_model;
pub mod report;
pub mod resolve;
pub mod surveys;
pub mod view;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use minijinja::Environment;

use crate::store::ServerStore;

/// How the console is served.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure` (the console is reached over HTTPS through a
    /// proxy: docs/operations.md). Off only for a console on plain HTTP.
    pub secure_cookies: bool,
    /// Case files kept loaded between pages (`case_files.rs`); 0: none.
    pub case_files: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            secure_cookies: true,
            case_files: case_files::KEPT,
        }
    }
}

pub(crate) struct Console<S: ServerStore> {
    store: Arc<S>,
    /// Pushes a supervisor's decisions like a device's (`resolve`); its own document cache
    /// and station locks, safe beside the server's as another instance would be.
    sync: crate::sync::SyncService<S>,
    templates: Environment<'static>,
    config: ConsoleConfig,
    /// Held while a card form is checked and written (`pages::cards`).
    card_forms: std::sync::Mutex<()>,
    /// Proxies whose `X-Forwarded-For` names the client (`ServerConfig::trusted_proxies`):
    /// failed logins are counted per client address (ADR 0028).
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Case files read lately, at their log sequence (`case_files.rs`).
    case_files: Arc<case_files::CaseFiles>,
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    let sources: [(&str, &str); 20] = [
        ("activities.html", include_str!("templates/activities.html")),
        ("activity.html", include_str!("templates/activity.html")),
        ("resources.html", include_str!("templates/resources.html")),
        ("resource.html", include_str!("templates/resource.html")),
        ("surveys.html", include_str!("templates/surveys.html")),
        ("survey.html", include_str!("templates/survey.html")),
        ("stations.html", include_str!("templates/stations.html")),
        ("cards.html", include_str!("templates/cards.html")),
        ("erasures.html", include_str!("templates/erasures.html")),
        ("access.html", include_str!("templates/access.html")),
        ("devices.html", include_str!("templates/devices.html")),
        ("history.html", include_str!("templates/history.html")),
        ("report.html", include_str!("templates/report.html")),
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("dashboard.html", include_str!("templates/dashboard.html")),
        ("households.html", include_str!("templates/households.html")),
        ("household.html", include_str!("templates/household.html")),
        ("conflicts.html", include_str!("templates/conflicts.html")),
        ("follow_ups.html", include_str!("templates/follow_ups.html")),
    ];
    for (name, src) in sources {
        if let Err(e) = env.add_template(name, src) {
            // The templates ship in the binary; the console's tests render every one.
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env
}

/// The console's routes, to merge into the server's router. `case_files` (made with
/// `config.case_files`) is shared with the server's sync service, which keeps the case
/// files of the pushes it accepts there.
pub(crate) fn router<S: ServerStore>(
    store: Arc<S>,
    config: ConsoleConfig,
    trusted_proxies: Vec<std::net::IpAddr>,
    case_files: Arc<case_files::CaseFiles>,
) -> Router {
    let state = Arc::new(Console {
        // A supervisor's resolution is accepted here: its case file is kept warm too.
        sync: crate::sync::SyncService::new(store.clone(), 16).with_case_files(case_files.clone()),
        case_files,
        store,
        templates: templates(),
        config,
        card_forms: std::sync::Mutex::new(()),
        trusted_proxies,
    });
    let routes = Router::new()
        .route("/console", get(pages::dashboard::<S>))
        .route("/console/", get(pages::dashboard::<S>))
        .route(
            "/console/login",
            get(pages::login_form::<S>).post(pages::login::<S>),
        )
        .route("/console/logout", post(pages::logout::<S>))
        .route("/console/stations", get(pages::stations::<S>))
        .route("/console/lang", get(pages::lang))
        .route("/console/households", get(pages::households::<S>))
        .route("/console/households/{id}", get(pages::household::<S>))
        .route("/console/households/{id}/history", get(pages::history::<S>))
        .route("/console/households/{id}/assign", post(pages::assign::<S>))
        .route("/console/conflicts", get(pages::conflicts::<S>))
        .route("/console/conflicts/resolve", post(pages::resolve::<S>))
        .route("/console/follow-ups", get(pages::follow_ups::<S>))
        .route(
            "/console/export/households.csv",
            get(pages::export_households_csv::<S>),
        )
        .route(
            "/console/export/households.xlsx",
            get(pages::export_households_xlsx::<S>),
        )
        .route(
            "/console/export/visits.csv",
            get(pages::export_visits_csv::<S>),
        )
        .route(
            "/console/export/visits.xlsx",
            get(pages::export_visits_xlsx::<S>),
        )
        .route("/console/report", get(pages::report::<S>))
        .route("/console/report.csv", get(pages::report_csv::<S>))
        .route("/console/report.xlsx", get(pages::report_xlsx::<S>))
        .route("/console/devices", get(pages::devices::<S>))
        .route("/console/cards", get(pages::cards::<S>))
        .route("/console/cards/batches", post(pages::add_card_batch::<S>))
        .route("/console/cards/leases", post(pages::lease_cards::<S>))
        .route("/console/cards/return", post(pages::return_card_lease::<S>))
        .route("/console/activities", get(pages::activities::<S>))
        .route("/console/activities/{id}", get(pages::activity::<S>))
        .route("/console/resources", get(pages::resources::<S>))
        .route("/console/resources/{id}", get(pages::resource::<S>))
        .route("/console/surveys", get(pages::surveys::<S>))
        .route("/console/surveys/{id}", get(pages::survey::<S>))
        .route("/console/erasures", get(pages::erasures::<S>))
        .route("/console/access", get(pages::access::<S>))
        .route("/console/devices/enroll", post(pages::enroll::<S>))
        .route("/console/devices/revoke", post(pages::revoke::<S>))
        .route("/console/workers", post(pages::add_worker::<S>))
        .route("/console/static/console.css", get(stylesheet))
        .with_state(state);
    // A station's pages under `/console/s/{station}/…` (ADR 0020): how a county account
    // reads the stations granted to it.
    Router::new()
        .route("/console/s/{station}", any(in_station))
        .route("/console/s/{station}/", any(in_station))
        .route("/console/s/{station}/{*rest}", any(in_station))
        .with_state(routes.clone())
        .merge(routes)
}

/// `/console/s/{station}/rest` is the page `/console/rest` about that station: the request
/// goes to the console's own routes with the station attached (`pages::ChosenStation`).
/// Whether the account may read it is decided with its session (`pages::station_page`); a
/// malformed id is not found.
async fn in_station(State(routes): State<Router>, req: Request) -> Response {
    use tower::ServiceExt;
    let Some((station, path)) = station_path(req.uri()) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Ok(uri) = path.parse::<Uri>() else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    // A new request: this route's path parameters live in the old one's extensions, and the
    // console's routes would take them for their own. Kept: method, headers, body, the
    // peer's address; added: the station.
    let (parts, body) = req.into_parts();
    let mut inner = Request::new(body);
    *inner.method_mut() = parts.method;
    *inner.uri_mut() = uri;
    *inner.version_mut() = parts.version;
    *inner.headers_mut() = parts.headers;
    if let Some(peer) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        inner.extensions_mut().insert(*peer);
    }
    inner.extensions_mut().insert(pages::ChosenStation(station));
    match routes.oneshot(inner).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// The station and the console path (with its query) of `/console/s/{station}/rest`.
fn station_path(uri: &Uri) -> Option<(doorstep_core::StationId, String)> {
    let after = uri.path().strip_prefix("/console/s/")?;
    let (id, rest) = match after.find('/') {
        Some(at) => after.split_at(at),
        None => (after, ""),
    };
    let station = doorstep_core::StationId::parse(id).ok()?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some((station, format!("/console{rest}{query}")))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("templates/console.css"),
    )
        .into_response()
}

/// Headers every console answer carries: no caching of personal data, no framing, no
/// scripts, nothing loaded from elsewhere.
pub(crate) fn harden(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

pub(crate) fn plain(status: StatusCode, msg: &'static str) -> Response {
    harden(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response(),
    )
}
