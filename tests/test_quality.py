"""Data quality (issue 18) through the real pipeline: records posted to the registry become queries at the
quality service, addressed to the institution that posted them; the institution answers, a correction closes
its query, a void withdraws it; another county sees nothing. And the property: random streams with planted bad
records, corrections and voids, reordered and duplicated, leave open exactly the queries an independent
recomputation from the final records finds."""
from __future__ import annotations

import dataclasses
import importlib.util
import random
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from kit import accounts
from kit.clock import today_cn
from kit.db import Database, raw
from quality import service
from quality.domain import rules
from quality.domain.records import (
    Baby as QBaby,
)
from quality.domain.records import (
    Certificate,
    Encounter,
    Person,
    Pregnancy,
    PregnancyFile,
)
from quality.events.read import Institution, Read

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.console_helpers import console_url, csrf_of
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions

RS = service.RULES


def _dashboard_module() -> Any:
    """deploy/grafana/quality_dashboard.py (a script's neighbour, not a package): its panels' SQL."""
    path = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "quality_dashboard.py"
    spec = importlib.util.spec_from_file_location("quality_dashboard", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


dash = _dashboard_module()


async def queries_of(http: httpx.AsyncClient, stack: Stack, token: str | None = None,
                     **params: Any) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    r = await http.get(f"{stack.url('quality')}/v1/quality/queries", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_a_bad_delivery_is_queried_answered_corrected_and_voided(http: httpx.AsyncClient,
                                                                       stack: Stack) -> None:
    county = fresh_county()
    inst = sorted(await setup_institutions(http, stack, county))[0]
    lmp = date(2025, 3, 1)
    week26 = lmp + timedelta(days=26 * 7 + 2)
    c = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, 1, 1), inst, lmp,
                     week26, "hospital", "vaginal", [Baby("F", 3800, "live")])
    await post_case(http, stack, c)
    # what the records say, by hand: 3800 g at 26 weeks (Q101); a live birth in 2025 with no newborn visit (Q201)
    # and no first certificate (Q202) — long past 28 / 30 days
    officer, tok = await make_person(stack, ["quality_officer"], county, institution_code=inst)

    async def mine() -> list[dict[str, Any]] | None:
        got = await queries_of(http, stack, tok)
        return got if sorted(q["rule_id"] for q in got) == ["Q101", "Q201", "Q202"] else None

    got = await wait_for(mine, 30)
    assert {q["institution_code"] for q in got} == {inst}
    bw = next(q for q in got if q["rule_id"] == "Q101")
    assert bw["record_key"] == f"his-test/{c.encounter_id}" and bw["status"] == "open" and bw["level"] == "institution"

    # the scores of the delivery's month, by hand: one record (the delivery), posted long after the encounter (not
    # timely), one live birth past 28 days without a newborn visit, three open queries about that month
    month = week26.strftime("%Y-%m")
    r = await http.get(f"{stack.url('quality')}/v1/quality/scores", params={"region": county, "month": month},
                       headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    [sc] = r.json()["items"]
    assert (sc["institution_code"], sc["records"], sc["timely"], sc["timeliness"]) == (inst, 1, 0, 0.0)
    assert (sc["newborn_visits_expected"], sc["newborn_visits_present"], sc["completeness"]) == (1, 0, 0.0)
    assert (sc["open_queries"], sc["validity"]) == (3, 300.0)
    r = await http.get(f"{stack.url('quality')}/v1/quality/scores", params={"month": "2025-13"},
                       headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 422 and "month" in r.text

    # another county's officer: sees nothing, and the query is as if it did not exist
    other = fresh_county()
    _, other_tok = await make_person(stack, ["quality_officer"], other, institution_code=f"H{other}A")
    assert await queries_of(http, stack, other_tok) == []
    r = await http.get(f"{stack.url('quality')}/v1/quality/queries/{bw['id']}",
                       headers={"Authorization": f"Bearer {other_tok}"})
    assert r.status_code == 404 and county not in r.text

    # the officer answers one in the console (数据质控 page), logged in with her password
    nv = next(q for q in got if q["rule_id"] == "Q201")
    password = f"pw-{uuid.uuid4().hex}"
    await accounts.reset_password(stack.settings, officer, password)
    async with httpx.AsyncClient(base_url=console_url(stack), timeout=30) as browser:
        token = csrf_of((await browser.get("/login")).text)
        r = await browser.post("/login", data={"csrf_token": token, "username": officer, "password": password})
        assert r.status_code == 303, r.text
        page = await browser.get("/quality")
        assert page.status_code == 200 and "出生体重与孕周不符" in page.text and bw["record_key"] in page.text
        r = await browser.post(f"/quality/{nv['id']}/answer",
                               data={"csrf_token": csrf_of(page.text), "comment": "新生儿已转外院，访视在外院"})
        assert r.status_code == 303 and r.headers["location"] == "/quality?done=1"
    answered = {q["id"]: q for q in await queries_of(http, stack, tok, status=["answered"])}
    assert answered[nv["id"]]["answered_by"] == officer
    assert answered[nv["id"]]["comment"] == "新生儿已转外院，访视在外院"

    # the institution answers: confirmed as recorded, under the officer's account (never a name from the body)
    r = await http.post(f"{stack.url('quality')}/v1/quality/queries/{bw['id']}/answer",
                        json={"comment": "已核实，按原始记录"}, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["answered_by"]) == ("answered", officer)
    r = await http.post(f"{stack.url('quality')}/v1/quality/queries/{bw['id']}/answer", json={"comment": ""},
                        headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 422 and "comment" in r.text

    # the newborn visit arrives (late: it closes the missing-visit query as corrected), with a weight whose WHO
    # weight-for-age z (the registry's) is beyond the implausibility flag: a query about the visit opens
    preg = (await http.get(f"{stack.url('registry')}/v1/pregnancies/{c.pregnancy_id}")).json()
    [child] = next(e for e in preg["encounters"] if e["type"] == "delivery")["children"]
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": f"NV-{uuid.uuid4().hex[:10]}", "source": "his-test", "type": "newborn_visit",
        "occurred_at": f"{(week26 + timedelta(days=10)).isoformat()}T10:00:00+08:00", "institution_code": inst,
        "subject_id": child, "weight_kg": 9.0, "height_cm": 50})
    assert r.status_code == 201, r.text

    async def visit_judged() -> list[str] | None:
        open_ids = sorted(q["rule_id"] for q in await queries_of(http, stack, tok))
        return open_ids if open_ids == ["Q101", "Q104", "Q202"] else None

    await wait_for(visit_judged, 30)
    assert nv["id"] in {q["id"] for q in await queries_of(http, stack, tok, status=["corrected"])}

    # a correction that fixes the weight closes the query by itself
    c.version, c.babies = 2, [Baby("F", 900, "live")]
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=c.encounter_body())
    assert r.status_code in (200, 201), r.text

    async def corrected() -> dict[str, Any] | None:
        got = await queries_of(http, stack, tok, status=["corrected"])
        return next((q for q in got if q["id"] == bw["id"]), None)

    assert (await wait_for(corrected, 30))["closed_on"]
    # voiding the delivery withdraws the follow-up query it caused (not "corrected": nothing was fixed)
    r = await http.request("DELETE", f"{stack.url('registry')}/v1/encounters/his-test/{c.encounter_id}",
                           json={"reason": "posted at the wrong pregnancy"})
    assert r.status_code == 200, r.text

    async def withdrawn() -> list[str] | None:
        got = await queries_of(http, stack, tok, status=["withdrawn"])
        rids = sorted(q["rule_id"] for q in got)
        return rids if rids == ["Q202"] else None

    await wait_for(withdrawn, 30)
    # what stays open is about the visit, a record of its own
    assert [q["rule_id"] for q in await queries_of(http, stack, tok)] == ["Q104"]


