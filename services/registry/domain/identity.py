"""Identity documents. The resident identity number (居民身份证号码, GB 11643).

Its first six digits are the county where the number was *assigned* (numbers were first issued in 1984–85,
and re-issued on moves), not where the person was born, so the county need not have existed at the birth
date: python-stdnum's `ric.validate` checks exactly that and refuses most people born before 1983 — the
women of 35–64 whom 两癌 screening is for (decision 48). We accept a code that is a county of any edition of
GB/T 2260 (stdnum's table of them), with a valid date and check digit; the date and sex must agree with the
record.
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as IdError

#: the earliest birth date a resident identity number can carry
EARLIEST_BIRTH = date(1880, 1, 1)


class InvalidIdNumber(ValueError):
    """The number is not a resident identity number; the message says why, in the user's terms."""


@lru_cache(maxsize=8192)
def _county_known(code: str) -> bool:
    """A county code of any edition of GB/T 2260 (whatever years it was in use)."""
    parts = numdb.get("cn/loc").info(code)
    return any("county" in props for _, props in parts)


def resident_id(number: str) -> tuple[str, date, str]:
    """(the number normalised, the birth date it carries, "F"/"M"), or InvalidIdNumber."""
    num = ric.compact(number)
    if len(num) != 18 or not num[:17].isdigit():
        raise InvalidIdNumber("a resident identity number has 17 digits and a check digit (0-9 or X)")
    if num[-1] != ric.calc_check_digit(num):
        raise InvalidIdNumber("the check digit is wrong (a digit was mistyped or swapped)")
    try:
        born = ric.get_birth_date(num)
    except IdError as e:
        raise InvalidIdNumber("digits 7-14 are not a date") from e
    if not EARLIEST_BIRTH <= born:
        raise InvalidIdNumber(f"the birth date {born} is implausible")
    if not _county_known(num[:6]):
        raise InvalidIdNumber(f"{num[:6]} is not a county code of any edition of GB/T 2260")
    return num, born, "M" if int(num[16]) % 2 else "F"
