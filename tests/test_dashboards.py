"""Every provisioned Grafana panel's query, run on the small demo county: PostgreSQL panels against the test stack's
indicators database, Prometheus panels against Debian's `prometheus` scraping the test stack's /metrics."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import devstack
import httpx
import pytest
from certificates.tests.stack_helpers import births, issue, new_prefix, office, prepare, stock, void, wait_known

from demo import county as county_mod
from demo.generate import live_plan
from demo.post import Poster
from tests.conftest import Stack, make_person, village, wait_for
from tests.demo_county import small_county
from tests.helpers import wait_values

DASHBOARDS = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
CHINA = timezone(timedelta(hours=8))


def panels(ds_type: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(DASHBOARDS.glob("*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        for p in doc["panels"]:
            # the quality dashboard reads the quality database (datasource mch-quality): tests/test_quality.py
            if p["datasource"]["type"] == ds_type and p["datasource"].get("uid") != "mch-quality":
                out.append((f"{f.stem}/{p['title']}", p))
    return out


def fill(text: str, region: str, period: str) -> str:
    return text.replace("$region", region).replace("$period", period)


def codes_of(sql: str) -> set[str]:
    return set(re.findall(r"code = '([a-z0-9_]+)'", sql)) | {
        c for m in re.findall(r"code in \(([^)]*)\)", sql) for c in re.findall(r"'([a-z0-9_]+)'", m)}


def test_dashboards_are_well_formed() -> None:
    files = sorted(p.stem for p in DASHBOARDS.glob("*.json"))
    assert files == ["births", "certificates", "child", "filings", "maternal", "pipeline", "pmtct", "programmes",
                     "quality", "screening", "women"]
    for f in DASHBOARDS.glob("*.json"):
        doc = json.loads(f.read_text(encoding="utf-8"))
        names = [v["name"] for v in doc["templating"]["list"]]
        assert "region" in names, f.stem
        if f.stem != "pipeline":
            assert "period" in names
            assert any(p["type"] == "table" and p["fieldConfig"]["defaults"]["links"] for p in doc["panels"])
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])


CERT_CODES = {"certs_issued", "certs_first", "certs_first_out_of_institution", "certs_reissued", "certs_replaced",
              "certs_voided", "certs_superseded"}


async def certificate_office_day(http: httpx.AsyncClient, stack: Stack, county: str) -> None:
    """A day of a certificate office of the county, through the certificates API: a first issue, a reissue and a
    replacement, a certificate spoiled in printing, a spoiled blank and a first issue for a home birth — every
    kind of certificate panel then has data (the small demo county, left to chance, may have had no
    replacement), so a panel that shows nothing is a fault, not bad luck."""
    reg, certs = stack.url("registry"), stack.url("certificates")
    where = village(county, 1, 1)
    o = await office(http, reg, certs, where, stack.settings)
    born = datetime.now(CHINA).date() - timedelta(days=3)
    kids = await births(http, reg, o.code, where, 4, born)
    home = await births(http, reg, o.code, where, 1, born, place="home")
    s = stack.settings
    await wait_known(f"postgresql://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/{s.database('certificates')}",
                     kids + home)
    _, last = await stock(http, certs, o, new_prefix(), 1, 20, datetime.now(CHINA).date())
    first = await issue(http, certs, o, kids[0])
    await issue(http, certs, o, kids[0], "replacement", previous_serial=first["serial"])
    lost = await issue(http, certs, o, kids[1])
    await issue(http, certs, o, kids[1], "reissue", previous_serial=lost["serial"])
    spoiled = await prepare(http, certs, o, kids[2])
    assert spoiled.status_code == 201, spoiled.text
    for serial, blank in ((spoiled.json()["serial"], False), (last, True)):
        r = await void(http, certs, o, serial, "印错", blank=blank)  # the office head voids (废证)
        assert r.status_code == 200, r.text
    await issue(http, certs, o, home[0], "first_out_of_institution", evidence_ref="接生人员证明-1")
    await prenatal_high_risk_screen(http, stack, o.code, where)


async def prenatal_high_risk_screen(http: httpx.AsyncClient, stack: Stack, institution: str, where: str) -> None:
    """A pregnancy of this year whose serum screen is high-risk, its case contacted (产前筛查高风险 followed up):
    the small demo county, left to chance, may have none, and its panel would be empty."""
    today = datetime.now(CHINA).date()
    lmp = today - timedelta(days=130)
    pid = f"P-{uuid.uuid4().hex[:12]}"
    r = await http.post(f"{stack.url('registry')}/v1/pregnancies", json={
        "pregnancy_id": pid, "source": "his-dash", "lmp_date": lmp.isoformat(),
        "registered_on": (lmp + timedelta(days=60)).isoformat(), "institution_code": institution,
        "mother": {"name": "测试孕妇", "sex": "F", "birth_date": "1993-03-03", "residence_code": where}})
    assert r.status_code == 201, r.text
    body = {"screening_id": f"S-{uuid.uuid4().hex[:12]}", "source": "his-dash", "type": "prenatal_serum",
            "subject_id": pid, "performed_on": (lmp + timedelta(days=110)).isoformat(),
            "institution_code": institution, "t21_risk": "1/100", "t18_risk": "1/10000", "ntd_risk": "low"}

    async def posted() -> httpx.Response | None:
        r = await http.post(f"{stack.url('screening')}/v1/screenings", json=body)
        return None if r.status_code == 422 and "not known" in r.text else r

    r = await wait_for(posted, 30)
    assert r.status_code == 201 and r.json()["followup"], r.text
    r = await http.post(f"{stack.url('screening')}/v1/followups/{r.json()['followup']['case_id']}/actions",
                        json={"action": "contacted", "on": (lmp + timedelta(days=112)).isoformat()})
    assert r.status_code == 201, r.text


async def test_every_postgres_panel_returns_data(stack: Stack, http: httpx.AsyncClient) -> None:
    county = await small_county(stack)
    want = county.expected()
    await wait_values(http, stack, county.code, str(county.year), want, timeout=60)
    await certificate_office_day(http, stack, county.code)
    # a township's statistician files its annual report, so the filings dashboard has a filing to show
    _, statistician = await make_person(stack, ["statistician"], county.code)
    r = await http.post(f"{stack.url('indicators')}/v1/reports/annual/filings/{county.year}/{county.code}001/submit",
                        headers={"Authorization": f"Bearer {statistician}"})
    assert r.status_code in (200, 201), r.text
    cat = {i["code"]: i for i in (await http.get(f"{stack.url('indicators')}/v1/indicators")).json()["indicators"]}
    s = stack.settings
    conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user,
                                 database=s.database("indicators"))
    try:
        # the county's records are of last year, but certificates are dated when issued (no back-dating): their
        # panels are read for this year
        this_year = str(datetime.now(CHINA).year)

        async def certificates_counted() -> bool:
            return CERT_CODES | {"prenatal_high_risk_followup_rate"} <= {r["code"] for r in await conn.fetch(
                "select distinct code from counter where region = $1 and period = $2", county.code, this_year)}

        try:
            await wait_for(certificates_counted, timeout=30, interval=0.5)
        except AssertionError:
            counted = {r["code"] for r in await conn.fetch(
                "select distinct code from counter where region = $1 and period = $2", county.code, this_year)}
            raise AssertionError(f"certificate codes never counted: {sorted(CERT_CODES - counted)}") from None
        having = {r["code"] for r in await conn.fetch(
            "select distinct code from counter where region = $1 and period = $2", county.code, str(county.year))}
        having_now = {r["code"] for r in await conn.fetch(
            "select distinct code from counter where region = $1 and period = $2", county.code, this_year)}
        region_q = json.loads((DASHBOARDS / "maternal.json").read_text())["templating"]["list"]
        assert county.code in [r[0] for r in await conn.fetch(region_q[0]["query"])]
        assert str(county.year) in [r[0] for r in await conn.fetch(region_q[1]["query"])]
        pending, checked = [], 0
        for name, p in panels("grafana-postgresql-datasource"):
            period = str(county.year)
            sql = fill(p["targets"][0]["rawSql"], county.code, period)
            rows = await conn.fetch(sql)  # every query runs, whatever the catalogue holds
            codes = codes_of(sql)
            if not codes:  # a panel over filings, data status or open cases: it shows the county's rows
                values = [v for r in rows for k, v in r.items() if k not in ("time", "地区") and v is not None]
                assert rows and values, f"{name}: no data for {county.code} {period}"
                checked += 1
                continue
            if not codes & having and codes & having_now:
                period = this_year
                sql = fill(p["targets"][0]["rawSql"], county.code, period)
                rows = await conn.fetch(sql)
            elif not codes & having:
                pending.append(f"{name} ({', '.join(sorted(codes - set(cat)) or sorted(codes))})")
                continue
            values = [v for r in rows for k, v in r.items() if k not in ("time", "地区") and v is not None]
            assert rows and values, f"{name}: no data for {county.code} {period}"
            checked += 1
        assert checked >= 20
        # a panel whose codes the demo county never produced shows nothing on a bureau's screen either
        assert not pending, f"panels without data: {'; '.join(pending)}"
        # the numbers are the demo's: caesarean rate and the township table's live births
        caes_n, lb = want["caesarean_rate"]
        stat = next(p for n, p in panels("grafana-postgresql-datasource") if n == "maternal/剖宫产率")
        got = await conn.fetchval(fill(stat["targets"][0]["rawSql"], county.code, str(county.year)))
        assert got == (Decimal(caes_n) * 100 / Decimal(lb)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        table = next(p for n, p in panels("grafana-postgresql-datasource") if n.startswith("maternal/下一级地区"))
        rows = await conn.fetch(fill(table["targets"][0]["rawSql"], county.code, str(county.year)))
        assert all(len(r["地区"]) == 9 for r in rows)
        assert sum(r["活产数"] or 0 for r in rows) == lb
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_targets() -> list[str]:
    spec = devstack.STACKS["test"]
    targets = [f"127.0.0.1:{port}" for port in spec.api_ports.values()]
    for _, env in devstack.programs(spec).values():
        if "MCH_METRICS_PORT" in env:
            targets.append(f"127.0.0.1:{env['MCH_METRICS_PORT']}")
    return targets


async def test_every_prometheus_panel_returns_data(stack: Stack, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus binary is not installed (make setup installs it)")
    county = await small_county(stack)
    # the headline gauges cover the current periods: two deliveries today in the county
    today = datetime.now(CHINA).date()
    poster = Poster({svc: stack.url(svc) for svc in devstack.SERVICES}, stack.token)
    await poster.run(live_plan(county_mod.load(county.code), 3, today, 2, f"dash{time.time_ns() % 10**9}"),
                     only={"institutions", "pregnancies", "deliveries"})
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: mch\n    static_configs:\n"
        f"      - targets: {json.dumps(scrape_targets())}\n")
    proc = await asyncio.create_subprocess_exec(
        binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            async def query(expr: str) -> list[Any]:
                try:
                    r = await c.get(base, params={"query": expr})
                except httpx.TransportError:
                    return []
                if r.status_code == 503:  # still starting
                    return []
                body = r.json()
                assert body["status"] == "success", (expr, body)
                return list(body["data"]["result"])

            await wait_for(lambda: query("up == 1"), timeout=30, interval=0.5)
            pending: dict[str, str] = {}
            for name, p in panels("prometheus"):
                expr = fill(p["targets"][0]["expr"], county.code, str(county.year))
                pending[name] = expr

            async def all_answer() -> bool:
                for name, expr in list(pending.items()):
                    if await query(expr):
                        del pending[name]
                return not pending

            try:
                await wait_for(all_answer, timeout=60, interval=1)
            except AssertionError:
                raise AssertionError(f"Prometheus panels without data: {pending}") from None
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
