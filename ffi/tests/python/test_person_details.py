"""ID numbers (GB 11643-1999) and visit companions through the bindings (issue 17)."""
import asyncio
import time

import pytest

import doorstep_ffi as d
from test_doorstep import enrolled, household, new_store

# The check characters are computed here from the standard (ISO 7064 MOD 11-2), not taken
# from the library under test.
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def with_check(first17):
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


BOY = with_check("11010120140308001")  # 2014-03-08, 17th digit odd: male
WOMAN = "11010519491231002X"  # the standard's published example: 1949-12-31, female


def person(name="王小明", sex=d.Sex.UNKNOWN, birth=None, id_number=None):
    return d.NewPerson(
        name=name, sex=sex, birth_date=d.BirthDate(date=birth, estimated=False) if birth else None,
        id_number=id_number, relation="孙子", guardian=False, categories=[], school=None, grade=None,
    )


def test_the_reference_check_character_matches_the_published_example():
    assert with_check("11010519491231002") == WOMAN
    assert BOY == "110101201403080016"


def test_check_id_number_gives_the_birth_date_and_sex():
    assert d.check_id_number(BOY) == d.IdNumberCheck.VALID(id_number=BOY, birth_date="2014-03-08", sex=d.Sex.MALE)
    # As typed: spaces, a lower-case x, full-width digits.
    for typed in ["110105 19491231 002x", " 11010519491231002X ", "１１０１０５１９４９１２３１００２ｘ"]:
        check = d.check_id_number(typed)
        assert check == d.IdNumberCheck.VALID(id_number=WOMAN, birth_date="1949-12-31", sex=d.Sex.FEMALE), typed


def test_check_id_number_says_what_is_wrong_without_the_number():
    tomorrow = time.strftime("%Y%m%d", time.gmtime(time.time() + 8 * 3600 + 86400))
    cases = [
        ("1101012014030800", d.IdNumberProblem.WRONG_LENGTH),
        ("110101201403080", d.IdNumberProblem.WRONG_LENGTH),  # a 15-digit first-generation number
        ("11010120140308001A", d.IdNumberProblem.NOT_DIGITS),
        ("1101012O1403080016", d.IdNumberProblem.NOT_DIGITS),
        (BOY[:17] + ("1" if BOY[17] != "1" else "2"), d.IdNumberProblem.WRONG_CHECK_CHARACTER),
        (with_check("11010120150230001"), d.IdNumberProblem.IMPOSSIBLE_BIRTH_DATE),  # 30 February
        (with_check("11010119000229001"), d.IdNumberProblem.IMPOSSIBLE_BIRTH_DATE),  # 1900: no leap day
        (with_check("110101" + tomorrow + "001"), d.IdNumberProblem.BIRTH_DATE_IN_FUTURE),
        (with_check("11010118991231001"), d.IdNumberProblem.BIRTH_DATE_BEFORE1900),
    ]
    for number, problem in cases:
        check = d.check_id_number(number)
        assert isinstance(check, d.IdNumberCheck.INVALID), number
        assert check.problem == problem, (number, check)
        assert check.message and "110101" not in check.message


def test_the_store_refuses_a_bad_or_contradicting_number_without_echoing_it(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    mistyped = BOY[:17] + ("1" if BOY[17] != "1" else "2")
    for bad in [
        person(id_number=mistyped),
        person(id_number=BOY, birth="2014-03-09"),
        person(id_number=BOY, sex=d.Sex.FEMALE),
    ]:
        with pytest.raises(d.DoorstepError.InvalidInput) as e:
            s.add_person(hh, bad)
        assert "110101" not in str(e.value) and "110101" not in e.value.reason, str(e.value)
    assert s.household(hh).persons == []
    # A matching, or unknown, sex and birth date are accepted; the number is saved canonical.
    p = s.add_person(hh, person(id_number="110101 20140308 0016", sex=d.Sex.MALE, birth="2014-03-08"))
    assert s.household(hh).persons[0].id_number == BOY
    with pytest.raises(d.DoorstepError.InvalidInput) as e:
        s.edit_person(hh, p, d.PersonEdit.SEX(sex=d.Sex.FEMALE))
    assert "sex" in e.value.reason
    with pytest.raises(d.DoorstepError.InvalidInput):
        s.edit_person(hh, p, d.PersonEdit.ID_NUMBER(id_number=WOMAN))
    s.edit_person(hh, p, d.PersonEdit.ID_NUMBER(id_number=None))
    s.edit_person(hh, p, d.PersonEdit.SEX(sex=d.Sex.FEMALE))
    assert s.household(hh).persons[0].sex == d.Sex.FEMALE


def visit_with(store, hh, companions=None):
    args = dict(kind=d.VisitKind.HOME, date="2026-11-29", started_at_ms=int(time.time() * 1000),
                gps=None, other_worker_ids=[], present_person_ids=[])
    if companions is not None:
        args["companions"] = companions
    return store.start_visit(hh, d.NewVisit(**args))


def companions_of(store, hh, v):
    return next(x for x in store.household(hh).visits if x.id == v).companions


def test_companions_round_trip_and_companions_may_be_left_out(tmp_path):
    s = new_store(tmp_path)
    hh = household(s)
    assert companions_of(s, hh, visit_with(s, hh)) == []
    director = d.VisitCompanion(name="李芳", role="村儿童主任")
    v = visit_with(s, hh, [d.VisitCompanion(name=" 李芳 ", role="村儿童主任")])
    assert companions_of(s, hh, v) == [director]
    officer = d.VisitCompanion(name="张伟", role="派出所民警")
    s.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=officer))
    s.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=d.VisitCompanion(name="陈老师", role="")))
    s.edit_visit(hh, v, d.VisitEdit.REMOVE_COMPANION(companion=director))
    assert companions_of(s, hh, v) == [officer, d.VisitCompanion(name="陈老师", role="")]
    history = s.field_history(hh, d.FieldRef(record=d.RecordKind.VISIT, record_id=v, field="companions"))
    assert len(history) == 2
    with pytest.raises(d.DoorstepError.InvalidInput) as e:
        s.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=d.VisitCompanion(name=" ", role="民警")))
    assert "name" in e.value.reason
    s.finalise_visit(hh, v)
    with pytest.raises(d.DoorstepError.VisitFinalised):
        s.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=director))


def test_companions_added_on_two_phones_merge_through_the_server(server, tmp_path):
    a, ta = enrolled(server, tmp_path, "CA")
    b, tb = enrolled(server, tmp_path, "CB")
    hh = household(a, "HH-PY0017")
    v = visit_with(a, hh, [d.VisitCompanion(name="李芳", role="村儿童主任")])
    asyncio.run(a.sync(server.url, ta))
    asyncio.run(b.sync(server.url, tb))
    # Offline: A removes the director and adds the officer; B adds a teacher.
    a.edit_visit(hh, v, d.VisitEdit.REMOVE_COMPANION(companion=d.VisitCompanion(name="李芳", role="村儿童主任")))
    a.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=d.VisitCompanion(name="张伟", role="派出所民警")))
    b.edit_visit(hh, v, d.VisitEdit.ADD_COMPANION(companion=d.VisitCompanion(name="陈老师", role="班主任")))
    for store, token in [(a, ta), (b, tb), (a, ta)]:
        asyncio.run(store.sync(server.url, token))
        assert store.refused_households() == []
    assert a.household(hh) == b.household(hh)
    assert [c.name for c in companions_of(b, hh, v)] == ["张伟", "陈老师"]
