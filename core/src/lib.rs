//! # doorstep-core
//!
//! The library on the phone: household case files as automerge documents, stored durably
//! and encrypted in SQLite, with a typed API, fast queries from a SQL index, and conflicts
//! surfaced for humans, never dropped.
//!
//! ```no_run
//! use doorstep_core::*;
//! # fn main() -> Result<(), Error> {
//! let key = StoreKey::Raw([7u8; 32]); // from Android Keystore / iOS Keychain
//! let store = Store::open(StoreOptions::new("worker.db", key, WorkerId::new(), StationId::new()))?;
//! let hh = store.create_household(&NewHousehold { code: "HH-000001".into(), ..Default::default() })?;
//! let visit = store.start_visit(hh, &NewVisit {
//!     kind: VisitKind::Home, date: Date::parse("2026-11-29")?, started_at: Timestamp::now(),
//!     gps: None, other_workers: vec![], present: vec![], companions: vec![],
//! })?;
//! store.splice_section(hh, visit, Section::ActualNeeds, 0, 0, "需要申请困境儿童基本生活补贴")?;
//! assert_eq!(store.search("补贴", 10)?.len(), 1);
//! # Ok(()) }
//! ```

pub mod doc;
pub mod error;
pub mod model;
pub mod protocol;
pub mod read_model;
pub mod store;
#[cfg(feature = "http")]
pub mod transport;

pub use automerge::ChangeHash;
pub use doc::station::{CardBatch, CardLease};
pub use error::{Error, NetworkFailure, Result};
pub use model::attachment::{
    Attachment, AttachmentKind, BlobHash, BlobRef, NewAttachment, PhotoOptions,
    MAX_ATTACHMENT_BYTES,
};
pub use model::cards::CardSerial;
pub use model::id_number::{IdNumber, IdNumberError};
pub use model::ids::*;
pub use model::person_details::{
    CareCapacity, CareLevel, CodeList, Coded, Fen, GuardianshipKind, GuardianshipStatus, HukouType,
    SchoolStage, SchoolStatus, MAX_MONTHLY_FEN,
};
pub use model::policy::{EntityKind, MergePolicy};
pub use model::provenance::*;
pub use model::records::*;
pub use model::role::{Role, TeamName, MAX_TEAM_CHARS};
pub use model::station_work::{
    Activity, ActivityEdit, ActivitySummary, Attendee, NewActivity, NewResource, Referral,
    Resource, ResourceEdit, ResourceSummary, ResourceText, WorkKind,
};
pub use model::survey::{
    Answer, AnswerCount, AnswerValue, Question, QuestionKind, Respondent, ResponseStatus, Survey,
    SurveyOption, SurveyResponse, SurveySummary, SurveyVersion,
};
pub use model::time::{Date, Timestamp};
pub use model::values::*;
pub use model::vocabulary::{
    Category, CategoryCode, CategoryKind, CategoryPlace, EntryOrigin, StationEntry,
    StationVocabulary, Vocabulary, VocabularyEntry, BUILTIN_VOCABULARY_VERSION,
};
pub use model::worker_label::{WorkerLabel, MAX_WORKER_LABEL_CHARS};
pub use store::*;

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
