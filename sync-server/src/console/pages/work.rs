//! The station's other work (ADR 0021, 0022): group activities by month, the community
//! resource register, needs surveys with their counts. Read from the stored documents with
//! the core's readers (`doorstep_core::doc::read_*_document`, the phones' decoders); lists
//! find their documents in the read model (`rm_work`, the `activity`, `referral` and
//! `response` facts). Station work is in no county account's scope (ADR 0021 §5, ADR 0022
//! §1): a county account is answered `403` on every one of these pages.

use std::collections::{BTreeMap, HashMap};

use automerge::Automerge;
use doorstep_core::doc::{
    document_header, read_activity_document, read_resource_document, read_survey_document, DocKind,
};
use doorstep_core::{ResponseStatus, SurveyId, Vocabulary, WorkKind};

use super::*;

/// Every day a fact can have (the read model's days are `YYYY-MM-DD`; a day that did not
/// read is empty).
const ALL_DAYS: (&str, &str) = ("", "9999-99-99");

fn station_work_only(ctx: &Ctx) -> Result<(), PageError> {
    if ctx.read_only() {
        return Err(PageError::StationWork);
    }
    Ok(())
}

fn parse_doc(id: &str) -> Result<HouseholdId, PageError> {
    HouseholdId::parse(id).map_err(|_| PageError::NotFound)
}

fn vocabulary<S: ServerStore>(c: &Console<S>, station: StationId) -> Vocabulary {
    crate::vocabulary::station_vocabulary(c.store.as_ref(), station)
        .unwrap_or_else(|_| Vocabulary::builtin())
}

fn count(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

impl<S: ServerStore> Console<S> {
    /// A station-work document of the station, of the kind asked for.
    pub(super) fn work_document(
        &self,
        station: StationId,
        id: HouseholdId,
        kind: WorkKind,
    ) -> Result<Automerge, PageError> {
        if self.store.document_station(id)? != Some(station) {
            return Err(PageError::NotFound);
        }
        let stored = self.store.load_document(id)?.ok_or(PageError::NotFound)?;
        let doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
            .map_err(|_| PageError::Unreadable)?
            .map_err(|_| PageError::Unreadable)?;
        match document_header(&doc) {
            Ok((DocKind::Work(k), _, _)) if k == kind => Ok(doc),
            _ => Err(PageError::NotFound),
        }
    }

    /// Every document of a kind the station holds, read with `read`; one that does not
    /// read is left out (and logged by id), never a failed page.
    fn work_of<T>(
        &self,
        station: StationId,
        kind: WorkKind,
        read: impl Fn(&Automerge) -> doorstep_core::Result<T>,
    ) -> Result<Vec<(HouseholdId, T)>, PageError> {
        let mut out = Vec::new();
        for id in self.store.work_documents(station, kind.as_str())? {
            match self
                .work_document(station, id, kind)
                .and_then(|d| read(&d).map_err(|_| PageError::Unreadable))
            {
                Ok(t) => out.push((id, t)),
                Err(PageError::Store(e)) => return Err(PageError::Store(e)),
                Err(_) => tracing::warn!(doc = %id, "console: station work does not read"),
            }
        }
        Ok(out)
    }
}

// ----- activities

pub(in crate::console) async fn activities<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Query(q): Query<super::exports::MonthQuery>,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        let month = q.month(ctx)?;
        let (Some(first), Some(last)) = (month.first(), month.last()) else {
            return Err(PageError::BadInput("month must be YYYY-MM\n"));
        };
        c.log(ctx, "activities", Some(&month.to_string()))?;
        let station = ctx.station();
        let vocabulary = vocabulary(c, station);
        let mut rows = Vec::new();
        let mut attendance = 0u64;
        for f in c
            .store
            .facts_between(station, &first.to_string(), &last.to_string())?
            .into_iter()
            .filter(|f| f.fact == "activity")
        {
            let a = match c
                .work_document(station, f.doc, WorkKind::Activity)
                .and_then(|d| read_activity_document(&d).map_err(|_| PageError::Unreadable))
            {
                Ok(a) => a,
                Err(PageError::Store(e)) => return Err(PageError::Store(e)),
                Err(_) => continue,
            };
            attendance += u64::from(a.attendee_count.unwrap_or(0));
            rows.push(context! {
                id => f.doc.to_string(),
                date => a.date.to_string(),
                kind => crate::console::report::category_item(&vocabulary, &a.activity_type),
                place => a.place,
                partners => a.partners.join("、"),
                attendees => count(a.attendee_count),
            });
        }
        c.html(
            "activities.html",
            ctx,
            context! {
                month => month.to_string(),
                previous => month.previous().map(|m| m.to_string()),
                total => rows.len(),
                attendance,
                rows,
            },
        )
    })
    .await
}

