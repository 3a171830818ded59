"""ID numbers (GB 11643-1999) through the bindings (issue 17)."""
import time

import pytest

import doorstep_ffi as d
from test_doorstep import household, new_store

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
