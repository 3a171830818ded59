"""Need-to-know (ADR 0019) through the real binary and the Python bindings: a worker's phone
holds their caseload, the supervisor's the station; `household assign` moves a household,
and the old phone uploads its offline edit before it lets the household go, and can say why
it is gone."""
import asyncio
import os
import subprocess

import pytest

import doorstep_ffi as d
from conftest import SERVER, _cli
from test_doorstep import Recorder, household, visit
from test_sync import station  # noqa: F401  (the station fixture)


def phone(server, station, tmp_path, label, *flags):
    worker = _cli(server.data, "worker", "add", "--station", station, "--label", label, *flags)
    out = _cli(server.data, "device", "enroll", "--worker", worker)
    code = next(line.split()[1] for line in out.splitlines() if line.startswith("code"))
    e = asyncio.run(d.enroll(server.url, code))
    store = d.Doorstep.open(str(tmp_path / f"{label}.db"), os.urandom(32), e.worker_id, e.station_id, e.device_id)
    return store, e.token, worker


def test_a_reassigned_household_moves_after_the_offline_edit_is_uploaded(server, station, tmp_path):
    a, ta, wa = phone(server, station, tmp_path, "A01")
    b, tb, wb = phone(server, station, tmp_path, "A02")
    s, ts, _ = phone(server, station, tmp_path, "S01", "--role", "supervisor")
    for p, t in ((a, ta), (b, tb), (s, ts)):
        asyncio.run(p.sync(server.url, t))
    assert a.role() == d.Role.WORKER and a.team() is None
    assert s.role() == d.Role.SUPERVISOR

    hh = household(a)
    v = visit(a, hh)
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    asyncio.run(s.sync(server.url, ts))
    with pytest.raises(d.DoorstepError.NotFound):
        b.household(hh)
    assert s.household(hh).code == "HH-000001"
    assert hh in _cli(server.data, "household", "scope", "--worker", wa)

    # A types offline; the station reassigns the household to B meanwhile.
    a.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "孩子最近常做噩梦")
    out = _cli(server.data, "household", "assign", "--station", station, "--household", hh, "--worker", wb)
    assert "1 worker(s) receive it and 1 remove it" in out
    assert wb in _cli(server.data, "household", "assignment", "--household", hh)

    rec = Recorder()
    sub = a.subscribe(rec)
    report = asyncio.run(a.sync(server.url, ta))
    assert report.departed_household_ids == [hh]
    assert d.ChangeEvent.HOUSEHOLD_CHANGED(household_id=hh) in rec.events
    del sub
    with pytest.raises(d.DoorstepError.NotFound):
        a.household(hh)
    gone = a.why_gone(hh)
    assert isinstance(gone, d.GoneReason.LEFT_CASELOAD)
    assert gone.departure.removed_at_ms is not None and gone.departure.discarded_changes == 0
    assert [x.household_id for x in a.departed_households()] == [hh]
    assert a.why_gone(household(a, code="HH-000002")) is None

    asyncio.run(b.sync(server.url, tb))
    (at_b,) = b.household(hh).visits
    concerns = next(x.text for x in at_b.sections if x.section == d.Section.CONCERNS)
    assert concerns == "孩子最近常做噩梦", "the offline edit came along"


def test_roles_and_teams_are_checked_by_the_cli(server, station):
    def run(*args):
        return subprocess.run([str(SERVER), *args, "--data", str(server.data)], capture_output=True, text=True)

    bad = run("worker", "add", "--station", station, "--label", "W09", "--role", "admin")
    assert bad.returncode != 0 and "worker, supervisor, county" in bad.stderr
    bad = run("worker", "add", "--station", station, "--label", "W09", "--team", "a\u200bb")
    assert bad.returncode != 0 and "team name" in bad.stderr
    w = _cli(server.data, "worker", "add", "--station", station, "--label", "W10", "--team", "北片")
    assert f"{w}\tW10\tworker\t北片" in _cli(server.data, "worker", "list", "--station", station).splitlines()
    out = _cli(server.data, "worker", "role", "--worker", w, "--role", "supervisor")
    assert "is now supervisor" in out
    assert f"{w}\tW10\tsupervisor\t北片" in _cli(server.data, "worker", "list", "--station", station).splitlines()
    assert "moved" in _cli(server.data, "worker", "team", "--worker", w, "--none")
