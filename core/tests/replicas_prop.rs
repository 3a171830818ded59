//! Property: three replicas doing random operations (visits' companions, benefits,
//! guardianships, parents' status and care levels among them; a group activity's narrative,
//! place and partners, and persons' attendance of it (ADR 0021); persons' responses to a shared needs survey, edited,
//! withdrawn and filled twice on two replicas (ADR 0022); the second household is one
//! from before benefits and guardianships, whose collections a first record creates),
//! exchanging changes in random orders with duplicates and partial deliveries, end with
//! identical documents, index rows and conflicts — and every live index equals one rebuilt
//! from the documents.
//! Cases: PROPTEST_CASES (default 24). Failures print the minimal operation list; proptest
//! also keeps it in `proptest-regressions/` to replay first next time.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;
use proptest::prelude::*;

const NAMES: [&str; 4] = ["王小明", "王晓明", "汪小明", "李华"];
const TAGS: [&str; 3] = [
    "household.dibao",
    "household.dibao_marginal",
    "household.poverty_monitoring",
];
const TEXTS: [&str; 4] = ["补助", "需要心理疏导。", "x", "事实无人抚养儿童"];
const COMPANIONS: [(&str, &str); 3] =
    [("李芳", "村儿童主任"), ("张伟", "派出所民警"), ("李芳", "")];
const BENEFITS: [&str; 3] = [
    "benefit.dibao",
    "benefit.unsupported_child",
    "benefit.orphan",
];
const PARENT_STATUSES: [&str; 3] = [
    "parent.normal",
    "child.unsupported.parent_imprisoned",
    "child.unsupported.parent_missing",
];

const PLACES: [&str; 3] = ["镇中心小学", "石桥村文化广场", "镇中心小学礼堂"];
const PARTNERS: [&str; 3] = ["县交警大队", "石桥村村委会", "镇派出所"];
const LIVING: [&str; 3] = ["alone", "spouse", "children"];

/// The shared station work: an activity and a needs survey (its first version).
#[derive(Clone, Copy)]
struct Work {
    activity: ActivityId,
    survey: SurveyId,
    version: SurveyVersionId,
}

impl Work {
    fn docs(&self) -> [HouseholdId; 2] {
        [
            HouseholdId::from_uuid(*self.activity.as_uuid()),
            HouseholdId::from_uuid(*self.survey.as_uuid()),
        ]
    }
}

fn living(o: usize) -> Vec<Answer> {
    vec![Answer {
        question: "living".into(),
        value: AnswerValue::Choice(LIVING[o].into()),
    }]
}

#[derive(Clone, Debug)]
enum Action {
    AddPerson(usize),
    EditName(usize, usize),
    EditGuardian(usize, bool),
    EditAddress(usize),
    AddTag(usize),
    RemoveTag(usize),
    StartVisit,
    Splice {
        visit: usize,
        section: usize,
        pos: u8,
        delete: u8,
        text: usize,
    },
    Summary {
        pos: u8,
        text: usize,
    },
    Finalise(usize),
    AddCompanion(usize, usize),
    RemoveCompanion(usize, usize),
    AddFollowUp,
    CloseFollowUp(usize, bool),
    Resolve(usize),
    AddBenefit(usize, usize),
    EditBenefitAmount(usize, u16),
    AddGuardianship(usize, usize, bool),
    EditGuardianshipKind(usize, bool),
    EndGuardianship(usize),
    /// A person's care level (`Some(person)`) or the household's; `None` clears it.
    CareLevel(Option<usize>, Option<usize>),
    FatherStatus(usize, usize),
    /// Type into the shared group activity's narrative.
    ActivityText {
        pos: u8,
        text: usize,
    },
    ActivityPlace(usize),
    ActivityPartner(usize, bool),
    /// A person attends the activity (`true`) or the link is removed.
    Attend(usize, bool),
    /// A person answers the shared survey (an option of its one question).
    Respond(usize, usize),
    /// The person's first response gets another answer.
    EditResponse(usize, usize),
    WithdrawResponse(usize),
    Sync {
        from: usize,
        to: usize,
        order_seed: u64,
        duplicate: bool,
    },
}