pub(in crate::console) async fn activity<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        let id = parse_doc(&id)?;
        let station = ctx.station();
        let doc = c.work_document(station, id, WorkKind::Activity)?;
        let a = read_activity_document(&doc).map_err(|_| PageError::Unreadable)?;
        c.log(ctx, "activity", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let vocabulary = vocabulary(c, station);
        let names: HashMap<HouseholdId, String> = c
            .work_of(station, WorkKind::Resource, read_resource_document)?
            .into_iter()
            .map(|(id, r)| (id, r.name))
            .collect();
        let resources: Vec<Value> = a
            .resources
            .iter()
            .map(|r| {
                let doc = HouseholdId::from_uuid(*r.as_uuid());
                context! {
                    id => doc.to_string(),
                    name => names.get(&doc).cloned().unwrap_or_else(|| r.to_string()),
                    known => names.contains_key(&doc),
                }
            })
            .collect();
        c.html(
            "activity.html",
            ctx,
            context! {
                a => context! {
                    id => id.to_string(),
                    kind => crate::console::report::category_item(&vocabulary, &a.activity_type),
                    date => a.date.to_string(),
                    place => a.place,
                    target_group => a.target_group,
                    attendees => count(a.attendee_count),
                    partners => a.partners,
                    materials => a.materials,
                    narrative => a.narrative,
                    who => view::worker_label(&labels, a.created.worker),
                    device => view::device_label(a.created.device),
                    when => ctx.zone.time(a.created.at.0),
                },
                resources,
            },
        )
    })
    .await
}

// ----- the resource register

pub(in crate::console) async fn resources<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        c.log(ctx, "resources", None)?;
        let station = ctx.station();
        let vocabulary = vocabulary(c, station);
        let mut all = c.work_of(station, WorkKind::Resource, read_resource_document)?;
        all.sort_by(|(_, a), (_, b)| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        let rows: Vec<Value> = all
            .into_iter()
            .map(|(id, r)| {
                context! {
                    id => id.to_string(),
                    kind => crate::console::report::category_item(&vocabulary, &r.kind),
                    name => r.name,
                    leader => r.leader,
                    phones => r.phones.join("、"),
                    members => count(r.member_count),
                    availability => r.availability,
                }
            })
            .collect();
        c.html("resources.html", ctx, context! { rows })
    })
    .await
}

pub(in crate::console) async fn resource<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        let id = parse_doc(&id)?;
        let station = ctx.station();
        let doc = c.work_document(station, id, WorkKind::Resource)?;
        let r = read_resource_document(&doc).map_err(|_| PageError::Unreadable)?;
        c.log(ctx, "resource", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        let vocabulary = vocabulary(c, station);
        // The activities it took part in: those that name it.
        let mut activities: Vec<(String, Value)> = c
            .work_of(station, WorkKind::Activity, read_activity_document)?
            .into_iter()
            .filter(|(_, a)| a.resources.iter().any(|x| x.as_uuid() == id.as_uuid()))
            .map(|(aid, a)| {
                (
                    a.date.to_string(),
                    context! {
                        id => aid.to_string(),
                        date => a.date.to_string(),
                        kind => crate::console::report::category_item(&vocabulary, &a.activity_type),
                        place => a.place,
                    },
                )
            })
            .collect();
        activities.sort_by(|a, b| b.0.cmp(&a.0));
        // The needs referred to it (kept on the need, in its household: the `referral`
        // facts), with the household's code and the need's category.
        let facts = c.store.facts_between(station, ALL_DAYS.0, ALL_DAYS.1)?;
        let categories: HashMap<uuid::Uuid, &str> = facts
            .iter()
            .filter(|f| f.fact == "need")
            .map(|f| (f.item, f.dim1.as_str()))
            .collect();
        let codes: HashMap<HouseholdId, String> = c
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
        let rid = id.to_string();
        let needs: Vec<Value> = facts
            .iter()
            .filter(|f| f.fact == "referral" && f.dim1 == rid)
            .map(|f| {
                context! {
                    doc => f.doc.to_string(),
                    code => codes.get(&f.doc).cloned().unwrap_or_default(),
                    category => categories.get(&f.item).map(|c| crate::console::report::category_item(&vocabulary, c)).unwrap_or_default(),
                    status => f.dim2.clone(),
                    day => f.day.clone(),
                }
            })
            .collect();
        c.html(
            "resource.html",
            ctx,
            context! {
                r => context! {
                    id => rid,
                    kind => crate::console::report::category_item(&vocabulary, &r.kind),
                    name => r.name,
                    leader => r.leader,
                    phones => r.phones,
                    members => count(r.member_count),
                    availability => r.availability,
                    services => r.services,
                    wishes => r.wishes,
                    who => view::worker_label(&labels, r.created.worker),
                    device => view::device_label(r.created.device),
                    when => ctx.zone.time(r.created.at.0),
                },
                activities => activities.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                needs,
            },
        )
    })
    .await
}

