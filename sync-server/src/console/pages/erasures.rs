//! The station's erasure ledger (ADR 0016): which households were erased, when, why and by
//! whom — ids, times and codes only, nothing of what they held. Erasing itself is an admin
//! command (`doorstep-server household erase`, docs/operations.md).

use super::*;

pub(in crate::console) async fn erasures<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, |c, ctx| {
        c.log(ctx, "erasures", None)?;
        let words = view::words(ctx.lang);
        let word = |k: &str| words.get(k).copied().unwrap_or(k).to_owned();
        let mut records = c.store.erasures(Some(ctx.station()))?;
        records.reverse();
        let rows: Vec<Value> = records
            .iter()
            .map(|r| {
                context! {
                    when => ctx.zone.time(r.erased_at),
                    household => r.doc.to_string(),
                    reason => word(&format!("reason_{}", r.reason.as_str())),
                    by => r.erased_by.clone(),
                }
            })
            .collect();
        c.html("erasures.html", ctx, context! { rows })
    })
    .await
}
