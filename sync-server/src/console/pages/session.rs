//! Signing in and out, and the language switch.

use super::*;

// ----- login, logout, language

pub(in crate::console) async fn login_form<S: ServerStore>(
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
pub(in crate::console) struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The TCP peer of a request (`ConnectInfo`, set by the connection edge); the unspecified
/// address if a router runs without it, so such clients share one count.
pub(in crate::console) struct Peer(std::net::IpAddr);

impl<St: Send + Sync> axum::extract::FromRequestParts<St> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &St,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip()),
        ))
    }
}

pub(in crate::console) async fn login<S: ServerStore>(
    State(st): Shared<S>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let client = auth::client_key(crate::api::client_addr(peer, &headers, &st.trusted_proxies));
    let tag = auth::client_tag(&client);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_token(expected, &form.csrf) {
        return plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n");
    }
    let st2 = st.clone();
    // The login and its access-log entry on a blocking thread: the storage is synchronous
    // (PostgreSQL's client may not block inside the async runtime at all).
    let outcome = tokio::task::spawn_blocking(move || {
        let new = auth::login(
            st2.store.as_ref(),
            form.login.trim(),
            &form.password,
            &client,
            now_ms(),
        )?;
        // A supervisor's login is in her station's access log; a county account belongs to
        // no station (its reads are logged, each in the station it read).
        match new.session.account.supervised_station() {
            Some(station) => {
                let _ =
                    st2.store
                        .log_access(new.session.account.id, station, "login", None, now_ms());
            }
            None => tracing::info!(account = %new.session.account.id, "console: county login"),
        }
        Ok(new)
    })
    .await;
    match outcome {
        Ok(Ok(new)) => {
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
        // Logged without the login name, the password or the address (ADR 0028): which
        // limit refused it, and a per-run tag of the client.
        Ok(Err(AuthError::Throttled(limit))) => {
            tracing::warn!(limit = limit.as_str(), client = %tag, "console: login throttled");
            let mut r = login_page(&st, lang, Some("throttled"));
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Ok(Err(AuthError::Wrong)) => {
            tracing::info!(client = %tag, "console: login failed");
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
pub(in crate::console) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(in crate::console) async fn logout<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<CsrfForm>,
) -> Response {
    let cookie_value = cookie(&visit.headers, SESSION_COOKIE).map(str::to_owned);
    let attrs = cookie_attrs(&st);
    account_page(st, visit, move |c, session, _, _| {
        if !auth::same_token(&session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        if let Some(v) = cookie_value {
            auth::logout(c.store.as_ref(), &v)?;
        }
        match session.account.supervised_station() {
            Some(station) => {
                c.store
                    .log_access(session.account.id, station, "logout", None, now_ms())?;
            }
            None => tracing::info!(account = %session.account.id, "console: county logout"),
        }
        let mut resp = redirect("/console/login");
        set_cookie(&mut resp, format!("{SESSION_COOKIE}=; Max-Age=0{attrs}"));
        Ok(resp)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::console) struct LangQuery {
    #[serde(default)]
    to: String,
}

pub(in crate::console) async fn lang(Query(q): Query<LangQuery>) -> Response {
    let v = if q.to == "en" { "en" } else { "zh" };
    let mut resp = redirect("/console");
    set_cookie(
        &mut resp,
        format!("{LANG_COOKIE}={v}; Path=/console; Max-Age=31536000; SameSite=Strict"),
    );
    resp
}
