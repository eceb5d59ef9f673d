"""Data-quality scores as indicators (issue 18): records posted through the registry, one of them planted bad;
the quality service publishes each institution-month's score parts (quality.score_parts.changed, through its
outbox) and the indicators API serves the three figures — timeliness, completeness, open queries per 100
records — equal to what this test computes from its own inputs, and equal to quality's own /v1/quality/scores.
The bureau accepting a query moves the figure (an API-side change publishes too)."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, timedelta
from typing import Any

import httpx
from kit.clock import today_cn
from kit.db import Database, raw
from kit.events import parse, payload
from mch.events.v1 import quality_pb2 as qpb
from quality import service
from quality.domain.records import Baby as QBaby
from quality.domain.records import Encounter, Person, Pregnancy
from quality.events.read import Institution, Read

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, post_pregnancy, setup_institutions

CODES = ("quality_timeliness_rate", "quality_completeness_rate", "quality_open_queries_per_100")
TIMELY_DAYS = 7           # services/quality/rules/v1.json timeliness_days
NEWBORN_VISIT_DAYS = 28   # Q201, and the completeness denominator: a live birth 28+ days old
CERTIFICATE_DAYS = 30     # Q202


def month(d: date) -> str:
    return d.strftime("%Y-%m")


async def served(http: httpx.AsyncClient, stack: Stack, county: str, inst: str, m: str) -> dict[str, tuple[int, int]]:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                       params={"region": county, "period": m, "codes": ",".join(CODES), "breakdown": "institution"})
    assert r.status_code == 200, r.text
    return {row["code"]: (row["numerator"], row["denominator"]) for row in r.json()["rows"]
            if row["institution"] == inst}


async def quality_scores(http: httpx.AsyncClient, stack: Stack, token: str, county: str, inst: str,
                         m: str) -> dict[str, Any]:
    r = await http.get(f"{stack.url('quality')}/v1/quality/scores", params={"region": county, "month": m},
                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return next(s for s in r.json()["items"] if s["institution_code"] == inst)


def as_figures(parts: Counter[str]) -> dict[str, tuple[int, int]]:
    """(numerator, denominator) of the three indicators from the parts; a figure with nothing counted is absent."""
    out = {"quality_timeliness_rate": (parts["timely"], parts["records"]),
           "quality_completeness_rate": (parts["present"], parts["expected"]),
           "quality_open_queries_per_100": (parts["open"], parts["records"])}
    return {k: v for k, v in out.items() if v != (0, 0)}


async def test_quality_scores_are_indicator_figures(http: httpx.AsyncClient, stack: Stack) -> None:
    today = today_cn()
    county = fresh_county()
    inst = sorted(await setup_institutions(http, stack, county))[0]
    home = village(county, 1, 1)
    # two deliveries long past 30 days: D1 sound (39 weeks, 3300 g) with its newborn visit; D2 planted bad (3800 g
    # at 26+2 weeks, Q101) and without a visit. Bookings are posted today for lmp + 60, so they are late unless
    # recent: a third pregnancy booked two days ago is the one timely booking.
    d1_on, d2_on = today - timedelta(days=60), today - timedelta(days=50)
    d1 = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", home, inst,
                      d1_on - timedelta(days=39 * 7), d1_on, "hospital", "vaginal", [Baby("M", 3300, "live")])
    d2 = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", home, inst,
                      d2_on - timedelta(days=26 * 7 + 2), d2_on, "hospital", "vaginal", [Baby("F", 3800, "live")])
    booked3 = today - timedelta(days=2)
    p3 = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", "", home, inst, booked3 - timedelta(days=60), booked3,
                      "hospital", "vaginal")
    for c in (d1, d2):
        await post_case(http, stack, c)
    r = await post_pregnancy(http, stack, p3)
    assert r.status_code in (200, 201), r.text
    preg = (await http.get(f"{stack.url('registry')}/v1/pregnancies/{d1.pregnancy_id}")).json()
    [child] = next(e for e in preg["encounters"] if e["type"] == "delivery")["children"]
    visit_on = d1_on + timedelta(days=10)
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": f"NV-{uuid.uuid4().hex[:10]}", "source": "his-test", "type": "newborn_visit",
        "occurred_at": f"{visit_on.isoformat()}T10:00:00+08:00", "institution_code": inst,
        "subject_id": child, "weight_kg": 3.5, "height_cm": 51})
    assert r.status_code in (200, 201), r.text

    # by hand, per month of clinical dates (everything was posted today)
    parts: dict[str, Counter[str]] = {}
    for clinical in (d1.lmp + timedelta(days=60), d2.lmp + timedelta(days=60), booked3, d1_on, d2_on, visit_on):
        p = parts.setdefault(month(clinical), Counter())
        p["records"] += 1
        p["timely"] += (today - clinical).days <= TIMELY_DAYS
    for delivered, visited in ((d1_on, True), (d2_on, False)):
        p = parts[month(delivered)]
        p["expected"] += delivered + timedelta(days=NEWBORN_VISIT_DAYS) < today
        p["present"] += visited
        p["open"] += not visited                                               # Q201: no newborn visit
        p["open"] += delivered + timedelta(days=CERTIFICATE_DAYS) < today      # Q202: no first certificate
    parts[month(d2_on)]["open"] += 1                                           # Q101: 3800 g at 26 weeks
    assert sum(p["timely"] for p in parts.values()) == 1 and sum(p["open"] for p in parts.values()) == 4

    _, tok = await make_person(stack, ["statistician"], county)

    async def settled(want: dict[str, dict[str, tuple[int, int]]]) -> Any:
        got = {m: await served(http, stack, county, inst, m) for m in want}
        return got if got == want else None

    want = {m: as_figures(p) for m, p in parts.items()}
    try:
        await wait_for(lambda: settled(want), 30, 0.3)
    except AssertionError:
        raise AssertionError(f"{ {m: await served(http, stack, county, inst, m) for m in want} } != {want}") from None
    # quality's own scores say the same
    for m, p in parts.items():
        s = await quality_scores(http, stack, tok, county, inst, m)
        assert (s["records"], s["timely"], s["newborn_visits_expected"], s["newborn_visits_present"],
                s["open_queries"]) == (p["records"], p["timely"], p["expected"], p["present"], p["open"]), (m, s)

    # the bureau accepts the planted record as it is: one open query fewer in D2's month, in the indicators too
    r = await http.get(f"{stack.url('quality')}/v1/quality/queries", params={"region": county},
                       headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    q101 = next(q for q in r.json()["items"] if q["rule_id"] == "Q101")
    r = await http.post(f"{stack.url('quality')}/v1/quality/queries/{q101['id']}/accept",
                        json={"comment": "核实为双胎之一，体重属实"}, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    parts[month(d2_on)]["open"] -= 1
    want = {m: as_figures(p) for m, p in parts.items()}
    await wait_for(lambda: settled(want), 20, 0.3)
    s = await quality_scores(http, stack, tok, county, inst, month(d2_on))
    assert s["open_queries"] == parts[month(d2_on)]["open"]


async def test_score_parts_are_published_once_per_change_and_move_with_the_days(stack: Stack) -> None:
    """The same batch twice publishes nothing new (the parts did not change); the sweep of the day a birth turns
    29 days old publishes the month again, with the next version, now expecting its newborn visit."""
    h, pid, mid, kid = (f"{p}{uuid.uuid4().hex[:10]}" for p in ("HQ", "PQ-", "MQ-", "KQ-"))
    county = fresh_county()
    born = today_cn() + timedelta(days=100)  # in the future: the live consumer's own sweep leaves it alone
    key = f"quality-score:{h}:{month(born)}"
    d = Encounter(f"hisq/D{pid}", "delivery", born, h, pid, mid, False, 275, "vaginal", (QBaby(3300, "live", kid),))
    reads = [Read(Institution(h, "评分测试医院", village(county, 1, 1)), 1, None),
             Read(Pregnancy(pid, mid, born - timedelta(days=275), born - timedelta(days=200), h), 1, born),
             Read(Person(mid, date(1995, 1, 1)), 1, None), Read(d, 1, born), Read(Person(kid, born, pid), 1, None)]
    db = Database.for_service(stack.settings, "quality", pool_size=2)

    async def published() -> list[qpb.ScorePartsChanged]:
        async with db.connect() as conn:
            c = await raw(conn)
            rows = await c.fetch("select envelope from outbox where key = $1 order by id", key)
        return [payload(parse(r[0]), qpb.ScorePartsChanged) for r in rows]

    try:
        for _ in range(2):  # a redelivered batch
            async with db.begin() as conn:
                await service.apply_events(conn, reads, born)
        [first] = await published()
        # by hand: the delivery is the month's one record, posted on its day (timely); the birth is not 28 days old
        assert (first.version, first.institution_region) == (1, village(county, 1, 1))
        assert (first.records, first.timely) == (1, 1)
        assert (first.followups_expected, first.followups_present, first.open_queries) == (0, 0, 0)
        await service.sweep(db, born + timedelta(days=NEWBORN_VISIT_DAYS))
        assert len(await published()) == 1              # day 28: nothing changed
        await service.sweep(db, born + timedelta(days=NEWBORN_VISIT_DAYS + 1))
        second = (await published())[-1]
        # day 29: the newborn visit is expected and missing (Q201 opens about the birth's month)
        assert (second.version, second.records, second.followups_expected, second.followups_present,
                second.open_queries) == (2, 1, 1, 0, 1)
    finally:
        await db.dispose()
