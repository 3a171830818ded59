"""Needs surveys through the bindings (issue 17, ADR 0022), against a real server: a
survey in frozen versions, answers checked against their version, one response per person
(two phones answering for one person raise a conflict, settled by keeping one), and counts
per question and option."""
import asyncio

import pytest

import doorstep_ffi as d
from test_doorstep import enrolled, household, new_store


def questions():
    opt = lambda c, l: d.SurveyOption(code=c, label=l)  # noqa: E731
    return [
        d.Question(id="living", label="居住情况",
                   kind=d.QuestionKind.SINGLE(options=[opt("alone", "独居"), opt("spouse", "与配偶同住")])),
        d.Question(id="needs", label="需要哪些服务",
                   kind=d.QuestionKind.MULTIPLE(options=[opt("meals", "助餐"), opt("chat", "陪伴")])),
        d.Question(id="age", label="年龄", kind=d.QuestionKind.NUMBER(min=0, max=130)),
        d.Question(id="mood", label="心情", kind=d.QuestionKind.SCALE(min=1, max=5)),
        d.Question(id="words", label="想说的话", kind=d.QuestionKind.TEXT()),
    ]


def answers(living="alone", mood=3):
    return [
        d.Answer(question="living", value=d.AnswerValue.CHOICE(code=living)),
        d.Answer(question="needs", value=d.AnswerValue.CHOICES(codes=["meals", "chat"])),
        d.Answer(question="age", value=d.AnswerValue.NUMBER(value=82)),
        d.Answer(question="mood", value=d.AnswerValue.SCALE(value=mood)),
        d.Answer(question="words", value=d.AnswerValue.TEXT(text="想孙子")),
    ]


def person(store, hh, name):
    return store.add_person(hh, d.NewPerson(name=name, sex=d.Sex.FEMALE, birth_date=None, id_number=None,
                                            relation="户主", guardian=False, categories=[], school=None,
                                            grade=None))


def counted(counts, question, option):
    return sum(c.count for c in counts if c.question == question and c.option == option)


def test_versions_answers_and_counts(tmp_path):
    s = new_store(tmp_path)
    sid = s.create_survey("高龄老人需求调查", questions())
    v1 = s.survey(sid).versions[0].id
    hh = household(s)
    p = person(s, hh, "李奶奶")
    r = s.respond_to_survey(hh, p, sid, v1, answers())
    assert s.survey_response(hh, r).version_id == v1
    counts = s.survey_counts(sid)
    assert counted(counts, "living", "alone") == 1 and counted(counts, "needs", "chat") == 1
    age = [c for c in counts if c.question == "age"][0]
    assert (age.option, age.count, age.sum) == (None, 1, 82)
    v2 = s.publish_survey_version(sid, questions()[:2])
    assert [v.number for v in s.survey(sid).versions] == [1, 2]
    assert s.survey(sid).versions[-1].id == v2
    assert [x.title for x in s.surveys()] == ["高龄老人需求调查"]
    # Bad input: clear errors, nothing written.
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.respond_to_survey(hh, p, sid, v1, answers())  # answered already
    q = person(s, hh, "李爷爷")
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.respond_to_survey(hh, q, sid, v2, answers())  # version 2 does not ask "age"
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.respond_to_survey(hh, q, sid, v1, [d.Answer(question="mood", value=d.AnswerValue.SCALE(value=9))])
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.create_survey("x", [d.Question(id="q", label="L", kind=d.QuestionKind.SCALE(min=5, max=1))])
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.survey("not-an-id")
    s.withdraw_survey_response(hh, r)
    assert s.survey_counts(sid) == []
    assert s.survey_responses(hh)[0].status == d.ResponseStatus.WITHDRAWN


def test_two_phones_answering_for_one_person_raise_a_conflict(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "SW1")
    b, tb = enrolled(server, tmp_path, "SW2")
    sid = a.create_survey("需求调查", questions())
    hh = household(a)
    p = person(a, hh, "李奶奶")
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    v1 = b.survey(sid).versions[0].id
    ra = a.respond_to_survey(hh, p, sid, v1, answers("alone", 2))
    rb = b.respond_to_survey(hh, p, sid, v1, answers("spouse", 4))
    for store, token in [(a, ta), (b, tb), (a, ta)]:
        asyncio.run(store.sync(server.url, token))
    found = b.conflicts(hh)
    assert len(found) == 1 and found[0].kind == d.ConflictKind.DUPLICATE_RESPONSE
    assert found[0].field.record == d.RecordKind.RESPONSE
    assert sorted(v.value for v in found[0].values) == sorted([ra, rb])
    b.resolve_conflict(hh, found[0].field, rb)
    for store, token in [(b, tb), (a, ta)]:
        asyncio.run(store.sync(server.url, token))
    for store in (a, b):
        assert store.conflicts(hh) == []
        assert counted(store.survey_counts(sid), "living", "spouse") == 1
        assert counted(store.survey_counts(sid), "living", "alone") == 0
