//! Text as the platforms hand it over: positions in UTF-16 units (Kotlin `String`, Android
//! `EditText`, Swift `NSRange`/`String.utf16`) converted to the core's code points and back.
//! (Windows line endings are normalised by the core's store, for every caller.)

use crate::error::{invalid, Result};

/// The code-point index of UTF-16 offset `utf16_offset` of `text` (Kotlin, Java and
/// Swift's `utf16` count UTF-16 units; the core counts code points). Refused inside a
/// surrogate pair (half of 𠮷 or of an emoji) and past the end.
#[uniffi::export]
pub fn utf16_to_code_points(text: String, utf16_offset: u64) -> Result<u64> {
    crate::guarded(|| code_points_at(&text, utf16_offset))
}

/// The UTF-16 offset of code-point index `code_points` of `text`: to place a cursor or a
/// selection the core reported. Refused past the end.
#[uniffi::export]
pub fn code_points_to_utf16(text: String, code_points: u64) -> Result<u64> {
    crate::guarded(|| to_utf16(&text, code_points))
}

fn to_utf16(text: &str, code_points: u64) -> Result<u64> {
    let mut units = 0u64;
    let mut chars = text.chars();
    for _ in 0..code_points {
        let c = chars
            .next()
            .ok_or_else(|| invalid("position out of range"))?;
        units += c.len_utf16() as u64;
    }
    Ok(units)
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
    fn the_conversions_are_inverse_on_character_boundaries() {
        let t = "吉𠮷a👵b".to_owned();
        let pairs = [(0, 0), (1, 1), (3, 2), (4, 3), (6, 4), (7, 5)];
        for (units, points) in pairs {
            assert_eq!(utf16_to_code_points(t.clone(), units).ok(), Some(points));
            assert_eq!(code_points_to_utf16(t.clone(), points).ok(), Some(units));
        }
        assert!(utf16_to_code_points(t.clone(), 2).is_err(), "inside 𠮷");
        assert!(code_points_to_utf16(t, 6).is_err(), "past the end");
    }
}
