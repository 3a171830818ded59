//! # doorstep-ffi
//!
//! The Doorstep core for Kotlin, Swift and Python, through UniFFI proc-macros. Thin: each
//! method calls the core in one line and converts the answer where the bindings' records
//! differ from the core's. One error type ([`DoorstepError`]); ids and dates are the core's
//! newtypes, UUID and `YYYY-MM-DD` strings in the bindings (`ids.rs`, ADR 0030).
//!
//! Threading: a `Doorstep` may be called from any thread; calls are blocking (run them off
//! the UI thread) except `sync` and `enroll`, which are async (Kotlin coroutines / Swift
//! async / Python asyncio) and run on a tokio runtime this library owns, one per process.

#[cfg(target_os = "android")]
mod android;
mod attachments;
mod error;
mod id_number;
mod ids;
mod observe;
mod person_details;
mod station_work;
mod surveys;
mod sync;
mod text;
mod types;
mod visit_opening;
mod vocabulary;

use std::future::Future;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use doorstep_core as core;
use doorstep_core::{
    AmendmentId, CardIssuanceId, Date, DeviceId, FollowUpId, HouseholdId, InquiryId, NeedId,
    PersonId, ResolutionId, StationId, VisitId, WorkerId,
};

pub use attachments::{
    Attachment, AttachmentKind, AttachmentUpload, AttachmentUploadReport, AttachmentUploadState,
};
use error::{invalid, Result};
pub use error::{DoorstepError, NetworkErrorKind};
pub use id_number::{check_id_number, IdNumberCheck, IdNumberProblem};
use observe::Registry;
pub use observe::{ChangeEvent, Observer, ObserverError, Subscription, SyncState};
pub use person_details::{
    code_list, describe_code, Benefit, BenefitEdit, CareCapacity, CareLevel, CodeLabel, CodeList,
    Guardianship, GuardianshipEdit, GuardianshipKind, GuardianshipStatus, HukouType, NewBenefit,
    NewGuardianship, SchoolStage, SchoolStatus, VisitDue,
};
pub use station_work::{
    Activity, ActivityEdit, ActivitySummary, Attendee, NewActivity, NewResource, Referral,
    Resource, ResourceEdit, ResourceSummary, ResourceText,
};
pub use sync::{SyncCancel, SyncProgress, SyncProgressListener};
pub use text::{code_points_to_utf16, utf16_to_code_points};
pub use types::*;
pub use vocabulary::{
    CategoryCount, CategoryKind, CategoryState, CategoryValue, EntryOrigin, Vocabulary,
    VocabularyEntry,
};

uniffi::setup_scaffolding!();

/// The library's tokio runtime (one per process), for network work.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("doorstep")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the doorstep runtime: {e}"))
    })
}

/// Longest text one call may pass (characters); longer is refused before it reaches the core.
const MAX_INPUT_CHARS: usize = 200_000;

fn bounded(text: &str) -> Result<()> {
    if text.len() > MAX_INPUT_CHARS * 4 {
        return Err(invalid("text too long"));
    }
    Ok(())
}

fn position(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| invalid("position out of range"))
}

/// Run network work on the library's runtime. Dropping the returned future (a cancelled
/// coroutine, a cancelled Swift `Task`) aborts the work at its next `.await`: between
/// requests or while waiting for the network, never half-way through applying a response
/// (that is one synchronous transaction).
async fn on_runtime<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(runtime().spawn(work));
    (&mut task.0).await.map_err(|e| {
        if e.is_panic() {
            error::internal()
        } else {
            error::cancelled()
        }
    })?
}

#[cfg(target_os = "android")]
use android::https_ready;
/// Elsewhere the platform verifier needs no set-up (see `android::https_ready`).
#[cfg(not(target_os = "android"))]
fn https_ready(_server_url: &str) -> Result<()> {
    Ok(())
}

/// Exchange a one-time enrolment code (from the station admin) for this device's token.
#[uniffi::export]
pub async fn enroll(server_url: String, code: String) -> Result<Enrollment> {
    https_ready(&server_url)?;
    let e =
        on_runtime(async move { Ok(core::transport::enroll(&server_url, &code).await?) }).await?;
    Ok(Enrollment {
        token: e.token,
        device_id: e.device,
        worker_id: e.worker,
        station_id: e.station,
    })
}

