"""Identity documents (证件) a person is registered with, one validator per kind, the rules as data.

A woman from another province or abroad registers with what she holds: a resident identity card (居民身份证,
GB 11643), a passport (护照), a residence permit for Hong Kong, Macao and Taiwan residents (港澳台居民居住证,
GB 11643 numbers under the pseudo-counties 810000/820000/830000), a Mainland travel permit (港澳居民来往内地通行证,
H/M + 8 digits, or + 10 with the two-digit issue count of the older card; 台湾居民来往大陆通行证, 8 digits), a
foreign permanent residence ID card (外国人永久居留身份证: the 2017 card's 15 characters, the 2023 card's 18 digits
starting with 9), or — a newborn — the serial of her birth certificate (出生医学证明编号, a letter and 9 digits) or
nothing yet. Numbers that carry a birth date (and a sex digit) must agree with the record.

Domain code: raises `InvalidDocument` (the reason in the user's terms), imports nothing of FastAPI.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from registry.domain import identity

#: the document kinds, as sent in `document_type`
RESIDENT_ID = "resident_id"
NONE_YET = "none"


class InvalidDocument(ValueError):
    """The number is not a valid document of its kind; the message says why."""


@dataclass(frozen=True)
class Document:
    """A validated document: its kind, the number normalised, and what the number itself says of its holder."""

    kind: str
    number: str
    birth_date: date | None = None
    sex: str | None = None


def _compact(number: str) -> str:
    """Spaces, hyphens and full-width forms typed by hand removed; letters upper-case (H12345678, not h1234 5678)."""
    half = number.translate({c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}).replace("\u3000", " ")
    return re.sub(r"[\s\-]", "", half).upper()


def _gb11643(num: str, what: str) -> tuple[date, str]:
    """The GB 11643 structure shared by the residence permit and the 2023 permanent residence card: 17 digits, the
    ISO 7064 MOD 11-2 check digit, the birth date in digits 7–14, the sex in digit 17 (odd: M)."""
    if len(num) != 18 or not num[:17].isdigit():
        raise InvalidDocument(f"a {what} number has 17 digits and a check digit (0-9 or X)")
    if num[-1] != ric.calc_check_digit(num):
        raise InvalidDocument("the check digit is wrong (a digit was mistyped or swapped)")
    try:
        born = ric.get_birth_date(num)
    except StdnumError as e:
        raise InvalidDocument("digits 7-14 are not a date") from e
    return born, "M" if int(num[16]) % 2 else "F"


def resident_id(num: str) -> Document:
    try:
        n, born, sex = identity.resident_id(num)
    except identity.InvalidIdNumber as e:
        raise InvalidDocument(str(e)) from e
    return Document(RESIDENT_ID, n, born, sex)


#: 港澳台居民居住证: the pseudo-county of each issuing region (GB 11643 structure otherwise)
PERMIT_COUNTIES = {"810000": "Hong Kong", "820000": "Macao", "830000": "Taiwan"}


def hmt_residence_permit(num: str) -> Document:
    if num[:6] not in PERMIT_COUNTIES:
        raise InvalidDocument("a residence permit number starts with 810000 (Hong Kong), 820000 (Macao) or 830000 "
                              "(Taiwan)")
    born, sex = _gb11643(num, "residence permit")
    return Document("hmt_residence_permit", num, born, sex)


def _pattern(kind: str, regex: str, rule: str) -> Callable[[str], Document]:
    """A document whose rules are its shape only (no check digit is published for it)."""
    compiled = re.compile(regex)

    def validate(num: str) -> Document:
        if not compiled.fullmatch(num):
            raise InvalidDocument(rule)
        return Document(kind, num)

    validate.__doc__ = rule
    return validate


def foreign_permanent_residence(num: str) -> Document:
    """外国人永久居留身份证. The 2023 card: 18 digits, 9 + province (2) + nationality (3, ISO 3166 numeric) + birth
    date (8) + sequence (3, odd: M) + GB 11643 check digit. The 2017 card: 15 characters, the nationality (3 letters,
    ISO 3166 alpha-3), the accepting office (4 digits), the birth date (YYMMDD) and a sequence with a check (2):
    only its shape and date are checked (its check algorithm is not published)."""
    if num[:1] == "9" and len(num) == 18:
        born, sex = _gb11643(num, "permanent residence card")
        return Document("foreign_permanent_residence", num, born, sex)
    if re.fullmatch(r"[A-Z]{3}\d{12}", num):
        yy, mm, dd = int(num[7:9]), int(num[9:11]), int(num[11:13])
        if not any(_is_date(century + yy, mm, dd) for century in (1900, 2000)):
            raise InvalidDocument("characters 8-13 of a 2017 permanent residence card are not a date (YYMMDD)")
        return Document("foreign_permanent_residence", num)
    raise InvalidDocument("a permanent residence card number is 18 digits starting with 9 (2023 card) or 3 letters "
                          "and 12 digits (2017 card)")


def _is_date(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


#: every kind a person may be registered with, and its validator (`none`: a newborn without any document yet)
VALIDATORS: dict[str, Callable[[str], Document]] = {
    RESIDENT_ID: resident_id,
    # ICAO 9303: the document number is up to 9 characters in the machine-readable zone, longer ones overflow;
    # China's own passports are E/G + 8 characters
    "passport": _pattern("passport", r"[A-Z0-9]{5,17}", "a passport number is 5 to 17 letters and digits"),
    "hmt_residence_permit": hmt_residence_permit,
    "hk_mo_travel_permit": _pattern("hk_mo_travel_permit", r"[HM](\d{8}|\d{10})",
                                    "a Mainland travel permit for Hong Kong and Macao residents is H (Hong Kong) or "
                                    "M (Macao) followed by 8 or 10 digits"),
    "tw_travel_permit": _pattern("tw_travel_permit", r"\d{8}",
                                 "a Mainland travel permit for Taiwan residents has 8 digits"),
    "foreign_permanent_residence": foreign_permanent_residence,
    # the serial the certificate office issues (certificates.domain.rules.SERIAL_RE)
    "birth_certificate": _pattern("birth_certificate", r"[A-Z]\d{9}",
                                  "a birth certificate serial is one letter and 9 digits"),
}
KINDS = (*VALIDATORS, NONE_YET)


def validate(kind: str, number: str | None) -> Document | None:
    """The document normalised, None for `none`; InvalidDocument naming what is wrong."""
    if kind == NONE_YET:
        if number:
            raise InvalidDocument("a person registered without a document has no document number")
        return None
    check = VALIDATORS.get(kind)
    if check is None:
        raise InvalidDocument(f"unknown document type {kind!r}; one of {', '.join(KINDS)}")
    if not number:
        raise InvalidDocument(f"a {kind} needs its number")
    return check(_compact(number))


def disagreement(doc: Document, birth_date: date, sex: str) -> str | None:
    """What the number says of its holder against the record (None: they agree, or the number says nothing)."""
    if doc.birth_date is not None and doc.birth_date != birth_date:
        return f"the birth date in the document number ({doc.birth_date}) is not birth_date"
    if doc.sex is not None and doc.sex != sex:
        return f"the sex digit of the document number says {doc.sex}, the record says {sex}"
    return None


def search_key(number: str) -> str:
    """The form a number is stored and searched in (whatever its kind)."""
    return _compact(number)
