//! A worker's label: how phones and the console name a worker ("W01 / 张丽") instead of
//! showing the id. The server keeps it (`workers.label`) and carries it to the station's
//! phones in the station document (ADR 0017). It may be a name, so it is never logged and
//! no error message quotes it.

use std::fmt;

use crate::error::Error;

/// Longest label, in characters (code points).
pub const MAX_WORKER_LABEL_CHARS: usize = 64;

/// A checked label: trimmed, 1 to [`MAX_WORKER_LABEL_CHARS`] characters, one line, no
/// invisible or direction-changing characters (a label is shown next to names: a bidi
/// override could make it read as someone else's).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerLabel(String);

impl WorkerLabel {
    /// Check a label as typed (surrounding spaces are dropped).
    pub fn new(label: &str) -> Result<WorkerLabel, Error> {
        let v = label.trim();
        if v.is_empty() {
            return Err(Error::InvalidInput("a worker label must not be empty"));
        }
        if v.chars().count() > MAX_WORKER_LABEL_CHARS {
            return Err(Error::InvalidInput(
                "a worker label is at most 64 characters",
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(Error::InvalidInput(
                "control characters (line breaks, tabs ...) are not allowed in a worker label",
            ));
        }
        if v.chars().any(invisible) {
            return Err(Error::InvalidInput(
                "invisible or direction-changing characters are not allowed in a worker label",
            ));
        }
        Ok(WorkerLabel(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Format characters that change how neighbouring text reads without showing themselves:
/// zero-width characters, bidirectional marks, embeddings, overrides and isolates, the
/// word joiner family and the byte-order mark.
pub(crate) fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Never shows the label: a `{:?}` in a log line must not carry a name.
impl fmt::Debug for WorkerLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerLabel({} chars)", self.0.chars().count())
    }
}

impl fmt::Display for WorkerLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for WorkerLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(label: &str) -> &'static str {
        match WorkerLabel::new(label) {
            Err(Error::InvalidInput(why)) => why,
            other => panic!("{label:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn a_label_is_trimmed_and_kept_as_written() {
        let l = WorkerLabel::new("  W01 / 张丽\u{3000}").unwrap();
        assert_eq!(l.as_str(), "W01 / 张丽");
        // 𠮷 is one character (two UTF-16 units): 64 of them fit.
        let long = "𠮷".repeat(MAX_WORKER_LABEL_CHARS);
        assert_eq!(WorkerLabel::new(&long).unwrap().as_str(), long);
    }

    #[test]
    fn empty_long_multi_line_and_invisible_labels_are_refused_without_quoting_them() {
        assert!(refused("").contains("empty"));
        assert!(refused(" \t\u{3000}").contains("empty"));
        assert!(refused(&"张".repeat(MAX_WORKER_LABEL_CHARS + 1)).contains("64"));
        for bad in ["张\n丽", "张\t丽", "张\u{7}丽", "张\u{85}丽"] {
            assert!(refused(bad).contains("control"), "{bad:?}");
        }
        for bad in [
            "W01\u{202E}丽张",
            "张\u{200B}丽",
            "\u{2066}张丽",
            "张\u{FEFF}丽",
        ] {
            assert!(refused(bad).contains("invisible"), "{bad:?}");
        }
        assert!(!refused("张\n丽").contains('张'));
    }

    #[test]
    fn debug_never_shows_the_label() {
        let l = WorkerLabel::new("W01 / 张丽").unwrap();
        let shown = format!("{l:?}");
        assert!(!shown.contains("张丽") && !shown.contains("W01"), "{shown}");
    }
}
