"""Merge and unmerge of person records (合并 / 撤销合并, issue 19): one woman registered twice, at two hospitals,
with one pregnancy each (the same pregnancy). Merged, the registry reads the duplicate's care as the survivor's
and the indicators count her pregnancy once, with the care of both registrations; unmerged, every indicator is
back to its value before and the reconciliation finds no difference."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from indicators.domain import catalogue
from indicators.engine import Engine
from kit.db import Database

from tests.conftest import Stack, fresh_county, make_token, village, wait_for
from tests.helpers import setup_institutions, values, wait_counts

LMP = date(2025, 1, 10)


def at(d: date) -> str:
    return f"{d.isoformat()}T10:00:00+08:00"


async def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return dict(r.json())


async def _registration(http: httpx.AsyncClient, reg: str, inst: str, home: str, lmp: date, booked: date,
                        visit_days: list[int]) -> tuple[str, str]:
    """One hospital's registration of the woman (no ID number: a new person record) with prenatal visits on
    the given gestational days; returns (person id, pregnancy id)."""
    pid = f"P-{uuid.uuid4().hex[:12]}"
    m = await _ok(await http.post(f"{reg}/pregnancies", json={
        "pregnancy_id": pid, "source": "his-merge",
        "mother": {"name": "王晓丽", "sex": "F", "birth_date": "1994-05-06", "residence_code": home},
        "lmp_date": lmp.isoformat(), "registered_on": booked.isoformat(), "institution_code": inst}))
    for g in visit_days:
        await _ok(await http.post(f"{reg}/encounters", json={
            "source": "his-merge", "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "type": "prenatal_visit",
            "occurred_at": at(lmp + timedelta(days=g)), "institution_code": inst, "subject_id": pid}))
    return m["mother_id"], pid


async def reconciled(stack: Stack, county: str) -> list[dict[str, Any]]:
    db = Database.for_service(stack.settings, "indicators", pool_size=1)
    try:
        async with db.connect() as conn:
            diffs = await Engine(catalogue.load()).reconcile(conn)
    finally:
        await db.dispose()
    return [x for x in diffs if str(x["region"]).startswith(county)]


async def test_merge_counts_her_pregnancy_once_and_unmerge_restores(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    home = village(county, 1, 1)
    a, b = sorted(await setup_institutions(http, stack, county))  # a: licensed hospital
    reg = stack.url("registry") + "/v1"
    days_a, days_b = [60, 100, 150], [120, 200]
    woman_a, preg_a = await _registration(http, reg, a, home, LMP, LMP + timedelta(days=50), days_a)
    woman_b, preg_b = await _registration(http, reg, b, home, LMP + timedelta(days=4), LMP + timedelta(days=70),
                                          days_b)
    assert woman_a != woman_b
    # folic acid dispensed to the second record, 30 days before the LMP (inside the window)
    await _ok(await http.post(f"{reg}/encounters", json={
        "source": "his-merge", "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "type": "folic_acid_dispensed",
        "occurred_at": at(LMP - timedelta(days=30)), "institution_code": b, "subject_id": woman_b,
        "person_id": woman_b, "quantity": 30}))
    await _ok(await http.post(f"{reg}/encounters", json={
        "source": "his-merge", "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "type": "delivery",
        "occurred_at": at(LMP + timedelta(days=270)), "institution_code": a, "subject_id": preg_a,
        "place": "hospital", "mode": "vaginal", "babies": [{"sex": "F", "birth_weight_g": 3300, "outcome": "live"}]}))
    # two registrations: two pregnancies booked (one with folic acid), one woman delivered with her 3 checks
    booked, checks = 2, len(days_a)
    before = {"folic_acid_uptake_rate": (1, booked), "antenatal_check_rate": (1, 1),
              "antenatal_5plus_rate": (int(checks >= 5), 1)}
    await wait_counts(http, stack, county, "2025", before)
    snapshot = await values(http, stack, county, "2025")

    m = await _ok(await http.post(f"{reg}/persons/{woman_a}/merge",
                                  json={"duplicate": woman_b, "reason": "同一孕妇在两家医院建册"}))
    assert m["pregnancies"] == [{"duplicate_id": preg_b, "survivor_id": preg_a}] and m["status"] == "merged"
    # one pregnancy, booked once, with the folic acid of the duplicate record and the checks of both
    checks = len(set(days_a) | set(days_b))
    await wait_counts(http, stack, county, "2025", {
        "folic_acid_uptake_rate": (1, 1), "antenatal_check_rate": (1, 1),
        "antenatal_5plus_rate": (int(checks >= 5), 1)})
    assert checks == 5
    survivor = await _ok(await http.get(f"{reg}/persons/{woman_a}"))
    assert survivor["merged"] == [woman_b] and survivor["merged_into"] is None
    assert any(e["type"] == "folic_acid_dispensed" for e in survivor["encounters"])
    assert (await _ok(await http.get(f"{reg}/persons/{woman_b}")))["merged_into"] == woman_a
    episode = await _ok(await http.get(f"{reg}/pregnancies/{preg_a}"))
    assert episode["merged"] == [preg_b] and episode["facts"]["antenatal_checks"] == checks
    assert (await _ok(await http.get(f"{reg}/pregnancies/{preg_b}")))["merged_into"] == preg_a
    # merged once: again is a conflict, and so is merging into the duplicate
    r = await http.post(f"{reg}/persons/{woman_a}/merge", json={"duplicate": woman_b, "reason": "again"})
    assert r.status_code == 409, r.text
    assert (await reconciled(stack, county)) == []

    u = await _ok(await http.post(f"{reg}/persons/{woman_b}/unmerge", json={"reason": "不是同一人"}))
    assert u["status"] == "unmerged" and u["merge_id"] == m["merge_id"]
    assert (await http.post(f"{reg}/persons/{woman_b}/unmerge", json={"reason": "x"})).status_code == 409
    episode = await _ok(await http.get(f"{reg}/pregnancies/{preg_a}"))
    assert episode["merged"] == [] and episode["facts"]["antenatal_checks"] == len(days_a)

    def registry_fed(v: dict[str, Any]) -> dict[str, Any]:
        """The figures of the records (the quality scores arrive from the quality service's own evaluation, on its
        own schedule: not what a merge changes or restores)."""
        return {c: x for c, x in v.items() if not c.startswith("quality_")}

    async def restored() -> bool:
        return registry_fed(await values(http, stack, county, "2025")) == registry_fed(snapshot)

    await wait_for(restored, timeout=30, interval=0.3)
    assert (await reconciled(stack, county)) == []
    hist = (await _ok(await http.get(f"{reg}/persons/{woman_a}/merges")))["merges"]
    assert [(h["status"], h["reason"], h["unmerge_reason"]) for h in hist] == [
        ("unmerged", "同一孕妇在两家医院建册", "不是同一人")]
    assert hist[0]["merged_by"] and hist[0]["unmerged_by"]


async def test_merge_needs_both_records_in_the_callers_region(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    a, _ = sorted(await setup_institutions(http, stack, county))
    reg = stack.url("registry") + "/v1"
    home = village(county, 1, 1)
    w1, _ = await _registration(http, reg, a, home, LMP, LMP + timedelta(days=50), [])
    w2, _ = await _registration(http, reg, a, home, LMP + timedelta(days=200), LMP + timedelta(days=250), [])
    other = await make_token(stack, ["registry:merge", "registry:read"], fresh_county())
    h = {"Authorization": f"Bearer {other}"}
    r = await http.post(f"{reg}/persons/{w1}/merge", json={"duplicate": w2, "reason": "x"}, headers=h)
    assert r.status_code == 404 and county not in r.text, r.text
    hisonly = await make_token(stack, ["registry:write", "registry:read"], county)
    r = await http.post(f"{reg}/persons/{w1}/merge", json={"duplicate": w2, "reason": "x"},
                        headers={"Authorization": f"Bearer {hisonly}"})
    assert r.status_code == 403, r.text
    # pregnancies months apart are not one episode: the merge links none
    m = await _ok(await http.post(f"{reg}/persons/{w1}/merge", json={"duplicate": w2, "reason": "同一人"}))
    assert m["pregnancies"] == []
    r = await http.post(f"{reg}/persons/{w1}/merge", json={"duplicate": w1, "reason": "x"})
    assert r.status_code == 422 and "duplicate" in r.text


async def _high_risk_cases(http: httpx.AsyncClient, stack: Stack, county: str) -> dict[str, dict[str, Any]]:
    r = await http.get(f"{stack.url('screening')}/v1/followups",
                       params={"region": county, "type": "pregnancy_high_risk"})
    assert r.status_code == 200, r.text
    return {c["pregnancy_id"]: c for c in r.json()["items"]}


async def test_screening_follows_a_merge_as_one_pregnancy(http: httpx.AsyncClient, stack: Stack) -> None:
    """高危专案: one episode registered twice has one case, due from the first high grade of either registration;
    the duplicate registration's case closes while merged and opens again when the merge is undone."""
    county = fresh_county()
    home = village(county, 1, 1)
    a, b = sorted(await setup_institutions(http, stack, county))
    reg = stack.url("registry") + "/v1"
    woman_a, preg_a = await _registration(http, reg, a, home, LMP, LMP + timedelta(days=50), [])
    woman_b, preg_b = await _registration(http, reg, b, home, LMP + timedelta(days=4), LMP + timedelta(days=70), [])
    on_a, on_b = LMP + timedelta(days=150), LMP + timedelta(days=124)  # the duplicate's grade came first
    for inst, preg, on, grade in ((a, preg_a, on_a, "red"), (b, preg_b, on_b, "orange")):
        await _ok(await http.post(f"{reg}/encounters", json={
            "source": "his-merge", "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "type": "prenatal_visit",
            "occurred_at": at(on), "institution_code": inst, "subject_id": preg, "risk_grade": grade}))

    async def two_cases() -> dict[str, dict[str, Any]] | None:
        cases = await _high_risk_cases(http, stack, county)
        return cases if {preg_a, preg_b} <= set(cases) else None

    before = await wait_for(two_cases, timeout=30, interval=0.3)
    due_days = (date.fromisoformat(before[preg_a]["due_on"]) - on_a).days
    assert date.fromisoformat(before[preg_b]["due_on"]) == on_b + timedelta(days=due_days)
    await wait_counts(http, stack, county, "2025", {"followup_completion_rate": (0, 2)})

    await _ok(await http.post(f"{reg}/persons/{woman_a}/merge", json={"duplicate": woman_b, "reason": "同一人"}))

    async def merged() -> dict[str, dict[str, Any]] | None:
        cases = await _high_risk_cases(http, stack, county)
        return cases if cases[preg_b]["status"] == "closed" and cases[preg_a]["due_on"] != before[preg_a]["due_on"] \
            else None

    after = await wait_for(merged, timeout=30, interval=0.3)
    assert after[preg_a]["due_on"] == (on_b + timedelta(days=due_days)).isoformat()
    assert preg_a in after[preg_b]["closed_reason"]
    await wait_counts(http, stack, county, "2025", {"followup_completion_rate": (0, 1)})

    await _ok(await http.post(f"{reg}/persons/{woman_b}/unmerge", json={"reason": "不是同一人"}))

    async def restored() -> bool:
        cases = await _high_risk_cases(http, stack, county)
        return all((cases[p]["status"], cases[p]["due_on"]) == (before[p]["status"], before[p]["due_on"])
                   for p in (preg_a, preg_b))

    await wait_for(restored, timeout=30, interval=0.3)
    await wait_counts(http, stack, county, "2025", {"followup_completion_rate": (0, 2)})
    assert (await reconciled(stack, county)) == []


