"""The access log (issue 16) through the Python bindings and the real binary: opening a case
file on the phone records who, this phone and when, offline too; lists and search record
nothing; the next sync carries the entries and the server lists them (`doorstep-server
household accesses`), once each; erasing the household removes them on both sides."""
import asyncio

import pytest

import doorstep_ffi as d
from conftest import _cli
from test_doorstep import household
from test_sync import enrolled, station  # noqa: F401  (the station fixture)


def server_accesses(server, station, hh):
    out = _cli(server.data, "household", "accesses", "--station", station, "--household", hh)
    return [line.split("\t") for line in out.splitlines() if line]


def test_openings_on_the_phone_reach_the_server_once_and_go_with_an_erasure(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    hh = household(a)
    kept = household(a, code="HH-000002")
    asyncio.run(a.sync(server.url, ta))

    # Offline: the list, the search and the app's own read record nothing; two openings do.
    a.households_in_village("石桥村")
    a.search("祖孙", 10)
    a.household(hh)
    assert a.accesses_of(hh) == []
    opened = a.open_case_file(hh)
    assert opened.code == "HH-000001"
    a.open_case_file(hh)
    a.open_case_file(kept)
    log = a.accesses_of(hh)
    assert len(log) == 2 and log[0].at_ms > log[1].at_ms, "newest first"
    for e in log:
        assert (e.household_id, e.worker_id, e.device_id, e.synced) == (hh, a.worker_id(), a.device_id(), False)
    assert server_accesses(server, station, hh) == []

    asyncio.run(a.sync(server.url, ta))
    assert all(e.synced for e in a.accesses_of(hh))
    lines = server_accesses(server, station, hh)
    assert lines == [[str(e.at_ms), "device", a.worker_id(), a.device_id(), "case_file"] for e in log]
    # Syncing again sends nothing twice.
    asyncio.run(a.sync(server.url, ta))
    assert len(server_accesses(server, station, hh)) == 2

    with pytest.raises(d.DoorstepError.NotFound):
        a.open_case_file("0190c9a2-0000-7000-8000-000000000000")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.accesses_of("not-an-id")

    _cli(server.data, "household", "erase", "--station", station, "--household", hh, "--reason", "subject-request")
    assert server_accesses(server, station, hh) == []
    asyncio.run(a.sync(server.url, ta))
    assert a.accesses_of(hh) == []
    assert len(a.accesses_of(kept)) == 1
    assert len(server_accesses(server, station, kept)) == 1
