"""The operators' CLI (scripts/mchctl.py) against the test stack: targets from a CSV, the annual report export."""
from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path

import mchctl
import pytest

from tests.conftest import Stack
from tests.demo_county import small_county


async def test_mchctl_targets_and_export(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    county = await small_county(stack)
    monkeypatch.setenv("MCH_INDICATORS_URL", stack.url("indicators"))
    base = ["--run-dir", str(tmp_path), "--token", stack.token]
    csv = tmp_path / "targets.csv"
    csv.write_text(f"code,region,year,target\ncervical_screening_count,{county.code},{county.year},321\n"
                   f"live_births,{county.code},{county.year},654\n")
    assert await asyncio.to_thread(mchctl.main, [*base, "targets", "load", str(csv)]) == 0
    out = tmp_path / "annual.xlsx"
    assert await asyncio.to_thread(mchctl.main, [*base, "export", "annual", "--region", county.code, "--year",
                                                 str(county.year), "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        assert "<v>654</v>" in z.read("xl/worksheets/sheet1.xml").decode()
    capsys.readouterr()
    assert await asyncio.to_thread(mchctl.main, [*base, "export", "annual", "--region", county.code, "--year",
                                                 str(county.year)]) == 0
    rep = json.loads(capsys.readouterr().out)
    rows = {r["code"]: r for s in rep["sections"] for r in s["rows"]}
    assert rows["live_births"]["target"] == 654 and rows["cervical_screening_count"]["target"] == 321
    bad = tmp_path / "bad.csv"
    bad.write_text(f"code,region,year,target\nlive_births,{county.code},{county.year},0\n")
    assert await asyncio.to_thread(mchctl.main, [*base, "targets", "load", str(bad)]) == 1
