"""Statutory report tables (妇幼卫生年报表) as data: one layout file per form in `reports/forms/*.json`, like the
indicator catalogue. Pure: layouts in, counts in, a table out (rows, columns, total row, header and footer).

A layout names its rows (`region`: the units one level below the chosen region — townships of a county,
counties of a city; `institution`: the institutions in it) and its columns, each one of:

- `part`: a stored count, `<indicator code>.n|d` (e.g. `live_births.n`, `under7_health_management_rate.d`);
- `rate`: an indicator's value, recomputed from that row's numerator and denominator (the total row's from the
  total's, never an average of rates);
- `opening`: a standing count at the end of the month before the period (期初库存);
- `received`: a balance: closing − opening + the `out` counts − the `in` counts (其他变动 = 期末 − 期初 − 申领 + 签发 +
  废证: the blanks drawn for certificates not yet sealed at the period's end, and voids of earlier periods'
  certificates, whose blanks come back to stock before they are spoiled).

Every column carries its unit (人, 例, 对, 份, %, ‰, 1/10万). Adding a form is adding a file.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from indicators.domain.catalogue import Catalogue
from indicators.domain.targets import evaluate
from indicators.domain.values import value

FORMS_DIR = Path(__file__).resolve().parent / "forms"
ORDER = ("maternal", "child", "premarital", "cancers", "certificates", "births", "pmtct", "programmes", "quality")
UNITS = ("人", "例", "对", "份", "瓶", "包", "%", "‰", "1/万", "1/10万", "女=100")
FOOTER = ("单位负责人", "统计负责人", "填表人", "联系电话", "报出日期")
#: the row of what the rows do not hold (a bureau's central certificate stock, no institution)
RESIDUAL_ZH = "本级及未分配"

Counts = Mapping[tuple[str, str], int]  # (indicator code, "n"|"d") → n


@dataclass(frozen=True)
class Form:
    code: str
    title: str
    header: dict[str, str]
    rows: str  # "region" | "institution"
    columns: tuple[dict[str, Any], ...]

    def parts(self) -> set[tuple[str, str]]:
        """Every (code, part) the form reads for its rows and total."""
        out: set[tuple[str, str]] = set()
        for c in self.columns:
            for ref in [c.get("part"), c.get("received"), *c.get("out", []), *c.get("in", [])]:
                if ref:
                    code, _, p = ref.partition(".")
                    out.add((code, p))
            if c.get("rate"):
                out |= {(c["rate"], "n"), (c["rate"], "d")}
        return out

    def opening_parts(self) -> set[tuple[str, str]]:
        out = set()
        for c in self.columns:
            for ref in (c.get("opening"), c.get("received")):
                if ref:
                    code, _, p = ref.partition(".")
                    out.add((code, p))
        return out


def parse(doc: dict[str, Any], cat: Catalogue) -> Form:
    """A layout, checked against the catalogue: every code and unit must exist (a typo fails at start-up)."""
    by_code = cat.by_code()
    for c in doc["columns"]:
        if c.get("unit") not in UNITS:
            raise ValueError(f"form {doc['code']}: column {c.get('label')}: unit must be one of {UNITS}")
        refs = [c.get("part"), c.get("opening"), c.get("received"), *c.get("out", []), *c.get("in", [])]
        for ref in filter(None, refs):
            code, _, p = ref.partition(".")
            if code not in by_code or p not in ("n", "d") or (p == "d" and by_code[code].denominator is None):
                raise ValueError(f"form {doc['code']}: unknown count {ref}")
        if c.get("rate") and (c["rate"] not in by_code or by_code[c["rate"]].denominator is None):
            raise ValueError(f"form {doc['code']}: {c['rate']} is not a rate")
        if sum(1 for k in ("part", "rate", "opening", "received") if c.get(k)) != 1:
            raise ValueError(f"form {doc['code']}: column {c.get('label')} needs one of part/rate/opening/received")
    if doc.get("rows") not in ("region", "institution"):
        raise ValueError(f"form {doc['code']}: rows must be region or institution")
    return Form(doc["code"], doc["title"], dict(doc.get("header", {})), doc["rows"], tuple(doc["columns"]))


def load_all(cat: Catalogue, folder: Path = FORMS_DIR, headers: Path | None = None) -> dict[str, Form]:
    """Every form of `folder`. `headers` (`MCH_FORM_HEADERS`): a JSON file {form code: {表号: ..., 批准文号: ...,
    有效期至: ...}} with the numbers of the survey system's edition the bureau was issued — they change with each
    edition (every two or three years), so a bureau sets them without a new release."""
    forms = {f.code: f for f in (parse(json.loads(p.read_text(encoding="utf-8")), cat)
                                 for p in sorted(folder.glob("*.json")))}
    if headers is not None:
        for code, fields in json.loads(headers.read_text(encoding="utf-8")).items():
            if code not in forms:
                raise ValueError(f"{headers}: no form {code}")
            forms[code].header.update({str(k): str(v) for k, v in fields.items()})
    rank = {c: i for i, c in enumerate(ORDER)}
    return dict(sorted(forms.items(), key=lambda kv: rank.get(kv[0], len(ORDER))))


def _n(counts: Counts, ref: str) -> int:
    code, _, p = ref.partition(".")
    return int(counts.get((code, p), 0))


def cells(form: Form, cat: Catalogue, counts: Counts, opening: Counts) -> list[int | float | None]:
    """One row of the table from that row's counts (and its counts at the end of the month before)."""
    by_code = cat.by_code()
    out: list[int | float | None] = []
    for c in form.columns:
        if c.get("part"):
            out.append(_n(counts, c["part"]))
        elif c.get("rate"):
            code = c["rate"]
            out.append(value(by_code[code], int(counts.get((code, "n"), 0)), int(counts.get((code, "d"), 0))))
        elif c.get("opening"):
            out.append(_n(opening, c["opening"]))
        else:
            out.append(_n(counts, c["received"]) - _n(opening, c["received"])
                       + sum(_n(counts, o) for o in c.get("out", [])) - sum(_n(counts, i) for i in c.get("in", [])))
    return out


