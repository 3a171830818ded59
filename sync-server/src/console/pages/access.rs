//! Who looked at what: the station's access log — every console page and export, and every
//! case file opened on a phone (issue 16) — ids, logins, labels and times only, newest first;
//! or the accesses to one household ("who opened this child's file").

use super::*;
use crate::store::console::{Accessor, CASE_FILE_ON_DEVICE};

/// Entries shown on one page.
const ACCESS_LIMIT: usize = 500;

#[derive(Deserialize)]
pub(in crate::console) struct AccessQuery {
    household: Option<String>,
}

pub(in crate::console) async fn access<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<AccessQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let household = q
            .household
            .as_deref()
            .map(|h| HouseholdId::parse(h.trim()).map_err(|_| PageError::NotFound))
            .transpose()?;
        let target = household.map(|h| h.to_string());
        c.log(ctx, "access_log", target.as_deref())?;
        let station = ctx.station();
        let entries = c.store.accesses(station, household, ACCESS_LIMIT)?;
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| {
                let household = e
                    .target
                    .as_deref()
                    .and_then(|t| HouseholdId::parse(t).ok())
                    .map(|h| h.to_string());
                // Who: the account's login, or the worker's label (their id if it is gone);
                // where: the console, or the phone's device id.
                let (who, device) = match &e.by {
                    Accessor::Console { login, .. } => (login.clone(), None),
                    Accessor::Device {
                        worker,
                        label,
                        device,
                    } => (
                        if label.is_empty() {
                            worker.to_string()
                        } else {
                            label.clone()
                        },
                        Some(device.to_string()),
                    ),
                };
                context! {
                    when => ctx.zone.time(e.at),
                    who,
                    device,
                    on_device => e.what == CASE_FILE_ON_DEVICE,
                    what => e.what.clone(),
                    household,
                    target => e.target.clone().unwrap_or_default(),
                }
            })
            .collect();
        c.html("access.html", ctx, context! { rows, household => target })
    })
    .await
}
