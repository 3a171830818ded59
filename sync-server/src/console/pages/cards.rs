//! Card batches and leases, with each lease's stock: cards issued from its range (any
//! status: a card handed out is used) and what is left; and the forms that register a
//! printed batch, lease a range to a phone and return a lease. A form is read against the
//! station document (gather), checked by `card_forms` (plan, pure), then written by
//! `crate::cards` exactly as the CLI writes it (execute); a refusal shows the page again
//! with the reason and what was typed, and writes nothing.

use doorstep_core::doc::station::{read_station, station_doc_id, StationCards};
use doorstep_core::{CardSerial, Date, DeviceId};

use super::*;
use crate::cards::{self as admin, CardAdminError};
use crate::console::card_forms::{self, CardOrder, LeaseForm, Refusal};
use crate::store::console::DeviceRow;

/// What the page says above its tables.
enum Outcome {
    Shown,
    /// A form was carried out (the word that says so).
    Done(&'static str),
    /// A form was refused: why, and what was typed (to fill the form again).
    Refused(Refusal, Value),
}

/// The station document's batches and leases (none before the first batch).
fn station_cards<S: ServerStore>(
    c: &Console<S>,
    station: StationId,
) -> Result<StationCards, PageError> {
    match c.store.load_document(station_doc_id(station))? {
        None => Ok(StationCards::default()),
        Some(stored) => {
            let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
                .map_err(|_| PageError::Unreadable)?
                .map_err(|_| PageError::Unreadable)?;
            read_station(&doc).map_err(|_| PageError::Unreadable)
        }
    }
}

/// The phones a lease may go to: enrolled, not revoked, not a supervisor's console identity.
fn is_phone_in_use(d: &DeviceRow) -> bool {
    !d.console && d.revoked_at.is_none() && d.enrolled_at.is_some()
}

/// Every issuance of the station, once (cards are indexed per issuing worker).
fn issued_serials<S: ServerStore>(
    c: &Console<S>,
    station: StationId,
    labels: &[(WorkerId, String)],
) -> Result<Vec<CardSerial>, PageError> {
    let mut issued: Vec<CardSerial> = Vec::new();
    for (worker, _) in labels {
        for row in c
            .store
            .cards_issued_by(station, *worker, i64::MIN, i64::MAX)?
        {
            if let Ok(serial) = CardSerial::parse(&row.serial) {
                issued.push(serial);
            }
        }
    }
    Ok(issued)
}

/// Leases that run low: fewer cards left than this.
pub(in crate::console) const LOW_STOCK: u64 = 10;

/// Cards issued from a lease's range (any status: a card handed out is used).
fn issued_from(issued: &[CardSerial], l: &doorstep_core::doc::station::CardLease) -> u64 {
    issued
        .iter()
        .filter(|s| s.prefix() == l.prefix && (l.first..=l.last).contains(&s.number()))
        .count() as u64
}

/// A lease's range as the pages show it: `HG-000001 … HG-000100`.
fn serial_range(prefix: &str, first: u32, last: u32) -> String {
    format!("{prefix}-{first:06} … {prefix}-{last:06}")
}

/// The card stock of one active lease, for the dashboard.
#[derive(Serialize)]
pub(in crate::console) struct LeaseStock {
    pub id: String,
    /// The leased range, `HG-000001 … HG-000100`.
    pub range: String,
    /// The label of the worker whose phone holds it.
    pub holder: String,
    pub device: String,
    pub size: u64,
    pub issued: u64,
    pub left: u64,
    /// Fewer than [`LOW_STOCK`] left.
    pub low: bool,
}

/// The stock of each of the station's active leases (not returned, not expired), for the
/// dashboard: its range, holder (found in the station's `devices`), cards issued from it
/// and cards left.
pub(in crate::console) fn active_stock<S: ServerStore>(
    c: &Console<S>,
    station: StationId,
    today: Date,
    devices: &[DeviceRow],
) -> Result<Vec<LeaseStock>, PageError> {
    let labels = c.labels(station)?;
    let cards = station_cards(c, station)?;
    let issued = issued_serials(c, station, &labels)?;
    Ok(cards
        .leases
        .iter()
        .filter(|l| !l.returned && l.active(today))
        .map(|l| {
            let size = u64::from(l.last.saturating_sub(l.first)) + 1;
            let used = issued_from(&issued, l);
            let left = size.saturating_sub(used);
            LeaseStock {
                id: l.id.to_string(),
                range: serial_range(&l.prefix, l.first, l.last),
                holder: devices
                    .iter()
                    .find(|d| d.device == l.device)
                    .map(|d| view::worker_label(&labels, d.worker))
                    .unwrap_or_default(),
                device: view::device_label(l.device),
                size,
                issued: used,
                left,
                low: left < LOW_STOCK,
            }
        })
        .collect())
}

fn cards_page<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let station = ctx.station();
    let labels = c.labels(station)?;
    let today = ctx.today()?;
    let cards = station_cards(c, station)?;
    let issued = issued_serials(c, station, &labels)?;
    let devices = c.store.station_devices(station, now_ms())?;
    let words = view::words(ctx.lang);
    let word = |k: &str| words.get(k).copied().unwrap_or(k).to_owned();
    let range = serial_range;
    let leases: Vec<Value> = cards
        .leases
        .iter()
        .map(|l| {
            let used = issued_from(&issued, l);
            let size = u64::from(l.last.saturating_sub(l.first)) + 1;
            let holder = devices
                .iter()
                .find(|d| d.device == l.device)
                .map(|d| view::worker_label(&labels, d.worker))
                .unwrap_or_default();
            let state = if l.returned {
                "lease_returned"
            } else if l.active(today) {
                "lease_active"
            } else {
                "lease_expired"
            };
            context! {
                id => l.id.to_string(),
                range => range(&l.prefix, l.first, l.last),
                holder,
                device => view::device_label(l.device),
                expires => l.expires.map(|d| d.to_string()).unwrap_or_default(),
                state => word(state),
                returnable => !l.returned,
                size,
                used,
                left => size.saturating_sub(used),
            }
        })
        .collect();
    let batches: Vec<Value> = cards
        .batches
        .iter()
        .map(|b| {
            let leased: u64 = cards
                .leases
                .iter()
                .filter(|l| l.batch == b.id && !l.returned)
                .map(|l| u64::from(l.last.saturating_sub(l.first)) + 1)
                .sum();
            let size = u64::from(b.last.saturating_sub(b.first)) + 1;
            context! {
                id => b.id.to_string(),
                range => range(&b.prefix, b.first, b.last),
                size,
                leased,
                unleased => size.saturating_sub(leased),
            }
        })
        .collect();
    let phones: Vec<Value> = devices
        .iter()
        .filter(|d| is_phone_in_use(d))
        .map(|d| {
            context! {
                id => d.device.to_string(),
                name => format!(
                    "{} · {}",
                    view::worker_label(&labels, d.worker),
                    view::device_label(d.device)
                ),
            }
        })
        .collect();
    let (status, notice, error, typed) = match outcome {
        Outcome::Shown => (StatusCode::OK, None, None, context! {}),
        Outcome::Done(done) => (StatusCode::OK, Some(word(done)), None, context! {}),
        Outcome::Refused(why, typed) => (
            StatusCode::from_u16(why.status()).unwrap_or(StatusCode::BAD_REQUEST),
            None,
            Some(word(why.word())),
            typed,
        ),
    };
    let mut resp = c.html(
        "cards.html",
        ctx,
        context! { leases, batches, phones, notice, error, typed, today => today.to_string() },
    )?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[derive(Deserialize)]
pub(in crate::console) struct CardsQuery {
    /// Set by the redirect after a form was carried out: batch, lease or return.
    done: Option<String>,
}

pub(in crate::console) async fn cards<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<CardsQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        c.log(ctx, "cards", None)?;
        let outcome = match q.done.as_deref() {
            Some("batch") => Outcome::Done("done_batch"),
            Some("lease") => Outcome::Done("done_lease"),
            Some("return") => Outcome::Done("done_return"),
            _ => Outcome::Shown,
        };
        cards_page(c, ctx, outcome)
    })
    .await
}

