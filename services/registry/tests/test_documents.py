"""Identity documents: each kind's rules (registry.domain.documents) and names as searched (pinyin keys)."""
from __future__ import annotations

from datetime import date

import pytest
from stdnum.cn import ric

from registry.domain import documents, names
from registry.domain.documents import InvalidDocument, validate


def with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


def test_a_residence_permit_is_a_gb_11643_number_of_hong_kong_macao_or_taiwan() -> None:
    for county in ("810000", "820000", "830000"):
        doc = validate("hmt_residence_permit", with_check(f"{county}19900101002"))
        assert doc is not None and (doc.birth_date, doc.sex) == (date(1990, 1, 1), "F")
    good = with_check("81000019900101003")
    assert validate("hmt_residence_permit", good).sex == "M"  # type: ignore[union-attr]
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    for bad, why in ((with_check("32058219900101002"), "starts with 810000"), (wrong_check, "check digit"),
                     (with_check("81000019901301002"), "not a date"), ("8100001990010100", "17 digits")):
        with pytest.raises(InvalidDocument, match=why):
            validate("hmt_residence_permit", bad)


def test_travel_permits_have_their_shapes() -> None:
    assert validate("hk_mo_travel_permit", "h1234 5678").number == "H12345678"  # type: ignore[union-attr]
    assert validate("hk_mo_travel_permit", "M1234567801").number == "M1234567801"  # type: ignore[union-attr]
    assert validate("tw_travel_permit", "12345678").number == "12345678"  # type: ignore[union-attr]
    # full-width digits typed with a Chinese input method are the same number
    assert validate("tw_travel_permit", "１２３４５６７８").number == "12345678"  # type: ignore[union-attr]
    for kind, bad in (("hk_mo_travel_permit", "X12345678"), ("hk_mo_travel_permit", "H123456789"),
                      ("hk_mo_travel_permit", "H1234567"), ("tw_travel_permit", "1234567"),
                      ("tw_travel_permit", "T1234567")):
        with pytest.raises(InvalidDocument):
            validate(kind, bad)


def test_a_permanent_residence_card_of_2017_or_of_2023() -> None:
    new = with_check("91184019880214003")  # 9, Guangdong-ish 11, nationality 840, 1988-02-14, sequence 003: M
    doc = validate("foreign_permanent_residence", new)
    assert doc is not None and (doc.birth_date, doc.sex) == (date(1988, 2, 14), "M")
    old = validate("foreign_permanent_residence", "usa110088021401")
    assert old is not None and old.number == "USA110088021401" and old.birth_date is None
    for bad in (new[:-1] + ("0" if new[-1] != "0" else "1"), "USA110088133401", "US1110088021401",
                with_check("11184019880214003")[:15]):
        with pytest.raises(InvalidDocument):
            validate("foreign_permanent_residence", bad)


def test_passports_birth_certificates_and_none_yet() -> None:
    assert validate("passport", "e12345678").number == "E12345678"  # type: ignore[union-attr]
    assert validate("birth_certificate", "P440012345").number == "P440012345"  # type: ignore[union-attr]
    assert validate("none", None) is None
    for kind, bad in (("passport", "E12"), ("passport", "E1234567*"), ("birth_certificate", "P44001234"),
                      ("none", "E12345678"), ("passport", None), ("driving_licence", "123")):
        with pytest.raises(InvalidDocument):
            validate(kind, bad)


def test_a_resident_id_keeps_its_rules_and_what_a_number_says_must_agree() -> None:
    num = with_check("32058219900101002")
    doc = validate("resident_id", num)
    assert doc is not None and doc.kind == documents.RESIDENT_ID
    assert documents.disagreement(doc, date(1990, 1, 1), "F") is None
    assert "birth date" in (documents.disagreement(doc, date(1990, 1, 2), "F") or "")
    assert "sex" in (documents.disagreement(doc, date(1990, 1, 1), "M") or "")
    with pytest.raises(InvalidDocument, match="county code"):
        validate("resident_id", with_check("99999919900101002"))


def test_names_reduce_to_one_pinyin_key() -> None:
    assert names.pinyin_key("王晓丽") == names.pinyin_key("王小丽") == names.pinyin_key("Wáng Xiǎolì") == "wangxiaoli"
    assert names.pinyin_key("wang xiao-li") == "wangxiaoli"
    assert names.pinyin_key("吕红") == names.pinyin_key("Lǚ Hóng") == "lvhong"
    assert names.has_han("王小丽") and not names.has_han("wang")
