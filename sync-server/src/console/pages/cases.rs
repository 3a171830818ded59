//! The dashboard, households, case files with their provenance and history, conflicts and their resolution, follow-ups.

use super::*;

// ----- dashboard

pub(in crate::console) async fn dashboard<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, |c, ctx| {
        c.log(ctx, "dashboard", None)?;
        let station = ctx.station();
        let today = ctx.today()?;
        let month_start = format!("{:04}-{:02}-01", today.year(), today.month());
        let month_end = format!("{:04}-{:02}-31", today.year(), today.month());
        let households = c.store.households(
            station,
            &HouseholdFilter {
                limit: usize::MAX >> 1,
                ..HouseholdFilter::default()
            },
        )?;
        let visits = c.store.visits_between(station, &month_start, &month_end)?;
        let yesterday = today
            .add_days(-1)
            .map_err(|_| PageError::BadInput("clock"))?;
        let overdue = c.store.open_follow_ups(station, &yesterday.to_string())?;
        let devices = c.store.station_devices(station, now_ms())?;
        let phones = devices.iter().filter(|d| !d.console);
        let in_use = phones
            .clone()
            .filter(|d| d.enrolled_at.is_some() && d.revoked_at.is_none())
            .count();
        let waiting = phones
            .clone()
            .filter(|d| d.code_waiting && d.revoked_at.is_none())
            .count();
        let revoked = phones.filter(|d| d.revoked_at.is_some()).count();
        let lease_stock = super::cards::active_stock(c, station, today, &devices)?;
        // Station work is in no county account's scope (ADR 0021): not counted for it.
        let activities_month = if ctx.read_only() {
            0
        } else {
            c.store
                .facts_between(station, &month_start, &month_end)?
                .iter()
                .filter(|f| f.fact == "activity")
                .count()
        };
        c.html(
            "dashboard.html",
            ctx,
            context! {
                station => c.station_name(station)?,
                today => today.to_string(),
                households => households.len(),
                visits_month => visits.len(),
                open_needs => households.iter().map(|h| h.open_needs).sum::<u64>(),
                overdue => overdue.len(),
                conflicts => households.iter().map(|h| h.conflicts).sum::<u64>(),
                in_use,
                waiting,
                revoked,
                cards_left => lease_stock.iter().map(|l| l.left).sum::<u64>(),
                active_leases => lease_stock.len(),
                low_leases => lease_stock.iter().filter(|l| l.low).count(),
                lease_stock,
                activities_month,
            },
        )
    })
    .await
}

// ----- households

#[derive(Deserialize, Default)]
pub(in crate::console) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    village: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl ListQuery {
    pub(super) fn filter(&self, limit: usize) -> Result<HouseholdFilter, PageError> {
        let text = non_empty(&self.q).map(|t| t.to_lowercase());
        if text.as_ref().is_some_and(|t| t.chars().count() > 100)
            || self.village.len() > 400
            || self.category.len() > 400
        {
            return Err(PageError::BadInput("search text too long\n"));
        }
        Ok(HouseholdFilter {
            village: non_empty(&self.village),
            category: non_empty(&self.category),
            status: non_empty(&self.status),
            text,
            limit,
        })
    }
}

#[derive(Serialize)]
struct ListRow {
    id: String,
    code: String,
    village: String,
    categories: String,
    status: String,
    visits: u64,
    last_visit: String,
    open_needs: u64,
    conflicts: u64,
}

