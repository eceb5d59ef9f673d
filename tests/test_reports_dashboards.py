"""The bureau's dashboards on a real stack: every Postgres query of every panel (values and targets) runs; a stat's
thresholds come from the region's target (red / amber / green in the target's direction); the status panel says
final or provisional; the filings dashboard lists who filed and approved; the region table names townships."""
from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values

DASHBOARDS = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"


def pg_panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(DASHBOARDS.glob("*.json")):
        for p in json.loads(f.read_text(encoding="utf-8"))["panels"]:
            # the indicators database's panels (the quality dashboard reads the quality service's own database)
            if p["datasource"]["type"] == "grafana-postgresql-datasource" and p["datasource"]["uid"] != "mch-quality":
                out.append((f"{f.stem}/{p['title']}", p))
    return out


def fill(sql: str, region: str, period: str) -> str:
    return sql.replace("$region", region).replace("$period", period)


async def test_dashboard_queries_targets_status_and_filings(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    await setup_institutions(http, stack, county)
    cases = [DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, 1, 1),
                          f"H{county}A", d - timedelta(days=275), d, "hospital", mode, [Baby("F", 3000, "live")])
             for d, mode in ((date(2025, 3, 1), "caesarean"), (date(2025, 4, 1), "vaginal"),
                             (date(2025, 5, 1), "vaginal"))]
    for c in cases:
        await post_case(http, stack, c)

    async def settled() -> Any:
        return (await values(http, stack, county, "2025")).get("live_births") == (3, None)
    await wait_for(settled, 30)
    assert (await http.put(f"{stack.url('indicators')}/v1/regions/{county}001", json={"name": "城关镇"})
            ).status_code == 200
    assert (await http.put(f"{stack.url('indicators')}/v1/targets", json={
        "code": "caesarean_rate", "region": county, "year": 2025, "target": 30, "comparison": "<="})).status_code == 200
    _, stat = await make_person(stack, ["statistician"], county, name="县统计员")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {stat}"}) as c:
        r = await c.post(f"{stack.url('indicators')}/v1/reports/annual/filings/2025/{county}/submit")
        assert r.status_code == 200, r.text

    s = stack.settings
    conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user,
                                 database=s.database("indicators"))
    try:
        ran = 0
        for _name, p in pg_panels():
            for t in p["targets"]:
                await conn.fetch(fill(t["rawSql"], county, "2025"))  # every query runs
                ran += 1
        assert ran >= 50
        panels = dict(pg_panels())
        caes = panels["maternal/剖宫产率"]
        value = await conn.fetchval(fill(caes["targets"][0]["rawSql"], county, "2025"))
        assert value == (Decimal(100) / 3).quantize(Decimal("0.01"))
        t = await conn.fetchrow(fill(caes["targets"][1]["rawSql"], county, "2025"))
        assert (t["t1"], t["t2"]) == (Decimal(30), Decimal("31.50"))  # a ceiling: green ≤ 30, amber ≤ 31.5, red
        steps = [m["handlerArguments"]["threshold"]["color"] for m in caes["transformations"][0]["options"]["mappings"]]
        assert caes["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] == "green" and steps == [
            "orange", "red"]
        hosp = panels["maternal/住院分娩率"]
        assert hosp["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] == "red"
        status = await conn.fetchval(fill(panels["maternal/数据状态 Final or provisional"]["targets"][0]["rawSql"],
                                          county, "2025"))
        assert status.startswith("终报")
        this_month = date.today().strftime("%Y-%m")
        assert (await conn.fetchval(fill(panels["maternal/数据状态 Final or provisional"]["targets"][0]["rawSql"],
                                         county, this_month))).startswith("快报")
        table = next(p for n, p in pg_panels() if n.startswith("maternal/下一级地区"))
        rows = await conn.fetch(fill(table["targets"][0]["rawSql"], county, "2025"))
        assert [(r["地区"], r["名称"], r["活产数"]) for r in rows] == [(f"{county}001", "城关镇", 3)]
        filings = next(p for n, p in pg_panels() if n.startswith("filings/上报审核明细"))
        rows = await conn.fetch(fill(filings["targets"][0]["rawSql"], county, "2025"))
        assert [(r["单位代码"], r["状态"], r["上报人"]) for r in rows] == [(county, "已上报", "县统计员")]
    finally:
        await conn.close()


async def test_a_region_viewer_sees_only_its_region(stack: Stack, http: httpx.AsyncClient) -> None:
    from indicators.admin import create_viewer

    a, b = fresh_county(), fresh_county()
    for county in (a, b):
        await setup_institutions(http, stack, county)
        d = date(2025, 6, 1)
        await post_case(http, stack, DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}",
                                                  village(county, 1, 1), f"H{county}A", d - timedelta(days=275), d,
                                                  "hospital", "vaginal", [Baby("M", 3100, "live")]))
        assert (await http.put(f"{stack.url('indicators')}/v1/targets", json={
            "code": "live_births", "region": county, "year": 2025, "target": 10})).status_code == 200

    async def settled_both() -> Any:
        got = [(await values(http, stack, c, "2025")).get("live_births") for c in (a, b)]
        return got == [(1, None), (1, None)]
    await wait_for(settled_both, 30)

    role = f"viewer_{a}"
    await create_viewer(stack.settings, role, a)
    name = stack.settings.db_prefix + role
    s = stack.settings
    admin = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user,
                                  database=s.database("indicators"))
    viewer = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=name, database=s.database("indicators"))
    try:
        q = ("select region, n from counter where code = 'live_births' and period = '2025' and institution = '' "
             "and region = any($1::text[]) order by 1")
        assert [tuple(r) for r in await admin.fetch(q, [a, b])] == sorted([(a, 1), (b, 1)])
        assert [tuple(r) for r in await viewer.fetch(q, [a, b])] == [(a, 1)]
        assert await viewer.fetchval("select count(*) from tally where region like $1", b + "%") == 0
        assert await viewer.fetchval("select count(*) from target where region = $1", b) == 0
        assert await viewer.fetchval("select count(*) from target where region = $1", a) == 1
        assert await viewer.fetchval("select region_prefix from grafana_viewer") == a
        try:
            await viewer.fetch("select * from unit limit 1")
            raise AssertionError("a viewer reads the engine's units")
        except asyncpg.InsufficientPrivilegeError:
            pass
    finally:
        await viewer.close()
        await admin.execute(f'drop owned by "{name}"')
        await admin.execute(f'drop role "{name}"')
        await admin.close()
