"""The certificate's content (出生医学证明的填写内容): the fields of the national form, as data
(data/content_fields.json), and their validation field by field.

Why data: a new edition of the form adds or renames fields; the clerk's page, the preview, the print layout and
the checks all read the same list, so an edition is a change of data, not of four pieces of code."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

DATA = Path(__file__).resolve().parent / "data"
#: printable text: no control characters (NUL and friends break Postgres and printers alike)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: a county-level code of GB/T 2260 (行政区划代码): province, city, county, never a province or city alone
_COUNTY = re.compile(r"^[1-8][0-9](?!00)[0-9]{2}(?!00)[0-9]{2}$")


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    type: str
    required: bool
    group: str
    options: tuple[tuple[str, str], ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int = 100
    default: str = ""

    def option_label(self, code: str) -> str:
        return dict(self.options).get(code, code)


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    fields: tuple[Field, ...]


@lru_cache(maxsize=1)
def groups() -> tuple[Group, ...]:
    raw = json.loads((DATA / "content_fields.json").read_text(encoding="utf-8"))
    out = []
    for g in raw["groups"]:
        fields = tuple(Field(f["key"], f["label"], f["type"], bool(f.get("required")), g["key"],
                             tuple(tuple(o) for o in f.get("options", ())),  # type: ignore[misc]
                             f.get("min"), f.get("max"), int(f.get("max_length", 100)), f.get("default", ""))
                       for f in g["fields"])
        out.append(Group(g["key"], g["label"], fields))
    return tuple(out)


def fields() -> dict[str, Field]:
    return {f.key: f for g in groups() for f in g.fields}


def form_title() -> str:
    return str(json.loads((DATA / "content_fields.json").read_text(encoding="utf-8"))["form"])


def validate(form: dict[str, str], today: date) -> tuple[dict[str, Any], dict[str, str]]:
    """The content as typed values and, per field key, what is wrong (in Chinese, for the clerk).

    Cross-field rules: the birth is not in the future; the mother's ID number, when it is a resident ID, has a
    valid check digit (GB 11643) and her age agrees with it within a year."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields().values():
        raw = (form.get(f.key) or "").strip()
        if not raw:
            if f.required:
                errors[f.key] = "必填"
            continue
        try:
            values[f.key] = _parse(f, raw)
        except ValueError as e:
            errors[f.key] = str(e)
    _cross_checks(values, errors, today)
    return values, errors


def _parse(f: Field, raw: str) -> Any:
    if _CONTROL.search(raw):
        raise ValueError("含有不可打印的控制字符")
    if len(raw) > f.max_length:
        raise ValueError(f"最多 {f.max_length} 个字符")
    if f.type == "enum":
        if raw not in dict(f.options):
            raise ValueError("请从列表中选择")
        return raw
    if f.type in ("int", "decimal"):
        return _number(f, raw)
    if f.type == "date":
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError("日期格式应为 年-月-日，如 2026-03-01") from None
    if f.type == "time":
        try:
            return time.fromisoformat(raw).strftime("%H:%M")
        except ValueError:
            raise ValueError("时刻格式应为 时:分，如 08:30") from None
    if f.type == "region":
        if not _COUNTY.match(raw):
            raise ValueError("应为 6 位县级行政区划代码，如 321323")
        return raw
    if f.type == "id_number":
        return raw.upper()
    return raw


def _number(f: Field, raw: str) -> int | str:
    try:
        n = Decimal(raw)
    except InvalidOperation:
        raise ValueError("应为数字") from None
    if not n.is_finite() or (f.type == "int" and n != n.to_integral_value()):
        raise ValueError("应为整数" if f.type == "int" else "应为数字")
    if (f.min is not None and n < Decimal(str(f.min))) or (f.max is not None and n > Decimal(str(f.max))):
        raise ValueError(f"应在 {f.min:g} 到 {f.max:g} 之间")
    return int(n) if f.type == "int" else str(n.quantize(Decimal("0.1")))


def _cross_checks(v: dict[str, Any], errors: dict[str, str], today: date) -> None:
    born = date.fromisoformat(v["birth_date"]) if "birth_date" in v else None
    if born and born > today:
        errors["birth_date"] = "出生日期不能晚于今天"
    if born and born.year < 1900:
        errors["birth_date"] = "出生日期不能早于 1900 年"
    for parent in ("mother", "father"):
        number, kind = v.get(f"{parent}_id_number"), v.get(f"{parent}_id_type")
        if number and kind == "resident_id":
            _check_resident_id(parent, number, v.get(f"{parent}_age"), born or today, errors)