pub(in crate::console) async fn households<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<ListQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        c.log(ctx, "households", None)?;
        let station = ctx.station();
        let rows = c.store.households(station, &q.filter(LIST_LIMIT)?)?;
        let mut villages: Vec<String> = c
            .store
            .households(station, &HouseholdFilter { limit: usize::MAX >> 1, ..Default::default() })?
            .into_iter()
            .map(|h| h.village)
            .filter(|v| !v.is_empty())
            .collect();
        villages.sort();
        villages.dedup();
        // Category codes shown with the station's labels (ADR 0018); the filter takes a code.
        let vocabulary = crate::vocabulary::station_vocabulary(c.store.as_ref(), station)
            .unwrap_or_else(|_| doorstep_core::Vocabulary::builtin());
        let rows: Vec<ListRow> = rows
            .into_iter()
            .map(|h| ListRow {
                id: h.doc.to_string(),
                code: h.code,
                village: h.village,
                categories: h
                    .categories
                    .iter()
                    .map(|v| crate::console::report::category_item(&vocabulary, v))
                    .collect::<Vec<_>>()
                    .join("、"),
                status: h.status,
                visits: h.visits,
                last_visit: h.last_visit.unwrap_or_default(),
                open_needs: h.open_needs,
                conflicts: h.conflicts,
            })
            .collect();
        c.html(
            "households.html",
            ctx,
            context! { rows, villages, q => q.q, village => q.village, category => q.category, status => q.status },
        )
    })
    .await
}

// ----- a case file

#[derive(Serialize)]
struct Version {
    value: String,
    who: String,
    device: String,
    when: String,
    /// What a resolution form sends back for this value (`resolve::value_digest`).
    digest: String,
}

#[derive(Serialize)]
struct FieldView {
    key: String,
    /// `kind:key:field`, for the history link.
    path: String,
    label: String,
    versions: Vec<Version>,
}

fn version(
    labels: &[(WorkerId, String)],
    zone: UtcOffset,
    v: &FieldVersion,
    mask: bool,
) -> Version {
    let value = v.value.clone().unwrap_or_default();
    Version {
        value: if mask {
            view::mask_id_number(&value)
        } else {
            value
        },
        who: view::worker_label(labels, v.provenance.worker),
        device: view::device_label(v.provenance.device),
        when: zone.time(v.provenance.at.0),
        digest: crate::console::resolve::value_digest(v.value.as_deref()),
    }
}

fn fields(
    doc: &automerge::Automerge,
    entity: EntityRef,
    names: &[&str],
    labels: &[(WorkerId, String)],
    zone: UtcOffset,
    words: &std::collections::BTreeMap<&str, &str>,
) -> Vec<FieldView> {
    names
        .iter()
        .filter_map(|name| {
            let versions = field_versions(doc, &FieldRef::new(entity, name)).ok()?;
            if versions.is_empty() {
                return None;
            }
            Some(FieldView {
                key: (*name).to_owned(),
                path: crate::console::resolve::field_path(&FieldRef::new(entity, name)),
                label: words.get(name).copied().unwrap_or(name).to_owned(),
                versions: versions
                    .iter()
                    .map(|v| version(labels, zone, v, *name == "id_number"))
                    .collect(),
            })
        })
        .collect()
}

fn parse_household(id: &str) -> Result<HouseholdId, PageError> {
    HouseholdId::parse(id).map_err(|_| PageError::NotFound)
}