/// Check a card form and carry it out, or show why not. The CSRF token is checked first,
/// as on every form.
fn card_form<S: ServerStore>(
    c: &Console<S>,
    ctx: &Ctx,
    csrf: &str,
    typed: Value,
    plan: impl FnOnce(&StationCards, &[DeviceId], Date) -> Result<CardOrder, Refusal>,
) -> Result<Response, PageError> {
    if !auth::same_token(&ctx.session.csrf, csrf) {
        return Ok(plain(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token\n",
        ));
    }
    let station = ctx.station();
    // One card form at a time on this server: the check and the write see the same
    // document (`crate::cards` checks the rules again in any case).
    let _one = c.card_forms.lock().unwrap_or_else(|p| p.into_inner());
    let cards = station_cards(c, station)?;
    let phones: Vec<DeviceId> = c
        .store
        .station_devices(station, now_ms())?
        .iter()
        .filter(|d| is_phone_in_use(d))
        .map(|d| d.device)
        .collect();
    let refused = |why: Refusal, typed: Value| {
        c.log(ctx, "cards", None)?;
        cards_page(c, ctx, Outcome::Refused(why, typed))
    };
    let order = match plan(&cards, &phones, ctx.today()?) {
        Ok(order) => order,
        Err(why) => return refused(why, typed),
    };
    let account = ctx.session.account.id;
    let written = match &order {
        CardOrder::Batch {
            prefix,
            first,
            last,
        } => admin::add_batch(c.store.as_ref(), station, prefix, *first, *last).map(|batch| {
            tracing::info!(%batch, %account, "console: card batch registered");
            ("add_card_batch", batch.to_string(), "batch")
        }),
        CardOrder::Lease {
            batch,
            device,
            first,
            last,
            expires,
        } => admin::add_lease(
            c.store.as_ref(),
            station,
            *batch,
            *first,
            *last,
            *device,
            *expires,
        )
        .map(|lease| {
            tracing::info!(%lease, %batch, %device, %account, "console: cards leased");
            ("lease_cards", lease.to_string(), "lease")
        }),
        CardOrder::Return { lease } => {
            admin::return_lease(c.store.as_ref(), station, *lease).map(|()| {
                tracing::info!(%lease, %account, "console: card lease returned");
                ("return_card_lease", lease.to_string(), "return")
            })
        }
    };
    match written {
        Ok((what, target, done)) => {
            c.log(ctx, what, Some(&target))?;
            Ok(redirect(&format!("/console/cards?done={done}")))
        }
        Err(CardAdminError::Store(e)) => Err(PageError::Store(e)),
        Err(CardAdminError::StoredDocument(_)) => Err(PageError::Unreadable),
        Err(CardAdminError::WrongStation) => refused(Refusal::UnknownDevice, typed),
        Err(CardAdminError::Rule(e)) => {
            // The form passed the check but the write refused it: the document changed in
            // between (the CLI, another server). The core's reasons are fixed phrases.
            tracing::warn!(error = %e, "console: a card form was refused at the write");
            refused(Refusal::Changed, typed)
        }
    }
}

