//! A station's pinned attachment kinds (ADR 0032): which kinds its phones download eagerly
//! after a sync (`signature`, say). A setting of the station document, so it reaches the
//! station's phones at their next sync, and no other station's; set with
//! `doorstep-server station pinned-attachments`. Kinds are not personal data.

use doorstep_core::doc::{pinned, station::station_doc_id};
use doorstep_core::{AttachmentKind, StationId, Timestamp};

use crate::snapshot::SnapshotError;
use crate::store::{ServerStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PinnedAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rule(#[from] doorstep_core::Error),
    #[error(transparent)]
    StoredDocument(#[from] SnapshotError),
    #[error("no station {0}")]
    NoStation(StationId),
}

/// Read a list of kinds as the CLI takes it: `signature,document` (any order, repeats
/// ignored), or `none`. Anything else is refused with the kinds there are.
pub fn parse_kinds(s: &str) -> Result<Vec<AttachmentKind>, doorstep_core::Error> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let kind = AttachmentKind::parse(part.trim()).map_err(|_| {
            doorstep_core::Error::InvalidInput(
                "attachment kinds are photo, signature, document (comma-separated) or none",
            )
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// The kinds a station pins (none until set).
pub fn pinned_kinds<S: ServerStore>(
    store: &S,
    station: StationId,
) -> Result<Vec<AttachmentKind>, PinnedAdminError> {
    if !store.station_exists(station)? {
        return Err(PinnedAdminError::NoStation(station));
    }
    match store.load_document(station_doc_id(station))? {
        None => Ok(Vec::new()),
        Some(stored) => {
            let doc = crate::snapshot::load_stored(&stored)?;
            Ok(pinned::read_pinned_kinds(&doc)?)
        }
    }
}

/// Pin exactly `kinds` for the station's phones; `false` when it pinned them already.
pub fn set_pinned_kinds<S: ServerStore>(
    store: &S,
    station: StationId,
    kinds: &[AttachmentKind],
) -> Result<bool, PinnedAdminError> {
    if !store.station_exists(station)? {
        return Err(PinnedAdminError::NoStation(station));
    }
    crate::station_doc::edit::<_, _, PinnedAdminError>(store, station, |doc| {
        pinned::set_pinned_kinds(doc, kinds, Timestamp::now())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_a_list_or_none_and_refuse_the_rest() {
        assert_eq!(
            parse_kinds(" signature, document,signature").unwrap(),
            [AttachmentKind::Signature, AttachmentKind::Document]
        );
        assert!(parse_kinds("NONE").unwrap().is_empty());
        for bad in ["", "video", "signature,,photo", "signatures"] {
            assert!(parse_kinds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_setting_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(dir.path()).unwrap();
        let station = store.create_station("站", 1).unwrap();
        assert!(pinned_kinds(&store, station).unwrap().is_empty());
        let sig = [AttachmentKind::Signature];
        assert!(set_pinned_kinds(&store, station, &sig).unwrap());
        let seq = store.high_water(station).unwrap();
        assert!(!set_pinned_kinds(&store, station, &sig).unwrap());
        assert_eq!(store.high_water(station).unwrap(), seq, "nothing appended");
        assert_eq!(pinned_kinds(&store, station).unwrap(), sig);
        assert!(matches!(
            pinned_kinds(&store, StationId::new()),
            Err(PinnedAdminError::NoStation(_))
        ));
    }
}
