"""The programme encounters of issue 21 through the real registry API: each is accepted, its event carries its
detail, bad values are refused naming the field (nothing changed), a termination ends the pregnancy like a
delivery (and a void reopens it), and the figures move in the indicators service (the whole pipeline: registry,
outbox, broker, consumer)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, village, wait_for
from tests.helpers import setup_institutions, wait_values
from tests.test_registry_encounters import at, events_of
from tests.test_screening_api import body as screening_body
from tests.test_screening_api import post as post_screening

SOURCE = "his-progs-api"


class Api:
    def __init__(self, http: httpx.AsyncClient, stack: Stack, inst: str) -> None:
        self.http, self.reg, self.inst = http, stack.url("registry") + "/v1", inst

    async def pregnancy(self, lmp: date, home: str) -> tuple[str, str]:
        pid = f"P-{uuid.uuid4().hex[:12]}"
        r = await self.http.post(f"{self.reg}/pregnancies", json={
            "pregnancy_id": pid, "source": SOURCE, "lmp_date": lmp.isoformat(),
            "registered_on": (lmp + timedelta(days=40)).isoformat(), "institution_code": self.inst,
            "mother": {"name": "测试", "sex": "F", "birth_date": "1994-04-04", "residence_code": home}})
        assert r.status_code == 201, r.text
        return pid, r.json()["mother_id"]

    async def post(self, type_: str, subject: str, on: date, status: int = 201, **fields: Any) -> httpx.Response:
        body = {"encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": SOURCE, "type": type_, "occurred_at": at(on),
                "institution_code": self.inst, "subject_id": subject, **fields}
        r = await self.http.post(f"{self.reg}/encounters", json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        return r

    async def refused(self, field: str, type_: str, subject: str, on: date, **fields: Any) -> None:
        r = await self.post(type_, subject, on, 422, **fields)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], r.text


async def _setup(http: httpx.AsyncClient, stack: Stack) -> tuple[Api, str, str]:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    return Api(http, stack, sorted(insts)[0]), county, village(county, 1, 1)


async def test_a_termination_ends_the_pregnancy_and_a_void_reopens_it(http: httpx.AsyncClient, stack: Stack) -> None:
    api, _, home = await _setup(http, stack)
    lmp = date(2025, 3, 1)
    pid, _ = await api.pregnancy(lmp, home)
    await api.refused("occurred_at", "pregnancy_termination", pid, lmp + timedelta(days=196),
                      method="induced_labour", reason="birth_defect")          # 28+0 weeks: a delivery
    await api.refused("method", "pregnancy_termination", pid, lmp + timedelta(days=60), method="curettage",
                      reason="elective")
    r = await api.post("pregnancy_termination", pid, lmp + timedelta(days=150), method="induced_labour",
                       reason="birth_defect")
    ended = r.json()
    kinds = [(t, m) for t, m in await events_of(stack, f"pregnancy:{pid}") if t == "registry.encounter.recorded"]
    msg = kinds[-1][1]
    assert msg.WhichOneof("detail") == "termination"
    assert (msg.termination.method, msg.termination.reason, msg.termination.gestational_days) == (
        "induced_labour", "birth_defect", 150)
    # the episode is closed: no visit after it, no delivery
    await api.refused("occurred_at", "prenatal_visit", pid, lmp + timedelta(days=160))
    await api.post("delivery", pid, lmp + timedelta(days=270), 409, place="hospital", mode="vaginal",
                   babies=[{"sex": "F", "outcome": "live", "birth_weight_g": 3000}])
    # 危重孕产妇 within 42 days of the end, not later
    await api.post("maternal_near_miss", pid, lmp + timedelta(days=160), cause_category="obstetric_haemorrhage")
    await api.refused("occurred_at", "maternal_near_miss", pid, lmp + timedelta(days=193),
                      cause_category="obstetric_haemorrhage")
    r2 = await http.request("DELETE", f"{api.reg}/encounters/{SOURCE}/{ended['encounter_id']}",
                            json={"reason": "wrong pregnancy"})
    assert r2.status_code == 200, r2.text
    await api.post("delivery", pid, lmp + timedelta(days=270), place="hospital", mode="vaginal",
                   babies=[{"sex": "F", "outcome": "live", "birth_weight_g": 3000}])


async def test_bad_programme_values_are_refused_naming_the_field(http: httpx.AsyncClient, stack: Stack) -> None:
    api, _, home = await _setup(http, stack)
    lmp = date(2025, 1, 1)
    born = lmp + timedelta(days=275)
    pid, mother = await api.pregnancy(lmp, home)
    r = await api.post("delivery", pid, born, place="hospital", mode="vaginal",
                       babies=[{"sex": "M", "outcome": "live", "birth_weight_g": 3300}])
    child = r.json()["children"][0]
    await api.refused("categories.0", "birth_defect", child, born, categories=["webbed_toes"])
    await api.refused("categories", "birth_defect", child, born, categories=[])
    await api.refused("occurred_at", "neonatal_tetanus", child, born + timedelta(days=40))
    await api.refused("outcome", "at_risk_child", child, born + timedelta(days=30), conditions=["anaemia"],
                      closed_on=(born + timedelta(days=60)).isoformat())     # closed without its outcome
    await api.refused("closed_on", "at_risk_child", child, born + timedelta(days=30), conditions=["anaemia"],
                      closed_on=(born + timedelta(days=10)).isoformat(), outcome="recovered")
    await api.refused("occurred_at", "nursery_health_check", child, born + timedelta(days=400), role="staff",
                      nursery="龙城幼儿园")
    await api.refused("role", "nursery_health_check", mother, born, role="cook", nursery="龙城幼儿园")
    await api.refused("review.reviewed_on", "death", child, born + timedelta(days=20),
                      died_on=(born + timedelta(days=20)).isoformat(),
                      review={"reviewed_on": (born + timedelta(days=10)).isoformat(), "cause_category": "pneumonia",
                              "preventability": "unavoidable"})
    await api.refused("review.preventability", "death", child, born + timedelta(days=20),
                      died_on=(born + timedelta(days=20)).isoformat(),
                      review={"reviewed_on": (born + timedelta(days=30)).isoformat(), "cause_category": "pneumonia",
                              "preventability": "maybe"})
    # nothing of it was kept: the child has no encounter
    got = [t for t, m in await events_of(stack, f"person:{child}") if t == "registry.encounter.recorded"]
    assert got == []


async def test_programme_encounters_move_the_figures(http: httpx.AsyncClient, stack: Stack) -> None:
    """One family and one nursery teacher, every programme record; the figures by hand (2025 and 2026)."""
    api, county, home = await _setup(http, stack)
    lmp = date(2025, 1, 1)
    born = date(2025, 10, 1)
    pid, mother = await api.pregnancy(lmp, home)
    await api.post("folic_acid_dispensed", mother, lmp + timedelta(days=5), quantity=3)
    await api.post("folic_acid_dispensed", mother, lmp + timedelta(days=20), quantity=2)
    r = await api.post("delivery", pid, born, place="hospital", mode="vaginal",
                       babies=[{"sex": "M", "outcome": "live", "birth_weight_g": 3300},
                               {"sex": "F", "outcome": "live", "birth_weight_g": 3100}])
    a, b = r.json()["children"]
    await api.post("maternal_near_miss", pid, born, cause_category="hypertensive_disorder", organ_dysfunction=True)
    await api.post("birth_defect", a, born + timedelta(days=1), categories=["cleft_lip", "cleft_palate"])
    await api.post("birth_defect", b, born + timedelta(days=8), categories=["polydactyly"])   # day 8: not counted
    await api.post("neonatal_tetanus", b, born + timedelta(days=6))
    for on, packs in ((date(2026, 4, 2), 30), (date(2026, 5, 2), 60)):   # 营养包: the screening record
        r = await post_screening(http, stack, screening_body("nutrition_pack", a, api.inst, on, packs=packs))
        assert r.status_code == 201, r.text
    enrol = await api.post("at_risk_child", a, date(2026, 1, 5), conditions=["anaemia"])
    body = enrol.json()
    r = await http.post(f"{api.reg}/encounters", json={
        "encounter_id": body["encounter_id"], "source": SOURCE, "version": 2, "type": "at_risk_child",
        "occurred_at": at(date(2026, 1, 5)), "institution_code": api.inst, "subject_id": a,
        "conditions": ["anaemia"], "closed_on": "2026-03-01", "outcome": "recovered"})
    assert r.status_code == 200, r.text
    await api.post("at_risk_child", b, date(2026, 2, 5), conditions=["malnutrition"])
    teacher = (await http.post(f"{api.reg}/persons", json={"name": "老师", "sex": "F", "birth_date": "1990-01-01",
                                                          "residence_code": home})).json()["person_id"]
    await api.post("nursery_health_check", teacher, date(2026, 3, 3), role="staff", nursery="龙城幼儿园", abnormal=True)
    await api.post("death", b, date(2026, 6, 1), died_on="2026-06-01",
                   review={"reviewed_on": "2026-07-01", "cause_category": "pneumonia",
                           "preventability": "conditionally_avoidable"})
    # 2025: 2 live births; one child with a defect found on day 1 (1 ÷ 2 × 10000 = 5000 per 10 000), cleft; the
    # tetanus case (1 ÷ 2 × 1000 ‰); one near miss; one woman, 5 bottles
    await wait_values(http, stack, county, "2025", {
        "birth_defects": (1, None), "birth_defect_rate": (1, 2), "birth_defects_cleft": (1, None),
        "birth_defects_polydactyly": (0, None), "neonatal_tetanus_rate": (1, 2), "maternal_near_miss_ratio": (1, 2),
        "folic_acid_persons": (1, None), "folic_acid_bottles": (5, None)}, timeout=60)
    # 2026: one child given 营养包 (90 packs); two enrolments, one closed recovered, the other ended by the child's
    # death in June (none under management at the year end); one staff check, abnormal; one under-5 death
    # reviewed, avoidable had conditions been met
    await wait_values(http, stack, county, "2026", {
        "nutrition_pack_children": (1, None), "nutrition_pack_packs": (90, None),
        "at_risk_children_enrolled": (2, None), "at_risk_recovery_rate": (1, 1), "at_risk_children_managed": (0, None),
        "nursery_staff_checked": (1, None), "nursery_staff_abnormal_rate": (1, 1), "under5_deaths": (1, None),
        "under5_death_review_rate": (1, 1), "under5_death_avoidable_share": (1, 1)}, timeout=60)
    # at the end of February both enrolments were open; at the end of May, b's
    await wait_values(http, stack, county, "2026-02", {"at_risk_children_managed": (2, None)})
    await wait_values(http, stack, county, "2026-05", {"at_risk_children_managed": (1, None)})


async def test_a_termination_closes_the_high_risk_case(http: httpx.AsyncClient, stack: Stack) -> None:
    """高危专案 ends with the pregnancy (decision 50), also when a termination ends it."""
    api, county, home = await _setup(http, stack)
    lmp = date(2025, 6, 1)
    pid, _ = await api.pregnancy(lmp, home)
    await api.post("prenatal_visit", pid, lmp + timedelta(days=80), risk_grade="red")

    async def case(status: str) -> Any:
        r = await http.get(f"{stack.url('screening')}/v1/followups",
                           params={"region": county, "type": "pregnancy_high_risk", "limit": 100})
        assert r.status_code == 200, r.text
        mine = [c for c in r.json()["items"] if c["pregnancy_id"] == pid]
        return mine[0] if mine and mine[0]["status"] == status else None

    await wait_for(lambda: case("open"), timeout=30)
    await api.post("pregnancy_termination", pid, lmp + timedelta(days=120), method="induced_labour",
                   reason="maternal_disease")
    closed = await wait_for(lambda: case("closed"), timeout=30)
    assert closed["closed_on"] == (lmp + timedelta(days=120)).isoformat(), closed
