//! The stations an account reads (ADR 0020): a county account chooses one here, and every
//! page of that station is then under `/console/s/{station}`; a supervisor sees her one.
//! Station names and ids only, so it is not in any station's access log.

use super::*;

pub(in crate::console) async fn stations<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    account_page(st, visit, |c, session, lang, _| {
        let county = session.account.role == AccountRole::County;
        let rows: Vec<Value> = c
            .store
            .account_stations(session.account.id)?
            .into_iter()
            .map(|(id, name)| {
                let href = if county {
                    format!("/console/s/{id}")
                } else {
                    "/console".to_owned()
                };
                // Made here of a parsed station id: nothing to escape.
                context! { id => id.to_string(), name, href => Value::from_safe_string(href) }
            })
            .collect();
        let body = c.render(
            "stations.html",
            lang,
            Some(&session),
            context! { rows, county, read_only => county },
        )?;
        Ok(html(body))
    })
    .await
}