pub(in crate::console) async fn household<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let id = parse_household(&id)?;
        let station = ctx.station();
        let loaded = c.case_file(station, id)?;
        let (doc, file) = (&loaded.doc, &loaded.file);
        c.log(ctx, "household", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let words = view::words(ctx.lang);
        let h = &file.household;
        let who = |p: &doorstep_core::Provenance| view::worker_label(&labels, p.worker);
        let when = |p: &doorstep_core::Provenance| ctx.zone.time(p.at.0);
        let profile = fields(doc, EntityRef::Household, &["code", "village", "address", "status"], &labels, ctx.zone, &words);
        let persons: Vec<Value> = h
            .persons
            .iter()
            .map(|p| {
                context! {
                    name => p.name.clone(),
                    record => format!("person/{}", p.id),
                    fields => fields(doc, EntityRef::Person(p.id), &["name", "sex", "birth_date", "id_number", "relation", "guardian"], &labels, ctx.zone, &words),
                }
            })
            .collect();
        let visits: Vec<Value> = h
            .visits
            .iter()
            .map(|v| {
                context! {
                    record => format!("visit/{}", v.id),
                    date => v.date.to_string(),
                    kind => v.kind.as_str(),
                    status => v.status.as_str(),
                    workers => v.workers.iter().map(|w| view::worker_label(&labels, *w)).collect::<Vec<_>>().join("、"),
                    who => who(&v.created),
                    device => view::device_label(v.created.device),
                    when => when(&v.created),
                    sections => v.sections.iter().filter(|(_, t)| !t.is_empty()).map(|(s, t)| context! { name => words.get(format!("section_{}", s.as_str()).as_str()).copied().unwrap_or(s.as_str()), text => t.clone() }).collect::<Vec<_>>(),
                }
            })
            .collect();
        let mut conflicts: Vec<Value> = Vec::new();
        let mut surveys = super::responses::SurveyTitles::default();
        for cf in &file.conflicts {
            let mask = cf.field.field == "id_number";
            let mut values: Vec<Version> = cf.values.iter().map(|v| version(&labels, ctx.zone, v, mask)).collect();
            let mut field = format!("{} {}", cf.field.entity.kind().name(), words.get(cf.field.field.as_str()).copied().unwrap_or(&cf.field.field));
            if cf.kind == doorstep_core::ConflictKind::DuplicateResponse {
                field = super::responses::duplicate_heading(file, cf, &words);
                for (shown, v) in values.iter_mut().zip(&cf.values) {
                    shown.value = super::responses::response_summary(c, station, &mut surveys, file, v.value.as_deref(), &words)?;
                }
            }
            conflicts.push(context! { field, values });
        }
        // Whom it is assigned to (ADR 0019), and the choices to reassign it.
        let assignment = c.store.assignment(id)?;
        let assigned = context! {
            worker => assignment.as_ref().and_then(|a| a.worker).map(|w| view::worker_label(&labels, w)).unwrap_or_default(),
            worker_id => assignment.as_ref().and_then(|a| a.worker).map(|w| w.to_string()).unwrap_or_default(),
            team => assignment.as_ref().and_then(|a| a.team.as_ref()).map(|t| t.as_str().to_owned()).unwrap_or_default(),
            when => assignment.as_ref().map(|a| ctx.zone.time(a.assigned_at)).unwrap_or_default(),
        };
        let workers: Vec<Value> = labels
            .iter()
            .map(|(w, l)| context! { id => w.to_string(), label => l.clone() })
            .collect();
        c.html(
            "household.html",
            ctx,
            context! {
                doc => id.to_string(),
                assigned,
                workers,
                h => context! {
                    code => h.code.clone(),
                    village => h.village.clone(),
                    summary => h.summary.clone(),
                    tags => h.tags.join("、"),
                    phones => h.phones.join("、"),
                },
                profile,
                persons,
                visits,
                conflicts,
                needs => h.needs.iter().map(|n| context! { category => n.category.clone(), description => n.description.clone(), status => n.status.as_str(), who => who(&n.created), when => when(&n.created) }).collect::<Vec<_>>(),
                inquiries => h.inquiries.iter().map(|i| context! { question => i.question.clone(), answer => i.answer.clone().unwrap_or_default(), status => i.status.as_str(), who => who(&i.created), when => when(&i.created) }).collect::<Vec<_>>(),
                follow_ups => h.follow_ups.iter().map(|f| context! { what => f.what.clone(), due => f.due.to_string(), assignee => view::worker_label(&labels, f.assignee), status => f.status.as_str() }).collect::<Vec<_>>(),
                cards => h.cards.iter().map(|cd| context! { serial => cd.serial.clone(), status => cd.status.as_str(), who => who(&cd.created), when => when(&cd.created) }).collect::<Vec<_>>(),
            },
        )
    })
    .await
}

