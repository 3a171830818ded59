//! Workers and devices: enrol, revoke, add a worker.

use super::*;

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
                        enrolled => d.enrolled_at.map(|t| ctx.zone.time(t)).unwrap_or_default(),
                        last_sync => d.last_sync.map(|t| ctx.zone.time(t)).unwrap_or_default(),
                        revocable => !d.console && d.revoked_at.is_none(),
                    }
                })
                .collect();
            context! { id => w.to_string(), label, devices => rows, console }
        })
        .collect();
    c.html("devices.html", ctx, context! { workers, enrolled })
}

pub(in crate::console) async fn devices<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, |c, ctx| {
        c.log(ctx, "devices", None)?;
        devices_page(c, ctx, None)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::console) struct EnrollForm {
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

pub(in crate::console) async fn enroll<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<EnrollForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
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
            expires => ctx.zone.time(now + crate::credentials::CODE_VALID_MS),
        };
        let mut resp = devices_page(c, ctx, Some(enrolled))?;
        // The code is on this page only: never cached (harden sets no-store already).
        resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        Ok(resp)
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::console) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device: String,
}

pub(in crate::console) async fn revoke<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<RevokeForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
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
pub(in crate::console) struct WorkerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

pub(in crate::console) async fn add_worker<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<WorkerForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        // The label goes to the station's phones too (ADR 0017), checked by the one rule.
        use crate::workers::{add_worker, WorkerAdminError};
        let worker = match add_worker(c.store.as_ref(), ctx.station(), &form.label, now_ms()) {
            Ok(w) => w,
            Err(WorkerAdminError::Store(e)) => return Err(e.into()),
            Err(_) => {
                return Err(PageError::BadInput(
                    "a worker label is 1 to 64 characters on one line, without invisible \
                     characters\n",
                ))
            }
        };
        c.log(ctx, "add_worker", Some(&worker.to_string()))?;
        Ok(redirect("/console/devices"))
    })
    .await
}