/// One signed-in worker's store on this phone.
#[derive(uniffi::Object)]
pub struct Doorstep {
    store: RwLock<Option<Arc<core::Store>>>,
    observers: Arc<Registry>,
    /// What the syncs so far measured of the link: the next one chooses its budget from it
    /// (ADR 0039).
    link: core::transport::SharedLink,
}

impl std::fmt::Debug for Doorstep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Doorstep")
    }
}

/// Run one blocking call of the bindings: a panic in it (a bug) becomes
/// `DoorstepError::Internal`, like a panic on the runtime, instead of UniFFI's own internal
/// error that would carry the panic's message (which may quote data) to the app.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(error::internal()))
}

impl Doorstep {
    fn store(&self) -> Result<Arc<core::Store>> {
        self.store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(error::closed)
    }

    /// Run a write on a household and tell observers.
    fn write<T>(
        &self,
        id: HouseholdId,
        f: impl FnOnce(&core::Store, core::HouseholdId) -> core::Result<T>,
    ) -> Result<T> {
        let store = self.store()?;
        let out = f(&store, id)?;
        self.observers
            .emit(ChangeEvent::HouseholdChanged { household_id: id });
        Ok(out)
    }

    fn sync_state(&self, state: SyncState) {
        self.observers.emit(ChangeEvent::SyncStateChanged { state });
    }

    /// Tell observers about the households a sync changed. The core lists the station's own
    /// document (card leases) among them; it is not a household, so it is left out.
    fn pulled(&self, station: core::StationId, changed: &[core::HouseholdId]) {
        let store = self.store().ok();
        for h in changed.iter().filter(|h| h.as_uuid() != station.as_uuid()) {
            let work = store
                .as_ref()
                .and_then(|s| s.work_kind(*h).ok().flatten())
                .is_some();
            self.observers.emit(if work {
                ChangeEvent::StationWorkChanged {
                    document_id: h.to_string(),
                }
            } else {
                ChangeEvent::HouseholdChanged { household_id: *h }
            });
        }
    }

    /// Tell observers about the households the server erased and this phone deleted: a
    /// `HouseholdChanged` each, so a screen showing one re-reads it, finds it gone
    /// (`NotFound`) and can ask `household_upload_status` why (`Erased`).
    fn erased(&self, erased: &[core::ErasedHousehold]) {
        for e in erased {
            self.observers.emit(ChangeEvent::HouseholdChanged {
                household_id: e.household,
            });
        }
    }

    /// Households removed because they left the caseload: observers refresh them too.
    fn departed(&self, departed: &[core::HouseholdId]) {
        for h in departed {
            self.observers
                .emit(ChangeEvent::HouseholdChanged { household_id: *h });
        }
    }

    /// A visit section's text as stored (to convert UTF-16 positions against).
    fn section_text(
        &self,
        household: HouseholdId,
        visit: VisitId,
        section: Section,
    ) -> Result<String> {
        let household = self.store()?.household(household)?;
        let visit = household.visits.iter().find(|x| x.id == visit);
        Ok(visit
            .ok_or_else(|| DoorstepError::NotFound {
                what: "visit".into(),
            })?
            .section(section)
            .to_owned())
    }
}

