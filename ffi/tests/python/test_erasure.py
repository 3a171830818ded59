"""Erasing a household (ADR 0016) through the real binary and the Python bindings: the
admin erases it with `doorstep-server household erase` while the server runs; at their next
sync both phones delete it, and the one with unsynced edits is told how many went."""
import asyncio
import subprocess

import pytest

import doorstep_ffi as d
from conftest import SERVER, _cli
from test_doorstep import Recorder, household, visit
from test_sync import enrolled, station  # noqa: F401  (the station fixture)


def test_an_erased_household_leaves_both_phones_and_discarded_edits_are_reported(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    b, tb = enrolled(server, station, tmp_path, "乙")
    hh = household(a)
    kept = household(a, code="HH-000002")
    v = visit(a, hh)
    a.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "孩子手臂有淤青")
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    assert b.household(hh).code == "HH-000001"

    # B works offline on the household; the station erases it meanwhile.
    b.edit_household(hh, d.HouseholdEdit.ADD_TAG(tag="household.poverty_monitoring"))
    out = _cli(server.data, "household", "erase", "--station", station, "--household", hh,
               "--reason", "subject-request")
    assert hh in out
    assert hh in _cli(server.data, "household", "erasures", "--station", station)

    rec = Recorder()
    sub = a.subscribe(rec)
    ra = asyncio.run(a.sync(server.url, ta))
    assert d.ChangeEvent.HOUSEHOLD_CHANGED(household_id=hh) in rec.events, "observers hear it is gone"
    del sub
    assert [(e.household_id, e.reason, e.discarded_changes) for e in ra.erased] == [
        (hh, d.ErasureReason.SUBJECT_REQUEST, 0)
    ]
    rb = asyncio.run(b.sync(server.url, tb))
    assert len(rb.erased) == 1 and rb.erased[0].discarded_changes == 1
    for phone in (a, b):
        with pytest.raises(d.DoorstepError.NotFound):
            phone.household(hh)
        status = phone.household_upload_status(hh)
        assert isinstance(status, d.UploadStatus.ERASED)
        assert status.reason == d.ErasureReason.SUBJECT_REQUEST
        assert [e.household_id for e in phone.erased_households()] == [hh]
        assert phone.household(kept).code == "HH-000002"
        assert phone.search("淤青", 10) == []


def test_the_cli_refuses_free_text_reasons_and_foreign_households(server, station):
    def run(*args):
        return subprocess.run([str(SERVER), *args, "--data", str(server.data)], capture_output=True, text=True)

    bad = run("household", "erase", "--station", station, "--household",
              "0190a0b0-0000-7000-8000-000000000001", "--reason", "孩子的父亲要求")
    assert bad.returncode != 0
    assert "subject-request" in bad.stderr and "孩子" not in bad.stderr
    absent = run("household", "erase", "--station", station, "--household",
                 "0190a0b0-0000-7000-8000-000000000001", "--reason", "other")
    assert absent.returncode != 0 and "not a household of this station" in absent.stderr


def test_retention_through_the_cli_erases_closed_households(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    closed = household(a, code="HH-CLOSED")
    kept = household(a, code="HH-OPEN")
    a.edit_household(closed, d.HouseholdEdit.STATUS(status=d.HouseholdStatus.CLOSED))
    asyncio.run(a.sync(server.url, ta))
    dry = _cli(server.data, "household", "retention", "--closed-for-days", "0", "--station", station, "--dry-run")
    assert closed in dry and kept not in dry and "dry run" in dry
    assert a.household(closed).code == "HH-CLOSED"
    done = _cli(server.data, "household", "retention", "--closed-for-days", "0", "--station", station)
    assert closed in done and "1 household(s)" in done
    report = asyncio.run(a.sync(server.url, ta))
    assert [(e.household_id, e.reason) for e in report.erased] == [(closed, d.ErasureReason.RETENTION_ENDED)]
    assert a.household(kept).code == "HH-OPEN"
