"""Registry rules without I/O: idempotency decisions, delivery checks, region codes, ID numbers."""
from __future__ import annotations

from datetime import date

import pytest

from registry.domain.model import (
    Baby,
    DeliveryFacts,
    DomainError,
    Pregnancy,
    check_booking,
    check_delivery,
    content_hash,
    decide_version,
)
from registry.domain.regions import region_problem
from registry.service import check_id_number

PREG = Pregnancy("P", "s", "M", date(2021, 1, 1), date(2021, 2, 1), "H", "320582101001")


def test_same_content_is_a_no_op_and_a_higher_version_is_a_correction() -> None:
    h = content_hash({"a": 1, "version": 1})
    assert h == content_hash({"version": 7, "a": 1})
    assert decide_version(None, None, h, None).action == "create"
    assert decide_version(1, h, h, None).action == "unchanged"
    assert decide_version(1, h, h, 1).action == "unchanged"
    other = content_hash({"a": 2})
    d = decide_version(1, h, other, 2)
    assert (d.action, d.version) == ("correct", 2)


@pytest.mark.parametrize("version", [None, 1])
def test_different_content_with_the_same_version_is_a_conflict(version: int | None) -> None:
    with pytest.raises(DomainError) as e:
        decide_version(1, content_hash({"a": 1}), content_hash({"a": 2}), version)
    assert e.value.status == 409 and e.value.errors[0]["field"] == "version"


def test_an_older_version_is_a_conflict() -> None:
    with pytest.raises(DomainError) as e:
        decide_version(3, content_hash({"a": 1}), content_hash({"a": 2}), 2)
    assert e.value.status == 409


def test_delivery_before_lmp_names_occurred_at() -> None:
    errs = check_delivery(PREG, date(2020, 12, 31), DeliveryFacts("hospital", "vaginal", [Baby("F", 3000, "live")]))
    assert [e["field"] for e in errs] == ["occurred_at"]
    assert check_delivery(PREG, date(2021, 1, 1), DeliveryFacts("hospital", "vaginal", [Baby("F", 3000, "live")])) == []


def test_delivery_more_than_44_weeks_after_lmp_is_refused() -> None:
    assert check_delivery(PREG, date(2021, 11, 6), DeliveryFacts("hospital", "vaginal", [Baby("F", 3000, "live")]))
    assert not check_delivery(PREG, date(2021, 11, 5), DeliveryFacts("hospital", "vaginal", [Baby("F", 3000, "live")]))


def test_implausible_birth_weight_names_the_baby() -> None:
    errs = check_delivery(PREG, date(2021, 10, 1), DeliveryFacts("hospital", "vaginal",
                                                                  [Baby("F", 3000, "live"), Baby("M", 150, "live")]))
    assert [e["field"] for e in errs] == ["babies.1.birth_weight_g"]


def test_booking_rules() -> None:
    with pytest.raises(DomainError) as e:
        check_booking(date(2021, 3, 1), date(2021, 2, 1), date(2022, 1, 1))
    assert e.value.errors[0]["field"] == "lmp_date"
    check_booking(date(2021, 1, 1), date(2021, 2, 1), date(2022, 1, 1))


@pytest.mark.parametrize("code, ok", [("320582101001", True), ("3205821010", False), ("990582101001", False),
                                      ("320082101001", False), ("32058210100X", False), ("110101001001", True)])
def test_region_codes(code: str, ok: bool) -> None:
    assert (region_problem(code) is None) is ok


def test_id_number_check_digit_birth_date_and_sex() -> None:
    # 11010519491231002X: the GB 11643 example, a woman born 1949-12-31
    assert check_id_number("11010519491231002X", "F", date(1949, 12, 31)) == "11010519491231002X"
    for num, sex, born, why in [("110105194912310021", "F", date(1949, 12, 31), "valid"),
                                ("11010519491231002X", "M", date(1949, 12, 31), "sex"),
                                ("11010519491231002X", "F", date(1950, 1, 1), "birth date")]:
        with pytest.raises(DomainError) as e:
            check_id_number(num, sex, born)
        assert why in e.value.errors[0]["reason"] and e.value.errors[0]["field"] == "id_number"


def _with_check_digit(first17: str) -> str:
    """GB 11643's ISO 7064 MOD 11-2 check digit, computed here independently of the code under test."""
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    r = (12 - sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11) % 11
    return first17 + ("X" if r == 10 else str(r))


@pytest.mark.parametrize("county", ["320102", "321324", "320582", "110105", "320103", "440301"])
@pytest.mark.parametrize("year", [1940, 1952, 1965, 1970, 1979, 1983, 1990, 2005, 2020])
def test_id_numbers_of_people_born_before_their_county_code_existed(county: str, year: int) -> None:
    """The first six digits are where the number was assigned (issued from 1984–85), not where the person was
    born: a number whose county code is in any edition of GB/T 2260 is valid whatever the birth year."""
    born = date(year, 3, 5)
    num = _with_check_digit(f"{county}{born:%Y%m%d}002")
    assert check_id_number(num, "F", born) == num


def test_the_issue_example_and_unknown_counties() -> None:
    assert _with_check_digit("32010219700305002") == "320102197003050025"
    assert check_id_number("320102197003050025", "F", date(1970, 3, 5)) == "320102197003050025"
    for num, why in [(_with_check_digit("32999919700305002"), "not a county code"),
                     (_with_check_digit("32010219701305002"), "not a date"),
                     ("32010219700305002", "17 digits")]:
        with pytest.raises(DomainError) as e:
            check_id_number(num, "F", date(1970, 3, 5))
        assert why in e.value.errors[0]["reason"]
