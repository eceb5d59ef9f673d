"""The certificate's content (出生医学证明的填写内容), checked field by field before it is stored.

The fields of the national form are data (data/content_fields.json: the same list the console fills, previews and
prints; tests/test_certificate_content.py keeps the two copies equal). The service is the authority: a client
other than the console (a hospital's HIS, a script) is held to the same rules, and each wrong field is named
`content.<key>` in the 422, with the reason in Chinese because it is shown beside the field on the clerk's form.

Cross-field and cross-record rules: the content names the same child as the certificate (`child_name`), its birth
date is the registry's, the birth is not in the future, a resident ID number has a valid check digit (GB 11643)
and agrees with the parent's age, and for a birth in an institution the birthplace's county code (行政区划代码)
is the county of the delivering institution.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from kit.records import DomainError
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

FIELDS_FILE = Path(__file__).resolve().parent.parent / "data" / "content_fields.json"
#: printable text: no control characters (NUL and friends break Postgres and printers alike)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: a county-level code of GB/T 2260: province (2 digits, 11..82), city, county; never a province or city alone
_COUNTY = re.compile(r"^[1-8][0-9](?!00)[0-9]{2}(?!00)[0-9]{2}$")


@dataclass(frozen=True)
class Field:
    key: str
    type: str
    required: bool
    options: frozenset[str] = frozenset()
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = 100


@dataclass(frozen=True)
class Facts:
    """What the service itself knows of the certificate being prepared, to check the content against."""

    child_name: str
    birth_date: date | None          # from the registry's events; None when the child is not known here
    institution_region: str | None   # the delivering institution's region (12 digits), for an in-institution birth
    today: date


@lru_cache(maxsize=1)
def fields() -> dict[str, Field]:
    raw = json.loads(FIELDS_FILE.read_text(encoding="utf-8"))
    return {f["key"]: Field(f["key"], f["type"], bool(f.get("required")), frozenset(o[0] for o in f.get("options", ())),
                            _dec(f.get("min")), _dec(f.get("max")), int(f.get("max_length", 100)))
            for g in raw["groups"] for f in g["fields"]}


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def checked(content: dict[str, Any], facts: Facts) -> dict[str, Any]:
    """The content typed and normalised, or a DomainError naming every wrong field (`content.<key>`)."""
    values, errors = validate(content, facts)
    if errors:
        raise DomainError([{"field": f"content.{k}", "reason": v} for k, v in sorted(errors.items())])
    return values


def validate(content: dict[str, Any], facts: Facts) -> tuple[dict[str, Any], dict[str, str]]:
    spec = fields()
    errors = {k: "表单中没有这个字段" for k in content if k not in spec}
    values: dict[str, Any] = {}
    for f in spec.values():
        v = content.get(f.key)
        raw = "" if v is None else str(v).strip()
        if not raw:
            if f.required:
                errors[f.key] = "必填"
            continue
        try:
            values[f.key] = _parse(f, raw)
        except ValueError as e:
            errors[f.key] = str(e)
    _cross_checks(values, errors, facts)
    return values, errors


def _parse(f: Field, raw: str) -> Any:
    if _CONTROL.search(raw):
        raise ValueError("含有不可打印的控制字符")
    if len(raw) > f.max_length:
        raise ValueError(f"最多 {f.max_length} 个字符")
    if f.type == "enum":
        if raw not in f.options:
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
    if f.min is not None and f.max is not None and not f.min <= n <= f.max:
        raise ValueError(f"应在 {f.min.normalize():f} 到 {f.max.normalize():f} 之间")
    return int(n) if f.type == "int" else str(n.quantize(Decimal("0.1")))


def _cross_checks(v: dict[str, Any], errors: dict[str, str], facts: Facts) -> None:
    if "child_name" in v and v["child_name"] != facts.child_name.strip():
        errors["child_name"] = "与证件上的新生儿姓名不一致"
    born = date.fromisoformat(v["birth_date"]) if "birth_date" in v else None
    if born and born > facts.today:
        errors["birth_date"] = "出生日期不能晚于今天"
    elif born and facts.birth_date and born != facts.birth_date:
        errors["birth_date"] = f"与出生登记的出生日期（{facts.birth_date.isoformat()}）不一致"
    region = v.get("birth_region_code")
    if region and facts.institution_region and v.get("place_type") in ("hospital", "mch_centre") \
            and not facts.institution_region.startswith(region):
        errors["birth_region_code"] = f"与接生机构所在县（{facts.institution_region[:6]}）不一致"
    for parent in ("mother", "father"):
        number, kind = v.get(f"{parent}_id_number"), v.get(f"{parent}_id_type")
        if number and kind == "resident_id":
            _check_resident_id(parent, number, v.get(f"{parent}_age"), born or facts.today, errors)
        if (number is None) != (kind is None) and f"{parent}_id_number" not in errors:
            errors[f"{parent}_id_number" if number is None else f"{parent}_id_type"] = "证件类别与号码应同时填写"


def _check_resident_id(parent: str, number: str, age: int | None, on: date, errors: dict[str, str]) -> None:
    """Check digit and birth date (GB 11643); the county part is the registry's to judge (any edition of
    GB/T 2260: stdnum's own validate refuses most people born before 1983)."""
    num = ric.compact(number)
    try:
        if len(num) != 18 or not num[:17].isdigit() or num[-1] != ric.calc_check_digit(num):
            raise ValidationError()
        birth = ric.get_birth_date(num)
    except ValidationError:
        errors[f"{parent}_id_number"] = "居民身份证号码无效（校验位或出生日期不符）"
        return
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    if age is not None and abs(years - age) > 1:
        errors[f"{parent}_age"] = f"与身份证号码的出生日期不符（应为 {years} 岁）"
