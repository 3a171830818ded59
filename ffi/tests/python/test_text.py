"""Text through the bindings as Kotlin and Swift hand it over: UTF-16 positions (𠮷 and emoji
are two units, one character) and Windows line endings, on a real store file."""
import pytest

import doorstep_ffi as d
from test_doorstep import household, new_store, visit


def concerns(store, hh):
    (v,) = store.household(hh).visits
    return next(s.text for s in v.sections if s.section == d.Section.CONCERNS)


def utf16_len(text):
    return len(text.encode("utf-16-le")) // 2


def test_utf16_offsets_convert_both_ways():
    text = "孩子𠮷情绪😢低落"
    for points in range(len(text) + 1):
        units = utf16_len(text[:points])
        assert d.code_points_to_utf16(text, points) == units
        assert d.utf16_to_code_points(text, units) == points
    # Inside 𠮷 (units 2-3) and inside 😢 (units 6-7): refused, as is past the end.
    for half in (3, 7):
        with pytest.raises(d.DoorstepError.InvalidInput) as e:
            d.utf16_to_code_points(text, half)
        assert "surrogate" in e.value.reason
    with pytest.raises(d.DoorstepError.InvalidInput):
        d.utf16_to_code_points(text, utf16_len(text) + 1)
    with pytest.raises(d.DoorstepError.InvalidInput):
        d.code_points_to_utf16(text, len(text) + 1)


def test_typing_at_utf16_positions_around_astral_characters(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    v = visit(s, hh)
    edit = lambda pos, delete, text: s.splice_section_utf16(hh, v, d.Section.CONCERNS, pos, delete, text)
    edit(0, 0, "孩子情绪低落")
    edit(2, 0, "𠮷")              # 孩子𠮷情绪低落
    edit(4, 0, "很")              # right after 𠮷: UTF-16 4 is code point 3
    edit(utf16_len("孩子𠮷很情绪低落"), 0, "😢")
    assert concerns(s, hh) == "孩子𠮷很情绪低落😢"
    with pytest.raises(d.DoorstepError.InvalidInput):
        edit(3, 0, "x")          # between the halves of 𠮷
    with pytest.raises(d.DoorstepError.InvalidInput):
        edit(2, 1, "")           # deleting half of 𠮷
    edit(2, 2, "")                # a backspace over 𠮷 removes both units
    assert concerns(s, hh) == "孩子很情绪低落😢"
    # The summary takes UTF-16 positions too.
    s.splice_summary_utf16(hh, 0, 0, "👵")
    s.splice_summary_utf16(hh, 2, 0, "奶奶")
    assert s.household(hh).summary.startswith("👵奶奶")


def test_windows_line_endings_are_saved_as_newlines(tmp_path):
    s = new_store(tmp_path)
    hh = s.create_household(d.NewHousehold(
        code="HH-000009", village="石桥村", address="一组", gps=None, phones=[], tags=[],
        summary="第一行\r\n第二行\r第三行",
    ))
    v = visit(s, hh)
    s.splice_section_utf16(hh, v, d.Section.CONCERNS, 0, 0, "奶奶说：\r\n要去学校。\r\n")
    assert concerns(s, hh) == "奶奶说：\n要去学校。\n"
    assert s.household(hh).summary == "第一行\n第二行\n第三行"
    # Other control characters are still refused.
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "响铃\x07")
