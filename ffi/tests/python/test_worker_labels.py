"""Names for ids (ADR 0017) through the real binary and the Python bindings: the admin
labels workers with `doorstep-server worker add / label`; a phone shows "W01 / 张丽" for a
worker id after its next sync, never another station's labels; bad labels are refused with
a clear message that does not quote them, and no label reaches a log line."""
import asyncio
import os
import socket
import subprocess
import time

import pytest

import doorstep_ffi as d
from conftest import SERVER, _cli
from test_sync import enrolled, station  # noqa: F401  (the station fixture)


def test_a_phone_learns_its_stations_labels_at_its_next_sync(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    other = server.new_station("河口镇社工站")
    zhang = _cli(server.data, "worker", "add", "--station", station, "--label", "W01 / 张丽")
    wang = _cli(server.data, "worker", "add", "--station", other, "--label", "W01 / 王芳")
    assert a.worker_label(zhang) is None, "not synced yet: the app shows the id"
    asyncio.run(a.sync(server.url, ta))
    assert a.worker_label(zhang) == "W01 / 张丽"
    assert a.worker_label(a.worker_id()) == "甲"
    assert a.worker_label(wang) is None
    assert [(w.worker_id, w.label) for w in a.worker_labels()] == [
        (zhang, "W01 / 张丽"),
        (a.worker_id(), "甲"),
    ]

    out = _cli(server.data, "worker", "label", "--worker", zhang, "--label", "W01 / 张丽华")
    assert zhang in out and "张丽" not in out
    _cli(server.data, "worker", "label", "--worker", wang, "--label", "W01 / 王芳芳")
    asyncio.run(a.sync(server.url, ta))
    assert a.worker_label(zhang) == "W01 / 张丽华"
    assert a.worker_label(wang) is None
    assert f"{zhang}\tW01 / 张丽华" in listed(server, station)
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.worker_label("not-a-worker-id")


def run(server, *args, log="trace"):
    env = {**os.environ, "DOORSTEP_LOG": log}
    return subprocess.run([str(SERVER), *args, "--data", str(server.data)], capture_output=True, text=True, env=env)


def listed(server, station):
    """`worker list`'s workers as "id<TAB>label" (the role and team follow, ADR 0019)."""
    return ["\t".join(line.split("\t")[:2]) for line in _cli(server.data, "worker", "list", "--station", station).splitlines()]


@pytest.mark.parametrize(
    "bad, why",
    [("", "empty"), ("\u3000 ", "empty"), ("张\n丽", "control"), ("张" * 65, "64"), ("W01\u202e丽张", "invisible")],
)
def test_the_cli_refuses_a_bad_label_without_quoting_it(server, station, bad, why):
    added = run(server, "worker", "add", "--station", station, "--label", bad)
    assert added.returncode != 0 and why in added.stderr, added.stderr
    assert "张" not in added.stderr
    worker = _cli(server.data, "worker", "add", "--station", station, "--label", "W09")
    relabelled = run(server, "worker", "label", "--worker", worker, "--label", bad)
    assert relabelled.returncode != 0 and why in relabelled.stderr, relabelled.stderr
    assert "张" not in relabelled.stderr
    assert f"{worker}\tW09" in listed(server, station)


def test_an_unknown_worker_or_station_is_an_error(server):
    r = run(server, "worker", "label", "--worker", "0190a0b0-0000-7000-8000-000000000001", "--label", "W10")
    assert r.returncode != 0 and "worker not found" in r.stderr
    r = run(server, "worker", "list", "--station", "0190a0b0-0000-7000-8000-000000000001")
    assert r.returncode != 0 and "no station" in r.stderr


def test_no_label_reaches_a_log_line(tmp_path):
    """A server of its own, logging everything (trace) to a file: the labels are written,
    published, served to a phone and relabelled, and appear in none of its lines."""
    data = tmp_path / "server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Own:
        pass

    own = Own()
    own.data = data
    st = run(own, "station", "create", "--name", "测试站").stdout.strip()
    logs = []
    added = run(own, "worker", "add", "--station", st, "--label", "W01 / 赵敏")
    worker = added.stdout.strip()
    logs.append(added.stderr)
    enrol = run(own, "device", "enroll", "--worker", worker).stdout
    code = next(line.split()[1] for line in enrol.splitlines() if line.startswith("code"))
    log_file = tmp_path / "serve.log"
    with open(log_file, "w") as err:
        proc = subprocess.Popen(
            # Metrics off: the session's server holds the default metrics port.
            [str(SERVER), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "DOORSTEP_LOG": "trace"},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, log_file.read_text()[-500:]
                    assert time.time() < deadline, "server did not start"
                    time.sleep(0.05)
            e = asyncio.run(d.enroll(url, code))
            phone = d.Doorstep.open(str(tmp_path / "p.db"), os.urandom(32), e.worker_id, e.station_id, e.device_id)
            asyncio.run(phone.sync(url, e.token))
            assert phone.worker_label(worker) == "W01 / 赵敏"
            relabelled = run(own, "worker", "label", "--worker", worker, "--label", "W01 / 赵敏敏")
            logs.append(relabelled.stderr)
            asyncio.run(phone.sync(url, e.token))
            assert phone.worker_label(worker) == "W01 / 赵敏敏"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    logs.append(log_file.read_text())
    assert any(worker in line or "sync" in line for line in logs[-1].splitlines()), "the server logged at all"
    for text in logs:
        assert "赵敏" not in text