#[derive(Deserialize)]
pub(in crate::console) struct BatchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    first: String,
    #[serde(default)]
    last: String,
}

pub(in crate::console) async fn add_card_batch<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<BatchForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
        let typed = context! {
            form => "batch",
            prefix => form.prefix.clone(),
            first => form.first.clone(),
            last => form.last.clone(),
        };
        card_form(c, ctx, &form.csrf, typed, |cards, _, _| {
            card_forms::plan_batch(cards, &form.prefix, &form.first, &form.last)
        })
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::console) struct LeaseFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    batch: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    first: String,
    #[serde(default)]
    last: String,
    #[serde(default)]
    expires: String,
}

pub(in crate::console) async fn lease_cards<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<LeaseFields>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
        let typed = context! {
            form => "lease",
            batch => form.batch.clone(),
            device => form.device.clone(),
            first => form.first.clone(),
            last => form.last.clone(),
            expires => form.expires.clone(),
        };
        card_form(c, ctx, &form.csrf, typed, |cards, phones, today| {
            let asked = LeaseForm {
                batch: &form.batch,
                device: &form.device,
                first: &form.first,
                last: &form.last,
                expires: &form.expires,
            };
            card_forms::plan_lease(cards, phones, &asked, today)
        })
    })
    .await
}

#[derive(Deserialize)]
pub(in crate::console) struct ReturnForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lease: String,
}

pub(in crate::console) async fn return_card_lease<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<ReturnForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
        let typed = context! { form => "return" };
        card_form(c, ctx, &form.csrf, typed, |cards, _, _| {
            card_forms::plan_return(cards, &form.lease)
        })
    })
    .await
}
