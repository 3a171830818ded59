//! Card batches and leases, with each lease's stock: cards issued from its range (any
//! status: a card handed out is used) and what is left.

use doorstep_core::doc::station::{read_station, station_doc_id};
use doorstep_core::CardSerial;

use super::*;

pub(in crate::console) async fn cards<S: ServerStore>(
    State(st): Shared<S>,
    headers: HeaderMap,
) -> Response {
    page(st, headers, |c, ctx| {
        c.log(ctx, "cards", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let today = view::local_date(now_ms()).ok_or(PageError::BadInput("clock\n"))?;
        let cards = match c.store.load_document(station_doc_id(station))? {
            None => Default::default(),
            Some(stored) => {
                let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
                    .map_err(|_| PageError::Unreadable)?
                    .map_err(|_| PageError::Unreadable)?;
                read_station(&doc).map_err(|_| PageError::Unreadable)?
            }
        };
        // Every issuance of the station, once (cards are indexed per issuing worker).
        let mut issued: Vec<CardSerial> = Vec::new();
        for (worker, _) in &labels {
            for row in c
                .store
                .cards_issued_by(station, *worker, i64::MIN, i64::MAX)?
            {
                if let Ok(serial) = CardSerial::parse(&row.serial) {
                    issued.push(serial);
                }
            }
        }
        let devices = c.store.station_devices(station, now_ms())?;
        let words = view::words(ctx.lang);
        let word = |k: &str| words.get(k).copied().unwrap_or(k).to_owned();
        let leases: Vec<Value> = cards
            .leases
            .iter()
            .map(|l| {
                let used = issued
                    .iter()
                    .filter(|s| s.prefix() == l.prefix && (l.first..=l.last).contains(&s.number()))
                    .count() as u64;
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
                    range => format!("{}-{:06} … {}-{:06}", l.prefix, l.first, l.prefix, l.last),
                    holder,
                    device => view::device_label(l.device),
                    expires => l.expires.map(|d| d.to_string()).unwrap_or_default(),
                    state => word(state),
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
                    range => format!("{}-{:06} … {}-{:06}", b.prefix, b.first, b.prefix, b.last),
                    size,
                    leased,
                    unleased => size.saturating_sub(leased),
                }
            })
            .collect();
        c.html("cards.html", ctx, context! { leases, batches })
    })
    .await
}
