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


def test_a_file_is_attached_from_its_path_and_bad_paths_get_clear_errors(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "己")
    hh = household(a, code="HH-000012")
    scan = b"%PDF-1.4\n" + os.urandom(400_000)
    path = tmp_path / "scan.pdf"
    path.write_bytes(scan)
    att = a.add_attachment_file(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.DOCUMENT,
                                "application/pdf", str(path))
    assert att.hash == hashlib.sha256(scan).hexdigest() and att.size == len(scan)
    assert a.attachment_bytes(hh, att.hash) == scan
    asyncio.run(a.sync(server.url, ta))
    assert asyncio.run(a.upload_attachments(server.url, ta)).completed == 1

    with pytest.raises(d.DoorstepError.NotFound):
        a.add_attachment_file(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO,
                              "image/jpeg", str(tmp_path / "gone.jpg"))
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment_file(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO,
                              "image/jpeg", str(tmp_path))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment_file(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO,
                              "image/jpeg", str(empty))
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment_file(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO,
                              "image/jpeg", str(big))
    assert len(a.attachments(hh)) == 1 and len(a.attachment_uploads()) == 1


def test_the_station_pins_signatures_and_its_phones_fetch_them_by_default(server, tmp_path):
    own = server.new_station("钉站")
    a, ta = enrolled(server, own, tmp_path, "庚")
    b, tb = enrolled(server, own, tmp_path, "辛")
    hh = household(a, code="HH-000013")
    sig = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.SIGNATURE, "image/png", b"\x89PNG" + os.urandom(9_000))
    photo = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/jpeg", b"\xff\xd8" + os.urandom(9_000))
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(a.upload_attachments(server.url, ta))

    # Nothing pinned yet: the default fetches nothing.
    asyncio.run(b.sync(server.url, tb))
    assert b.pinned_attachment_kinds() == []
    assert asyncio.run(b.fetch_pinned_attachments(server.url, tb)).fetched == 0

    from conftest import _cli
    _cli(server.data, "station", "pinned-attachments", "--station", own, "--kinds", "signature")
    assert _cli(server.data, "station", "pinned-attachments", "--station", own) == "signature"
    asyncio.run(b.sync(server.url, tb))
    assert b.pinned_attachment_kinds() == [d.AttachmentKind.SIGNATURE]
    report = asyncio.run(b.fetch_pinned_attachments(server.url, tb))
    assert (report.fetched, report.waiting, report.failed) == (1, 0, 0)
    assert b.attachment_bytes(hh, sig.hash) is not None
    assert b.attachment_bytes(hh, photo.hash) is None
    # A list the app passes still overrides the station's setting.
    asyncio.run(b.fetch_pinned_attachments(server.url, tb, [d.AttachmentKind.PHOTO]))
    assert b.attachment_bytes(hh, photo.hash) is not None


def _png(width, height):
    """A real PNG (8-bit greyscale gradient), written with the standard library only."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes((x + y) % 256 for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _jpeg_size(data):
    """Width and height from a JPEG's start-of-frame marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    raise AssertionError("no frame")


def test_a_photo_is_scaled_with_a_thumbnail_and_a_damaged_one_is_refused(server, station, tmp_path):
    a, ta = enrolled(server, station, tmp_path, "壬")
    b, tb = enrolled(server, station, tmp_path, "癸")
    hh = household(a, code="HH-000014")
    options = d.PhotoOptions(longest_side=200, jpeg_quality=80, thumbnail_side=64)
    att = a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/png", _png(400, 300), options)
    assert att.mime == "image/jpeg" and att.thumbnail_hash is not None
    assert _jpeg_size(a.attachment_bytes(hh, att.hash)) == (200, 150)
    asyncio.run(a.sync(server.url, ta))
    assert asyncio.run(a.upload_attachments(server.url, ta)).completed == 2
    asyncio.run(b.sync(server.url, tb))
    thumb = asyncio.run(b.fetch_attachment_thumbnail(server.url, tb, hh, att.hash))
    assert _jpeg_size(thumb) == (64, 48)
    assert b.attachment_bytes(hh, att.hash) is None
    with pytest.raises(d.DoorstepError.InvalidInput):
        a.add_attachment(hh, d.RecordKind.HOUSEHOLD, None, d.AttachmentKind.PHOTO, "image/png", _png(40, 30)[:50], options)
    assert len(a.attachments(hh)) == 1