def target_code(c: dict[str, Any], cat: Catalogue) -> str | None:
    """The indicator whose target applies to a column: a rate column's, or a count indicator's numerator."""
    if c.get("rate"):
        return str(c["rate"])
    code, _, p = str(c.get("part") or "").partition(".")
    ind = cat.by_code().get(code)
    return code if ind is not None and ind.denominator is None and p == "n" else None


def against(form: Form, cat: Catalogue, cells_: list[int | float | None],
            targets: Mapping[str, tuple[Decimal, str]]) -> dict[str, dict[str, object]]:
    """Column index → the target of that cell with its completion and red / amber / green status."""
    out = {}
    by_code = cat.by_code()
    for i, c in enumerate(form.columns):
        code = target_code(c, cat)
        if code and code in targets:
            v = cells_[i]
            out[str(i)] = evaluate(by_code[code], v, int(v or 0), *targets[code])
    return out


def residual(total: Counts, rows: Sequence[Counts]) -> dict[tuple[str, str], int]:
    """What the total holds beyond the rows (e.g. a bureau's stock under no institution); empty if nothing."""
    out = {k: int(v) - sum(int(r.get(k, 0)) for r in rows) for k, v in total.items()}
    return {k: v for k, v in out.items() if v}


def build(form: Form, cat: Catalogue, *, region: str, region_name: str, period: str, period_zh: str,
          rows: Sequence[tuple[str, str, Counts, Counts]], total: Counts, total_opening: Counts,
          footer: Mapping[str, str], final: bool, final_on: str,
          targets: Mapping[str, Mapping[str, tuple[Decimal, str]]] | None = None) -> dict[str, Any]:
    """rows: (unit code, unit name, counts, opening counts) in display order. The total row is the region's own
    counts (every case once, whichever row it is in), and rates in it are recomputed from its parts."""
    targets = targets or {}

    def line(code: str, name: str, c: Counts, o: Counts) -> dict[str, Any]:
        row = cells(form, cat, c, o)
        return {"unit": code, "name": name, "cells": row, "targets": against(form, cat, row, targets.get(code, {}))}

    body = [line(code, name, c, o) for code, name, c, o in rows]
    rest = residual(total, [c for _, _, c, _ in rows])
    rest_open = residual(total_opening, [o for _, _, _, o in rows])
    if rest or rest_open:
        body.append({"unit": "", "name": RESIDUAL_ZH, "cells": cells(form, cat, rest, rest_open), "targets": {}})
    return {
        "form": form.code, "title": form.title, "header": {**form.header, "填报单位": region_name or region},
        "region": region, "region_name": region_name, "period": period, "period_zh": period_zh,
        "final": final, "final_on": final_on, "row_kind": form.rows,
        "columns": [{"label": c["label"], "unit": c["unit"]} for c in form.columns],
        "rows": body,
        "total": line(region, "合计", total, total_opening),
        "footer": {k: footer.get(k, "") for k in FOOTER},
    }
