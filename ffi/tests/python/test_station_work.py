"""Group activities and the community resource register through the bindings (issue 17,
ADR 0021), against a real server: two phones type into one activity's narrative offline
and both words survive; a resource reaches the colleague; attendance and referrals live on
the household's persons and needs."""
import asyncio

import pytest

import doorstep_ffi as d
from test_doorstep import Recorder, enrolled, household, new_store


def activity(**kw):
    fields = dict(
        activity_type="activity.safety.traffic", date="2026-11-20", place="镇中心小学",
        target_group="三至五年级学生", attendee_count=120, partners=["县交警大队"],
        materials=["交通安全手册 120 册"], resource_ids=[], narrative="",
    )
    fields.update(kw)
    return d.NewActivity(**fields)


def resource(**kw):
    fields = dict(
        kind="resource.volunteer_team", name="镇青年志愿服务队", leader="队长",
        phones=["13800138000"], member_count=24, availability="周末", services="交通安全宣传", wishes="",
    )
    fields.update(kw)
    return d.NewResource(**fields)


def test_an_activity_and_a_resource_round_trip_and_codes_are_checked(tmp_path):
    s = new_store(tmp_path)
    rec = Recorder()
    _sub = s.subscribe(rec)
    r = s.create_resource(resource())
    a = s.create_activity(activity(resource_ids=[r]))
    got = s.activity(a)
    assert (got.activity_type, got.place, got.attendee_count, got.resource_ids) == (
        "activity.safety.traffic", "镇中心小学", 120, [r])
    s.edit_activity(a, d.ActivityEdit.ADD_PARTNER(partner="某村村委会"))
    s.edit_activity(a, d.ActivityEdit.ATTENDEE_COUNT(attendee_count=118))
    s.splice_activity_narrative_utf16(a, 0, 0, "交警讲解𠮷")
    s.splice_activity_narrative_utf16(a, 6, 0, "。")  # after the astral character: UTF-16 units
    got = s.activity(a)
    assert got.partners == ["县交警大队", "某村村委会"] and got.attendee_count == 118
    assert got.narrative == "交警讲解𠮷。"
    assert [x.id for x in s.activities_in_month(2026, 11)] == [a]
    assert s.activities_between("2026-12-01", "2026-12-31") == []
    s.splice_resource_text(r, d.ResourceText.WISHES, 0, 0, "希望开展助学")
    s.edit_resource(r, d.ResourceEdit.MEMBER_COUNT(member_count=25))
    assert s.resource(r).wishes == "希望开展助学" and s.resource(r).member_count == 25
    assert [x.id for x in s.resources("resource.volunteer_team")] == [r]
    assert s.resources("resource.school") == []
    work = [e.document_id for e in rec.events if isinstance(e, d.ChangeEvent.STATION_WORK_CHANGED)]
    assert work[:2] == [r, a]
    # Codes are checked where they are written; the built-in labels say what they are.
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.create_activity(activity(activity_type="child.orphan"))
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.create_resource(resource(kind="activity.safety"))
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.create_activity(activity(date="2026-13-01"))
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.activity("not-an-id")
    with pytest.raises(d.DoorstepError.NotFound):
        s.activity(r)  # a resource's id is not an activity
    kinds = {e.code: e.kind for e in s.vocabulary().entries}
    assert kinds["activity.safety.traffic"] == d.CategoryKind.ACTIVITY
    assert kinds["resource.volunteer_team"] == d.CategoryKind.RESOURCE


def test_attendance_and_referrals_are_kept_on_persons_and_needs(tmp_path):
    s = new_store(tmp_path)
    a = s.create_activity(activity())
    r = s.create_resource(resource(kind="resource.social_organisation", name="阳光社工服务中心"))
    hh = household(s)
    p = s.add_person(hh, d.NewPerson(name="王小明", sex=d.Sex.MALE, birth_date=None, id_number=None,
                                     relation="孙子", guardian=False, categories=[], school=None, grade=None))
    s.edit_person(hh, p, d.PersonEdit.ADD_ACTIVITY(activity_id=a))
    need = s.add_need(hh, d.NewNeed(category="学业", description="课后辅导", person_id=p, visit_id=None))
    s.refer_need(hh, need, r)
    assert s.attendees(a) == [d.Attendee(household_id=hh, person_id=p)]
    assert s.referrals_to(r) == [d.Referral(household_id=hh, need_id=need, resource_id=r)]
    h = s.household(hh)
    assert h.persons[0].activity_ids == [a] and h.needs[0].resource_id == r
    s.refer_need(hh, need, None)
    s.edit_person(hh, p, d.PersonEdit.REMOVE_ACTIVITY(activity_id=a))
    assert s.attendees(a) == [] and s.referrals_to(r) == []


def test_two_phones_type_into_one_activity_and_both_see_the_resource(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "SW1")
    b, tb = enrolled(server, tmp_path, "SW2")
    r = a.create_resource(resource())
    act = a.create_activity(activity(resource_ids=[r]))
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    assert b.resource(r).name == "镇青年志愿服务队"
    a.splice_activity_narrative(act, 0, 0, "交警讲解了过马路的规则。")
    b.splice_activity_narrative(act, 0, 0, "学生们提问踊跃。")
    for store, token in [(a, ta), (b, tb), (a, ta)]:
        asyncio.run(store.sync(server.url, token))
    for store in (a, b):
        text = store.activity(act).narrative
        assert "过马路" in text and "提问踊跃" in text
    assert a.activity(act) == b.activity(act)
