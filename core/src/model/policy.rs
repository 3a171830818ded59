//! The merge policy of every field, declared once. The document layer writes and reads
//! fields through this table and the conflict scanner walks it; nothing else decides how a
//! field merges.

/// The kinds of record in a household document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    Household,
    Person,
    Visit,
    Amendment,
    Need,
    Inquiry,
    FollowUp,
    Card,
    Benefit,
    Guardianship,
    /// A group activity: the record of an activity document (ADR 0021).
    Activity,
    /// A resource of the register: the record of a resource document (ADR 0021).
    Resource,
    /// A needs survey: the record of a survey document (ADR 0022).
    Survey,
    /// One person's answers to a survey: a record of the household (ADR 0022).
    Response,
}

impl EntityKind {
    /// The map in the document root that holds records of this kind (the household's own
    /// fields live in the `household` map).
    pub const fn collection(self) -> &'static str {
        match self {
            EntityKind::Household => "household",
            EntityKind::Person => "persons",
            EntityKind::Visit => "visits",
            EntityKind::Amendment => "amendments",
            EntityKind::Need => "needs",
            EntityKind::Inquiry => "inquiries",
            EntityKind::FollowUp => "follow_ups",
            EntityKind::Card => "cards",
            EntityKind::Benefit => "benefits",
            EntityKind::Guardianship => "guardianships",
            // In their own documents, the record is a map under the root, as the
            // household's own fields are.
            EntityKind::Activity => "activity",
            EntityKind::Resource => "resource",
            EntityKind::Survey => "survey",
            EntityKind::Response => "responses",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            EntityKind::Household => "household",
            EntityKind::Person => "person",
            EntityKind::Visit => "visit",
            EntityKind::Amendment => "amendment",
            EntityKind::Need => "need",
            EntityKind::Inquiry => "inquiry",
            EntityKind::FollowUp => "follow_up",
            EntityKind::Card => "card",
            EntityKind::Benefit => "benefit",
            EntityKind::Guardianship => "guardianship",
            EntityKind::Activity => "activity",
            EntityKind::Resource => "resource",
            EntityKind::Survey => "survey",
            EntityKind::Response => "response",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ALL_KINDS
            .iter()
            .chain(WORK_KINDS.iter())
            .copied()
            .find(|k| k.name() == name)
    }
}

/// The kinds of record that are a station-work document's own (one per document, a map
/// under the root; ADR 0021). Not in [`ALL_KINDS`]: a household document holds none.
pub const WORK_KINDS: [EntityKind; 3] = [
    EntityKind::Activity,
    EntityKind::Resource,
    EntityKind::Survey,
];

/// Every kind of a household document. `Benefit` and `Guardianship` came later: a document made before them has no
/// such collection until a phone adds the first record (`doc::cells::collections`).
pub const ALL_KINDS: [EntityKind; 11] = [
    EntityKind::Household,
    EntityKind::Person,
    EntityKind::Visit,
    EntityKind::Amendment,
    EntityKind::Need,
    EntityKind::Inquiry,
    EntityKind::FollowUp,
    EntityKind::Card,
    EntityKind::Benefit,
    EntityKind::Guardianship,
    EntityKind::Response,
];

/// How concurrent writes to a field merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// Collaborative text (automerge Text): concurrent typing merges character by character.
    Text,
    /// Identity-critical: every concurrent value is kept and a conflict is raised for a human.
    Identity,
    /// Low-risk scalar: the latest write (by its timestamp) shows; concurrent values stay
    /// readable as parallel updates until the field is written again.
    LastWriterWins,
    /// A set: concurrent add and remove of one element keep it (add wins).
    AddWinsSet,
    /// A status machine: transitions are checked locally; different concurrent end states
    /// (done vs cancelled) are a conflict.
    Status,
    /// Written once when the record is created; never edited.
    Fixed,
}

/// One field of one kind of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub entity: EntityKind,
    pub name: &'static str,
    pub policy: MergePolicy,
}

const fn f(entity: EntityKind, name: &'static str, policy: MergePolicy) -> FieldSpec {
    FieldSpec {
        entity,
        name,
        policy,
    }
}