#[uniffi::export]
impl Doorstep {
    /// Open (or create) the store at `path` with a 32-byte key (keep it in Android
    /// Keystore / iOS Keychain), for the signed-in worker of a station, on the device the
    /// server enrolled (`device_id` from `enroll`; `None` before enrolment).
    #[uniffi::constructor]
    pub fn open(
        path: String,
        key: Vec<u8>,
        worker_id: WorkerId,
        station_id: StationId,
        device_id: Option<DeviceId>,
    ) -> Result<Arc<Self>> {
        guarded(|| {
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| invalid("the key must be 32 bytes"))?;
            let mut options =
                core::StoreOptions::new(path, core::StoreKey::Raw(key), worker_id, station_id);
            options.device = device_id;
            let store = core::Store::open(options)?;
            Ok(Arc::new(Doorstep {
                store: RwLock::new(Some(Arc::new(store))),
                observers: Arc::default(),
                link: Default::default(),
            }))
        })
    }

    pub fn device_id(&self) -> Result<DeviceId> {
        guarded(|| Ok(self.store()?.device()))
    }

    pub fn worker_id(&self) -> Result<WorkerId> {
        guarded(|| Ok(self.store()?.worker()))
    }

    // ----- households and persons ----------------------------------------------------------

    pub fn create_household(&self, household: NewHousehold) -> Result<HouseholdId> {
        guarded(|| {
            let id = self.store()?.create_household(&household.to_core()?)?;
            self.observers
                .emit(ChangeEvent::HouseholdChanged { household_id: id });
            Ok(id)
        })
    }

    pub fn edit_household(&self, household_id: HouseholdId, edit: HouseholdEdit) -> Result<()> {
        guarded(|| {
            let edit = edit.to_core()?;
            self.write(household_id, |s, h| s.edit_household(h, &edit))
        })
    }

    /// Delete `delete` characters at `position` (Unicode code points) of the situation
    /// summary and insert `text` there. `\r\n` and `\r` in `text` are saved as `\n`.
    pub fn splice_summary(
        &self,
        household_id: HouseholdId,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            bounded(&text)?;
            let (p, d) = (self::position(position)?, self::position(delete)?);
            self.write(household_id, |s, h| s.splice_summary(h, p, d, &text))
        })
    }

    /// `splice_summary` with `position` and `delete` in UTF-16 units, as Kotlin, Java and
    /// Swift's `utf16` view count them (an `EditText` change, an `NSRange`).
    pub fn splice_summary_utf16(
        &self,
        household_id: HouseholdId,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            let current = self.household(household_id)?.summary;
            let (p, d) = text::utf16_span(&current, position, delete)?;
            self.splice_summary(household_id, p, d, text)
        })
    }

    /// The whole case file, recording nothing: for the app's own reads. To show it to the
    /// worker, `open_case_file`.
    pub fn household(&self, household_id: HouseholdId) -> Result<Household> {
        guarded(|| Ok(self.store()?.household(household_id)?.into()))
    }

    /// The whole case file, opened to be shown to the worker: who, this phone and when are
    /// appended to the phone's access log (on disk before this returns, offline too) and
    /// reach the server with the next syncs. Not for lists, search or background reads.
    pub fn open_case_file(&self, household_id: HouseholdId) -> Result<Household> {
        guarded(|| Ok(self.store()?.open_case_file(household_id)?.into()))
    }

    /// This phone's recorded openings of a household's case file, newest first (ids and
    /// times only).
    pub fn accesses_of(&self, household_id: HouseholdId) -> Result<Vec<CaseFileAccess>> {
        guarded(|| {
            Ok(self
                .store()?
                .accesses(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn household_ids(&self) -> Result<Vec<HouseholdId>> {
        guarded(|| Ok(self.store()?.household_ids()?))
    }

    pub fn add_person(&self, household_id: HouseholdId, person: NewPerson) -> Result<PersonId> {
        guarded(|| self.write(household_id, |s, h| s.add_person(h, &person)))
    }

    pub fn edit_person(
        &self,
        household_id: HouseholdId,
        person_id: PersonId,
        edit: PersonEdit,
    ) -> Result<()> {
        guarded(|| {
            let (p, edit) = (person_id, edit.to_core()?);
            self.write(household_id, |s, h| s.edit_person(h, p, &edit))
        })
    }

    // ----- visits ----------------------------------------------------------------------------

    pub fn start_visit(&self, household_id: HouseholdId, visit: NewVisit) -> Result<VisitId> {
        guarded(|| {
            let visit = visit.to_core()?;
            self.write(household_id, |s, h| s.start_visit(h, &visit))
        })
    }

    pub fn edit_visit(
        &self,
        household_id: HouseholdId,
        visit_id: VisitId,
        edit: VisitEdit,
    ) -> Result<()> {
        guarded(|| {
            let (v, edit) = (visit_id, edit.to_core()?);
            self.write(household_id, |s, h| s.edit_visit(h, v, &edit))
        })
    }

    /// Type into a draft visit's section: delete `delete` characters at `position`
    /// (Unicode code points) and insert `text`. Saved on disk when it returns. `\r\n` and
    /// `\r` in `text` are saved as `\n`.
    pub fn splice_section(
        &self,
        household_id: HouseholdId,
        visit_id: VisitId,
        section: Section,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            bounded(&text)?;
            let (v, p, d) = (visit_id, self::position(position)?, self::position(delete)?);
            self.write(household_id, |s, h| {
                s.splice_section(h, v, section, p, d, &text)
            })
        })
    }

    /// `splice_section` with `position` and `delete` in UTF-16 units, as an Android
    /// `EditText` (`TextWatcher.onTextChanged(s, start, before, count)`) or a Swift
    /// `NSRange` reports them. Refused if either end splits a surrogate pair.
    pub fn splice_section_utf16(
        &self,
        household_id: HouseholdId,
        visit_id: VisitId,
        section: Section,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            let current = self.section_text(household_id, visit_id, section)?;
            let (p, d) = text::utf16_span(&current, position, delete)?;
            self.splice_section(household_id, visit_id, section, p, d, text)
        })
    }

    pub fn finalise_visit(&self, household_id: HouseholdId, visit_id: VisitId) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.finalise_visit(h, visit_id)))
    }

    pub fn amend_visit(
        &self,
        household_id: HouseholdId,
        visit_id: VisitId,
        section: Option<Section>,
        text: String,
    ) -> Result<AmendmentId> {
        guarded(|| {
            bounded(&text)?;
            self.write(household_id, |s, h| {
                s.amend_visit(h, visit_id, section, &text)
            })
        })
    }

    // ----- needs, inquiries, follow-ups, cards -----------------------------------------------

    pub fn add_need(&self, household_id: HouseholdId, need: NewNeed) -> Result<NeedId> {
        guarded(|| {
            let need = need.to_core()?;
            self.write(household_id, |s, h| s.add_need(h, &need))
        })
    }

    pub fn set_need_status(
        &self,
        household_id: HouseholdId,
        need_id: NeedId,
        status: NeedStatus,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.set_need_status(h, need_id, status)))
    }

    pub fn add_inquiry(&self, household_id: HouseholdId, inquiry: NewInquiry) -> Result<InquiryId> {
        guarded(|| {
            let inquiry = inquiry.to_core()?;
            self.write(household_id, |s, h| s.add_inquiry(h, &inquiry))
        })
    }

    pub fn answer_inquiry(
        &self,
        household_id: HouseholdId,
        inquiry_id: InquiryId,
        answer: String,
    ) -> Result<()> {
        guarded(|| {
            self.write(household_id, |s, h| {
                s.answer_inquiry(h, inquiry_id, &answer)
            })
        })
    }

    pub fn set_inquiry_status(
        &self,
        household_id: HouseholdId,
        inquiry_id: InquiryId,
        status: InquiryStatus,
    ) -> Result<()> {
        guarded(|| {
            self.write(household_id, |s, h| {
                s.set_inquiry_status(h, inquiry_id, status)
            })
        })
    }

    pub fn add_follow_up(
        &self,
        household_id: HouseholdId,
        follow_up: NewFollowUp,
    ) -> Result<FollowUpId> {
        guarded(|| {
            let f = follow_up.to_core()?;
            self.write(household_id, |s, h| s.add_follow_up(h, &f))
        })
    }

    pub fn complete_follow_up(
        &self,
        household_id: HouseholdId,
        follow_up_id: FollowUpId,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.complete_follow_up(h, follow_up_id)))
    }

    pub fn cancel_follow_up(
        &self,
        household_id: HouseholdId,
        follow_up_id: FollowUpId,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.cancel_follow_up(h, follow_up_id)))
    }

    pub fn record_card_issuance(
        &self,
        household_id: HouseholdId,
        card: NewCardIssuance,
    ) -> Result<CardIssuanceId> {
        guarded(|| {
            let card = card.to_core()?;
            self.write(household_id, |s, h| s.record_card_issuance(h, &card))
        })
    }

    pub fn set_card_status(
        &self,
        household_id: HouseholdId,
        card_id: CardIssuanceId,
        status: CardStatus,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.set_card_status(h, card_id, status)))
    }

    /// Leave a card from this device's lease (check digit and lease checked).
    pub fn issue_card(
        &self,
        household_id: HouseholdId,
        card: NewCard,
        as_of: Date,
    ) -> Result<CardIssuanceId> {
        guarded(|| {
            let (card, day) = (card.to_core()?, as_of);
            self.write(household_id, |s, h| s.issue_card(h, &card, day))
        })
    }

    /// The serial to hand out next, if the device has cards left on `as_of`.
    pub fn next_card_serial(&self, as_of: Date) -> Result<Option<String>> {
        guarded(|| Ok(self.store()?.next_card_serial(as_of)?))
    }

    pub fn card_stock(&self, as_of: Date, warn_below: u32) -> Result<CardStock> {
        guarded(|| {
            let s = self.store()?.card_stock(as_of, warn_below)?;
            Ok(CardStock {
                remaining: s.remaining,
                low: s.low,
                next_serial: s.next,
            })
        })
    }

    pub fn card_leases(&self) -> Result<Vec<CardLease>> {
        guarded(|| {
            Ok(self
                .store()?
                .card_leases()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Serials issued to more than one household (after sync): review and void.
    pub fn duplicate_cards(&self) -> Result<Vec<DuplicateCard>> {
        guarded(|| {
            Ok(self
                .store()?
                .duplicate_cards()?
                .into_iter()
                .map(|d| DuplicateCard {
                    serial: d.serial,
                    issuances: d.issuances.into_iter().map(Into::into).collect(),
                })
                .collect())
        })
    }

    pub fn cards_of_household(&self, household_id: HouseholdId) -> Result<Vec<CardSummary>> {
        guarded(|| {
            Ok(self
                .store()?
                .cards_of_household(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn cards_issued_by(
        &self,
        worker_id: WorkerId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CardSummary>> {
        guarded(|| {
            let cards = self.store()?.cards_issued_by(
                worker_id,
                core::Timestamp(from_ms),
                core::Timestamp(to_ms),
            )?;
            Ok(cards.into_iter().map(Into::into).collect())
        })
    }

    // ----- names for ids -------------------------------------------------------------------

    /// The label the station gave a worker ("W01 / 张丽"), from the station document; `None`
    /// (a worker added since the last sync, another station's): show the id.
    pub fn worker_label(&self, worker_id: WorkerId) -> Result<Option<String>> {
        guarded(|| Ok(self.store()?.worker_label(worker_id)?))
    }

    /// Every label of this station's workers, ordered by label: read once per screen.
    pub fn worker_labels(&self) -> Result<Vec<WorkerLabel>> {
        guarded(|| {
            Ok(self
                .store()?
                .worker_labels()?
                .into_iter()
                .map(|(w, label)| WorkerLabel {
                    worker_id: w,
                    label,
                })
                .collect())
        })
    }

    // ----- conflicts and provenance ---------------------------------------------------------

    /// Open conflicts, of one household or all.
    pub fn conflicts(&self, household_id: Option<HouseholdId>) -> Result<Vec<Conflict>> {
        guarded(|| {
            Ok(self
                .store()?
                .conflicts(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Documents received but not applied or not readable, with why.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        guarded(|| {
            Ok(self
                .store()?
                .quarantined()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Pending, uploaded (when) or refused / quarantined (code and reason).
    pub fn household_upload_status(&self, household_id: HouseholdId) -> Result<UploadStatus> {
        guarded(|| Ok(self.store()?.household_upload_status(household_id)?.into()))
    }

    /// The same for one visit: uploaded once its newest change made here is acknowledged.
    pub fn visit_upload_status(
        &self,
        household_id: HouseholdId,
        visit_id: VisitId,
    ) -> Result<UploadStatus> {
        guarded(|| {
            let store = self.store()?;
            let (h, v) = (household_id, visit_id);
            Ok(store.visit_upload_status(h, v)?.into())
        })
    }

    /// Households the server erased that this phone held and deleted, newest first: show
    /// the worker why a household is gone and whether unsynced work on it was discarded.
    pub fn erased_households(&self) -> Result<Vec<ErasedHousehold>> {
        guarded(|| {
            Ok(self
                .store()?
                .erased_households()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// This worker's role as the server last said (absent before the first sync).
    pub fn role(&self) -> Result<Option<Role>> {
        guarded(|| Ok(self.store()?.role()?))
    }

    /// This worker's team as the server last said (its name), if any.
    pub fn team(&self) -> Result<Option<String>> {
        guarded(|| Ok(self.store()?.team()?.map(|t| t.as_str().to_owned())))
    }

    /// Households that left this worker's caseload, newest first.
    pub fn departed_households(&self) -> Result<Vec<DepartedHousehold>> {
        guarded(|| {
            Ok(self
                .store()?
                .departed_households()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Why a household is gone from this phone (erased, or left the caseload); absent if it
    /// is here or was never held.
    pub fn why_gone(&self, household_id: HouseholdId) -> Result<Option<GoneReason>> {
        guarded(|| Ok(self.store()?.why_gone(household_id)?.map(Into::into)))
    }

    /// Households refused by the server or quarantined here: the "needs attention" list.
    pub fn refused_households(&self) -> Result<Vec<RefusedHousehold>> {
        guarded(|| {
            Ok(self
                .store()?
                .refused_households()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn parallel_updates(
        &self,
        household_id: Option<HouseholdId>,
    ) -> Result<Vec<ParallelUpdate>> {
        guarded(|| {
            Ok(self
                .store()?
                .parallel_updates(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Resolve a conflict by choosing a value (recorded with who resolved it).
    pub fn resolve_conflict(
        &self,
        household_id: HouseholdId,
        field: FieldRef,
        chosen: Option<String>,
    ) -> Result<ResolutionId> {
        guarded(|| {
            let field = field.to_core()?;
            self.write(household_id, |s, h| {
                s.resolve_conflict(h, &field, chosen.as_deref())
            })
        })
    }

    /// Every value a field holds now, with who wrote it where and when.
    pub fn field_history(
        &self,
        household_id: HouseholdId,
        field: FieldRef,
    ) -> Result<Vec<FieldVersion>> {
        guarded(|| {
            let (h, field) = (household_id, field.to_core()?);
            Ok(types::versions(self.store()?.field_history(h, &field)?))
        })
    }

    // ----- queries (from the index) ----------------------------------------------------------

    pub fn households_in_village(&self, village: String) -> Result<Vec<HouseholdSummary>> {
        guarded(|| Ok(self.store()?.households_in_village(&village)?))
    }

    pub fn find_households_by_name(&self, part: String) -> Result<Vec<HouseholdSummary>> {
        guarded(|| {
            bounded(&part)?;
            Ok(self.store()?.find_households_by_name(&part)?)
        })
    }

    pub fn visits_between(&self, from: Date, to: Date) -> Result<Vec<VisitSummary>> {
        guarded(|| {
            let (f, t) = (from, to);
            Ok(self
                .store()?
                .visits_between(f, t)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn visits_by_worker(
        &self,
        worker_id: WorkerId,
        from: Date,
        to: Date,
    ) -> Result<Vec<VisitSummary>> {
        guarded(|| {
            let (w, f, t) = (worker_id, from, to);
            Ok(self
                .store()?
                .visits_by_worker(w, f, t)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn visits_of_household(&self, household_id: HouseholdId) -> Result<Vec<VisitSummary>> {
        guarded(|| {
            Ok(self
                .store()?
                .visits_of_household(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn follow_ups_due(&self, as_of: Date, within_days: u32) -> Result<Vec<FollowUpSummary>> {
        guarded(|| {
            let d = as_of;
            Ok(self
                .store()?
                .follow_ups_due(d, within_days)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn follow_ups_overdue(&self, as_of: Date) -> Result<Vec<FollowUpSummary>> {
        guarded(|| {
            let d = as_of;
            Ok(self
                .store()?
                .follow_ups_overdue(d)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn cards_by_serial(&self, serial: String) -> Result<Vec<CardSummary>> {
        guarded(|| {
            bounded(&serial)?;
            Ok(self
                .store()?
                .cards_by_serial(&serial)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Full-text search over notes (Chinese works; any length of query).
    pub fn search(&self, text: String, limit: u32) -> Result<Vec<SearchHit>> {
        guarded(|| {
            Ok(self
                .store()?
                .search(&text, limit)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Index the text typed since the search index was last brought up to date (each text
    /// once); `search` does it first itself. Call when typing pauses. Returns how many texts.
    pub fn flush_search_index(&self) -> Result<u32> {
        guarded(|| Ok(self.store()?.flush_search_index()?))
    }

    pub fn rebuild_index(&self) -> Result<()> {
        guarded(|| Ok(self.store()?.rebuild_index()?))
    }

    /// Households a newer app version wrote that this version cannot show: ask for an update.
    pub fn unreadable_household_ids(&self) -> Result<Vec<HouseholdId>> {
        guarded(|| Ok(self.store()?.unreadable_households()?))
    }

    /// Households with changes not yet acknowledged by the server.
    pub fn unsynced_count(&self) -> Result<u32> {
        guarded(|| Ok(self.store()?.unsynced_households()?.len() as u32))
    }

    // ----- observation ------------------------------------------------------------------------

    /// Hear about changes until the returned subscription is dropped or cancelled.
    pub fn subscribe(&self, observer: Arc<dyn Observer>) -> Arc<Subscription> {
        self.observers.add(observer)
    }

    // ----- sync without a transport -----------------------------------------------------------

    /// The next sync request body, to POST to `<server>/v1/sync` with
    /// `Authorization: Bearer <token>` over the app's own HTTP stack.
    pub fn prepare_sync_request(&self, budget_bytes: u32) -> Result<Vec<u8>> {
        guarded(|| Ok(self.store()?.prepare_sync_request(budget_bytes)?))
    }

    /// Apply a `200` response body; call `prepare_sync_request` again while `more`.
    pub fn apply_sync_response(&self, body: Vec<u8>) -> Result<SyncStep> {
        guarded(|| {
            let store = self.store()?;
            let outcome = store.apply_sync_response(&body)?;
            self.pulled(store.station(), &outcome.changed);
            self.erased(&outcome.erased);
            self.departed(&outcome.departed);
            let mut step = SyncStep::from(outcome);
            let station = store.station();
            step.changed_household_ids
                .retain(|h| h.as_uuid() != station.as_uuid());
            Ok(step)
        })
    }

    /// Erase this store from the phone (after the server said the device was revoked; `sync`
    /// does it itself). Every later call fails with `Closed`; calling it again does nothing.
    pub fn wipe(&self) -> Result<()> {
        guarded(|| {
            let taken = self.store.write().unwrap_or_else(|p| p.into_inner()).take();
            let Some(store) = taken else { return Ok(()) };
            match Arc::try_unwrap(store) {
                Ok(store) => Ok(store.wipe()?),
                Err(still_shared) => {
                    // A sync is running with it: put it back and let the app retry.
                    *self.store.write().unwrap_or_else(|p| p.into_inner()) = Some(still_shared);
                    Err(invalid("a sync is running; retry the wipe when it ends"))
                }
            }
        })
    }
}

#[uniffi::export]
impl Doorstep {
    /// Sync with the server until neither side has more (usually one round trip). Observers
    /// hear the sync state (`Syncing` after every round trip) and every household that
    /// changed. A revoked device gets `Unauthorized { wipe: true }` with its store already
    /// erased (files deleted, later calls `Closed`): delete the key and the token.
    ///
    /// - `deadline_ms`: stop cleanly within this many milliseconds (the rest of a WorkManager
    ///   or BGTaskScheduler window): no round trip is started that would not finish in time;
    ///   the report says `complete = false` and the next `sync` resumes where this one
    ///   stopped, without losing or repeating work.
    /// - `progress`: hears how far the sync has got after every round trip.
    /// - `cancel`: `cancel.cancel()` stops the work at its next safe point (`Cancelled`).
    #[uniffi::method(default(deadline_ms = None, progress = None, cancel = None))]
    pub async fn sync(
        &self,
        server_url: String,
        token: String,
        deadline_ms: Option<u64>,
        progress: Option<Arc<dyn SyncProgressListener>>,
        cancel: Option<Arc<SyncCancel>>,
    ) -> Result<SyncReport> {
        https_ready(&server_url)?;
        let store = self.store()?;
        let station = store.station();
        self.sync_state(SyncState::Syncing { round_trips: 0 });
        let observers = self.observers.clone();
        let link = self.link.clone();
        let control = core::transport::SyncControl {
            deadline: deadline_ms.map(|ms| std::time::Instant::now() + Duration::from_millis(ms)),
            cancel: cancel.map(|c| c.token.clone()).unwrap_or_default(),
            progress: Some(Arc::new(move |p: &core::transport::SyncProgress| {
                observers.emit(ChangeEvent::SyncStateChanged {
                    state: SyncState::Syncing {
                        round_trips: p.round_trips,
                    },
                });
                if let Some(listener) = &progress {
                    // A listener that throws is ignored: progress is advice, not the sync.
                    let _ = listener.on_progress(p.clone());
                }
            })),
        };
        let result = on_runtime(async move {
            let transport =
                core::transport::HttpTransport::new(&server_url, &token, Duration::from_secs(60))?
                    .with_link(link);
            Ok(transport.sync_with(&store, &control).await?)
        })
        .await;
        match result {
            Ok(report) => {
                self.pulled(station, &report.changed);
                self.erased(&report.erased);
                self.departed(&report.departed);
                self.sync_state(SyncState::Idle);
                Ok(report.into())
            }
            Err(e) => {
                if matches!(e, DoorstepError::Unauthorized { wipe: true }) {
                    // The core's sync erased the store's files: every later call is `Closed`.
                    self.store.write().unwrap_or_else(|p| p.into_inner()).take();
                }
                self.sync_state(match &e {
                    // No DNS answer is what a phone without a network usually sees.
                    DoorstepError::Network {
                        kind:
                            NetworkErrorKind::Offline
                            | NetworkErrorKind::Timeout
                            | NetworkErrorKind::Dns
                            | NetworkErrorKind::ConnectionRefused,
                        ..
                    } => SyncState::Offline,
                    other => SyncState::Error {
                        message: other.to_string(),
                    },
                });
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_blocking_call_is_internal_and_quotes_nothing() {
        let result: Result<()> = guarded(|| panic!("王晓明 110101200001011234"));
        let Err(DoorstepError::Internal { reason }) = result else {
            panic!("not Internal: {result:?}")
        };
        assert!(
            !reason.contains("王晓明") && !reason.contains("1101"),
            "{reason}"
        );
        assert_eq!(guarded(|| Ok(7)).unwrap(), 7);
    }

    /// Every blocking method the bindings export that can fail runs inside `guarded`, so a
    /// method added later without it fails here.
    #[test]
    fn every_exported_blocking_method_is_guarded() {
        // Every file with exports (a new one must be added here).
        let source = [
            include_str!("lib.rs"),
            include_str!("person_details.rs"),
            include_str!("vocabulary.rs"),
            include_str!("text.rs"),
            include_str!("id_number.rs"),
            include_str!("observe.rs"),
            include_str!("sync.rs"),
            include_str!("attachments.rs"),
        ]
        .join("\n");
        let lines: Vec<&str> = source.lines().collect();
        let (mut exported, mut checked) = (false, 0);
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if line.starts_with("#[uniffi::export]") {
                exported = true;
            } else if line == "}" {
                exported = false;
            }
            // A method of an exported impl, or an exported free function.
            let free = line.starts_with("pub fn ")
                && i > 0
                && lines[i - 1].starts_with("#[uniffi::export]");
            if (exported && line.starts_with("    pub fn ")) || free {
                let start = i;
                while !lines[i].trim_end().ends_with('{') {
                    i += 1;
                }
                let signature = lines[start..=i].join("\n");
                if signature.contains("-> Result<") {
                    let body = lines[i + 1].trim();
                    assert!(
                        body.starts_with("guarded(||") || body.starts_with("crate::guarded(||"),
                        "not guarded: {}",
                        lines[start].trim()
                    );
                    checked += 1;
                }
            }
            i += 1;
        }
        assert!(checked > 60, "the check found only {checked} methods");
    }

    #[test]
    fn a_panic_on_the_runtime_is_internal_and_quotes_nothing() {
        let result: Result<()> = runtime().block_on(on_runtime(async {
            panic!("王晓明 110101200001011234");
        }));
        let Err(DoorstepError::Internal { reason }) = result else {
            panic!("not Internal: {result:?}")
        };
        assert!(!reason.is_empty());
        assert!(
            !reason.contains("王晓明") && !reason.contains("1101"),
            "{reason}"
        );
    }
}