# ---------------------------------------------------------------- property
TODAY = date(2026, 6, 1)


def _delivery(rng: random.Random, d: Encounter, kids: list[str], weight: int, version: int, voided: bool) -> Read:
    babies = tuple(QBaby(weight, "live" if rng.random() > 0.05 else "stillbirth", k) for k in kids)
    return Read(dataclasses.replace(d, voided=voided, mode=rng.choice(["vaginal", "caesarean"]), babies=babies),
                version, None)


def _stream(rng: random.Random, inst: list[str], n: int) -> list[Read]:
    """Every version of every record of `n` pregnancies, ~20 % of them planted bad, some corrected, some voided."""
    out: list[Read] = []
    tag = uuid.uuid4().hex[:6]  # record keys of their own, whatever ran before in this database
    for i in range(n):
        pid, mid, h = f"PQ-{uuid.uuid4().hex[:10]}", f"MQ-{uuid.uuid4().hex[:10]}", rng.choice(inst)
        lmp = date(2025, 1, 1) + timedelta(days=rng.randint(0, 200))
        booked = lmp + timedelta(days=rng.choice([60] * 8 + [-5, 400]))
        born_m = date(1995, 1, 1) if rng.random() > 0.05 else date(2016, 1, 1)
        out.append(Read(Pregnancy(pid, mid, lmp, booked, h), 1, None))
        if rng.random() < 0.1:
            out.append(Read(Pregnancy(pid, mid, lmp, lmp + timedelta(days=60), h, voided=rng.random() < 0.5), 2, None))
        out.append(Read(Person(mid, born_m), 1, None))
        delivered = lmp + timedelta(days=rng.randint(250, 290))
        kids = [f"KQ-{uuid.uuid4().hex[:10]}" for _ in range(rng.choice([1] * 9 + [2]))]
        d = Encounter(f"hisq{tag}/D{i}", "delivery", delivered, h, pid, mid, False, (delivered - lmp).days, "vaginal")
        out.append(_delivery(rng, d, kids, rng.choice([3300] * 8 + [200, 7000]), 1, False))
        if rng.random() < 0.3:
            out.append(_delivery(rng, d, kids, rng.choice([3300, 200]), 2, rng.random() < 0.3))
        for k in kids:
            shift = 0 if rng.random() > 0.05 else 10
            out.append(Read(Person(k, delivered + timedelta(days=shift), pid), 1, None))
            if rng.random() < 0.8:
                out.append(Read(Encounter(f"hisq/C{k}", "child_check", delivered + timedelta(days=7), h,
                                          person_id=k, is_newborn_visit=True,
                                          z={"weight_for_age_z": rng.choice([0.3] * 9 + [7.0])}), 1, None))
            if rng.random() < 0.7:
                out.append(Read(Certificate(f"Q{uuid.uuid4().hex[:9]}", k, "first",
                                            rng.choice(["issued"] * 9 + ["voided"]), h), 1, None))
        if rng.random() < 0.2:
            pp = Encounter(f"hisq{tag}/PP{i}", "postpartum_visit", delivered - timedelta(days=3), h, pid, mid)
            out.append(Read(pp, 1, None))
    return out