use EntityKind as K;
use MergePolicy as P;

/// Every field of the household document and its merge policy.
pub const FIELDS: &[FieldSpec] = &[
    f(K::Household, "code", P::LastWriterWins),
    f(K::Household, "village", P::LastWriterWins),
    f(K::Household, "address", P::LastWriterWins),
    f(K::Household, "gps", P::LastWriterWins),
    f(K::Household, "status", P::LastWriterWins),
    f(K::Household, "phones", P::AddWinsSet),
    f(K::Household, "tags", P::AddWinsSet),
    f(K::Household, "summary", P::Text),
    f(K::Household, "care_level", P::LastWriterWins),
    f(K::Person, "name", P::Identity),
    f(K::Person, "sex", P::LastWriterWins),
    f(K::Person, "birth_date", P::Identity),
    f(K::Person, "id_number", P::Identity),
    f(K::Person, "relation", P::LastWriterWins),
    f(K::Person, "guardian", P::Identity),
    f(K::Person, "categories", P::AddWinsSet),
    f(K::Person, "school", P::LastWriterWins),
    f(K::Person, "grade", P::LastWriterWins),
    // The parents' situation decides 事实无人抚养 eligibility: a human settles a conflict.
    f(K::Person, "father_status", P::Identity),
    f(K::Person, "mother_status", P::Identity),
    f(K::Person, "hukou_type", P::LastWriterWins),
    f(K::Person, "registered_residence", P::LastWriterWins),
    f(K::Person, "actual_residence", P::LastWriterWins),
    f(K::Person, "school_stage", P::LastWriterWins),
    f(K::Person, "school_status", P::LastWriterWins),
    f(K::Person, "boarding", P::LastWriterWins),
    f(K::Person, "care_level", P::LastWriterWins),
    // Group activities the person attended (activity ids; ADR 0021): kept on the person, so
    // erasing the household erases the link and only those who see the household see it.
    f(K::Person, "activities", P::AddWinsSet),
    f(K::Visit, "kind", P::LastWriterWins),
    f(K::Visit, "date", P::LastWriterWins),
    f(K::Visit, "started_at", P::LastWriterWins),
    f(K::Visit, "ended_at", P::LastWriterWins),
    f(K::Visit, "gps", P::LastWriterWins),
    f(K::Visit, "status", P::Status),
    f(K::Visit, "workers", P::AddWinsSet),
    f(K::Visit, "present", P::AddWinsSet),
    f(K::Visit, "companions", P::AddWinsSet),
    f(K::Visit, "personal_situation", P::Text),
    f(K::Visit, "family_situation", P::Text),
    f(K::Visit, "actual_needs", P::Text),
    f(K::Visit, "questions_asked", P::Text),
    f(K::Visit, "concerns", P::Text),
    f(K::Visit, "advice_given", P::Text),
    // Added later (ADR 0024): a visit started before them has neither.
    f(K::Visit, "health", P::Text),
    f(K::Visit, "study", P::Text),
    f(K::Amendment, "visit", P::Fixed),
    f(K::Amendment, "section", P::Fixed),
    f(K::Amendment, "text", P::Fixed),
    f(K::Need, "category", P::LastWriterWins),
    f(K::Need, "description", P::LastWriterWins),
    f(K::Need, "person", P::Fixed),
    f(K::Need, "visit", P::Fixed),
    f(K::Need, "status", P::Status),
    // The resource of the register the need was referred to, or null (ADR 0021).
    f(K::Need, "resource", P::LastWriterWins),
    f(K::Inquiry, "question", P::LastWriterWins),
    f(K::Inquiry, "topic", P::LastWriterWins),
    f(K::Inquiry, "answer", P::LastWriterWins),
    f(K::Inquiry, "visit", P::Fixed),
    f(K::Inquiry, "status", P::Status),
    f(K::FollowUp, "what", P::LastWriterWins),
    f(K::FollowUp, "due", P::LastWriterWins),
    f(K::FollowUp, "assignee", P::LastWriterWins),
    f(K::FollowUp, "origin_visit", P::Fixed),
    f(K::FollowUp, "status", P::Status),
    f(K::Card, "serial", P::Fixed),
    f(K::Card, "visit", P::Fixed),
    f(K::Card, "person", P::Fixed),
    f(K::Card, "replaces", P::Fixed),
    f(K::Card, "status", P::Status),
    f(K::Benefit, "person", P::Fixed),
    f(K::Benefit, "kind", P::LastWriterWins),
    f(K::Benefit, "monthly_fen", P::LastWriterWins),
    f(K::Benefit, "from", P::LastWriterWins),
    f(K::Benefit, "until", P::LastWriterWins),
    f(K::Benefit, "source", P::LastWriterWins),
    f(K::Guardianship, "carer", P::Fixed),
    f(K::Guardianship, "child", P::Fixed),
    // Who is legally responsible for a child is identity-critical (ADR 0002).
    f(K::Guardianship, "kind", P::Identity),
    f(K::Guardianship, "relationship", P::LastWriterWins),
    f(K::Guardianship, "capacity", P::LastWriterWins),
    f(K::Guardianship, "status", P::Status),
    // A group activity (its own document). Nothing in it is identity-critical: a changed
    // date, place or count shows the latest and keeps the other as a parallel update.
    f(K::Activity, "type", P::LastWriterWins),
    f(K::Activity, "date", P::LastWriterWins),
    f(K::Activity, "place", P::LastWriterWins),
    f(K::Activity, "target_group", P::LastWriterWins),
    f(K::Activity, "attendee_count", P::LastWriterWins),
    f(K::Activity, "partners", P::AddWinsSet),
    f(K::Activity, "materials", P::AddWinsSet),
    f(K::Activity, "resources", P::AddWinsSet),
    f(K::Activity, "narrative", P::Text),
    // A resource of the community register (its own document).
    f(K::Resource, "kind", P::LastWriterWins),
    f(K::Resource, "name", P::LastWriterWins),
    f(K::Resource, "leader", P::LastWriterWins),
    f(K::Resource, "phones", P::AddWinsSet),
    f(K::Resource, "member_count", P::LastWriterWins),
    f(K::Resource, "availability", P::LastWriterWins),
    f(K::Resource, "services", P::Text),
    f(K::Resource, "wishes", P::Text),
    // A needs survey (its own document, ADR 0022). Its versions are not fields: each is
    // written once, whole, under its own id, and never again (the server refuses a change).
    f(K::Survey, "title", P::LastWriterWins),
    // One person's answers (a record of their household, ADR 0022). Whom, which survey and
    // which version are fixed at creation; the answers are replaced whole (two phones
    // editing one response: the later shows, the other stays a parallel update); a second
    // response of the same person to the same survey is a conflict for a human
    // (`ConflictKind::DuplicateResponse`), settled by withdrawing one.
    f(K::Response, "person", P::Fixed),
    f(K::Response, "survey", P::Fixed),
    f(K::Response, "version", P::Fixed),
    f(K::Response, "answers", P::LastWriterWins),
    f(K::Response, "status", P::Status),
];

/// The policy of a field, if the model knows the field.
pub fn policy(entity: EntityKind, name: &str) -> Option<MergePolicy> {
    FIELDS
        .iter()
        .find(|s| s.entity == entity && s.name == name)
        .map(|s| s.policy)
}

/// The fields of one kind of record.
pub fn fields_of(entity: EntityKind) -> impl Iterator<Item = &'static FieldSpec> {
    FIELDS.iter().filter(move |s| s.entity == entity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_declared_once() {
        for (i, a) in FIELDS.iter().enumerate() {
            for b in &FIELDS[i + 1..] {
                assert!(
                    !(a.entity == b.entity && a.name == b.name),
                    "{a:?} declared twice"
                );
            }
        }
    }

    #[test]
    fn identity_fields_are_the_ones_the_design_names() {
        let identity: Vec<_> = FIELDS
            .iter()
            .filter(|s| s.policy == MergePolicy::Identity)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            identity,
            [
                "name",
                "birth_date",
                "id_number",
                "guardian",
                "father_status",
                "mother_status",
                "kind"
            ]
        );
    }
}
