"""The generated Python bindings against the built library and a real server."""
import asyncio
import gc
import os
import time
import urllib.request

import pytest

import doorstep_ffi as d

KEY = bytes(range(32))


def new_store(tmp_path, name="w.db", worker=None, station=None, key=KEY):
    worker = worker or "01900000-0000-7000-8000-000000000001"
    station = station or "01900000-0000-7000-8000-0000000000aa"
    return d.Doorstep.open(str(tmp_path / name), key, worker, station, None)


def household(store, code="HH-000001"):
    return store.create_household(
        d.NewHousehold(
            code=code, village="石桥村", address="石桥村三组12号", gps=None,
            phones=["13800138000"], tags=["household.dibao"], summary="祖孙二人生活，父母外出务工。",
        )
    )


def visit(store, hh):
    return store.start_visit(
        hh,
        d.NewVisit(
            kind=d.VisitKind.HOME, date="2026-11-29", started_at_ms=int(time.time() * 1000),
            gps=None, other_worker_ids=[], present_person_ids=[],
        ),
    )


def enrolled(server, tmp_path, label):
    code = server.enrolment_code(label)
    e = asyncio.run(d.enroll(server.url, code))
    store = d.Doorstep.open(str(tmp_path / f"{label}.db"), os.urandom(32), e.worker_id, e.station_id, e.device_id)
    return store, e.token


def test_open_with_key_and_wrong_key(tmp_path):
    s = new_store(tmp_path)
    household(s)
    del s
    gc.collect()
    again = new_store(tmp_path)
    assert len(again.household_ids()) == 1
    with pytest.raises(d.DoorstepError.WrongKey):
        new_store(tmp_path, key=bytes(32))
    with pytest.raises(d.DoorstepError.InvalidInput):
        new_store(tmp_path, name="x.db", key=b"short")
    (tmp_path / "notes.txt").write_text("这不是数据库。" * 1000, encoding="utf-8")
    with pytest.raises(d.DoorstepError.NotAStore):
        d.Doorstep.open(str(tmp_path / "notes.txt"), KEY, "01900000-0000-7000-8000-000000000001",
                        "01900000-0000-7000-8000-0000000000aa", None)


