"""Errors as an app sees them through the bindings: network failures told apart by kind,
every error with a message, and no personal data in any of them."""
import asyncio
import socket

import pytest

import doorstep_ffi as d
from test_doorstep import enrolled, household, new_store


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def network_error(store, url, token="t"):
    with pytest.raises(d.DoorstepError.Network) as e:
        asyncio.run(store.sync(url, token))
    return e.value


def test_network_failures_are_told_apart(server, tmp_path):
    store, token = enrolled(server, tmp_path, "网")
    port = free_port()
    cases = [
        (f"http://127.0.0.1:{port}", d.NetworkErrorKind.CONNECTION_REFUSED),
        ("http://doorstep-test.invalid", d.NetworkErrorKind.DNS),
        ("not a url", d.NetworkErrorKind.INVALID_URL),
        ("ftp://example.org", d.NetworkErrorKind.INVALID_URL),
        # TLS to a server that speaks plain HTTP (this build has no TLS at all).
        (server.url.replace("http://", "https://"), d.NetworkErrorKind.TLS),
    ]
    for url, kind in cases:
        e = network_error(store, url, token)
        assert e.kind == kind, (url, e.kind, e.reason)
        assert e.reason and e.reason != "error sending request", e.reason
        assert str(e), url
    # Enrolment reports the same kinds.
    with pytest.raises(d.DoorstepError.Network) as e:
        asyncio.run(d.enroll(f"http://127.0.0.1:{port}", "ABCD-EFGH"))
    assert e.value.kind == d.NetworkErrorKind.CONNECTION_REFUSED
    # After all that, the store syncs as before.
    assert asyncio.run(store.sync(server.url, token)).complete


def test_a_sync_that_cannot_connect_leaves_observers_offline_or_in_error(server, tmp_path):
    store, token = enrolled(server, tmp_path, "状态")
    states = []

    class Rec(d.Observer):
        def on_event(self, event):
            if isinstance(event, d.ChangeEvent.SYNC_STATE_CHANGED):
                states.append(event.state)

    sub = store.subscribe(Rec())
    network_error(store, f"http://127.0.0.1:{free_port()}", token)
    assert isinstance(states[-1], d.SyncState.OFFLINE), states
    network_error(store, "not a url", token)
    assert isinstance(states[-1], d.SyncState.ERROR) and states[-1].message, states
    sub.cancel()


def test_every_error_has_a_message_and_no_personal_data(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    name, id_number = "王晓明", "110101201403080011"
    errors = []
    # A name with a control character; an ID number with a date that does not exist.
    for bad in (
        d.NewPerson(name=name + "\x07", sex=d.Sex.MALE, birth_date=None, id_number=None,
                    relation="孙子", guardian=False, categories=[], school=None, grade=None),
        d.NewPerson(name=name, sex=d.Sex.MALE, birth_date=d.BirthDate(date="2014-02-30", estimated=False),
                    id_number=id_number,
                    relation="孙子", guardian=False, categories=[], school=None, grade=None),
    ):
        with pytest.raises(d.DoorstepError) as e:
            s.add_person(hh, bad)
        errors.append(e.value)
    with pytest.raises(d.DoorstepError.WrongKey) as e:
        new_store(tmp_path, key=bytes(32))
    errors.append(e.value)
    cancel = d.SyncCancel()
    cancel.cancel()
    with pytest.raises(d.DoorstepError.Cancelled) as e:
        asyncio.run(s.sync("http://127.0.0.1:9", "t", cancel=cancel))
    errors.append(e.value)
    s.wipe()
    with pytest.raises(d.DoorstepError.Closed) as e:
        s.household_ids()
    errors.append(e.value)
    for err in errors:
        text = str(err)
        assert text.strip(), repr(err)
        assert name not in text and "110101" not in text, text