#[derive(Clone, Debug)]
struct Op {
    replica: usize,
    household: usize,
    action: Action,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => (0..NAMES.len()).prop_map(Action::AddPerson),
        1 => (0..4usize, 0..NAMES.len()).prop_map(|(p, n)| Action::EditName(p, n)),
        1 => (0..4usize, any::<bool>()).prop_map(|(p, g)| Action::EditGuardian(p, g)),
        1 => (0..3usize).prop_map(Action::EditAddress),
        1 => (0..TAGS.len()).prop_map(Action::AddTag),
        1 => (0..TAGS.len()).prop_map(Action::RemoveTag),
        1 => Just(Action::StartVisit),
        3 => (0..3usize, 0..Section::ALL.len(), any::<u8>(), 0..3u8, 0..TEXTS.len())
            .prop_map(|(visit, section, pos, delete, text)| Action::Splice { visit, section, pos, delete, text }),
        1 => (any::<u8>(), 0..TEXTS.len()).prop_map(|(pos, text)| Action::Summary { pos, text }),
        1 => (0..3usize).prop_map(Action::Finalise),
        1 => (0..3usize, 0..COMPANIONS.len()).prop_map(|(v, c)| Action::AddCompanion(v, c)),
        1 => (0..3usize, 0..COMPANIONS.len()).prop_map(|(v, c)| Action::RemoveCompanion(v, c)),
        1 => Just(Action::AddFollowUp),
        1 => (0..3usize, any::<bool>()).prop_map(|(f, done)| Action::CloseFollowUp(f, done)),
        1 => (0..3usize).prop_map(Action::Resolve),
        1 => (0..4usize, 0..BENEFITS.len()).prop_map(|(p, b)| Action::AddBenefit(p, b)),
        1 => (0..3usize, 0..3u16).prop_map(|(b, a)| Action::EditBenefitAmount(b, a)),
        1 => (0..4usize, 0..4usize, any::<bool>()).prop_map(|(c, k, l)| Action::AddGuardianship(c, k, l)),
        1 => (0..3usize, any::<bool>()).prop_map(|(g, l)| Action::EditGuardianshipKind(g, l)),
        1 => (0..3usize).prop_map(Action::EndGuardianship),
        1 => (proptest::option::of(0..4usize), proptest::option::of(0..3usize)).prop_map(|(p, l)| Action::CareLevel(p, l)),
        1 => (0..4usize, 0..PARENT_STATUSES.len()).prop_map(|(p, c)| Action::FatherStatus(p, c)),
        2 => (any::<u8>(), 0..TEXTS.len()).prop_map(|(pos, text)| Action::ActivityText { pos, text }),
        1 => (0..PLACES.len()).prop_map(Action::ActivityPlace),
        1 => (0..PARTNERS.len(), any::<bool>()).prop_map(|(p, add)| Action::ActivityPartner(p, add)),
        1 => (0..4usize, any::<bool>()).prop_map(|(p, add)| Action::Attend(p, add)),
        2 => (0..4usize, 0..LIVING.len()).prop_map(|(p, o)| Action::Respond(p, o)),
        1 => (0..4usize, 0..LIVING.len()).prop_map(|(p, o)| Action::EditResponse(p, o)),
        1 => (0..4usize).prop_map(Action::WithdrawResponse),
        3 => (0..3usize, 0..3usize, any::<u64>(), any::<bool>())
            .prop_map(|(from, to, order_seed, duplicate)| Action::Sync { from, to, order_seed, duplicate }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (0..3usize, 0..2usize, action()).prop_map(|(replica, household, action)| Op {
        replica,
        household,
        action,
    })
}

/// A tiny deterministic shuffle (xorshift), so a case replays exactly.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Deliver `from`'s missing changes to `to` in a scrambled order of single changes,
/// retrying those whose dependencies have not arrived, with optional duplicates.
fn scrambled_delivery(from: &Store, to: &Store, seed: u64, duplicate: bool, work: Work) {
    for h in from.household_ids().unwrap().into_iter().chain(work.docs()) {
        let have = to.heads(h).unwrap_or_default();
        let mut pending = from.export_changes(h, &have).unwrap();
        if duplicate {
            pending.extend(pending.clone());
        }
        shuffle(&mut pending, seed | 1);
        while !pending.is_empty() {
            let mut next = Vec::new();
            let before = pending.len();
            for c in pending {
                match to.apply_changes(h, std::slice::from_ref(&c)) {
                    Ok(_) => {}
                    Err(Error::MissingDependencies(_)) => next.push(c),
                    Err(e) => panic!("delivery failed: {e}"),
                }
            }
            assert!(next.len() < before, "delivery made no progress");
            pending = next;
        }
    }
}

/// `common::push`, with the station's work.
fn push_all(from: &Store, to: &Store, work: Work) {
    push(from, to);
    for doc in work.docs() {
        let have = to.heads(doc).unwrap_or_default();
        let changes = from.export_changes(doc, &have).unwrap();
        if !changes.is_empty() {
            to.apply_changes(doc, &changes).unwrap();
        }
    }
}

fn run(op: &Op, stores: &[Store], households: &[HouseholdId], work: Work) {
    let activity = work.activity;
    let s = &stores[op.replica];
    let hh = households[op.household];
    let h = s.household(hh).unwrap();
    let person = |i: usize| h.persons.get(i % h.persons.len().max(1)).map(|p| p.id);
    let visit = |i: usize| h.visits.get(i % h.visits.len().max(1)).map(|v| v.id);
    // Errors are allowed (a finalised visit, an impossible transition ...); panics are not.
    let _ = match &op.action {
        Action::AddPerson(n) => s
            .add_person(hh, &NewPerson::named(NAMES[*n], "家人"))
            .map(|_| ()),
        Action::EditName(p, n) => match person(*p) {
            Some(p) => s.edit_person(hh, p, &PersonEdit::Name(NAMES[*n].into())),
            None => Ok(()),
        },
        Action::EditGuardian(p, g) => match person(*p) {
            Some(p) => s.edit_person(hh, p, &PersonEdit::Guardian(*g)),
            None => Ok(()),
        },
        Action::EditAddress(a) => s.edit_household(hh, &HouseholdEdit::Address(format!("地址{a}"))),
        Action::AddTag(t) => s.edit_household(hh, &HouseholdEdit::AddTag(TAGS[*t].into())),
        Action::RemoveTag(t) => s.edit_household(hh, &HouseholdEdit::RemoveTag(TAGS[*t].into())),
        Action::StartVisit => s
            .start_visit(
                hh,
                &NewVisit {
                    kind: VisitKind::Home,
                    date: Date::parse("2026-11-20").unwrap(),
                    started_at: Timestamp(0),
                    gps: None,
                    other_workers: vec![],
                    present: vec![],
                    companions: vec![],
                },
            )
            .map(|_| ()),
        Action::Splice {
            visit: v,
            section,
            pos,
            delete,
            text,
        } => match visit(*v) {
            Some(v) => {
                let sec = Section::ALL[*section];
                let len = h
                    .visits
                    .iter()
                    .find(|x| x.id == v)
                    .unwrap()
                    .section(sec)
                    .chars()
                    .count();
                let pos = usize::from(*pos) % (len + 1);
                let delete = usize::from(*delete).min(len - pos);
                s.splice_section(hh, v, sec, pos, delete, TEXTS[*text])
            }
            None => Ok(()),
        },
        Action::Summary { pos, text } => {
            let len = h.summary.chars().count();
            s.splice_summary(hh, usize::from(*pos) % (len + 1), 0, TEXTS[*text])
        }
        Action::Finalise(v) => match visit(*v) {
            Some(v) => s.finalise_visit(hh, v),
            None => Ok(()),
        },
        Action::AddCompanion(v, c) | Action::RemoveCompanion(v, c) => match visit(*v) {
            Some(v) => {
                let c = Companion::new(COMPANIONS[*c].0, COMPANIONS[*c].1);
                let edit = match &op.action {
                    Action::AddCompanion(..) => VisitEdit::AddCompanion(c),
                    _ => VisitEdit::RemoveCompanion(c),
                };
                s.edit_visit(hh, v, &edit)
            }
            None => Ok(()),
        },
        Action::AddFollowUp => s
            .add_follow_up(
                hh,
                &NewFollowUp {
                    what: "回访".into(),
                    due: Date::parse("2026-12-01").unwrap(),
                    assignee: s.worker(),
                    origin_visit: None,
                },
            )
            .map(|_| ()),
        Action::CloseFollowUp(f, done) => match h.follow_ups.get(f % h.follow_ups.len().max(1)) {
            Some(f) if *done => s.complete_follow_up(hh, f.id),
            Some(f) => s.cancel_follow_up(hh, f.id),
            None => Ok(()),
        },
        Action::Resolve(i) => {
            let conflicts = s.conflicts(Some(hh)).unwrap();
            match conflicts.get(i % conflicts.len().max(1)) {
                Some(c) => {
                    let chosen = c.values[0].value.clone();
                    s.resolve_conflict(hh, &c.field, chosen.as_deref())
                        .map(|_| ())
                }
                None => Ok(()),
            }
        }
        Action::AddBenefit(p, b) => match person(*p) {
            Some(p) => s
                .add_benefit(
                    hh,
                    &NewBenefit {
                        person: p,
                        kind: BENEFITS[*b].into(),
                        monthly_fen: 60_000,
                        from: Some(Date::parse("2026-01-01").unwrap()),
                        until: None,
                        source: "县民政局".into(),
                    },
                )
                .map(|_| ()),
            None => Ok(()),
        },
        Action::EditBenefitAmount(b, a) => match h.benefits.get(b % h.benefits.len().max(1)) {
            Some(b) => s.edit_benefit(
                hh,
                b.id,
                &BenefitEdit::MonthlyFen(50_000 + u64::from(*a) * 10_000),
            ),
            None => Ok(()),
        },
        Action::AddGuardianship(c, k, legal) => match (person(*c), person(*k)) {
            (Some(carer), Some(child)) => s
                .add_guardianship(
                    hh,
                    &NewGuardianship {
                        carer,
                        child,
                        kind: guardianship_kind(*legal),
                        relationship: "祖母".into(),
                        capacity: Some(CareCapacity::Limited),
                    },
                )
                .map(|_| ()),
            _ => Ok(()),
        },
        Action::EditGuardianshipKind(..) | Action::EndGuardianship(_)
            if h.guardianships.is_empty() =>
        {
            Ok(())
        }
        Action::EditGuardianshipKind(g, legal) => {
            let g = &h.guardianships[g % h.guardianships.len()];
            s.edit_guardianship(hh, g.id, &GuardianshipEdit::Kind(guardianship_kind(*legal)))
        }
        Action::EndGuardianship(g) => {
            s.end_guardianship(hh, h.guardianships[g % h.guardianships.len()].id)
        }
        Action::CareLevel(target, level) => {
            let level = level.map(|l| CareLevel::ALL[l]);
            match target {
                None => s.edit_household(hh, &HouseholdEdit::CareLevel(level)),
                Some(p) => match person(*p) {
                    Some(p) => s.edit_person(hh, p, &PersonEdit::CareLevel(level)),
                    None => Ok(()),
                },
            }
        }
        Action::FatherStatus(p, c) => match person(*p) {
            Some(p) => s.edit_person(
                hh,
                p,
                &PersonEdit::FatherStatus(Some(PARENT_STATUSES[*c].into())),
            ),
            None => Ok(()),
        },
        Action::ActivityText { pos, text } => {
            let len = s.activity(activity).unwrap().narrative.chars().count();
            s.splice_activity_narrative(activity, *pos as usize % (len + 1), 0, TEXTS[*text])
        }
        Action::ActivityPlace(n) => {
            s.edit_activity(activity, &ActivityEdit::Place(PLACES[*n].into()))
        }
        Action::ActivityPartner(n, true) => {
            s.edit_activity(activity, &ActivityEdit::AddPartner(PARTNERS[*n].into()))
        }
        Action::ActivityPartner(n, false) => {
            s.edit_activity(activity, &ActivityEdit::RemovePartner(PARTNERS[*n].into()))
        }
        Action::Attend(p, add) => match person(*p) {
            Some(p) if *add => s.edit_person(hh, p, &PersonEdit::AddActivity(activity)),
            Some(p) => s.edit_person(hh, p, &PersonEdit::RemoveActivity(activity)),
            None => Ok(()),
        },
        Action::Respond(p, o) => match person(*p) {
            Some(p) => s
                .respond_to_survey(hh, p, work.survey, work.version, &living(*o))
                .map(drop),
            None => Ok(()),
        },
        Action::EditResponse(p, o) => {
            match person(*p).and_then(|p| h.responses.iter().find(|r| r.person == p)) {
                Some(r) => s.edit_survey_response(hh, r.id, &living(*o)),
                None => Ok(()),
            }
        }
        Action::WithdrawResponse(p) => {
            match person(*p).and_then(|p| h.responses.iter().find(|r| r.person == p)) {
                Some(r) => s.withdraw_survey_response(hh, r.id),
                None => Ok(()),
            }
        }
        Action::Sync {
            from,
            to,
            order_seed,
            duplicate,
        } => {
            if from != to {
                scrambled_delivery(&stores[*from], &stores[*to], *order_seed, *duplicate, work);
            }
            Ok(())
        }
    };
}

fn guardianship_kind(legal: bool) -> GuardianshipKind {
    if legal {
        GuardianshipKind::Legal
    } else {
        GuardianshipKind::Entrusted
    }
}

/// Make `hh` a household from before benefits and guardianships: the change that deletes
/// their collections, on an actor of its own.
fn without_new_collections(s: &Store, hh: HouseholdId) -> Vec<u8> {
    use automerge::transaction::Transactable;
    let doc = automerge::Automerge::load(&s.export_document(hh).unwrap()).unwrap();
    let mut doc = doc.with_actor(automerge::ActorId::random());
    doc.transact(|tx| {
        tx.delete(automerge::ROOT, "benefits")?;
        tx.delete(automerge::ROOT, "guardianships")
    })
    .unwrap();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

fn check_index_matches_rebuild(s: &Store, when: &str) {
    let live = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(
        live,
        s.index_dump().unwrap(),
        "live index differs from a rebuild {when}"
    );
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_order(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let stores: Vec<Store> = (0..3)
            .map(|i| {
                let mut o = options(&dir.path().join(format!("r{i}.db")), WorkerId::new(), station);
                o.durability = Durability::Relaxed;
                o.compact_after = 7; // exercise compaction often
                o.cache_documents = 1; // and reloading from disk
                o.clock = ticking_clock(1_764_000_000_000 + i as i64 * 3);
                Store::open(o).unwrap()
            })
            .collect();
        let households = vec![household(&stores[0], "HH-000001"), household(&stores[0], "HH-000002")];
        let old = without_new_collections(&stores[0], households[1]);
        stores[0].apply_changes(households[1], &[old]).unwrap();
        let activity = stores[0].create_activity(&NewActivity {
            activity_type: "activity.safety.traffic".into(),
            date: Date::parse("2026-11-20").unwrap(),
            place: PLACES[0].into(),
            target_group: String::new(),
            attendee_count: None,
            partners: vec![],
            materials: vec![],
            resources: vec![],
            narrative: String::new(),
        }).unwrap();
        let survey = stores[0].create_survey("需求调查", &[Question {
            id: "living".into(),
            label: "居住情况".into(),
            kind: QuestionKind::Single {
                options: LIVING.iter().map(|c| SurveyOption { code: (*c).into(), label: (*c).into() }).collect(),
            },
        }]).unwrap();
        let version = stores[0].survey(survey).unwrap().versions[0].id;
        let work = Work { activity, survey, version };
        for i in 1..3 {
            push_all(&stores[0], &stores[i], work);
        }
        for op in &ops {
            run(op, &stores, &households, work);
        }
        for s in &stores {
            check_index_matches_rebuild(s, "after the random operations");
        }
        // Heal: everyone sends everything to everyone, twice round.
        for _ in 0..2 {
            for i in 0..3 {
                for j in 0..3 {
                    if i != j {
                        push_all(&stores[i], &stores[j], work);
                    }
                }
            }
        }
        for h in &households {
            let mut heads: Vec<Vec<ChangeHash>> = stores.iter().map(|s| { let mut x = s.heads(*h).unwrap(); x.sort(); x }).collect();
            heads.dedup();
            prop_assert_eq!(heads.len(), 1, "heads differ");
            let docs: Vec<Household> = stores.iter().map(|s| s.household(*h).unwrap()).collect();
            prop_assert_eq!(&docs[0], &docs[1]);
            prop_assert_eq!(&docs[0], &docs[2]);
        }
        let acts: Vec<Activity> = stores.iter().map(|s| s.activity(activity).unwrap()).collect();
        prop_assert_eq!(&acts[0], &acts[1]);
        prop_assert_eq!(&acts[0], &acts[2]);
        let counts: Vec<Vec<AnswerCount>> = stores.iter().map(|s| s.survey_counts(survey).unwrap()).collect();
        prop_assert_eq!(&counts[0], &counts[1]);
        prop_assert_eq!(&counts[0], &counts[2]);
        let parallel: Vec<Vec<ParallelUpdate>> = stores.iter().map(|s| s.parallel_updates(None).unwrap()).collect();
        prop_assert_eq!(&parallel[0], &parallel[1]);
        prop_assert_eq!(&parallel[0], &parallel[2]);
        let dumps: Vec<Vec<String>> = stores.iter().map(|s| s.index_dump().unwrap()).collect();
        prop_assert_eq!(&dumps[0], &dumps[1]);
        prop_assert_eq!(&dumps[0], &dumps[2]);
        let conflicts: Vec<Vec<Conflict>> = stores.iter().map(|s| s.conflicts(None).unwrap()).collect();
        prop_assert_eq!(&conflicts[0], &conflicts[1]);
        prop_assert_eq!(&conflicts[0], &conflicts[2]);
        for s in &stores {
            check_index_matches_rebuild(s, "after convergence");
            s.integrity_check().unwrap();
        }
    }
}
