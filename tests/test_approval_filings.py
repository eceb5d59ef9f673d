"""Submit → approve → lock (上报 → 审核 → 锁定) on a real stack: two townships and their county, filed by their
statisticians and approved by the county's approver (person accounts); a late correction posted through the
registry after approval moves the live figure but not the filed snapshot, and is listed as an adjustment."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_person, make_token, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values

YEAR = 2025
PERIOD = "2025-01..09"  # 1–9月 of 2025: a cumulative period


def _case(county: str, township: int, delivered: date, babies: int = 1) -> DeliveryCase:
    return DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, township, 1),
                        f"H{county}A", delivered - timedelta(days=275), delivered, "hospital",
                        "vaginal", [Baby("F", 3200, "live") for _ in range(babies)])


def _live_births(cases: list[DeliveryCase], region: str) -> int:
    """活产数 of the cases resident under `region` delivered in 1–9月 (all are ≥ 28 weeks and live)."""
    return sum(len(c.babies) for c in cases if c.residence.startswith(region)
               and date(YEAR, 1, 1) <= c.delivered <= date(YEAR, 9, 30))


class As:
    """A person's (or a system's) client on the indicators API."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.base = f"{stack.url('indicators')}/v1/reports/annual/filings/{PERIOD}"
        self.c = httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"})

    async def step(self, unit: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.c.post(f"{self.base}/{unit}/{action}", json=body)

    async def view(self, unit: str) -> httpx.Response:
        return await self.c.get(f"{self.base}/{unit}")


def _filed(view: dict[str, Any], code: str) -> tuple[Any, Any]:
    row = next(r for r in view["rows"] if r["code"] == code)
    return (row["filed"] or {}).get("numerator"), row["current"]["numerator"]


async def test_submit_approve_lock_and_a_late_correction(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    t1, t2 = county + "001", county + "002"
    await setup_institutions(http, stack, county)
    cases = [_case(county, 1, date(YEAR, 3, 10)), _case(county, 1, date(YEAR, 8, 2), babies=2),
             _case(county, 2, date(YEAR, 5, 20)), _case(county, 2, date(YEAR, 11, 5))]
    for c in cases:
        await post_case(http, stack, c)
    want = _live_births(cases, county)

    async def settled() -> Any:
        return (await values(http, stack, county, PERIOD)).get("live_births") == (want, None)
    await wait_for(settled, 30)

    stat1_id, stat1 = await make_person(stack, ["statistician"], t1, name="乡镇统计员甲")
    _, stat2 = await make_person(stack, ["statistician"], t2, name="乡镇统计员乙")
    cstat_id, cstat = await make_person(stack, ["statistician"], county, name="县统计员")
    appr_id, appr = await make_person(stack, ["report_approver"], county, name="县审核人")
    _, outsider = await make_person(stack, ["statistician", "report_approver"], fresh_county(), name="外县人员")
    system = await make_token(stack, ["reports:submit", "reports:approve", "indicators:read"], county)
    s1, s2, cs, ap, out, sysc = (As(stack, t) for t in (stat1, stat2, cstat, appr, outsider, system))
    try:
        # a system token files nothing; a person of another county neither sees nor files this one
        assert (await sysc.step(t1, "submit")).status_code == 403
        assert (await out.step(t1, "submit")).status_code == 403
        assert (await out.view(county)).status_code == 403
        # a township statistician cannot file the county, nor the other township
        assert (await s1.step(county, "submit")).status_code == 403
        assert (await s1.step(t2, "submit")).status_code == 403

        r = await s1.step(t1, "submit")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "submitted"
        assert _filed(r.json(), "live_births") == (_live_births(cases, t1), _live_births(cases, t1))
        assert (await cs.step(county, "submit")).status_code == 200

        # approving the county before its townships is refused, naming the township not approved
        r = await ap.step(county, "approve")
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == "unit" and t1 in r.json()["detail"] and t2 in r.json()["detail"]
        # a statistician cannot approve; the submitter cannot approve their own filing
        assert (await s1.step(t1, "approve")).status_code == 403
        both_id, both = await make_person(stack, ["statistician", "report_approver"], county, name="兼职")
        bo = As(stack, both)
        assert (await bo.step(county, "submit")).status_code == 200  # refiled by this person
        r = await bo.step(county, "approve")
        assert r.status_code == 409 and "四眼" in r.json()["detail"]
        assert (await cs.step(county, "submit")).status_code == 200  # refiled by the county statistician

        assert (await ap.step(t1, "approve")).status_code == 200
        assert (await ap.step(county, "approve")).status_code == 409  # t2 still not submitted
        assert (await s2.step(t2, "submit")).status_code == 200
        assert (await ap.step(t2, "approve")).status_code == 200
        r = await ap.step(county, "approve")
        assert r.status_code == 200, r.text
        locked = r.json()
        assert locked["state"] == "approved"
        assert _filed(locked, "live_births") == (want, want)

        # locked: no resubmission; unapprove needs a reason, and a township waits for its county's approval
        assert (await s1.step(t1, "submit")).status_code == 409
        r = await ap.step(county, "unapprove", {"reason": "   "})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        assert (await ap.step(county, "unapprove", {})).status_code == 422
        r = await ap.step(t1, "unapprove", {"reason": "复核"})
        assert r.status_code == 409, r.text

        # a late correction after approval: a delivery of 1–9月 posted now through the registry
        late = _case(county, 1, date(YEAR, 9, 28))
        await post_case(http, stack, late)
        now = want + 1

        async def moved() -> Any:
            v = (await ap.view(county)).json()
            return v if _filed(v, "live_births") == (want, now) and v["adjustments"] else None
        v = await wait_for(moved, 30)
        assert v["state"] == "approved" and "live_births" in v["changed"]
        adj = [a for a in v["adjustments"] if "live_births" in a["indicators"]]
        assert adj and any(rec.endswith(late.encounter_id) for a in adj for rec in a["records"])
        assert any("his-test" in a["sources"] and a["request_ids"] and a["applied_at"] for a in adj)
        # who posted it: the system of the token the registry was called with, never a body field
        me = (await http.get(f"{stack.url('registry')}/v1/auth/me")).json()
        assert {p for a in adj for p in a["posted_by"]} == {f"system:{me['account_id']} {me['name']}"}
        assert sum(a["delta"] for a in adj if a["measure"] == adj[0]["measure"]) == 1
        # the township's filing shows the same; the other township's has no adjustment
        v1 = (await s1.view(t1)).json()
        assert _filed(v1, "live_births") == (_live_births(cases, t1), _live_births(cases, t1) + 1)
        assert (await s2.view(t2)).json()["adjustments"] == []

        # returned, top-down, then refiled: the new snapshot has the correction
        assert (await ap.step(county, "unapprove", {"reason": "乡镇补报一例分娩"})).status_code == 200
        assert (await ap.step(t1, "unapprove", {"reason": "补报"})).status_code == 200
        r = await s1.step(t1, "submit")
        assert r.status_code == 200 and _filed(r.json(), "live_births")[0] == _live_births(cases, t1) + 1
        steps = r.json()["steps"]
        assert [(s["action"], s["actor"]) for s in steps] == [
            ("submit", stat1_id), ("approve", appr_id), ("unapprove", appr_id), ("submit", stat1_id)]
        assert steps[2]["reason"] == "补报" and steps[0]["actor_name"] == "乡镇统计员甲"
        cv = (await ap.view(county)).json()
        assert cv["state"] == "returned" and [s["actor"] for s in cv["steps"]][-2:] == [appr_id, appr_id]
        assert cstat_id in [s["actor"] for s in cv["steps"]] and both_id in [s["actor"] for s in cv["steps"]]

        r = await ap.c.get(f"{stack.url('indicators')}/v1/reports/annual/filings",
                           params={"period": PERIOD, "region": county})
        assert r.status_code == 200
        assert {f["unit"]: f["state"] for f in r.json()["filings"]} == {
            county: "returned", t1: "submitted", t2: "approved"}

        # completeness and timeliness of the townships: both filed, both after 1–9月's deadline (12 October)
        r = await ap.c.get(f"{stack.url('indicators')}/v1/reports/annual/completeness",
                           params={"period": PERIOD, "region": county})
        assert r.status_code == 200, r.text
        c = r.json()
        assert (c["deadline"], c["expected"], c["submitted"], c["approved"]) == (f"{YEAR}-10-12", 2, 2, 1)
        assert (c["completeness"], c["on_time"], c["timeliness"]) == (100.0, 0, 0.0)
        assert [(u["unit"], u["state"], u["on_time"]) for u in c["units"]] == [
            (t1, "submitted", False), (t2, "approved", False)]
    finally:
        for x in (s1, s2, cs, ap, out, sysc):
            await x.c.aclose()


async def test_filing_bad_input_is_a_clear_4xx(stack: Stack) -> None:
    county = fresh_county()
    _, tok = await make_person(stack, ["statistician"], county)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {tok}"}) as c:
        base = f"{stack.url('indicators')}/v1/reports"
        r = await c.post(f"{base}/annual/filings/2025-02..09/{county}/submit")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "period"
        r = await c.post(f"{base}/annual/filings/2025/{county}001001/submit")  # a village is not a level
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit"
        r = await c.post(f"{base}/nosuch/filings/2025/{county}/submit")
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "report"
        assert (await c.post(f"{base}/annual/filings/2025/{county}/approve")).status_code == 403
    async with httpx.AsyncClient() as c:
        assert (await c.post(f"{stack.url('indicators')}/v1/reports/annual/filings/2025/{county}/submit")
                ).status_code == 401
