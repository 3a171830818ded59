"""`sync` as a field app drives it through the bindings: progress, a deadline, a cancel
handle, and a cancelled asyncio task, against a real server (or a link that never answers)
on 127.0.0.1."""
import asyncio
import os
import socket
import threading
import time

import pytest

import doorstep_ffi as d
from test_doorstep import household, visit


class StallingLink:
    """Accepts one connection, reads whatever comes, never answers; notes when the client
    hangs up (the Rust work that held the connection was stopped)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.hung_up = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        self.accepted.set()
        with conn:
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        self.hung_up.set()

    def close(self):
        self.sock.close()


class Progress(d.SyncProgressListener):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)


class States(d.Observer):
    def __init__(self):
        self.round_trips = []

    def on_event(self, event):
        if isinstance(event, d.ChangeEvent.SYNC_STATE_CHANGED) and isinstance(event.state, d.SyncState.SYNCING):
            self.round_trips.append(event.state.round_trips)


@pytest.fixture
def station(server):
    """A station of this test's own on the shared server."""
    return server.new_station("测试站")


def enrolled(server, station, tmp_path, label):
    e = asyncio.run(d.enroll(server.url, server.enrolment_code(label, station)))
    store = d.Doorstep.open(str(tmp_path / f"{label}.db"), os.urandom(32), e.worker_id, e.station_id, e.device_id)
    return store, e.token


def station_with_households(server, station, tmp_path, n):
    a, ta = enrolled(server, station, tmp_path, "甲")
    for i in range(n):
        household(a, code=f"HH-{i:06d}")
    report = asyncio.run(a.sync(server.url, ta))
    assert report.complete and report.acknowledged == n
    return a


def test_a_new_phone_hears_progress_that_matches_the_report(server, station, tmp_path):
    station_with_households(server, station, tmp_path, 12)
    b, tb = enrolled(server, station, tmp_path, "乙")
    progress, states = Progress(), States()
    sub = b.subscribe(states)
    report = asyncio.run(b.sync(server.url, tb, progress=progress))
    assert report.complete and report.snapshots >= 12
    assert len(progress.seen) == report.round_trips >= 1
    rounds = [p.round_trips for p in progress.seen]
    assert rounds == list(range(1, report.round_trips + 1))
    for before, after in zip(progress.seen, progress.seen[1:]):
        assert after.bytes_down > before.bytes_down
        assert after.documents_received >= before.documents_received
    last = progress.seen[-1]
    assert (last.bytes_up, last.bytes_down, last.snapshots) == (report.bytes_up, report.bytes_down, report.snapshots)
    # The twelve households and the station's own document (it carries the workers' labels).
    assert last.documents_received == 13
    assert not last.bootstrapping
    # A total to expect is given only while a bootstrap has more pages to come.
    assert all(p.snapshots_expected == report.snapshots for p in progress.seen if p.bootstrapping)
    assert last.snapshots_expected is None
    # Observers hear the same rounds as sync states.
    assert states.round_trips == [0, *rounds]
    sub.cancel()


def test_a_listener_that_throws_does_not_stop_the_sync(server, station, tmp_path):
    station_with_households(server, station, tmp_path, 2)
    b, tb = enrolled(server, station, tmp_path, "乙")

    class Broken(d.SyncProgressListener):
        def on_progress(self, progress):
            raise RuntimeError("listener bug")

    report = asyncio.run(b.sync(server.url, tb, progress=Broken()))
    assert report.complete and len(b.household_ids()) == 2


def test_a_spent_deadline_syncs_nothing_and_the_next_sync_catches_up(server, station, tmp_path):
    station_with_households(server, station, tmp_path, 3)
    b, tb = enrolled(server, station, tmp_path, "乙")
    report = asyncio.run(b.sync(server.url, tb, deadline_ms=0))
    assert not report.complete
    assert (report.round_trips, report.bytes_up, report.snapshots) == (0, 0, 0)
    assert b.household_ids() == []
    report = asyncio.run(b.sync(server.url, tb, deadline_ms=60_000))
    assert report.complete and len(b.household_ids()) == 3


def test_a_deadline_hangs_up_a_stalled_round_and_reports_it_incomplete(server, station, tmp_path):
    b, tb = enrolled(server, station, tmp_path, "乙")
    link = StallingLink()
    started = time.monotonic()
    report = asyncio.run(b.sync(link.url, tb, deadline_ms=500))
    assert time.monotonic() - started < 5
    assert not report.complete and report.round_trips == 0
    assert link.hung_up.wait(5)
    link.close()


def test_the_cancel_handle_stops_a_stalled_sync(server, station, tmp_path):
    b, tb = enrolled(server, station, tmp_path, "乙")
    household(b)
    cancel = d.SyncCancel()
    cancel.cancel()
    assert cancel.is_cancelled()
    with pytest.raises(d.DoorstepError.Cancelled) as e:
        asyncio.run(b.sync(server.url, tb, cancel=cancel))
    assert b.unsynced_count() == 1, "nothing was sent"

    link = StallingLink()
    cancel = d.SyncCancel()
    threading.Thread(target=lambda: (link.accepted.wait(10), cancel.cancel()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(d.DoorstepError.Cancelled):
        asyncio.run(b.sync(link.url, tb, cancel=cancel))
    assert time.monotonic() - started < 5, "stopped at once, not at the 60 s timeout"
    assert link.hung_up.wait(5), "the Rust work let go of its connection"
    link.close()
    # The store is fine and the next sync sends what waited.
    report = asyncio.run(b.sync(server.url, tb))
    assert report.complete and report.acknowledged == 1 and b.unsynced_count() == 0


def test_cancelling_the_asyncio_task_stops_the_rust_work(server, station, tmp_path):
    b, tb = enrolled(server, station, tmp_path, "乙")
    link = StallingLink()

    async def cancelled_mid_way():
        task = asyncio.ensure_future(b.sync(link.url, tb))
        while not link.accepted.is_set():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_mid_way())
    assert link.hung_up.wait(5), "dropping the call stopped the Rust work"
    link.close()


def test_a_visit_typed_offline_is_pending_until_the_server_acknowledges_it(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "丙")
    h = household(a, code="HH-700001")
    v = visit(a, h)
    a.splice_section(h, v, d.Section.CONCERNS, 0, 0, "孩子情绪低落")
    assert a.household_upload_status(h) == d.UploadStatus.PENDING()
    assert a.visit_upload_status(h, v) == d.UploadStatus.PENDING()
    before = int(time.time() * 1000)
    asyncio.run(a.sync(server.url, ta))
    status = a.visit_upload_status(h, v)
    assert isinstance(status, d.UploadStatus.UPLOADED) and before <= status.at_ms <= int(time.time() * 1000)
    assert isinstance(a.household_upload_status(h), d.UploadStatus.UPLOADED)
    assert a.refused_households() == []


def test_a_revoked_phone_is_wiped_by_its_sync(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "丁")
    household(a, code="HH-700002")
    asyncio.run(a.sync(server.url, ta))
    path = tmp_path / "丁.db"
    assert path.exists()
    server.revoke(a.device_id())
    with pytest.raises(d.DoorstepError.Unauthorized) as e:
        asyncio.run(a.sync(server.url, ta))
    assert e.value.wipe
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("丁.db")] == []
    with pytest.raises(d.DoorstepError.Closed):
        a.household_ids()
    a.wipe()  # what the app's handler does anyway: harmless