def _check_resident_id(parent: str, number: str, age: int | None, on: date, errors: dict[str, str]) -> None:
    """Check digit and birth date (GB 11643). The county part is left to the registry: it is where the number
    was assigned, of any edition of GB/T 2260, and stdnum's own validate refuses most people born before 1983."""
    num = ric.compact(number)
    try:
        if len(num) != 18 or not num[:17].isdigit() or num[-1] != ric.calc_check_digit(num):
            raise ValidationError()
        birth = ric.get_birth_date(num)
    except ValidationError:
        errors[f"{parent}_id_number"] = "居民身份证号码无效（校验位或出生日期不符）"
        return
    years = age_on(birth, on)
    if age is not None and abs(years - age) > 1:
        errors[f"{parent}_age"] = f"与身份证号码的出生日期不符（应为 {years} 岁）"


def display(values: dict[str, Any]) -> dict[str, str]:
    """Each field as printed: option codes as their Chinese label, everything as text."""
    fs = fields()
    out = {}
    for key, value in values.items():
        f = fs.get(key)
        out[key] = f.option_label(str(value)) if f and f.type == "enum" else str(value)
    return out


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def prefill(child: dict[str, Any], pregnancy: dict[str, Any] | None, mother: dict[str, Any] | None,
            institution: dict[str, Any] | None) -> dict[str, str]:
    """The form pre-filled from the registry's delivery record: what the clerk confirms rather than retypes.
    Masked values (张*) are never copied into a field: the clerk types them from the parents' documents."""
    out = {f.key: f.default for f in fields().values() if f.default}
    out["child_sex"] = {"F": "F", "M": "M"}.get(str(child.get("sex")), "")
    out["birth_date"] = str(child.get("birth_date") or "")
    delivery = _delivery(pregnancy, str(child.get("person_id") or ""))
    if delivery:
        out.update(_from_delivery(delivery, str(child.get("person_id") or "")))
    if institution:
        out["delivery_institution"] = str(institution.get("name") or "")
        out["birth_region_code"] = str(institution.get("region_code") or "")[:6]
        out["place_type"] = out.get("place_type") or _place_type(institution)
    if mother:
        out.update(_from_mother(mother, child))
    return {k: v for k, v in out.items() if v and "*" not in v}


def _delivery(pregnancy: dict[str, Any] | None, child_id: str) -> dict[str, Any] | None:
    for e in (pregnancy or {}).get("encounters", []):
        if e.get("type") == "delivery" and e.get("status") == "active" and child_id in e.get("children", []):
            return dict(e)
    return None


def _from_delivery(e: dict[str, Any], child_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    baby: dict[str, Any] = next((b for b in e.get("babies", []) if b.get("child_id") == child_id), {})
    if baby.get("birth_weight_g"):
        out["birth_weight_g"] = str(baby["birth_weight_g"])
    occurred = str(e.get("occurred_at") or "")
    if occurred:
        try:
            out["birth_time"] = datetime.fromisoformat(occurred).strftime("%H:%M")
        except ValueError:
            pass
    if e.get("gestational_weeks"):
        out["gestational_weeks"] = str(e["gestational_weeks"])
    out["place_type"] = {"home": "home", "en_route": "other", "other": "other"}.get(str(e.get("place")), "")
    return out


def _place_type(institution: dict[str, Any]) -> str:
    return "mch_centre" if institution.get("kind") == "mch_centre" else "hospital"


def _from_mother(mother: dict[str, Any], child: dict[str, Any]) -> dict[str, str]:
    out = {"mother_name": str(mother.get("name") or ""), "mother_id_number": str(mother.get("id_number") or "")}
    if out["mother_id_number"] and "*" not in out["mother_id_number"]:
        out["mother_id_type"] = "resident_id"
    try:
        out["mother_age"] = str(age_on(date.fromisoformat(str(mother["birth_date"])),
                                       date.fromisoformat(str(child["birth_date"]))))
    except (KeyError, ValueError):
        pass
    return out