// ----- conflicts, follow-ups

pub(in crate::console) async fn conflicts<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, |c, ctx| {
        c.log(ctx, "conflicts", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let words = view::words(ctx.lang);
        let mut out: Vec<Value> = Vec::new();
        let all = c.store.households(station, &HouseholdFilter { limit: usize::MAX >> 1, ..Default::default() })?;
        let mut surveys = super::responses::SurveyTitles::default();
        for h in all.into_iter().filter(|h| h.conflicts > 0) {
            let Ok(loaded) = c.case_file(station, h.doc) else { continue };
            let file = &loaded.file;
            for cf in &file.conflicts {
                use doorstep_core::ConflictKind;
                let mask = cf.field.field == "id_number";
                let mut values: Vec<Version> = cf.values.iter().map(|v| version(&labels, ctx.zone, v, mask)).collect();
                let mut field = format!("{} {}", cf.field.entity.kind().name(), words.get(cf.field.field.as_str()).copied().unwrap_or(&cf.field.field));
                // Two phones answered one survey for one person (ADR 0022): each response
                // shown by what it answered, the supervisor keeps one.
                if cf.kind == ConflictKind::DuplicateResponse {
                    field = super::responses::duplicate_heading(file, cf, &words);
                    for (shown, v) in values.iter_mut().zip(&cf.values) {
                        shown.value = super::responses::response_summary(c, station, &mut surveys, file, v.value.as_deref(), &words)?;
                    }
                }
                out.push(context! {
                    path => crate::console::resolve::field_path(&cf.field),
                    resolvable => !ctx.read_only() && matches!(cf.kind, ConflictKind::ConcurrentValues | ConflictKind::DuplicateResponse),
                    duplicate => cf.kind == ConflictKind::DuplicateResponse,
                    doc => h.doc.to_string(),
                    code => h.code.clone(),
                    field,
                    values,
                });
            }
        }
        c.html("conflicts.html", ctx, context! { conflicts => out })
    })
    .await
}

pub(in crate::console) async fn follow_ups<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, |c, ctx| {
        c.log(ctx, "follow_ups", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let today = ctx.today()?;
        let horizon = today
            .add_days(14)
            .map_err(|_| PageError::BadInput("clock"))?;
        let due = c.store.open_follow_ups(station, &horizon.to_string())?;
        let codes: std::collections::HashMap<HouseholdId, String> = c
            .store
            .households(
                station,
                &HouseholdFilter {
                    limit: usize::MAX >> 1,
                    ..Default::default()
                },
            )?
            .into_iter()
            .map(|h| (h.doc, h.code))
            .collect();
        let mut by_worker: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        let today_s = today.to_string();
        for f in due {
            by_worker
                .entry(view::worker_label(&labels, f.assignee))
                .or_default()
                .push(context! {
                    due => f.due.clone(),
                    overdue => f.due < today_s,
                    what => f.what.clone(),
                    doc => f.doc.to_string(),
                    code => codes.get(&f.doc).cloned().unwrap_or_default(),
                });
        }
        let groups: Vec<Value> = by_worker
            .into_iter()
            .map(|(worker, items)| context! { worker, items })
            .collect();
        c.html("follow_ups.html", ctx, context! { groups })
    })
    .await
}

// ----- resolving a conflict

#[derive(Deserialize)]
pub(in crate::console) struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    doc: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    chosen: String,
}

