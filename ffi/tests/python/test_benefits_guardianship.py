"""Benefits, guardianships, parents' status, 户籍, schooling, care levels and the visits-due
list through the bindings (issue 17), on one phone and on two phones syncing through a
real server (whose validator checks every pushed value)."""
import asyncio
import datetime

import pytest

import doorstep_ffi as d
from test_doorstep import enrolled, household, new_store


def member(name, relation):
    return d.NewPerson(
        name=name, sex=d.Sex.UNKNOWN, birth_date=None, id_number=None, relation=relation,
        guardian=False, categories=[], school=None, grade=None,
    )


def family(store, code="HH-000001"):
    hh = household(store, code)
    return hh, store.add_person(hh, member("李秀英", "祖母")), store.add_person(hh, member("王小明", "孙子"))


def person(store, hh, pid):
    return next(p for p in store.household(hh).persons if p.id == pid)


def allowance(pid, **kw):
    args = dict(person_id=pid, kind="benefit.unsupported_child", monthly_fen=115000,
                from_date="2026-01-01", until_date=None, source="县民政局")
    args.update(kw)
    return d.NewBenefit(**args)


def test_code_lists_have_labels_and_unknown_codes_read():
    benefits = d.code_list(d.CodeList.BENEFIT_TYPE)
    assert "benefit.dibao" in [c.code for c in benefits]
    assert all(c.known and c.label_zh and c.label_en for c in benefits)
    statuses = [c.code for c in d.code_list(d.CodeList.PARENT_STATUS)]
    # The parents' situations are the child categories they make a child (事实无人抚养).
    assert statuses[0] == "parent.normal"
    assert "child.unsupported.parent_imprisoned" in statuses
    assert d.describe_code(d.CodeList.PARENT_STATUS, "child.unsupported.parent_imprisoned").label_zh == "服刑在押"
    newer = d.describe_code(d.CodeList.BENEFIT_TYPE, "benefit.county_flood_relief")
    assert newer == d.CodeLabel(code="benefit.county_flood_relief", label_zh="", label_en="", known=False)


def test_person_details_round_trip_and_bad_values_are_refused(tmp_path):
    s = new_store(tmp_path)
    hh, _, child = family(s)
    p = person(s, hh, child)
    assert (p.father_status, p.hukou_type, p.school_status, p.boarding, p.care_level) == (None,) * 5
    assert p.registered_residence == ""
    for edit in [
        d.PersonEdit.FATHER_STATUS(status="child.unsupported.parent_imprisoned"),
        d.PersonEdit.MOTHER_STATUS(status="parent.normal"),
        d.PersonEdit.HUKOU_TYPE(hukou_type=d.HukouType.AGRICULTURAL),
        d.PersonEdit.REGISTERED_RESIDENCE(place="石桥镇石桥村"),
        d.PersonEdit.ACTUAL_RESIDENCE(place="县城东关街5号"),
        d.PersonEdit.SCHOOL_STAGE(stage=d.SchoolStage.PRIMARY),
        d.PersonEdit.SCHOOL_STATUS(status=d.SchoolStatus.HOME_TEACHING),
        d.PersonEdit.BOARDING(boarding=False),
        d.PersonEdit.CARE_LEVEL(care_level=d.CareLevel.HIGH),
    ]:
        s.edit_person(hh, child, edit)
    p = person(s, hh, child)
    assert p.father_status == "child.unsupported.parent_imprisoned"
    assert p.mother_status == "parent.normal"
    assert (p.hukou_type, p.registered_residence, p.actual_residence) == (
        d.HukouType.AGRICULTURAL, "石桥镇石桥村", "县城东关街5号")
    assert (p.school_stage, p.school_status, p.boarding) == (d.SchoolStage.PRIMARY, d.SchoolStatus.HOME_TEACHING, False)
    assert p.care_level == d.CareLevel.HIGH
    s.edit_person(hh, child, d.PersonEdit.MOTHER_STATUS(status=None))
    assert person(s, hh, child).mother_status is None

    for bad in [
        d.PersonEdit.FATHER_STATUS(status="服刑"),
        d.PersonEdit.FATHER_STATUS(status="benefit.dibao"),
        d.PersonEdit.SCHOOL_STATUS(status=d.SchoolStatus.UNRECOGNISED),
        d.PersonEdit.CARE_LEVEL(care_level=d.CareLevel.UNRECOGNISED),
        d.PersonEdit.ACTUAL_RESIDENCE(place="两行\n地址"),
    ]:
        with pytest.raises(d.DoorstepError.InvalidInput) as e:
            s.edit_person(hh, child, bad)
        assert "王小明" not in str(e.value)
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.edit_household(hh, d.HouseholdEdit.CARE_LEVEL(care_level=d.CareLevel.UNRECOGNISED))