async def test_a_childs_certificates_follow_the_child(http: httpx.AsyncClient, stack: Stack) -> None:
    """一孩一证 across a merge: a child registered twice, certified under its duplicate record, has its first
    certificate; unmerged, the survivor record may be certified again."""
    import asyncpg
    from certificates.tests.stack_helpers import issue, prepare, void

    from tests.test_certificates_api import dsn, setup

    o, kids, _, _ = await setup(http, stack, children=3, blanks=5)
    survivor, duplicate = kids[0], kids[2]  # both girls (the births alternate F, M)
    certs, reg = stack.url("certificates"), stack.url("registry") + "/v1"
    first = await issue(http, certs, o, duplicate)

    async def known_to_certificates(unmerged: bool) -> bool:
        conn = await asyncpg.connect(dsn(stack))
        try:
            return bool(await conn.fetchval("select count(*) from person_merge where duplicate_id = $1 "
                                            "and unmerged = $2", uuid.UUID(duplicate), unmerged))
        finally:
            await conn.close()

    await _ok(await http.post(f"{reg}/persons/{survivor}/merge", json={"duplicate": duplicate, "reason": "同一新生儿"}))
    await wait_for(lambda: known_to_certificates(False), timeout=30, interval=0.3)
    r = await prepare(http, certs, o, survivor)
    assert r.status_code == 409 and first["serial"] in r.text and "child_id" in r.text, r.text
    await _ok(await http.post(f"{reg}/persons/{duplicate}/unmerge", json={"reason": "不是同一人"}))
    await wait_for(lambda: known_to_certificates(True), timeout=30, interval=0.3)
    second = await _ok(await prepare(http, certs, o, survivor))
    assert second["child_id"] == survivor
    await _ok(await void(http, certs, o, second["serial"], "测试"))  # leave no certificate half-prepared
