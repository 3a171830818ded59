//! A visit's companions as elements of its `companions` set: each element is the JSON
//! array `["<name>","<role>"]`, so a companion is one set element (added and removed
//! whole, with the provenance of its addition) and the key reads back unambiguously
//! whatever the texts hold.

use crate::doc::Doc;

use crate::doc::cells::{read_set, ObjId};
use crate::error::{Error, Result};
use crate::model::records::Companion;
use crate::model::values::{optional_line, required_line};

/// The set element of a companion the app passes: name required, role may be empty, both
/// trimmed one-line values.
pub(crate) fn element(c: &Companion) -> Result<String> {
    let name = required_line(&c.name, "a companion's name is required")?;
    let role = optional_line(&c.role)?;
    encode(&name, &role)
}

fn encode(name: &str, role: &str) -> Result<String> {
    serde_json::to_string(&[name, role])
        .map_err(|_| Error::InvalidInput("a companion cannot be encoded"))
}

/// The companion a set element holds. Only the form [`element`] writes is read: a key in
/// another form (other spacing, escapes, a third item, an empty name) would be a second
/// spelling of one companion, or not one at all.
pub(crate) fn parse_element(key: &str) -> Result<Companion> {
    let bad = || Error::NotAHousehold("malformed companion");
    let (name, role): (String, String) = serde_json::from_str(key).map_err(|_| bad())?;
    let canonical = Companion {
        name: required_line(&name, "").map_err(|_| bad())?,
        role: optional_line(&role).map_err(|_| bad())?,
    };
    if encode(&canonical.name, &canonical.role)? != key {
        return Err(bad());
    }
    Ok(canonical)
}

/// The companions of a visit, sorted by name, then role (none when the visit has no set:
/// it was recorded before companions existed).
pub(crate) fn read<R: Doc>(doc: &R, visit: &ObjId) -> Result<Vec<Companion>> {
    let mut out = read_set(doc, visit, "companions")?
        .iter()
        .map(|key| parse_element(key))
        .collect::<Result<Vec<_>>>()?;
    // The elements sort as JSON text, which is not quite name order (`"` sorts after `!`).
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_whatever_the_texts_hold() {
        for (name, role) in [
            ("李芳", "村儿童主任"),
            ("张警官", ""),
            ("O\"Brien \\ 𠮷", "民警, \"社区\" [2]"),
        ] {
            let c = Companion::new(name, role);
            let key = element(&c).unwrap();
            assert_eq!(parse_element(&key).unwrap(), c, "{key}");
        }
        let trimmed = element(&Companion::new("  李芳 ", " 村儿童主任 ")).unwrap();
        assert_eq!(trimmed, r#"["李芳","村儿童主任"]"#);
    }

    #[test]
    fn bad_companions_are_refused_on_write() {
        for (name, role) in [
            ("", "民警"),
            ("   ", ""),
            ("李\u{7}芳", ""),
            ("李芳", "a\nb"),
        ] {
            assert!(
                matches!(
                    element(&Companion::new(name, role)),
                    Err(Error::InvalidInput(_))
                ),
                "{name:?} {role:?}"
            );
        }
        let long = "长".repeat(501);
        assert!(element(&Companion::new(&long, "")).is_err());
        assert!(element(&Companion::new("李芳", &long)).is_err());
    }

    #[test]
    fn companions_read_in_name_order() {
        // As JSON text `["a!",…]` sorts before `["a",…]`; by name "a" comes first.
        let mut doc = automerge::AutoCommit::new();
        let visit = automerge::transaction::Transactable::put_object(
            &mut doc,
            automerge::ROOT,
            "visit",
            automerge::ObjType::Map,
        )
        .unwrap();
        let set = automerge::transaction::Transactable::put_object(
            &mut doc,
            &visit,
            "companions",
            automerge::ObjType::Map,
        )
        .unwrap();
        for c in [
            Companion::new("a!", ""),
            Companion::new("a", "z"),
            Companion::new("a", ""),
        ] {
            let key = element(&c).unwrap();
            automerge::transaction::Transactable::put(&mut doc, &set, key, 1).unwrap();
        }
        let names: Vec<(String, String)> = read(&doc, &visit)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.role))
            .collect();
        assert_eq!(
            names,
            [
                ("a".into(), "".into()),
                ("a".into(), "z".into()),
                ("a!".into(), "".into())
            ]
        );
    }

    #[test]
    fn only_the_written_form_reads() {
        for key in [
            "李芳",
            r#"["李芳"]"#,
            r#"["李芳","村儿童主任","x"]"#,
            r#"[ "李芳","村儿童主任"]"#,
            r#"["\u674e芳","村儿童主任"]"#,
            r#"[" 李芳","村儿童主任"]"#,
            r#"["","村儿童主任"]"#,
            r#"{"name":"李芳","role":""}"#,
            r#"["李芳",null]"#,
        ] {
            assert!(
                matches!(parse_element(key), Err(Error::NotAHousehold(_))),
                "{key}"
            );
        }
    }
}
