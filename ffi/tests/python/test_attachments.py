"""Attachments (ADR 0023) through the Python bindings and the real server: a photo captured
on one phone is uploaded after sync, a second upload of the same bytes sends nothing, and a
colleague's phone receives the reference with sync and fetches the bytes on demand."""
import asyncio
import hashlib
import os

import pytest

import doorstep_ffi as d
from test_doorstep import household
from test_sync import enrolled, station  # noqa: F401  (the station fixture)


def test_a_photo_goes_up_after_sync_and_comes_down_on_demand(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "甲")
    b, tb = enrolled(server, station, tmp_path, "乙")
    hh = household(a)
    photo = b"\xff\xd8\xff" + os.urandom(150_000)
    att = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/jpeg", photo)
    assert att.hash == hashlib.sha256(photo).hexdigest()
    assert att.size == len(photo) and att.local
    [queued] = a.attachment_uploads()
    assert queued.state == d.AttachmentUploadState.PENDING() and queued.sent == 0

    # Before the household reaches the server, the upload waits (pending, not failed).
    early = asyncio.run(a.upload_attachments(server.url, ta))
    assert early.waiting == 1 and early.bytes_sent == 0
    asyncio.run(a.sync(server.url, ta))
    report = asyncio.run(a.upload_attachments(server.url, ta))
    assert report.completed == 1 and report.bytes_sent == len(photo)
    [done] = a.attachment_uploads()
    assert done.state == d.AttachmentUploadState.DONE() and done.sent == len(photo)

    asyncio.run(b.sync(server.url, tb))
    [ref] = b.attachments(hh)
    assert (ref.kind, ref.mime, ref.size, ref.hash, ref.local) == (
        d.AttachmentKind.PHOTO, "image/jpeg", len(photo), att.hash, False)
    assert ref.created.device_id == att.created.device_id
    assert b.attachment_bytes(hh, ref.hash) is None
    got = asyncio.run(b.fetch_attachment(server.url, tb, hh, ref.hash))
    assert got == photo
    assert b.attachment_bytes(hh, ref.hash) == photo
    assert b.attachments(hh)[0].local

    # The same bytes attached by B to the household: the server holds them, nothing is sent.
    b.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.DOCUMENT, "image/jpeg", photo)
    asyncio.run(b.sync(server.url, tb))
    again = asyncio.run(b.upload_attachments(server.url, tb))
    assert again.already_held == 1 and again.bytes_sent == 0


def test_bad_attachments_are_refused_with_clear_errors(server, station, tmp_path):
    a, _ = enrolled(server, station, tmp_path, "丙")
    hh = household(a, code="HH-000009")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/jpeg", b"")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "jpeg", b"x")
    with pytest.raises(d.DoorstepError):
        a.add_attachment(hh, d.RecordKind.VISIT, "0190a0b0-0000-7000-8000-000000000001",
                         d.AttachmentKind.SIGNATURE, "image/png", b"x")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.attachment_bytes(hh, "not-a-hash")
    assert a.attachments(hh) == [] and a.attachment_uploads() == []


def test_pinned_signatures_come_down_after_sync_and_photos_wait(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "丁")
    b, tb = enrolled(server, station, tmp_path, "戊")
    hh = household(a, code="HH-000011")
    sig = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.SIGNATURE, "image/png", b"\x89PNG" + os.urandom(20_000))
    photo = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/jpeg", b"\xff\xd8" + os.urandom(30_000))
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(a.upload_attachments(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    report = asyncio.run(b.fetch_pinned_attachments(server.url, tb, [d.AttachmentKind.SIGNATURE]))
    assert (report.fetched, report.waiting, report.failed) == (1, 0, 0)
    assert b.attachment_bytes(hh, sig.hash) is not None
    assert b.attachment_bytes(hh, photo.hash) is None
    again = asyncio.run(b.fetch_pinned_attachments(server.url, tb, [d.AttachmentKind.SIGNATURE]))
    assert again.fetched == 0
