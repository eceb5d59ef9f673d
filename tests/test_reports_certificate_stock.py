"""The certificate form's stock columns across periods (出生医学证明管理情况): 申领 is what came in, read directly,
not derived from the balance — so a blank drawn for a certificate not yet sealed at the period's end, or a
certificate voided in a later period, never turns up as a phantom 申领 of −1 or +1; the balance closes through
其他变动."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import births, call, new_prefix, office, prepare, seal, stock, void, wait_known

from tests.conftest import Stack, fresh_county, village
from tests.test_certificates_api import dsn, urls

pytestmark = pytest.mark.stack


def month(d: date) -> str:
    return f"{d.year}-{d.month:02d}"


async def table(http: httpx.AsyncClient, stack: Stack, county: str, period: str, want: dict[str, int],
                inst: str) -> dict[str, Any]:
    """The institution's row of the certificate form once its columns read `want` (the pipeline is eventual)."""
    url = f"{stack.url('indicators')}/v1/reports/forms/certificates"
    row: dict[str, Any] = {}
    for _ in range(150):
        r = await http.get(url, params={"region": county, "period": period})
        assert r.status_code == 200, r.text
        t = r.json()
        labels = [c["label"] for c in t["columns"]]
        rows = [x for x in t["rows"] if x["unit"] == inst]
        row = dict(zip(labels, rows[0]["cells"], strict=True)) if rows else {}
        if all(row.get(k) == v for k, v in want.items()):
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"{period}: {row} never matched {want}")


async def test_received_is_read_not_derived_across_periods(http: httpx.AsyncClient, stack: Stack) -> None:
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    now = today()
    earlier = now.replace(day=1) - timedelta(days=20)          # a day of an earlier month
    n_in, n_cert = 30, 4
    children = await births(http, reg, o.code, village(county), n_cert + 1, now - timedelta(days=2))
    await wait_known(dsn(stack), children)
    first, _ = await stock(http, certs, o, new_prefix(), 1, n_in, earlier)   # 申领 in the earlier month
    serials = []
    for c in children[:n_cert]:
        r = await prepare(http, certs, o, c)
        assert r.status_code == 201, r.text
        serials.append(r.json()["serial"])
    for s in serials:
        assert (await seal(http, certs, o, s)).status_code == 200
    pending = await prepare(http, certs, o, children[n_cert])          # drawn, not sealed at the period's end
    assert pending.status_code == 201, pending.text
    assert (await void(http, certs, o, serials[0], "信息错误")).status_code == 200   # 废证 of an issued one
    spoiled = f"{first[0]}{int(first[1:]) + n_in - 1:09d}"
    r = await call(http, "POST", f"{certs}/v1/stock/serials/{spoiled}/void", headers=o.by(o.head),
                   json={"reason": "污损"})
    assert r.status_code == 200, r.text

    # the earlier month: everything came in, nothing went out
    row = await table(http, stack, county, month(earlier), {"期末库存": n_in}, o.code)
    assert (row["期初库存"], row["申领"], row["签发合计"], row["废证"], row["其他变动"]) == (0, n_in, 0, 0, 0)
    # this month: n_cert drawn and sealed, one of them voided (废证), one drawn not sealed, one blank spoiled
    issued, voided, drawn = n_cert - 1, 2, n_cert + 1 + 1          # + the pending one + the spoiled blank
    closing = n_in - drawn
    row = await table(http, stack, county, month(now), {"期末库存": closing, "签发合计": issued}, o.code)
    assert (row["期初库存"], row["申领"], row["废证"]) == (n_in, 0, voided)
    # 其他变动 is the pending preparation: its blank left the stock, it is not 签发 yet
    assert row["其他变动"] == closing - n_in - 0 + issued + voided == -1
