//! The station's controlled vocabulary (ADR 0018): entries a station adds to the built-in
//! categories (`local.…` codes) or relabels, written into the station document so the
//! station's phones get them at their next sync. The document is the only copy: nothing on
//! the server counts by category except the console's report, which reads it from there.
//!
//! Codes and category labels are not personal data; they are logged by code.

use doorstep_core::doc::station::{self, station_doc_id};
use doorstep_core::{StationEntry, StationId, Timestamp, Vocabulary};

use crate::snapshot::SnapshotError;
use crate::store::{ServerStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VocabularyAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry was refused (the rule) or the document could not be written.
    #[error(transparent)]
    Rule(#[from] doorstep_core::Error),
    #[error(transparent)]
    StoredDocument(#[from] SnapshotError),
    #[error("no station {0}")]
    NoStation(StationId),
}

/// The vocabulary in force for a station's phones: the built-in defaults with the entries
/// its station document carries (none: the defaults).
pub fn station_vocabulary<S: ServerStore>(
    store: &S,
    station: StationId,
) -> Result<Vocabulary, VocabularyAdminError> {
    if !store.station_exists(station)? {
        return Err(VocabularyAdminError::NoStation(station));
    }
    match store.load_document(station_doc_id(station))? {
        None => Ok(Vocabulary::builtin()),
        Some(stored) => {
            let doc = crate::snapshot::load_stored(&stored)?;
            Ok(Vocabulary::with_station(&station::read_vocabulary(&doc)?))
        }
    }
}

/// Add an entry to a station's vocabulary, or change one (a built-in code's labels, a
/// station code's labels or parent), after the rule of
/// [`Vocabulary::check_station_entry`] against the vocabulary the document holds. Returns
/// the station's new vocabulary version, or `None` when the document already said so.
pub fn set_entry<S: ServerStore>(
    store: &S,
    station: StationId,
    entry: &StationEntry,
) -> Result<Option<u64>, VocabularyAdminError> {
    if !store.station_exists(station)? {
        return Err(VocabularyAdminError::NoStation(station));
    }
    let version = crate::station_doc::edit::<_, _, VocabularyAdminError>(store, station, |doc| {
        let current = Vocabulary::with_station(&station::read_vocabulary(doc)?);
        let same_kind = current.lookup(entry.code.as_str()).map(|e| e.kind);
        if same_kind.is_some_and(|k| k != entry.kind) {
            return Err(doorstep_core::Error::InvalidInput(
                "a category keeps its kind: only its labels and parent can be changed",
            ));
        }
        current.check_station_entry(entry)?;
        station::set_vocabulary_entry(doc, entry, Timestamp::now())
    })?;
    if let Some(v) = version {
        tracing::info!(station = %station, code = %entry.code, version = v, "station vocabulary entry written");
    }
    Ok(version)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use doorstep_core::{CategoryCode, CategoryKind, EntryOrigin};

    use super::*;
    use crate::SqliteStore;

    fn entry(code: &str, kind: CategoryKind, parent: Option<&str>, zh: &str) -> StationEntry {
        StationEntry {
            code: CategoryCode::parse(code).unwrap(),
            kind,
            parent: parent.map(|p| CategoryCode::parse(p).unwrap()),
            label_zh: zh.into(),
            label_en: String::new(),
        }
    }

    #[test]
    fn entries_reach_their_own_station_document_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (a, b) = (
            store.create_station("A", 1).unwrap(),
            store.create_station("B", 1).unwrap(),
        );
        assert_eq!(
            station_vocabulary(&store, a).unwrap(),
            Vocabulary::builtin()
        );
        let flood = entry(
            "local.flood",
            CategoryKind::Child,
            Some("child.difficult"),
            "因灾困境儿童",
        );
        assert_eq!(set_entry(&store, a, &flood).unwrap(), Some(1));
        let seq = store.high_water(a).unwrap();
        assert_eq!(set_entry(&store, a, &flood).unwrap(), None, "already so");
        assert_eq!(store.high_water(a).unwrap(), seq, "no change written");
        let relabel = entry(
            "child.left_behind",
            CategoryKind::Child,
            None,
            "农村留守儿童",
        );
        assert_eq!(set_entry(&store, a, &relabel).unwrap(), Some(2));
        let v = station_vocabulary(&store, a).unwrap();
        assert_eq!(v.station_version, 2);
        assert_eq!(
            v.lookup("local.flood").unwrap().origin,
            EntryOrigin::Station
        );
        assert_eq!(
            v.lookup("child.left_behind").unwrap().label_zh,
            "农村留守儿童"
        );
        // A sub-category of the station's own.
        let sub = entry(
            "local.flood.house_lost",
            CategoryKind::Child,
            Some("local.flood"),
            "房屋受损",
        );
        assert_eq!(set_entry(&store, a, &sub).unwrap(), Some(3));
        assert_eq!(
            station_vocabulary(&store, b).unwrap(),
            Vocabulary::builtin()
        );
    }

    #[test]
    fn bad_entries_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = store.create_station("A", 1).unwrap();
        set_entry(
            &store,
            a,
            &entry("local.flood", CategoryKind::Child, None, "因灾"),
        )
        .unwrap();
        let seq = store.high_water(a).unwrap();
        for bad in [
            entry("child.new", CategoryKind::Child, None, "新"),
            entry("child.orphan", CategoryKind::Elderly, None, "孤儿"),
            entry("local.flood", CategoryKind::Elderly, None, "因灾"),
            entry("local.x", CategoryKind::Child, Some("local.nope"), "甲"),
            entry("local.x", CategoryKind::Elderly, Some("local.flood"), "甲"),
            entry("local.x", CategoryKind::Child, None, "甲\n乙"),
        ] {
            assert!(
                matches!(
                    set_entry(&store, a, &bad),
                    Err(VocabularyAdminError::Rule(
                        doorstep_core::Error::InvalidInput(_)
                    ))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(store.high_water(a).unwrap(), seq);
        assert!(matches!(
            set_entry(
                &store,
                StationId::new(),
                &entry("local.y", CategoryKind::Child, None, "乙")
            ),
            Err(VocabularyAdminError::NoStation(_))
        ));
    }
}
