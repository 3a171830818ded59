"""Fixtures: the generated bindings, and a real doorstep-server on 127.0.0.1."""
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BINDINGS = Path(os.environ.get("DOORSTEP_PY_BINDINGS", ROOT / "ffi" / "bindings" / "python"))
# Cargo's target directory: CARGO_TARGET_DIR when set (a worktree of its own), else target/.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
SERVER = Path(os.environ.get("DOORSTEP_SERVER_BIN", TARGET / "debug" / "doorstep-server"))
sys.path.insert(0, str(BINDINGS))
# The server's database is encrypted: a fresh key for the session, handed to every
# doorstep-server command through an environment variable (--key-env).
os.environ["DOORSTEP_KEY_ENV"] = "DOORSTEP_PYTEST_SERVER_KEY"
os.environ["DOORSTEP_PYTEST_SERVER_KEY"] = secrets.token_hex(32)


def _cli(data, *args):
    out = subprocess.run([str(SERVER), *args, "--data", str(data)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Server:
    def __init__(self, data, url):
        self.data = data
        self.url = url
        self.station = _cli(data, "station", "create", "--name", "石桥镇社工站")

    def new_station(self, name):
        """Another station on the same server: a test's own documents, nobody else's."""
        return _cli(self.data, "station", "create", "--name", name)

    def revoke(self, device_id):
        _cli(self.data, "device", "revoke", "--device", device_id)

    def enrolment_code(self, label, station=None):
        # Colleagues share the station's caseload unless a test assigns otherwise (ADR 0019).
        worker = _cli(self.data, "worker", "add", "--station", station or self.station, "--label", label, "--team", "station")
        out = _cli(self.data, "device", "enroll", "--worker", worker)
        return next(line.split()[1] for line in out.splitlines() if line.startswith("code"))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    assert SERVER.exists(), f"build the server first: cargo build -p doorstep-server ({SERVER})"
    data = tmp_path_factory.mktemp("server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(SERVER), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    yield Server(data, f"http://127.0.0.1:{port}")
    proc.terminate()
    proc.wait(timeout=10)
