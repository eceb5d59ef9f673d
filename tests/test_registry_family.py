"""A family's whole story posted in shuffled order (booking, six prenatal visits, a twin delivery, a postpartum
visit, child checks, one infant death) with one correction and one void: the stored timeline and derived facts
must be exactly what the story says."""
from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests import who_reference as who
from tests.conftest import Stack, fresh_county, village
from tests.helpers import setup_institutions
from tests.test_registry_encounters import SOURCE, at, events_of

ORDER = ["green", "yellow", "orange", "red", "purple"]


async def post_until_settled(http: httpx.AsyncClient, url: str, bodies: list[dict[str, Any]]) -> list[str]:
    """Post in the given order; what is refused because its prerequisite has not arrived yet is retried after the
    others, as a HIS does. Returns the reasons of those temporary refusals."""
    pending, waits = list(bodies), []
    for _ in range(len(bodies) + 1):
        later = []
        for b in pending:
            r = await http.post(f"{url}/encounters", json=b)
            if r.status_code == 422:
                waits.append(r.json()["errors"][0]["reason"])
                later.append(b)
            else:
                assert r.status_code in (200, 201), r.text
        if not later:
            return waits
        pending = later
    raise AssertionError(f"never accepted: {pending}")


async def test_a_familys_story_in_shuffled_order(http: httpx.AsyncClient, stack: Stack) -> None:
    rng = random.Random(20251)
    url = stack.url("registry") + "/v1"
    county = fresh_county()
    inst = sorted(await setup_institutions(http, stack, county))[0]
    home = village(county, 4, 5)
    lmp, booked = date(2025, 1, 6), date(2025, 2, 24)
    preg = f"P-{uuid.uuid4().hex[:10]}"
    r = await http.post(f"{url}/pregnancies", json={
        "pregnancy_id": preg, "source": SOURCE, "lmp_date": lmp.isoformat(), "registered_on": booked.isoformat(),
        "institution_code": inst,
        "mother": {"name": "陈静", "sex": "F", "birth_date": "1992-08-08", "residence_code": home}})
    assert r.status_code == 201, r.text
    mother = r.json()["mother_id"]

    def enc(typ: str, on: date, subject: str = preg, **f: Any) -> dict[str, Any]:
        return {"encounter_id": f"E-{uuid.uuid4().hex[:10]}", "source": SOURCE, "type": typ, "occurred_at": at(on),
                "institution_code": inst, "subject_id": subject, **f}

    visit_days = [49, 84, 140, 196, 238, 259]
    grades = ["green", "green", "yellow", "orange", "yellow", "green"]
    visits = [enc("prenatal_visit", lmp + timedelta(days=d), risk_grade=g) for d, g in zip(visit_days, grades,
                                                                                            strict=True)]
    delivered = lmp + timedelta(days=266)
    delivery = enc("delivery", delivered, place="hospital", mode="caesarean",
                   babies=[{"sex": "F", "birth_weight_g": 2450, "outcome": "live"},
                           {"sex": "M", "birth_weight_g": 2280, "outcome": "live"}])
    postpartum = enc("postpartum_visit", delivered + timedelta(days=5))
    part1 = [*visits, delivery, postpartum]
    rng.shuffle(part1)
    waits = await post_until_settled(http, url, part1)
    assert all("post the delivery first" in w for w in waits)
    # the correction: the fourth visit was red, not orange
    visits[3] = {**visits[3], "risk_grade": "red", "version": 2}
    grades[3] = "red"
    r = await http.post(f"{url}/encounters", json=visits[3])
    assert r.status_code == 200, r.text

    pview = (await http.get(f"{url}/pregnancies/{preg}")).json()
    twins = pview["facts"]["children"]
    assert len(twins) == 2
    girl, boy = twins
    boy_died = delivered + timedelta(days=150)
    checks = {girl: [(30, 4.2, 54.0, "exclusive_breastfeeding"), (90, 5.9, 60.5, "mixed"), (180, 7.3, 66.0, "mixed")],
              boy: [(30, 4.0, 53.1, "formula"), (90, 5.6, 59.8, "formula")]}
    part2 = [enc("child_health_check", delivered + timedelta(days=d), c, weight_kg=w, height_cm=h, feeding=fd)
             for c, rows in checks.items() for d, w, h, fd in rows]
    part2.append(enc("death", boy_died, boy, person_id=boy, died_on=boy_died.isoformat(), cause="pneumonia"))
    rng.shuffle(part2)
    assert await post_until_settled(http, url, part2) == []
    # the void: the girl's 90-day check was entered for the wrong child
    day90 = at(delivered + timedelta(days=90))
    voided = next(b for b in part2 if b["subject_id"] == girl and b["occurred_at"] == day90)
    r = await http.request("DELETE", f"{url}/encounters/{SOURCE}/{voided['encounter_id']}",
                           json={"reason": "wrong child"})
    assert r.status_code == 200, r.text
    checks[girl].pop(1)

    # the pregnancy: its timeline in date order and the facts derived from it
    pview = (await http.get(f"{url}/pregnancies/{preg}")).json()
    timeline = [(e["type"], e["occurred_on"], e["status"]) for e in pview["encounters"]]
    want = sorted([*(("prenatal_visit", (lmp + timedelta(days=d)).isoformat(), "active") for d in visit_days),
                   ("delivery", delivered.isoformat(), "active"),
                   ("postpartum_visit", (delivered + timedelta(days=5)).isoformat(), "active")], key=lambda t: t[1])
    assert timeline == want
    assert [e.get("gestational_days") for e in pview["encounters"] if e["type"] == "prenatal_visit"] == visit_days
    f = pview["facts"]
    assert f["antenatal_checks"] == 6 and f["postpartum_visits"] == 1 and not f["postpartum_42d_check"]
    assert [g["grade"] for g in f["risk_grades"]] == grades
    assert f["highest_risk_grade"] == max(grades, key=ORDER.index) == "red" and f["high_risk"]
    assert f["current_risk_grade"] == grades[-1]
    assert (f["delivered_on"], f["gestational_days_at_delivery"], f["live_births"], f["stillbirths"]) == (
        delivered.isoformat(), 266, 2, 0)
    assert f["gestational_days_at_booking"] == (booked - lmp).days
    assert f["early_booking"] == ((booked - lmp).days < 13 * 7)

    # the children: checks with ages and z-scores, the death
    for child, sex in ((girl, "F"), (boy, "M")):
        v = (await http.get(f"{url}/persons/{child}")).json()
        assert (v["mother_id"], v["born_in_pregnancy_id"], v["sex"]) == (mother, preg, sex)
        got = [(c["age_days"], c["weight_kg"], c["height_cm"], c["feeding"]) for c in v["checks"]]
        assert got == checks[child]
        for c, (d, w, h, _) in zip(v["checks"], checks[child], strict=True):
            # the WHO standard computed from the published tables (tests/who_reference.py), not the registry's code
            z = who.zscores(sex, d, w, h)
            for key, zw in (("weight_for_age_z", z.weight_for_age), ("height_for_age_z", z.height_for_age),
                            ("weight_for_height_z", z.weight_for_height)):
                assert zw is not None and abs(c[key] - zw) <= 0.0051, (child, d, key, c[key], zw)
    boy_view = (await http.get(f"{url}/persons/{boy}")).json()
    death = next(e for e in boy_view["encounters"] if e["type"] == "death")
    assert boy_view["died_on"] == boy_died.isoformat()
    assert (death["maternal"], death["age_days"], death["cause"]) == (False, 150, "pneumonia")
    mother_view = (await http.get(f"{url}/persons/{mother}")).json()
    assert sorted(mother_view["children"]) == sorted(twins) and mother_view["died_on"] is None

    # the events: the latest version of each record says the same
    latest: dict[str, Any] = {}
    for _, m in await events_of(stack, f"pregnancy:{preg}"):
        if hasattr(m, "encounter_key"):
            if m.encounter_key not in latest or latest[m.encounter_key].version < m.version:
                latest[m.encounter_key] = m
    assert len(latest) == 8
    assert sorted(m.prenatal_visit.risk_grade for m in latest.values() if m.type == "prenatal_visit") == sorted(grades)
    girl_events = {m.encounter_key: m for _, m in await events_of(stack, f"person:{girl}") if hasattr(m, "voided")}
    assert girl_events[f"{SOURCE}/{voided['encounter_id']}"].voided