pub(in crate::console) async fn resolve<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Form(form): Form<ResolveForm>,
) -> Response {
    use crate::console::resolve::{parse_field_path, ResolveError};
    write_page(st, visit, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n"));
        }
        let doc = parse_household(&form.doc)?;
        let field = parse_field_path(&form.field).map_err(|_| PageError::BadInput("bad field\n"))?;
        c.log(ctx, "resolve_conflict", Some(&doc.to_string()))?;
        match crate::console::resolve::resolve(c.store.as_ref(), &c.sync, &ctx.session.account, doc, &field, &form.chosen) {
            Ok(resolution) => {
                tracing::info!(%doc, %resolution, account = %ctx.session.account.id, "console: conflict resolved");
                Ok(redirect("/console/conflicts"))
            }
            Err(ResolveError::NotFound) => Err(PageError::NotFound),
            Err(ResolveError::BadField) => Err(PageError::BadInput("bad field\n")),
            Err(ResolveError::Changed) => Ok(plain(
                StatusCode::CONFLICT,
                "the conflict is no longer as shown: go back and look again\n",
            )),
            Err(ResolveError::Store(e)) => Err(PageError::Store(e)),
            Err(e) => {
                tracing::warn!(%doc, error = %e, "console: resolution refused");
                Ok(plain(StatusCode::UNPROCESSABLE_ENTITY, "the decision was refused\n"))
            }
        }
    })
    .await
}

// ----- a field's history

#[derive(Deserialize)]
pub(in crate::console) struct FieldQuery {
    #[serde(default)]
    field: String,
}

pub(in crate::console) async fn history<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
    Query(q): Query<FieldQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        let id = parse_household(&id)?;
        let field = crate::console::resolve::parse_field_path(&q.field)
            .map_err(|_| PageError::BadInput("bad field\n"))?;
        let station = ctx.station();
        let loaded = c.case_file(station, id)?;
        let (doc, file) = (&loaded.doc, &loaded.file);
        c.log(ctx, "field_history", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let mask = field.field == "id_number";
        let now = field_versions(doc, &field).map_err(|_| PageError::NotFound)?;
        let all = doorstep_core::read_model::field_history(doc, &field)
            .map_err(|_| PageError::NotFound)?;
        let versions: Vec<Value> = all
            .iter()
            .rev()
            .map(|v| {
                let shown = version(&labels, ctx.zone, v, mask);
                context! {
                    current => now.contains(v),
                    value => shown.value,
                    who => shown.who,
                    device => shown.device,
                    when => shown.when,
                }
            })
            .collect();
        let words = view::words(ctx.lang);
        c.html(
            "history.html",
            ctx,
            context! {
                doc => id.to_string(),
                code => file.household.code.clone(),
                field => format!("{} {}", field.entity.kind().name(), words.get(field.field.as_str()).copied().unwrap_or(&field.field)),
                versions,
            },
        )
    })
    .await
}

#[derive(serde::Deserialize)]
pub(in crate::console) struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    worker: String,
    #[serde(default)]
    team: String,
}

/// Reassign a household of the supervisor's station to a worker and/or a team (ADR 0019).
pub(in crate::console) async fn assign<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    write_page(st, visit, move |c, ctx| {
        if !auth::same_token(&ctx.session.csrf, &form.csrf) {
            return Ok(plain(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token\n",
            ));
        }
        let id = parse_household(&id)?;
        let worker = match form.worker.trim() {
            "" => None,
            w => Some(WorkerId::parse(w).map_err(|_| PageError::NotFound)?),
        };
        let team = match form.team.trim() {
            "" => None,
            t => Some(doorstep_core::TeamName::new(t).map_err(|_| {
                PageError::BadInput("a team name is 1 to 32 characters on one line\n")
            })?),
        };
        if worker.is_none() && team.is_none() {
            return Err(PageError::BadInput("choose a worker or a team\n"));
        }
        let by = ctx.session.account.id.to_string();
        match c
            .store
            .assign(ctx.station(), id, worker, team.as_ref(), &by, now_ms())
        {
            Ok(_) => {}
            Err(crate::store::StoreError::NotFound(_)) => return Err(PageError::NotFound),
            Err(e) => return Err(e.into()),
        }
        c.log(ctx, "assign", Some(&id.to_string()))?;
        Ok(redirect(&format!("/console/households/{id}")))
    })
    .await
}
