"""The certificate's content rules of the certificates service, without a stack: each wrong field named, the
cross-record checks against what the service knows (the child's name and birth date, the institution's county)."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from kit.records import DomainError

from certificates.domain import content

BORN = date(2026, 3, 1)
FACTS = content.Facts("李小满", BORN, "321323101001", date(2026, 3, 2))


def _form(**over: Any) -> dict[str, Any]:
    base = {"child_name": "李小满", "child_sex": "F", "birth_date": "2026-03-01", "birth_time": "08:30",
            "gestational_weeks": 39, "birth_weight_g": "3250", "birth_length_cm": 50.25, "health": "good",
            "birth_province": "江苏省", "birth_city": "宿迁市", "birth_county": "泗阳县", "birth_region_code": "321323",
            "place_type": "hospital", "mother_name": "王丽", "mother_age": 29, "mother_nationality": "中国",
            "mother_ethnicity": "汉族", "mother_id_type": "resident_id", "mother_id_number": "321324199605170023"}
    return {**base, **over}


def test_a_complete_form_is_typed_and_normalised() -> None:
    values = content.checked(_form(), FACTS)
    assert values["birth_time"] == "08:30" and values["birth_weight_g"] == 3250
    assert values["birth_length_cm"] == "50.2"  # to 0.1 cm, half to even
    assert values["mother_id_number"] == "321324199605170023" and values["mother_age"] == 29


@pytest.mark.parametrize(("field", "value"), [
    ("gestational_weeks", 19), ("gestational_weeks", 46), ("gestational_weeks", "39.5"), ("birth_weight_g", 299),
    ("birth_weight_g", "abc"), ("birth_length_cm", "NaN"), ("health", "excellent"), ("child_sex", "X"),
    ("birth_date", "2026-02-30"), ("birth_time", "24:00"), ("birth_region_code", "320000"),
    ("birth_region_code", "321300"), ("birth_region_code", "32132"), ("mother_name", "王\x00丽"),
    ("mother_name", "王" * 51), ("mother_id_number", "321324199605170021"), ("mother_age", 35),
    ("child_name", "李大满"), ("birth_date", "2026-02-28"), ("birth_region_code", "110101"),
])
def test_each_wrong_field_is_named(field: str, value: Any) -> None:
    _, errors = content.validate(_form(**{field: value}), FACTS)
    assert set(errors) == {field}, errors


def test_missing_unknown_and_half_given_fields() -> None:
    form = {k: v for k, v in _form().items() if k not in ("health", "mother_id_type")}
    with pytest.raises(DomainError) as e:
        content.checked({**form, "colour": "红"}, FACTS)
    assert {x["field"] for x in e.value.errors} == {"content.health", "content.mother_id_type", "content.colour"}


def test_a_home_birth_is_not_held_to_an_institutions_county() -> None:
    assert content.validate(_form(place_type="home", birth_region_code="110101"), FACTS)[1] == {}
    future = content.Facts("李小满", None, None, date(2026, 2, 1))
    assert set(content.validate(_form(), future)[1]) == {"birth_date"}
