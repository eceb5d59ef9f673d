"""The certificate's content is checked field by field: what is wrong is named per field, in Chinese."""
from __future__ import annotations

from datetime import date

from console import content

TODAY = date(2026, 3, 2)
#: a valid resident ID number (GB 11643 check digit) of a woman born 1996-05-17
ID_1996 = "321324199605170023"


def _form(**over: str) -> dict[str, str]:
    base = {"child_name": "李小满", "child_sex": "F", "birth_date": "2026-03-01", "birth_time": "08:30",
            "gestational_weeks": "39", "birth_weight_g": "3250", "birth_length_cm": "50", "health": "good",
            "birth_province": "江苏省", "birth_city": "宿迁市", "birth_county": "泗阳县", "birth_region_code": "321323",
            "place_type": "hospital",
            "mother_name": "王丽", "mother_age": "29", "mother_nationality": "中国", "mother_ethnicity": "汉族",
            "mother_id_type": "resident_id", "mother_id_number": ID_1996}
    return {**base, **over}


def test_a_complete_form_is_typed() -> None:
    values, errors = content.validate(_form(), TODAY)
    assert errors == {}
    assert values["birth_weight_g"] == 3250 and values["birth_length_cm"] == "50.0"
    assert content.display(values)["place_type"] == "医院"


def test_each_wrong_field_is_named() -> None:
    _, errors = content.validate(_form(child_name=" ", birth_weight_g="3250.5", gestational_weeks="60",
                                       health="excellent", birth_time="25:00", birth_date="2026-03-05",
                                       mother_id_number="321324199605170024", mother_nationality="中\x00国"),
                                 TODAY)
    assert set(errors) == {"child_name", "birth_weight_g", "gestational_weeks", "health", "birth_time",
                           "birth_date", "mother_id_number", "mother_nationality"}
    assert errors["child_name"] == "必填"
    assert errors["birth_date"] == "出生日期不能晚于今天"


def test_the_mothers_age_agrees_with_her_id_number() -> None:
    born = date(1996, 5, 17)
    age = content.age_on(born, date(2026, 3, 1))
    assert content.validate(_form(mother_age=str(age)), TODAY)[1] == {}
    errors = content.validate(_form(mother_age=str(age + 3)), TODAY)[1]
    assert str(age) in errors["mother_age"]


def test_prefill_takes_the_delivery_record_and_never_a_masked_value() -> None:
    child = {"person_id": "c1", "sex": "M", "birth_date": "2026-03-01", "born_in_pregnancy_id": "p1",
             "mother_id": "m1"}
    preg = {"encounters": [{"type": "delivery", "status": "active", "children": ["c1"], "place": "hospital",
                            "occurred_at": "2026-03-01T08:30:00+08:00",
                            "babies": [{"child_id": "c1", "sex": "M", "birth_weight_g": 3100}]}]}
    mother = {"name": "王*", "id_number": "3*****************", "birth_date": "1996-05-17"}
    out = content.prefill(child, preg, mother, {"name": "泗阳县人民医院", "kind": "hospital"})
    assert out["child_sex"] == "M" and out["birth_weight_g"] == "3100" and out["birth_time"] == "08:30"
    assert out["mother_age"] == str(content.age_on(date(1996, 5, 17), date(2026, 3, 1)))
    assert "mother_name" not in out and "mother_id_number" not in out
    assert out["delivery_institution"] == "泗阳县人民医院" and out["place_type"] == "hospital"