def test_record_a_visit_and_find_it_in_chinese(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    v = visit(s, hh)
    s.splice_section(hh, v, d.Section.QUESTIONS_ASKED, 0, 0, "奶奶询问事实无人抚养儿童基本生活补助如何申请。")
    s.splice_section(hh, v, d.Section.QUESTIONS_ASKED, 2, 0, "（七十二岁）")
    text = s.household(hh).visits[0].sections
    asked = next(t.text for t in text if t.section == d.Section.QUESTIONS_ASKED)
    assert asked == "奶奶（七十二岁）询问事实无人抚养儿童基本生活补助如何申请。"
    # Typing only marks the section; the search index catches up once (ADR 0027).
    assert s.flush_search_index() == 1
    assert s.flush_search_index() == 0
    s.splice_section(hh, v, d.Section.QUESTIONS_ASKED, 0, 0, "今天")
    for q in ["补助", "事实无人抚养", "七十二岁", "今天奶奶"]:
        hits = s.search(q, 10)
        assert [h.record_id for h in hits] == [v], q
    assert s.search("不存在", 10) == []
    s.finalise_visit(hh, v)
    with pytest.raises(d.DoorstepError.VisitFinalised):
        s.splice_section(hh, v, d.Section.CONCERNS, 0, 0, "x")
    assert s.visits_of_household(hh)[0].status == d.VisitStatus.FINAL


def test_a_visit_opens_with_its_needs_follow_up_and_card_in_one_call(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    opened = s.open_visit(
        hh,
        d.VisitOpening(
            visit=d.NewVisit(
                kind=d.VisitKind.HOME, date="2026-11-29", started_at_ms=int(time.time() * 1000),
                gps=None, other_worker_ids=[], present_person_ids=[],
            ),
            needs=[d.NewNeed(category="医疗救助", description="奶奶的药费", person_id=None, visit_id=None)],
            follow_ups=[d.NewFollowUp(what="送医保材料", due="2026-12-05",
                                      assignee_worker_id=s.worker_id(), origin_visit_id=None)],
            card=d.NewCardIssuance(serial="HG-010001", visit_id=None, person_id=None, replaces_card_id=None),
        ),
    )
    h = s.household(hh)
    assert [v.id for v in h.visits] == [opened.visit_id]
    assert [n.id for n in h.needs] == opened.need_ids
    assert h.needs[0].visit_id == opened.visit_id
    assert [f.id for f in h.follow_ups] == opened.follow_up_ids
    assert h.cards[0].id == opened.card_id and h.cards[0].visit_id == opened.visit_id
    # One refused part writes nothing.
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.open_visit(hh, d.VisitOpening(
            visit=d.NewVisit(kind=d.VisitKind.HOME, date="2026-11-30", started_at_ms=0, gps=None,
                             other_worker_ids=[], present_person_ids=[]),
            needs=[], follow_ups=[d.NewFollowUp(what=" ", due="2026-12-05",
                                                 assignee_worker_id=s.worker_id(), origin_visit_id=None)],
            card=None,
        ))
    assert len(s.household(hh).visits) == 1


def test_health_and_study_sections(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    v = visit(s, hh)
    s.splice_section(hh, v, d.Section.HEALTH, 0, 0, "哮喘，每月到镇卫生院复诊。")
    s.splice_section(hh, v, d.Section.STUDY, 0, 0, "三年级，数学跟不上。")
    sections = {t.section: t.text for t in s.household(hh).visits[0].sections}
    assert sections[d.Section.HEALTH] == "哮喘，每月到镇卫生院复诊。"
    assert sections[d.Section.STUDY] == "三年级，数学跟不上。"
    assert [h.field for h in s.search("卫生院复诊", 10)] == ["health"]
    s.finalise_visit(hh, v)
    with pytest.raises(d.DoorstepError.VisitFinalised):
        s.splice_section(hh, v, d.Section.STUDY, 0, 0, "x")


def test_bad_inputs_raise_the_public_error(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    v = visit(s, hh)
    cases = [
        lambda: s.household("not-a-uuid"),
        lambda: s.splice_section(hh, "zzz", d.Section.CONCERNS, 0, 0, "x"),
        lambda: s.splice_section(hh, v, d.Section.CONCERNS, 5, 0, "x"),
        lambda: s.splice_section(hh, v, d.Section.CONCERNS, 2**63, 2**63, ""),
        lambda: s.visits_between("2026-02-30", "2026-03-01"),
        lambda: s.add_person(hh, d.NewPerson(name=" ", sex=d.Sex.UNKNOWN, birth_date=None, id_number=None,
                                             relation="", guardian=False, categories=[], school=None, grade=None)),
        lambda: s.edit_household(hh, d.HouseholdEdit.ADD_PHONE(phone="call me")),
        lambda: s.edit_household(hh, d.HouseholdEdit.GPS(gps=d.GeoPoint(lat=91.0, lon=0.0))),
        lambda: s.splice_summary(hh, 0, 0, "长" * 1_000_000),
        lambda: s.search("", 10),
        lambda: s.apply_sync_response(b"garbage"),
    ]
    for i, call in enumerate(cases):
        with pytest.raises(d.DoorstepError) as err:
            call()
        assert "13800138000" not in str(err.value), i
    with pytest.raises(d.DoorstepError.NotFound):
        s.household("01900000-0000-7000-8000-00000000ffff")
    # Ids and dates are parsed by the bindings (custom types, ADR 0030), inside records and
    # lists too: a malformed one is InvalidInput before the call runs, and nothing is written.
    before = s.household(hh)
    for call in [
        lambda: s.add_need(hh, d.NewNeed(category="x", description="y", person_id="zzz", visit_id=None)),
        lambda: s.start_visit(hh, d.NewVisit(kind=d.VisitKind.HOME, date="2026-11-29", started_at_ms=0, gps=None,
                                             other_worker_ids=["01900000-0000-7000-8000-000000000001", "w"],
                                             present_person_ids=[])),
        lambda: s.start_visit(hh, d.NewVisit(kind=d.VisitKind.HOME, date="29/11/2026", started_at_ms=0, gps=None,
                                             other_worker_ids=[], present_person_ids=[])),
        lambda: s.edit_visit(hh, v, d.VisitEdit.ADD_PRESENT(person_id="")),
        lambda: s.conflicts("not-a-uuid"),
    ]:
        with pytest.raises(d.DoorstepError.InvalidInput):
            call()
    assert s.household(hh) == before


class Recorder(d.Observer):
    def __init__(self):
        self.events = []

    def on_event(self, event):
        self.events.append(event)


class Thrower(d.Observer):
    def on_event(self, event):
        raise RuntimeError("app bug in an observer")


def test_observers_hear_changes_and_a_throwing_one_is_harmless(tmp_path):
    s = new_store(tmp_path)
    rec = Recorder()
    sub = s.subscribe(rec)
    thrower_sub = s.subscribe(Thrower())
    hh = household(s)
    s.edit_household(hh, d.HouseholdEdit.ADD_TAG(tag="household.dibao_marginal"))
    changed = [e for e in rec.events if isinstance(e, d.ChangeEvent.HOUSEHOLD_CHANGED)]
    assert [e.household_id for e in changed] == [hh, hh]
    # Cancelled (or dropped) subscriptions hear nothing more.
    sub.cancel()
    del thrower_sub
    gc.collect()
    s.edit_household(hh, d.HouseholdEdit.ADD_TAG(tag="household.poverty_monitoring"))
    assert len(rec.events) == 2
    assert "household.poverty_monitoring" in s.household(hh).tags


def test_two_stores_converge_through_the_server_and_a_name_conflict_is_resolved(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "A")
    b, tb = enrolled(server, tmp_path, "B")
    rec = Recorder()
    _sub = b.subscribe(rec)
    hh = household(a)
    p = a.add_person(hh, d.NewPerson(name="王晓明", sex=d.Sex.MALE, birth_date=d.BirthDate(date="2014-03-08", estimated=False),
                                     id_number=None, relation="孙子", guardian=False, categories=["child.unsupported"],
                                     school=None, grade=None))
    asyncio.run(a.sync(server.url, ta))
    report = asyncio.run(b.sync(server.url, tb))
    assert report.round_trips == 1
    assert b.household(hh).persons[0].name == "王晓明"
    states = [e.state for e in rec.events if isinstance(e, d.ChangeEvent.SYNC_STATE_CHANGED)]
    assert isinstance(states[0], d.SyncState.SYNCING) and isinstance(states[-1], d.SyncState.IDLE)
    assert any(isinstance(e, d.ChangeEvent.HOUSEHOLD_CHANGED) and e.household_id == hh for e in rec.events)

    # Offline, both correct the name differently.
    a.edit_person(hh, p, d.PersonEdit.NAME(name="王小明"))
    b.edit_person(hh, p, d.PersonEdit.NAME(name="汪晓明"))
    for _ in range(2):
        asyncio.run(a.sync(server.url, ta))
        asyncio.run(b.sync(server.url, tb))
    for store in (a, b):
        conflicts = store.conflicts(None)
        assert len(conflicts) == 1
        assert sorted(v.value for v in conflicts[0].values) == ["汪晓明", "王小明"]
        assert conflicts[0].field.record == d.RecordKind.PERSON
    b.resolve_conflict(hh, b.conflicts(None)[0].field, "王小明")
    asyncio.run(b.sync(server.url, tb))
    asyncio.run(a.sync(server.url, ta))
    assert a.conflicts(None) == [] and b.conflicts(None) == []
    assert a.household(hh) == b.household(hh)
    assert a.household(hh).persons[0].name == "王小明"


def test_transport_free_sync_with_pythons_own_http_client(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "C")
    b, tb = enrolled(server, tmp_path, "D")
    hh = household(a, "HH-PY0001")

    def sync_with_urllib(store, token):
        rounds = 0
        while True:
            body = store.prepare_sync_request(1 << 20)
            req = urllib.request.Request(
                server.url + "/v1/sync", data=body, method="POST",
                headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-doorstep-sync"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                step = store.apply_sync_response(resp.read())
            rounds += 1
            if not step.more:
                return rounds

    assert sync_with_urllib(a, ta) == 1
    sync_with_urllib(b, tb)
    assert b.household(hh).code == "HH-PY0001"
    # Nothing was held back: the quarantine list (documents not applied or not readable) is
    # empty, and a response that is not one is refused without touching it.
    assert b.quarantined() == []
    with pytest.raises(Exception):
        b.apply_sync_response(b"not a response")
    assert b.quarantined() == []
    # A bad token gets a 401 from the server.
    req = urllib.request.Request(server.url + "/v1/sync", data=a.prepare_sync_request(1024), method="POST",
                                 headers={"Authorization": "Bearer nope"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401


def test_cards_check_digit_and_lease(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    # No lease on this device yet: nothing to hand out, and a leased-only issue is refused.
    assert s.next_card_serial("2026-11-29") is None
    assert s.card_stock("2026-11-29", 5).low
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.issue_card(hh, d.NewCard(serial="HG-000001-3", visit_id=None, person_id=None,
                                   replaces_card_id=None, outside_lease=False), "2026-11-29")
    # A found card (outside any lease) with a valid check digit is accepted with the flag;
    # a mistyped one is refused whatever the flag.
    card = s.issue_card(hh, d.NewCard(serial="hg 000001 3", visit_id=None, person_id=None,
                                      replaces_card_id=None, outside_lease=True), "2026-11-29")
    assert s.cards_of_household(hh)[0].id == card
    assert s.cards_of_household(hh)[0].serial == "HG-000001-3"
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.issue_card(hh, d.NewCard(serial="HG-000010-3", visit_id=None, person_id=None,
                                   replaces_card_id=None, outside_lease=True), "2026-11-29")
    assert s.duplicate_cards() == []