def _final(reads: list[Read]) -> dict[tuple[str, str], Any]:
    """The highest version of each record."""
    best: dict[tuple[str, str], Read] = {}
    for r in reads:
        x = r.record
        ident = getattr(x, "key", None) if isinstance(x, Encounter | Pregnancy) else None
        k = (type(x).__name__, ident or getattr(x, "person_id", None) or getattr(x, "serial", ""))
        if k not in best or best[k].version <= r.version:
            best[k] = r
    return {k: r.record for k, r in best.items()}


def _recompute(final: dict[tuple[str, str], Any]) -> dict[str, str]:
    """The findings of the final records (key -> month), built here without quality's store: files, measures,
    rules."""
    recs = list(final.values())
    pregs = [x for x in recs if isinstance(x, Pregnancy)]
    persons = {x.person_id: x for x in recs if isinstance(x, Person)}
    encs = [x for x in recs if isinstance(x, Encounter) and not x.voided]
    certs = [x for x in recs if isinstance(x, Certificate)]
    keys: dict[str, str] = {}
    for e in encs:
        keys |= {f.key: f.period for f in rules.encounter_findings(RS, e)}
    measures: dict[tuple[str, str], Counter[str]] = {}
    for p in pregs:
        if not p.voided:
            measures.setdefault((p.institution_code, p.booked_on.strftime("%Y-%m")), Counter())["booked"] += 1
        f = PregnancyFile(p, persons.get(p.mother_id), [e for e in encs if e.pregnancy_id == p.pregnancy_id])
        kids = {b.child_id for e in f.encounters if e.type == "delivery" for b in e.babies}
        f.children = {k: persons[k] for k in kids if k in persons}
        f.child_encounters = {k: [e for e in encs if e.person_id == k and e.type == "child_check"] for k in kids}
        f.certificates = {k: [c for c in certs if c.child_id == k] for k in kids}
        keys |= {x.key: x.period for x in rules.pregnancy_findings(RS, f, TODAY)}
    for e in encs:
        if e.type == "delivery":
            m = measures.setdefault((e.institution_code, e.occurred_on.strftime("%Y-%m")), Counter())
            m["women_delivered"] += 1
            m["live_births"] += sum(b.outcome == "live" for b in e.babies)
            m["caesareans"] += e.mode == "caesarean"
    plain = {k: dict(v) for k, v in measures.items()}
    months = sorted({m for _, m in plain})
    keys |= {f.key: f.period for f in rules.aggregate_findings(RS, plain) + rules.outlier_findings(RS, plain, months)}
    return keys


