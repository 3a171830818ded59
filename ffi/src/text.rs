//! Text as the platforms hand it over: positions in UTF-16 units (Kotlin `String`, Android
//! `EditText`, Swift `NSRange`/`String.utf16`) converted to the core's code points, and
//! Windows line endings normalised before the core sees them.

use crate::error::{invalid, Result};

/// `\r\n` and a lone `\r` become `\n` (text pasted from Windows or old Mac files); the core
/// refuses other control characters. Borrowed unchanged when there is no `\r`.
pub(crate) fn lines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    }
}

/// Owned variant of [`lines`] for record fields.
pub(crate) fn lines_owned(text: &str) -> String {
    lines(text).into_owned()
}

/// The code-point span of the UTF-16 span `position .. position + delete` of `current`.
/// Refused when either end falls inside a surrogate pair (half of 𠮷 or of an emoji) or
/// beyond the end of the text.
pub(crate) fn utf16_span(current: &str, position: u64, delete: u64) -> Result<(u64, u64)> {
    let end = position
        .checked_add(delete)
        .ok_or_else(|| invalid("position out of range"))?;
    let start = code_points_at(current, position)?;
    Ok((start, code_points_at(current, end)? - start))
}

/// How many code points of `text` lie before UTF-16 offset `offset`.
fn code_points_at(text: &str, offset: u64) -> Result<u64> {
    let (mut units, mut points) = (0u64, 0u64);
    for c in text.chars() {
        if units >= offset {
            break;
        }
        units += c.len_utf16() as u64;
        points += 1;
    }
    if units == offset {
        Ok(points)
    } else if units > offset {
        Err(invalid(
            "the position splits a character (a UTF-16 surrogate pair)",
        ))
    } else {
        Err(invalid("position out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_offsets_map_to_code_points() {
        // 吉 is one unit, 𠮷 and 👵 two each.
        let t = "吉𠮷a👵b";
        assert_eq!(utf16_span(t, 0, 0).ok(), Some((0, 0)));
        assert_eq!(utf16_span(t, 1, 2).ok(), Some((1, 1)));
        assert_eq!(utf16_span(t, 3, 1).ok(), Some((2, 1)));
        assert_eq!(utf16_span(t, 4, 2).ok(), Some((3, 1)));
        assert_eq!(utf16_span(t, 7, 0).ok(), Some((5, 0)));
        assert_eq!(utf16_span("", 0, 0).ok(), Some((0, 0)));
    }

    #[test]
    fn halves_of_a_surrogate_pair_and_overruns_are_refused() {
        let t = "吉𠮷a👵b";
        for (p, d) in [
            (2, 0),
            (1, 1),
            (5, 0),
            (4, 1),
            (8, 0),
            (7, 1),
            (0, u64::MAX),
        ] {
            assert!(utf16_span(t, p, d).is_err(), "{p} {d}");
        }
    }

    #[test]
    fn windows_and_old_mac_line_endings_become_newlines() {
        assert_eq!(lines("一\r\n二\r三\n四"), "一\n二\n三\n四");
        assert!(matches!(lines("无换行"), std::borrow::Cow::Borrowed(_)));
    }
}
