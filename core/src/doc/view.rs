//! A read-only view of a document that reads each map object's keys in one pass.
//!
//! Reading a case file asks for every field of every record by key (`get_all` per field,
//! most of them absent), and automerge finds each key by a seek through its columns. The
//! view reads a map object's visible keys once (`map_range`, one pass) and answers
//! `get`/`get_all` of a key from that: a key with one value from the pass, a key holding
//! concurrent values (`conflict`) from the document itself, so every answer is the
//! document's. Everything else is passed through. For reads of a document no one changes
//! meanwhile (it is borrowed for the view's life).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::rc::Rc;

use automerge::iter::{DocIter, Keys, ListRange, MapRange, Spans, Values};
use automerge::marks::{Mark, MarkSet};
use automerge::{
    hydrate, AutomergeError, Change, ChangeHash, Cursor, CursorPosition, MoveCursor, ObjType,
    Parents, Prop, ReadDoc, Stats, TextEncoding, Value,
};

use super::cells::{Doc, ObjId};

/// One visible key of a map object: its value and op, or `None` where it holds several.
type Entry = Option<(Value<'static>, ObjId)>;
/// A map object's visible keys.
type KeysOf = Rc<HashMap<String, Entry>>;

/// See the module.
pub struct MapView<'a, R: Doc> {
    doc: &'a R,
    /// Per object read so far: its visible keys, or `None` if it is not a map.
    maps: RefCell<HashMap<ObjId, Option<KeysOf>>>,
}

impl<'a, R: Doc> MapView<'a, R> {
    pub fn new(doc: &'a R) -> Self {
        MapView {
            doc,
            maps: RefCell::new(HashMap::new()),
        }
    }

    /// The visible keys of `obj`, read once; `None` if it is not a map.
    fn map(&self, obj: &ObjId) -> Option<KeysOf> {
        if let Some(m) = self.maps.borrow().get(obj) {
            return m.clone();
        }
        let m = matches!(self.doc.object_type(obj), Ok(ObjType::Map | ObjType::Table)).then(|| {
            Rc::new(
                self.doc
                    .map_range(obj, ..)
                    .map(|item| {
                        let entry =
                            (!item.conflict).then(|| (item.value.clone().into_value(), item.id()));
                        (item.key.into_owned(), entry)
                    })
                    .collect(),
            )
        });
        self.maps.borrow_mut().insert(obj.clone(), m.clone());
        m
    }

    /// What the pass over `obj` says of `key`: `Some(None)` absent, `Some(Some(v))` its one
    /// value; `None` where only the document can answer (not a map, or concurrent values).
    fn known(&self, obj: &ObjId, key: &str) -> Option<Entry> {
        match self.map(obj)?.get(key) {
            None => Some(None),
            Some(Some(v)) => Some(Some(v.clone())),
            Some(None) => None,
        }
    }
}

impl<R: Doc> Doc for MapView<'_, R> {
    fn op_time(&self, id: &ObjId) -> Option<i64> {
        self.doc.op_time(id)
    }
}