// ----- needs surveys

/// How many submitted responses each survey has (the `response` facts: `dim1` the survey).
fn responses_per_survey(facts: &[crate::store::console::FactRow]) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for f in facts.iter().filter(|f| f.fact == "response") {
        *out.entry(f.dim1.as_str()).or_insert(0) += 1;
    }
    out
}

pub(in crate::console) async fn surveys<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        c.log(ctx, "surveys", None)?;
        let station = ctx.station();
        let labels = c.labels(station)?;
        let facts = c.store.facts_between(station, ALL_DAYS.0, ALL_DAYS.1)?;
        let answered = responses_per_survey(&facts);
        let mut all = c.work_of(station, WorkKind::Survey, read_survey_document)?;
        all.sort_by(|(_, a), (_, b)| (&a.title, a.id).cmp(&(&b.title, b.id)));
        let rows: Vec<Value> = all
            .into_iter()
            .map(|(id, s)| {
                context! {
                    id => id.to_string(),
                    title => s.title,
                    responses => answered.get(s.id.to_string().as_str()).copied().unwrap_or(0),
                    versions => s.versions.iter().map(|v| context! {
                        id => v.id.to_string(),
                        number => v.number,
                        questions => v.questions.len(),
                        who => view::worker_label(&labels, v.created.worker),
                        when => ctx.zone.time(v.created.at.0),
                    }).collect::<Vec<_>>(),
                }
            })
            .collect();
        c.html("surveys.html", ctx, context! { rows })
    })
    .await
}

pub(in crate::console) async fn survey<S: ServerStore>(
    State(st): Shared<S>,
    visit: Visit,
    Path(id): Path<String>,
) -> Response {
    page(st, visit, move |c, ctx| {
        station_work_only(ctx)?;
        let id = parse_doc(&id)?;
        let station = ctx.station();
        let doc = c.work_document(station, id, WorkKind::Survey)?;
        let s = read_survey_document(&doc).map_err(|_| PageError::Unreadable)?;
        c.log(ctx, "survey", Some(&id.to_string()))?;
        let labels = c.labels(station)?;
        // The responses live with the persons, in their households (ADR 0022): read the
        // households that hold one (the `response` facts), each with the core's reader.
        let survey_id: SurveyId = s.id;
        let key = survey_id.to_string();
        let mut households: Vec<HouseholdId> = c
            .store
            .facts_between(station, ALL_DAYS.0, ALL_DAYS.1)?
            .into_iter()
            .filter(|f| f.fact == "response" && f.dim1 == key)
            .map(|f| f.doc)
            .collect();
        households.sort();
        households.dedup();
        let mut responses = Vec::new();
        for h in households {
            match c.case_file(station, h) {
                Ok(loaded) => responses.extend(
                    loaded
                        .file
                        .household
                        .responses
                        .iter()
                        .filter(|&r| r.survey == survey_id && r.status == ResponseStatus::Submitted)
                        .cloned(),
                ),
                Err(PageError::Store(e)) => return Err(PageError::Store(e)),
                Err(_) => {
                    tracing::warn!(doc = %h, "console: a household with responses does not read")
                }
            }
        }
        let versions: Vec<Value> = s
            .versions
            .iter()
            .rev()
            .map(|v| {
                let counted = crate::console::surveys::count_version(v, &responses);
                context! {
                    who => view::worker_label(&labels, v.created.worker),
                    device => view::device_label(v.created.device),
                    when => ctx.zone.time(v.created.at.0),
                    ..Value::from_serialize(&counted)
                }
            })
            .collect();
        c.html(
            "survey.html",
            ctx,
            context! {
                title => s.title,
                responses => responses.len(),
                versions,
                who => view::worker_label(&labels, s.created.worker),
                when => ctx.zone.time(s.created.at.0),
            },
        )
    })
    .await
}
