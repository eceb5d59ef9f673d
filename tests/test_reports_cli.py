"""mchctl's targets and report subcommands against the test stack, with people's tokens: an operator sets and
decomposes a target and names a township, the statistician files, the approver approves, the table is written
as XLSX and CSV (with a BOM)."""
from __future__ import annotations

import asyncio
import json
import uuid
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import mchctl
import pytest
from indicators.reports.forms import FORMS_DIR

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values


async def test_mchctl_targets_and_report(stack: Stack, http: httpx.AsyncClient, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    county = fresh_county()
    await setup_institutions(http, stack, county)
    for t, d in ((1, date(2024, 5, 1)), (1, date(2025, 5, 1)), (2, date(2025, 6, 1))):
        await post_case(http, stack, DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}",
                                                  village(county, t, 1), f"H{county}A", d - timedelta(days=275), d,
                                                  "hospital", "vaginal", [Baby("F", 3000, "live")]))

    async def settled() -> Any:
        return (await values(http, stack, county, "2025")).get("live_births") == (2, None)
    await wait_for(settled, 30)
    monkeypatch.setenv("MCH_INDICATORS_URL", stack.url("indicators"))
    _, op = await make_person(stack, ["operator"], county)
    _, stat = await make_person(stack, ["statistician"], county, name="县统计员")
    _, appr = await make_person(stack, ["report_approver"], county, name="县审核人")

    async def cli(token: str, *argv: str) -> int:
        return int(await asyncio.to_thread(mchctl.main, ["--run-dir", str(tmp_path), "--token", token, *argv]))

    assert await cli(op, "targets", "set", "live_births", county, "2025", "10") == 0
    assert await cli(op, "targets", "set", "caesarean_rate", county, "2025", "40", "--at-most") == 0
    capsys.readouterr()
    assert await cli(op, "targets", "decompose", "live_births", county, "2025") == 0
    assert json.loads(capsys.readouterr().out)["parts"] == {f"{county}001": 10}  # 2024: all in township 1
    assert await cli(op, "targets", "list", "2025", "--region", county) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(t["code"], t["region"], t["comparison"]) for t in listed["targets"]} == {
        ("live_births", county, ">="), ("live_births", f"{county}001", ">="), ("caesarean_rate", county, "<=")}
    assert await cli(op, "targets", "delete", "caesarean_rate", county, "2025") == 0
    assert await cli(op, "report", "region", f"{county}002", "经济开发区", "--functional") == 0

    for t in ("001", "002"):
        assert await cli(stat, "report", "submit", "2025", county + t) == 0
        assert await cli(appr, "report", "approve", "2025", county + t) == 0
    assert await cli(stat, "report", "submit", "2025", county) == 0
    assert await cli(stat, "report", "approve", "2025", county) == 1  # a statistician cannot approve
    assert await cli(appr, "report", "approve", "2025", county) == 0
    capsys.readouterr()
    assert await cli(stat, "report", "status", "2025", county) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "approved"
    assert await cli(appr, "report", "unapprove", "2025", county, "--reason", "  ") == 1

    out = tmp_path / "tables.xlsx"
    assert await cli(stat, "report", "table", "all", "2025", "--region", county, "-o", str(out)) == 0
    with zipfile.ZipFile(out) as z:
        assert "经济开发区" in z.read("xl/sharedStrings.xml").decode()
        # one sheet per statutory form (services/indicators/reports/forms/*.json)
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == len(list(FORMS_DIR.glob("*.json")))
    csv = tmp_path / "maternal.csv"
    assert await cli(stat, "report", "table", "maternal", "2025", "--region", county, "-o", str(csv)) == 0
    text = csv.read_bytes()
    assert text.startswith("\ufeff".encode()) and "经济开发区" in text.decode("utf-8-sig")
