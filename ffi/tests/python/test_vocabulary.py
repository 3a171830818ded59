"""Controlled vocabularies (ADR 0018) through the real binary and the Python bindings: the
built-in categories with their labels, codes written and refused, a station's own category
added with `doorstep-server vocabulary add` reaching the phone at its next sync (never
another station's), lists and counts by code, an unknown code read as unknown, and bad
entries refused by the CLI with the rule."""
import asyncio
import os
import subprocess

import pytest

import doorstep_ffi as d
from conftest import SERVER, _cli
from test_sync import enrolled, station  # noqa: F401  (the station fixture)


def person(categories):
    return d.NewPerson(name="王小明", sex=d.Sex.MALE, birth_date=None, id_number=None, relation="孙子",
                       guardian=False, categories=categories, school=None, grade=None)


def new_household(s, code, tags=()):
    return s.create_household(d.NewHousehold(code=code, village="石桥村", address="一组", gps=None, phones=[],
                                             tags=list(tags), summary=""))


def run(server, *args):
    return subprocess.run([str(SERVER), *args, "--data", str(server.data)], capture_output=True, text=True,
                          env=dict(os.environ))


def test_the_built_in_vocabulary_has_labels_and_refuses_unknown_codes(tmp_path):
    s = d.Doorstep.open(str(tmp_path / "w.db"), os.urandom(32), "0190a0b0-0000-7000-8000-00000000000a",
                        "0190a0b0-0000-7000-8000-00000000000b", None)
    v = s.vocabulary()
    assert v.builtin_version >= 1 and v.station_version == 0
    codes = [e.code for e in v.entries]
    assert len(codes) == len(set(codes)) and codes == sorted(codes)
    assert all(e.label_zh and e.label_en and e.origin == d.EntryOrigin.BUILT_IN for e in v.entries)
    centralised = next(e for e in v.entries if e.code == "child.orphan.centralised")
    assert (centralised.label_zh, centralised.parent, centralised.kind) == ("孤儿（集中供养）", "child.orphan",
                                                                           d.CategoryKind.CHILD)
    hh = new_household(s, "HH-000001", ["household.dibao"])
    with pytest.raises(d.DoorstepError.InvalidInput) as refused:
        s.add_person(hh, person(["child.not_in_any_list"]))
    assert "unknown category code" in str(refused.value)
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.add_person(hh, person(["留守儿童"]))
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.edit_household(hh, d.HouseholdEdit.ADD_TAG(tag="child.orphan"))
    p = s.add_person(hh, person(["child.orphan.centralised"]))
    assert s.household(hh).persons[0].categories == ["child.orphan.centralised"]
    assert [h.code for h in s.households_in_category("child.orphan")] == ["HH-000001"]
    assert s.households_in_category("elderly.living_alone") == []
    counts = {c.code: (c.persons, c.households) for c in s.category_counts()}
    assert counts == {"child.orphan.centralised": (1, 1), "household.dibao": (0, 1)}
    s.edit_person(hh, p, d.PersonEdit.REMOVE_CATEGORY(category="child.orphan.centralised"))
    assert s.households_in_category("child.orphan") == []

    known = s.describe_category("household.dibao")
    assert (known.state, known.code, known.entry.label_zh) == (d.CategoryState.KNOWN, "household.dibao", "低保户")
    unknown = s.describe_category("child.from_a_newer_release")
    assert (unknown.state, unknown.code, unknown.entry) == (d.CategoryState.UNKNOWN, "child.from_a_newer_release", None)
    text = s.describe_category("留守")
    assert (text.state, text.stored, text.code, text.entry.label_zh) == (d.CategoryState.TEXT, "留守",
                                                                         "child.left_behind", "留守儿童")
    assert s.describe_category("重点关注").code is None


def test_a_station_category_reaches_its_phone_at_the_next_sync(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    other = server.new_station("河口镇社工站")
    b, tb = enrolled(server, other, tmp_path, "乙")
    hh = new_household(a, "HH-000001")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_person(hh, person(["local.flood"]))

    out = _cli(server.data, "vocabulary", "add", "--station", station, "--code", "local.flood",
               "--label-zh", "因灾困境儿童", "--label-en", "In difficulty after a flood", "--kind", "child",
               "--parent", "child.difficult")
    assert "version 1" in out
    _cli(server.data, "vocabulary", "add", "--station", station, "--code", "child.left_behind",
         "--label-zh", "农村留守儿童", "--kind", "child")
    listed = _cli(server.data, "vocabulary", "list", "--station", station, "--station-only").splitlines()
    assert listed[0] == "# built-in version 2, station version 2"
    assert listed[1:] == ["child.left_behind\tchild\t-\t农村留守儿童\tLeft-behind child\tstation-label",
                          "local.flood\tchild\tchild.difficult\t因灾困境儿童\tIn difficulty after a flood\tstation"]
    assert len(_cli(server.data, "vocabulary", "list", "--station", station).splitlines()) > 30

    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    v = a.vocabulary()
    assert v.station_version == 2
    flood = next(e for e in v.entries if e.code == "local.flood")
    assert (flood.label_zh, flood.origin, flood.parent) == ("因灾困境儿童", d.EntryOrigin.STATION, "child.difficult")
    assert next(e for e in v.entries if e.code == "child.left_behind").label_zh == "农村留守儿童"
    assert b.vocabulary().station_version == 0, "never another station's"
    assert all(e.code != "local.flood" for e in b.vocabulary().entries)

    a.add_person(hh, person(["local.flood"]))
    assert [h.code for h in a.households_in_category("child.difficult")] == ["HH-000001"]
    assert a.describe_category("local.flood").state == d.CategoryState.KNOWN
    assert b.describe_category("local.flood").state == d.CategoryState.UNKNOWN


@pytest.mark.parametrize(
    "args, why",
    [
        (["--code", "child.new_thing", "--label-zh", "新", "--kind", "child"], "local."),
        (["--code", "local.x", "--label-zh", "甲", "--kind", "pets"], "kind is child"),
        (["--code", "Local X", "--label-zh", "甲", "--kind", "child"], "lowercase ASCII"),
        (["--code", "local.x", "--label-zh", "张\n丽", "--kind", "child"], "control"),
        (["--code", "local.x", "--label-zh", "甲", "--kind", "elderly", "--parent", "child.orphan"], "same kind"),
        (["--code", "child.orphan", "--label-zh", "孤儿", "--kind", "household"], "kind"),
    ],
)
def test_the_cli_refuses_a_bad_entry_with_the_rule(server, station, args, why):
    r = run(server, "vocabulary", "add", "--station", station, *args)
    assert r.returncode != 0 and why in r.stderr, r.stderr
    assert "张" not in r.stderr
    assert _cli(server.data, "vocabulary", "list", "--station", station, "--station-only").splitlines()[1:] == []


def test_an_unknown_station_is_an_error(server):
    r = run(server, "vocabulary", "list", "--station", "0190a0b0-0000-7000-8000-000000000001")
    assert r.returncode != 0 and "no station" in r.stderr
