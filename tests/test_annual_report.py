"""GET /v1/reports/annual on the small demo county: every catalogue indicator in its section, the numbers the
demo posted, targets and completion, and the same table as XLSX with Chinese headings."""
from __future__ import annotations

import io
import zipfile
from decimal import ROUND_HALF_UP, Decimal

import httpx

from tests.conftest import Stack, make_token
from tests.demo_county import small_county
from tests.helpers import wait_values


def pct(n: int, d: int) -> float:
    return float((Decimal(n) * 100 / Decimal(d)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


async def test_annual_report_json_and_xlsx(stack: Stack, http: httpx.AsyncClient) -> None:
    county = await small_county(stack)
    want = county.expected()
    assert want["live_births"][0] > 100
    await wait_values(http, stack, county.code, str(county.year), want, timeout=60)
    target = want["live_births"][0] + 17
    r = await http.put(f"{stack.url('indicators')}/v1/targets",
                       json={"code": "live_births", "region": county.code, "year": county.year, "target": target})
    assert r.status_code == 200, r.text

    r = await http.get(f"{stack.url('indicators')}/v1/reports/annual",
                       params={"region": county.code, "year": county.year})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["region"] == county.code and rep["year"] == county.year
    cat = (await http.get(f"{stack.url('indicators')}/v1/indicators")).json()["indicators"]
    rows = {row["code"]: row for s in rep["sections"] for row in s["rows"]}
    assert list(rows) == [i["code"] for i in sorted(cat, key=lambda i: [s["section"] for s in rep["sections"]]
                                                     .index(i["section"]))]
    assert rep["sections"][0]["title_zh"] == "一、孕产妇健康管理"
    for code, (n, d) in want.items():
        assert (rows[code]["numerator"], rows[code]["denominator"]) == (n, d), code
    caes_n, lb = want["caesarean_rate"]
    assert rows["caesarean_rate"]["value"] == pct(caes_n, lb)
    assert rows["caesarean_rate"]["unit"] == "%"
    assert rows["live_births"]["target"] == target
    assert rows["live_births"]["completion"] == pct(lb, target)
    assert rows["women_delivered"]["target"] is None and rows["women_delivered"]["completion"] is None

    # a statistical year (1 Oct – 30 Sep) counts only the deliveries in it
    sy = [c for c in county.delivered() if c["delivered"].month < 10]
    r = await http.get(f"{stack.url('indicators')}/v1/reports/annual",
                       params={"region": county.code, "year": county.year, "statistical": "true"})
    sy_rows = {row["code"]: row for s in r.json()["sections"] for row in s["rows"]}
    assert sy_rows["women_delivered"]["numerator"] == len(sy)

    r = await http.get(f"{stack.url('indicators')}/v1/reports/annual",
                       params={"region": county.code, "year": county.year, "format": "xlsx"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        strings = z.read("xl/sharedStrings.xml").decode()
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    for text in ("年度统计表", "一、孕产妇健康管理", "二、儿童健康管理", "活产数", "剖宫产率", "任务数", "完成率(%)"):
        assert text in strings, text
    assert f"<v>{lb}</v>" in sheet and f"<v>{target}</v>" in sheet


async def test_annual_report_scope_and_bad_input(stack: Stack) -> None:
    county = await small_county(stack)
    url = f"{stack.url('indicators')}/v1/reports/annual"
    other = "3299"  # another prefix than the client's
    tok = await make_token(stack, ["indicators:read"], county.code)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {tok}"}) as c:
        assert (await c.get(url, params={"year": county.year})).json()["region"] == county.code
        assert (await c.get(url, params={"region": other, "year": county.year})).status_code == 403
        bad = await c.get(url, params={"region": "123", "year": county.year})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "region"
    async with httpx.AsyncClient() as c:
        assert (await c.get(url, params={"year": county.year})).status_code == 401
