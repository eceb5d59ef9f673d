"""Statutory tables (妇幼卫生年报表) on a county's year built from records: the maternal and child tables checked cell
by cell — every township row (by name) and the total row — against the independent reference calculation of
tests/reference.py over the stories posted; the workbook is printable (A4 landscape, header rows repeated) with
one sheet per form; the CSV carries a UTF-8 BOM."""
from __future__ import annotations

import asyncio
import io
import json
import random
import zipfile
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
from indicators.reports.forms import FORMS_DIR

from tests import reference as ref
from tests.conftest import Stack, fresh_county, wait_for
from tests.helpers import setup_institutions
from tests.test_property import Poster, family_story

CHINA = timezone(timedelta(hours=8))
FAMILIES = 30
TOWNSHIPS = {1: "城关镇", 2: "双沟镇", 3: "高新技术产业开发区"}
PERIODS = {"2025": (date(2025, 1, 1), date(2025, 12, 31)), "2025-01..09": (date(2025, 1, 1), date(2025, 9, 30))}


def expected_cells(table: dict[str, Any], form: dict[str, Any], cat: dict[str, Any],
                   want: dict[str, tuple[int, int | None]]) -> list[Any]:
    """A row of the form from the reference's (numerator, denominator) of each indicator."""
    out: list[Any] = []
    for c in form["columns"]:
        if "part" in c:
            code, _, p = c["part"].partition(".")
            n, d = want.get(code, (0, 0))
            out.append(n if p == "n" else d)
        else:
            n, d = want.get(c["rate"], (0, 0))
            out.append(ref.rate(n, d or 0, cat[c["rate"]]["factor"]))
    return out


async def test_maternal_and_child_tables_cell_by_cell(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    for t, name in TOWNSHIPS.items():
        r = await http.put(f"{stack.url('indicators')}/v1/regions/{county}{t:03d}",
                           json={"name": name, "kind": "functional" if "开发区" in name else "local"})
        assert r.status_code == 200, r.text
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> ref.Family:
        async with sem:
            own = random.Random(4242 + i)
            return await family_story(Poster(http, stack, own), own, county, insts)

    families = list(await asyncio.gather(*(one(i) for i in range(FAMILIES))))
    today = datetime.now(CHINA).date().replace(day=1)
    base = f"{stack.url('indicators')}/v1/reports"
    cat = {i["code"]: i for i in (await http.get(f"{stack.url('indicators')}/v1/indicators")).json()["indicators"]}
    layouts = {f["code"]: f for f in (await http.get(f"{base}/forms")).json()["forms"]}
    # the layout files as the service reads them (the columns' parts and rates are in the service's JSON files)
    files = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in FORMS_DIR.glob("*.json")}
    assert set(layouts) == set(files) and {"maternal", "child", "premarital", "cancers", "certificates"} <= set(files)

    def mismatches(tables: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
        bad = []
        for (form, period), t in tables.items():
            start, end = PERIODS[period]
            by_unit = {row["unit"]: row for row in t["rows"]}
            for tn, name in TOWNSHIPS.items():
                code = f"{county}{tn:03d}"
                want = expected_cells(t, files[form], cat, ref.values(families, code, start, end, today))
                row = by_unit.get(code)
                if row is None or row["name"] != name or row["cells"] != want:
                    bad.append(f"{form} {period} {code}: got {row and row['cells']} want {want}")
            total = expected_cells(t, files[form], cat, ref.values(families, county, start, end, today))
            if t["total"]["cells"] != total:
                bad.append(f"{form} {period} total: got {t['total']['cells']} want {total}")
        return bad

    async def read() -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for form in ("maternal", "child"):
            for period in PERIODS:
                r = await http.get(f"{base}/forms/{form}", params={"region": county, "period": period})
                assert r.status_code == 200, r.text
                out[(form, period)] = r.json()
        return out

    async def settled() -> bool:
        return not mismatches(await read())

    try:
        await wait_for(settled, timeout=60, interval=1)
    except AssertionError:
        raise AssertionError("\n".join(mismatches(await read())[:20])) from None
    tables = await read()
    mat = tables[("maternal", "2025")]
    # the stories fill the table (not a table of zeros), every row is a township by name, no residual row
    assert mat["total"]["cells"][0] > 5 and [r["name"] for r in mat["rows"]] == list(TOWNSHIPS.values())
    assert mat["columns"][0] == {"label": "活产数", "unit": "人"}
    assert {c["unit"] for c in mat["columns"]} == {"人", "%", "1/10万"}
    assert {c["unit"] for c in tables[("child", "2025")]["columns"]} == {"人", "%", "‰"}
    assert mat["header"]["填报单位"] and mat["header"]["制定机关"] == "国家卫生健康委员会"
    assert list(mat["footer"]) == ["单位负责人", "统计负责人", "填表人", "联系电话", "报出日期"]
    assert mat["final"] is True and tables[("maternal", "2025-01..09")]["period_zh"] == "2025年1–9月（截止9月底）"

    r = await http.get(f"{base}/statutory", params={"region": county, "period": "2025", "format": "xlsx"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        sheets = sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
        workbook = z.read("xl/workbook.xml").decode()
        first = z.read("xl/worksheets/sheet1.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert len(sheets) == len(files)
    assert 'orientation="landscape"' in first and 'paperSize="9"' in first
    assert "_xlnm.Print_Titles" in workbook
    for text in ("孕产妇保健和健康情况年报表", "7岁以下儿童保健和健康情况年报表", "城关镇", "高新技术产业开发区",
                 "合计", "填表人", "表号"):
        assert text in strings, text
    r = await http.get(f"{base}/forms/maternal", params={"region": county, "period": "2025", "format": "csv"})
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    assert "城关镇" in r.content.decode("utf-8-sig")


async def test_certificate_table_reads_institutions_and_bad_input(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    base = f"{stack.url('indicators')}/v1/reports"

    async def known() -> Any:
        r = await http.get(f"{base}/forms/certificates", params={"region": county, "period": "2025"})
        assert r.status_code == 200, r.text
        return r.json() if {row["unit"] for row in r.json()["rows"]} == set(insts) else None
    t = await wait_for(known, 20)
    assert [c["label"] for c in t["columns"]][:2] == ["期初库存", "申领"] and t["columns"][-1]["label"] == "期末库存"
    assert {row["name"] for row in t["rows"]} == {f"医院{c}" for c in insts}
    assert {c["unit"] for c in t["columns"]} == {"份", "%"}
    r = await http.get(f"{base}/forms/nosuch", params={"region": county, "period": "2025"})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "form"
    r = await http.get(f"{base}/forms/maternal", params={"region": county, "period": "2025-03..09"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "period"
    r = await http.put(f"{stack.url('indicators')}/v1/regions/{county}001", json={"name": " "})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