async def test_live_queries_equal_a_recomputation_whatever_the_order(stack: Stack) -> None:
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    insts = [f"HQ{uuid.uuid4().hex[:8]}" for _ in range(2)]
    county = fresh_county()
    reads = _stream(rng, insts, 40) + [Read(Institution(h, "质控测试医院", village(county, 1 + i, 1)), 1, None)
                                       for i, h in enumerate(insts)]
    final = _final(reads)
    stream = reads + rng.sample(reads, len(reads) // 5)  # duplicates
    rng.shuffle(stream)
    db = Database.for_service(stack.settings, "quality", pool_size=2)
    try:
        i = 0
        while i < len(stream):
            n = rng.randint(1, 25)
            async with db.begin() as conn:
                await service.apply_events(conn, stream[i:i + n], TODAY)
            i += n
        async with db.connect() as conn:
            c = await raw(conn)
            live = {r[0] for r in await c.fetch(
                "select key from quality_query where institution_code = any($1::text[]) and status in "
                "('open', 'answered', 'accepted')", insts)}
            expected = _recompute(final)
            assert live == set(expected), (f"seed {seed}: missing {sorted(set(expected) - live)[:5]}, "
                                           f"extra {sorted(live - set(expected))[:5]}")
            assert expected, "the planted bad records give findings"
            # the quality dashboard's own SQL on these records: the open queries of the county, and per month
            assert await c.fetchval(dash.OPEN_SQL.replace("$region", county)) == len(expected)
            month = Counter(expected.values()).most_common(1)[0][0]
            rows = await c.fetch(dash.BY_INSTITUTION_SQL.replace("$region", county).replace("$period", month))
            assert sum(r["未结质疑"] for r in rows) == sum(1 for m in expected.values() if m == month)
            towns = await c.fetch(dash.BY_TOWNSHIP_SQL.replace("$region", county).replace("$period", month))
            assert {r["乡镇"] for r in towns} <= {village(county, 1)[:9], village(county, 2)[:9]}
    finally:
        await db.dispose()


async def test_the_sweep_opens_a_missing_follow_up_when_its_day_comes(stack: Stack) -> None:
    """A live birth on day 0 has no finding; the sweep of day 28 looks at nothing, that of day 29 opens the missing
    newborn visit, and of day 31 the missing certificate; a newborn visit arriving then corrects the first."""
    h, pid, mid, kid = (f"{p}{uuid.uuid4().hex[:10]}" for p in ("HS", "PS-", "MS-", "KS-"))
    born = today_cn() + timedelta(days=100)  # in the future: the live consumer's own sweep leaves it alone
    d = Encounter(f"hiss/D{pid}", "delivery", born, h, pid, mid, False, 275, "vaginal", (QBaby(3300, "live", kid),))
    reads = [Read(Pregnancy(pid, mid, born - timedelta(days=275), born - timedelta(days=200), h), 1, None),
             Read(Person(mid, date(1995, 1, 1)), 1, None), Read(d, 1, None), Read(Person(kid, born, pid), 1, None)]
    db = Database.for_service(stack.settings, "quality", pool_size=2)

    async def rule_ids() -> list[str]:
        async with db.connect() as conn:
            c = await raw(conn)
            return sorted(r[0] for r in await c.fetch(
                "select rule_id from quality_query where institution_code = $1 and status = 'open'", h))

    try:
        async with db.begin() as conn:
            await service.apply_events(conn, reads, born)
        assert await rule_ids() == []
        await service.sweep(db, born + timedelta(days=28))
        assert await rule_ids() == []
        await service.sweep(db, born + timedelta(days=29))
        assert await rule_ids() == ["Q201"]
        await service.sweep(db, born + timedelta(days=31))
        assert await rule_ids() == ["Q201", "Q202"]
        visit = Encounter(f"hiss/C{kid}", "child_check", born + timedelta(days=35), h, person_id=kid,
                          is_newborn_visit=True)
        async with db.begin() as conn:
            await service.apply_events(conn, [Read(visit, 1, None)], born + timedelta(days=35))
        assert await rule_ids() == ["Q202"]
    finally:
        await db.dispose()