impl<R: Doc> ReadDoc for MapView<'_, R> {
    fn get<O: AsRef<ObjId>, P: Into<Prop>>(
        &self,
        obj: O,
        prop: P,
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let obj = obj.as_ref();
        match prop.into() {
            Prop::Map(key) => match self.known(obj, &key) {
                Some(entry) => Ok(entry),
                None => self.doc.get(obj, key),
            },
            prop => self.doc.get(obj, prop),
        }
    }

    fn get_all<O: AsRef<ObjId>, P: Into<Prop>>(
        &self,
        obj: O,
        prop: P,
    ) -> Result<Vec<(Value<'_>, ObjId)>, AutomergeError> {
        let obj = obj.as_ref();
        match prop.into() {
            Prop::Map(key) => match self.known(obj, &key) {
                Some(entry) => Ok(entry.into_iter().collect()),
                None => self.doc.get_all(obj, key),
            },
            prop => self.doc.get_all(obj, prop),
        }
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Parents<'_>, AutomergeError> {
        self.doc.parents(obj)
    }
    fn parents_at<O: AsRef<ObjId>>(
        &self,
        obj: O,
        heads: &[ChangeHash],
    ) -> Result<Parents<'_>, AutomergeError> {
        self.doc.parents_at(obj, heads)
    }
    fn keys<O: AsRef<ObjId>>(&self, obj: O) -> Keys<'_> {
        self.doc.keys(obj)
    }
    fn keys_at<O: AsRef<ObjId>>(&self, obj: O, heads: &[ChangeHash]) -> Keys<'_> {
        self.doc.keys_at(obj, heads)
    }
    fn iter_at<O: AsRef<ObjId>>(&self, obj: O, heads: Option<&[ChangeHash]>) -> DocIter<'_> {
        self.doc.iter_at(obj, heads)
    }
    fn map_range<'b, O: AsRef<ObjId>, Q: RangeBounds<String> + 'b>(
        &'b self,
        obj: O,
        range: Q,
    ) -> MapRange<'b> {
        self.doc.map_range(obj, range)
    }
    fn map_range_at<'b, O: AsRef<ObjId>, Q: RangeBounds<String> + 'b>(
        &'b self,
        obj: O,
        range: Q,
        heads: &[ChangeHash],
    ) -> MapRange<'b> {
        self.doc.map_range_at(obj, range, heads)
    }
    fn list_range<O: AsRef<ObjId>, Q: RangeBounds<usize>>(
        &self,
        obj: O,
        range: Q,
    ) -> ListRange<'_> {
        self.doc.list_range(obj, range)
    }
    fn list_range_at<O: AsRef<ObjId>, Q: RangeBounds<usize>>(
        &self,
        obj: O,
        range: Q,
        heads: &[ChangeHash],
    ) -> ListRange<'_> {
        self.doc.list_range_at(obj, range, heads)
    }
    fn values<O: AsRef<ObjId>>(&self, obj: O) -> Values<'_> {
        self.doc.values(obj)
    }
    fn values_at<O: AsRef<ObjId>>(&self, obj: O, heads: &[ChangeHash]) -> Values<'_> {
        self.doc.values_at(obj, heads)
    }
    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        self.doc.length(obj)
    }
    fn length_at<O: AsRef<ObjId>>(&self, obj: O, heads: &[ChangeHash]) -> usize {
        self.doc.length_at(obj, heads)
    }
    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Result<ObjType, AutomergeError> {
        self.doc.object_type(obj)
    }
    fn marks<O: AsRef<ObjId>>(&self, obj: O) -> Result<Vec<Mark>, AutomergeError> {
        self.doc.marks(obj)
    }
    fn marks_at<O: AsRef<ObjId>>(
        &self,
        obj: O,
        heads: &[ChangeHash],
    ) -> Result<Vec<Mark>, AutomergeError> {
        self.doc.marks_at(obj, heads)
    }
    fn get_marks<O: AsRef<ObjId>>(
        &self,
        obj: O,
        index: usize,
        heads: Option<&[ChangeHash]>,
    ) -> Result<MarkSet, AutomergeError> {
        self.doc.get_marks(obj, index, heads)
    }
    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        self.doc.text(obj)
    }
    fn text_at<O: AsRef<ObjId>>(
        &self,
        obj: O,
        heads: &[ChangeHash],
    ) -> Result<String, AutomergeError> {
        self.doc.text_at(obj, heads)
    }
    fn spans<O: AsRef<ObjId>>(&self, obj: O) -> Result<Spans<'_>, AutomergeError> {
        self.doc.spans(obj)
    }
    fn spans_at<O: AsRef<ObjId>>(
        &self,
        obj: O,
        heads: &[ChangeHash],
    ) -> Result<Spans<'_>, AutomergeError> {
        self.doc.spans_at(obj, heads)
    }
    fn get_cursor<O: AsRef<ObjId>, I: Into<CursorPosition>>(
        &self,
        obj: O,
        position: I,
        at: Option<&[ChangeHash]>,
    ) -> Result<Cursor, AutomergeError> {
        self.doc.get_cursor(obj, position, at)
    }
    fn get_cursor_moving<O: AsRef<ObjId>, I: Into<CursorPosition>>(
        &self,
        obj: O,
        position: I,
        at: Option<&[ChangeHash]>,
        move_cursor: MoveCursor,
    ) -> Result<Cursor, AutomergeError> {
        self.doc.get_cursor_moving(obj, position, at, move_cursor)
    }
    fn get_cursor_position<O: AsRef<ObjId>>(
        &self,
        obj: O,
        cursor: &Cursor,
        at: Option<&[ChangeHash]>,
    ) -> Result<usize, AutomergeError> {
        self.doc.get_cursor_position(obj, cursor, at)
    }
    fn get_at<O: AsRef<ObjId>, P: Into<Prop>>(
        &self,
        obj: O,
        prop: P,
        heads: &[ChangeHash],
    ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        self.doc.get_at(obj, prop, heads)
    }
    fn hydrate<O: AsRef<ObjId>>(
        &self,
        obj: O,
        heads: Option<&[ChangeHash]>,
    ) -> Result<hydrate::Value, AutomergeError> {
        self.doc.hydrate(obj, heads)
    }
    fn get_all_at<O: AsRef<ObjId>, P: Into<Prop>>(
        &self,
        obj: O,
        prop: P,
        heads: &[ChangeHash],
    ) -> Result<Vec<(Value<'_>, ObjId)>, AutomergeError> {
        self.doc.get_all_at(obj, prop, heads)
    }
    fn get_missing_deps(&self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(heads)
    }
    fn get_change_by_hash(&self, hash: &ChangeHash) -> Option<Change> {
        self.doc.get_change_by_hash(hash)
    }
    fn stats(&self) -> Stats {
        self.doc.stats()
    }
    fn text_encoding(&self) -> TextEncoding {
        self.doc.text_encoding()
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test with its message.
    #![allow(clippy::unwrap_used)]

    use automerge::transaction::Transactable;
    use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};

    use super::MapView;

    /// A map with plain keys, a key two actors wrote concurrently, a deleted key, a nested
    /// map and a list.
    fn doc() -> Automerge {
        let mut a = Automerge::new().with_actor(ActorId::from(vec![1u8; 16]));
        let mut tx = a.transaction();
        let rec = tx.put_object(ROOT, "rec", ObjType::Map).unwrap();
        tx.put(&rec, "name", "张三").unwrap();
        tx.put(&rec, "sex", "m").unwrap();
        tx.put(&rec, "gone", "x").unwrap();
        let list = tx.put_object(&rec, "list", ObjType::List).unwrap();
        tx.insert(&list, 0, "a").unwrap();
        tx.commit();
        let mut b = a.fork().with_actor(ActorId::from(vec![2u8; 16]));
        let mut tx = a.transaction();
        tx.put(&rec, "name", "张三丰").unwrap();
        tx.delete(&rec, "gone").unwrap();
        tx.commit();
        let mut tx = b.transaction();
        tx.put(&rec, "name", "张珊").unwrap();
        tx.commit();
        a.merge(&mut b).unwrap();
        a
    }

    #[test]
    fn every_answer_is_the_documents() {
        let doc = doc();
        let view = MapView::new(&doc);
        let (_, rec) = doc.get(ROOT, "rec").unwrap().unwrap();
        assert_eq!(
            doc.get_all(&rec, "name").unwrap().len(),
            2,
            "the fixture conflicts"
        );
        for obj in [ROOT, rec.clone()] {
            for key in ["rec", "name", "sex", "gone", "list", "absent"] {
                assert_eq!(
                    view.get_all(&obj, key).unwrap(),
                    doc.get_all(&obj, key).unwrap(),
                    "get_all {key}"
                );
                assert_eq!(
                    view.get(&obj, key).unwrap(),
                    doc.get(&obj, key).unwrap(),
                    "get {key}"
                );
            }
        }
        // A list is read through the document.
        let (_, list) = doc.get(&rec, "list").unwrap().unwrap();
        assert_eq!(
            view.get_all(&list, 0).unwrap(),
            doc.get_all(&list, 0).unwrap()
        );
    }
}
