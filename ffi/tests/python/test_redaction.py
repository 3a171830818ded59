"""Redacting inside a household's history (ADR 0026) through the real binary and the Python
bindings: the admin redacts a wrong ID number with `doorstep-server household redact` while
the server runs; at their next sync both phones hold the new generation without it, the one
with unsynced edits keeps them, and the bad inputs are refused with clear messages."""
import asyncio
import subprocess

import doorstep_ffi as d
from conftest import SERVER, _cli
from test_doorstep import household, visit
from test_sync import enrolled, station  # noqa: F401  (the station fixture)

ID_NUMBER = "110101201403080016"


def test_a_redacted_id_number_leaves_both_phones_and_unsynced_edits_stay(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    b, tb = enrolled(server, station, tmp_path, "乙")
    hh = household(a)
    child = a.add_person(hh, d.NewPerson(name="王小明", sex=d.Sex.MALE, birth_date=None, id_number=ID_NUMBER,
                                         relation="孙子", guardian=False, categories=[], school=None, grade=None))
    v = visit(a, hh)
    a.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "孩子不愿上学")
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    assert b.household(hh).persons[0].id_number == ID_NUMBER

    # B types offline; the station redacts the ID number meanwhile.
    b.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "【乙】")
    out = _cli(server.data, "household", "redact", "--station", station, "--household", hh,
               "--item", f"person/{child}/id_number", "--reason", "subject-request")
    assert "generation 1" in out and ID_NUMBER not in out

    ra = asyncio.run(a.sync(server.url, ta))
    assert [(r.household_id, r.generation, r.witnessed, r.discarded_edits) for r in ra.redacted] == [
        (hh, 1, True, 0)
    ]
    rb = asyncio.run(b.sync(server.url, tb))
    assert len(rb.redacted) == 1 and rb.redacted[0].discarded_edits == 0
    asyncio.run(a.sync(server.url, ta))
    for phone in (a, b):
        h = phone.household(hh)
        assert h.persons[0].id_number is None
        assert h.persons[0].name == "王小明"
        concerns = next(s.text for s in h.visits[0].sections if s.section == d.Section.CONCERNS)
        assert concerns == "【乙】孩子不愿上学"
        assert phone.search("不愿上学", 10) != []


def test_the_cli_refuses_bad_redactions(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    hh = household(a)
    asyncio.run(a.sync(server.url, ta))

    def run(*items, reason="subject-request"):
        args = ["household", "redact", "--station", station, "--household", hh, "--reason", reason]
        for i in items:
            args += ["--item", i]
        return subprocess.run([str(SERVER), *args, "--data", str(server.data)], capture_output=True, text=True)

    for bad, says in [
        (run("person/not-a-record"), "--item is"),
        (run("nothing/x/y"), "--item is"),
        (run("person/0190a0b0-0000-7000-8000-000000000001"), "not in the household"),
        (run("household//code"), "unreadable"),
        (run("household//address", reason="孩子的父亲要求"), "--reason must be one of"),
    ]:
        assert bad.returncode != 0, bad.stdout
        assert says in bad.stderr, bad.stderr