def test_benefits_and_guardianships_round_trip(tmp_path):
    s = new_store(tmp_path)
    hh, grandmother, child = family(s)
    b = s.add_benefit(hh, allowance(child))
    s.edit_benefit(hh, b, d.BenefitEdit.MONTHLY_FEN(monthly_fen=120000))
    s.edit_benefit(hh, b, d.BenefitEdit.UNTIL(until_date="2026-12-31"))
    [got] = s.household(hh).benefits
    assert (got.id, got.person_id, got.kind, got.monthly_fen, got.from_date, got.until_date, got.source) == (
        b, child, "benefit.unsupported_child", 120000, "2026-01-01", "2026-12-31", "县民政局")
    for bad in [
        allowance(child, kind="低保"),
        allowance(child, kind="benefit.county_flood_relief"),
        allowance(child, monthly_fen=10_000_001),
        allowance(child, from_date="2026-06-01", until_date="2026-05-31"),
        allowance(child, from_date="2026-02-30"),
        allowance("not-a-person"),
    ]:
        with pytest.raises(d.DoorstepError.InvalidInput):
            s.add_benefit(hh, bad)
    with pytest.raises(d.DoorstepError.NotFound):
        s.add_benefit(hh, allowance("01900000-0000-7000-8000-00000000ffff"))

    g = s.add_guardianship(hh, d.NewGuardianship(
        carer_person_id=grandmother, child_person_id=child, kind=d.GuardianshipKind.ENTRUSTED,
        relationship="祖母", capacity=d.CareCapacity.LIMITED))
    s.edit_guardianship(hh, g, d.GuardianshipEdit.KIND(kind=d.GuardianshipKind.LEGAL))
    s.edit_guardianship(hh, g, d.GuardianshipEdit.CAPACITY(capacity=None))
    s.end_guardianship(hh, g)
    [got] = s.household(hh).guardianships
    assert (got.carer_person_id, got.child_person_id, got.kind, got.capacity, got.status) == (
        grandmother, child, d.GuardianshipKind.LEGAL, None, d.GuardianshipStatus.ENDED)
    with pytest.raises(d.DoorstepError.InvalidTransition):
        s.end_guardianship(hh, g)
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.add_guardianship(hh, d.NewGuardianship(
            carer_person_id=child, child_person_id=child, kind=d.GuardianshipKind.LEGAL,
            relationship="", capacity=None))


def start(store, hh, date):
    return store.start_visit(hh, d.NewVisit(
        kind=d.VisitKind.HOME, date=date, started_at_ms=0, gps=None, other_worker_ids=[],
        present_person_ids=[]))


def test_visits_due(tmp_path):
    s = new_store(tmp_path)
    hh, _, child = family(s, "HH-000001")
    other, _, _ = family(s, "HH-000002")
    assert s.visits_due("2026-12-06") == []
    s.edit_person(hh, child, d.PersonEdit.CARE_LEVEL(care_level=d.CareLevel.HIGH))
    s.edit_household(other, d.HouseholdEdit.CARE_LEVEL(care_level=d.CareLevel.LOW))
    start(s, hh, "2026-11-01")
    due = s.visits_due("2026-12-06")
    assert [x.code for x in due] == ["HH-000002", "HH-000001"]  # never visited first
    assert due[0].last_visit is None and due[0].days_overdue is None
    assert (due[1].care_level, due[1].visit_every_days, due[1].last_visit, due[1].due_on, due[1].days_overdue) == (
        d.CareLevel.HIGH, 30, "2026-11-01", "2026-12-01", 5)
    start(s, other, "2026-12-06")
    assert [x.code for x in s.visits_due("2026-12-06")] == ["HH-000001"]
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.visits_due("06/12/2026")


def test_two_phones_merge_through_the_server(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "GA")
    b, tb = enrolled(server, tmp_path, "GB")
    hh, grandmother, child = family(a, "HH-PY0117")
    g = a.add_guardianship(hh, d.NewGuardianship(
        carer_person_id=grandmother, child_person_id=child, kind=d.GuardianshipKind.ENTRUSTED,
        relationship="祖母", capacity=None))
    bid = a.add_benefit(hh, allowance(child))
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    # Offline: both change the guardianship's kind and the amount, each differently.
    a.edit_guardianship(hh, g, d.GuardianshipEdit.KIND(kind=d.GuardianshipKind.LEGAL))
    b.edit_guardianship(hh, g, d.GuardianshipEdit.KIND(kind=d.GuardianshipKind.ENTRUSTED))
    a.edit_benefit(hh, bid, d.BenefitEdit.MONTHLY_FEN(monthly_fen=118000))
    b.edit_benefit(hh, bid, d.BenefitEdit.MONTHLY_FEN(monthly_fen=125000))
    b.edit_person(hh, child, d.PersonEdit.FATHER_STATUS(status="child.unsupported.parent_missing"))
    for store, token in [(a, ta), (b, tb), (a, ta)]:
        asyncio.run(store.sync(server.url, token))
        assert store.refused_households() == []
    assert a.household(hh) == b.household(hh)
    # Who is responsible for the child is for a human; the amount is last-writer-wins.
    [conflict] = a.conflicts(hh)
    assert conflict.field == d.FieldRef(record=d.RecordKind.GUARDIANSHIP, record_id=g, field="kind")
    with pytest.raises(d.DoorstepError.OpenConflict):
        a.edit_guardianship(hh, g, d.GuardianshipEdit.KIND(kind=d.GuardianshipKind.LEGAL))
    [update] = a.parallel_updates(hh)
    assert update.field == d.FieldRef(record=d.RecordKind.BENEFIT, record_id=bid, field="monthly_fen")
    a.resolve_conflict(hh, conflict.field, "legal")
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    assert b.conflicts(hh) == []
    assert b.household(hh).guardianships[0].kind == d.GuardianshipKind.LEGAL
    assert person(a, hh, child).father_status == "child.unsupported.parent_missing"
    today = datetime.date.today().isoformat()
    a.edit_household(hh, d.HouseholdEdit.CARE_LEVEL(care_level=d.CareLevel.MEDIUM))
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    assert [x.code for x in b.visits_due(today) if x.code == "HH-PY0117"] == ["HH-PY0117"]
