"""Registry encounters through the real API: each type, each validation rule (a refused post names its field and
changes nothing), idempotency, corrections, voids with history, and the batch endpoint."""
from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from mch.events.v1 import registry_pb2 as pb
from mch.events.v1.envelope_pb2 import Envelope

from tests.conftest import Stack, fresh_county, make_token, village
from tests.helpers import setup_institutions

SOURCE = "his-reg"
#: WHO 2006 LMS parameters at birth (day 0), from the published WHO tables (wfa / lhfa, boys and girls)
WFA_BOYS_0 = (0.3487, 3.3464, 0.14602)
LHFA_BOYS_0 = (1.0, 49.8842, 0.03795)
WFA_GIRLS_0 = (0.3809, 3.2322, 0.14171)


def lms_z(x: float, lms: tuple[float, float, float]) -> float:
    """WHO (2006) §5.2: z = ((x/M)^L − 1) / (L·S) (|z| ≤ 3, where no restriction applies)."""
    L, M, S = lms
    return float(((x / M) ** L - 1) / (L * S))


def at(d: date) -> str:
    return f"{d.isoformat()}T10:00:00+08:00"


async def registry_db(stack: Stack) -> asyncpg.Connection:
    s = stack.settings
    return await asyncpg.connect(s.dsn(s.database("registry"), s.role("registry")).replace("+asyncpg", ""))


async def events_of(stack: Stack, key: str) -> list[tuple[str, Any]]:
    """The registry's outbox rows for one subject key, decoded (what the relay publishes)."""
    types = {"registry.encounter.recorded": pb.EncounterRecorded, "registry.person.upserted": pb.PersonUpserted,
             "registry.pregnancy.recorded": pb.PregnancyRecorded, "registry.marriage.recorded": pb.MarriageRecorded}
    conn = await registry_db(stack)
    try:
        rows = await conn.fetch("select event_type, envelope from outbox where key = $1 order by id", key)
    finally:
        await conn.close()
    out = []
    for r in rows:
        env = Envelope()
        env.ParseFromString(r["envelope"])
        msg = types[r["event_type"]]()
        msg.ParseFromString(env.payload)
        out.append((r["event_type"], msg))
    return out


async def footprint(stack: Stack) -> tuple[int, int, int, int]:
    """Counts that any accepted post changes: outbox, encounters, encounter history, persons."""
    conn = await registry_db(stack)
    try:
        return tuple([await conn.fetchval(f"select count(*) from {t}")  # type: ignore[return-value]
                      for t in ("outbox", "encounter", "encounter_history", "person")])
    finally:
        await conn.close()


class Family:
    """A county, its two institutions, and one booked pregnancy."""

    def __init__(self, http: httpx.AsyncClient, stack: Stack) -> None:
        self.http, self.stack, self.url = http, stack, stack.url("registry") + "/v1"
        self.county = fresh_county()
        self.residence = village(self.county, 2, 3)
        self.lmp = date(2025, 1, 10)
        self.pregnancy_id = f"P-{uuid.uuid4().hex[:12]}"
        self.inst = ""
        self.mother_id = ""

    async def book(self) -> Family:
        insts = await setup_institutions(self.http, self.stack, self.county)
        self.inst = sorted(insts)[0]
        r = await self.http.post(f"{self.url}/pregnancies", json={
            "pregnancy_id": self.pregnancy_id, "source": SOURCE,
            "mother": {"name": "王芳", "sex": "F", "birth_date": "1995-04-04", "residence_code": self.residence},
            "lmp_date": self.lmp.isoformat(), "registered_on": (self.lmp + timedelta(days=70)).isoformat(),
            "institution_code": self.inst})
        assert r.status_code == 201, r.text
        self.mother_id = r.json()["mother_id"]
        return self

    def body(self, typ: str, on: date, subject: str | None = None, **fields: Any) -> dict[str, Any]:
        return {"encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": SOURCE, "type": typ, "occurred_at": at(on),
                "institution_code": self.inst, "subject_id": subject or self.pregnancy_id, **fields}

    async def post(self, body: dict[str, Any], want: int = 201) -> dict[str, Any]:
        r = await self.http.post(f"{self.url}/encounters", json=body)
        assert r.status_code == want, r.text
        return dict(r.json())

    async def deliver(self, on: date, babies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        babies = babies or [{"sex": "M", "birth_weight_g": 3300, "outcome": "live"}]
        return await self.post(self.body("delivery", on, place="hospital", mode="vaginal", babies=babies))


@pytest.fixture
async def fam(http: httpx.AsyncClient, stack: Stack) -> Family:
    return await Family(http, stack).book()


async def test_prenatal_visit_derives_gestational_age_and_carries_the_risk_grade(fam: Family, stack: Stack) -> None:
    on = fam.lmp + timedelta(days=100)
    out = await fam.post(fam.body("prenatal_visit", on, risk_grade="orange"))
    assert out["gestational_days"] == 100 and out["risk_grade"] == "orange"
    given = await fam.post(fam.body("prenatal_visit", on + timedelta(days=30), gestational_weeks=18))
    assert given["gestational_days"] == 18 * 7 and given["risk_grade"] == ""
    evs = [m for t, m in await events_of(stack, f"pregnancy:{fam.pregnancy_id}")
           if t == "registry.encounter.recorded"]
    assert [(e.prenatal_visit.gestational_days, e.prenatal_visit.risk_grade, e.prenatal_visit.counts_as_antenatal_check)
            for e in evs] == [(100, "orange", True), (126, "", True)]
    assert evs[0].institution_region == village(fam.county, 1, 1) and evs[0].person_id == fam.mother_id


async def test_delivery_creates_a_child_per_live_birth_and_records_stillbirths(fam: Family, stack: Stack,
                                                                                http: httpx.AsyncClient) -> None:
    on = fam.lmp + timedelta(days=275)
    out = await fam.deliver(on, [{"sex": "F", "birth_weight_g": 2400, "outcome": "live"},
                                 {"sex": "M", "birth_weight_g": 1900, "outcome": "stillbirth"}])
    assert len(out["children"]) == 1 and out["gestational_days"] == 275
    child = (await http.get(f"{fam.url}/persons/{out['children'][0]}")).json()
    assert (child["sex"], child["birth_date"], child["mother_id"], child["born_in_pregnancy_id"]) == (
        "F", on.isoformat(), fam.mother_id, fam.pregnancy_id)
    assert child["residence_code"] == fam.residence
    person_evs = await events_of(stack, f"person:{out['children'][0]}")
    assert [(m.mother_id, m.born_in_pregnancy_id, m.version) for _, m in person_evs] == [
        (fam.mother_id, fam.pregnancy_id, 1)]
    dl = next(m for t, m in await events_of(stack, f"pregnancy:{fam.pregnancy_id}")
              if t.endswith("encounter.recorded"))
    assert [(b.outcome, b.birth_weight_g, b.child_id) for b in dl.delivery.babies] == [
        ("live", 2400, out["children"][0]), ("stillbirth", 1900, "")]
    assert dl.delivery.institution_midwifery_licensed  # the A institution of setup_institutions is licensed


async def test_postpartum_visit_and_42_day_check_derive_the_day_after_delivery(fam: Family, stack: Stack) -> None:
    delivered = fam.lmp + timedelta(days=270)
    await fam.deliver(delivered)
    v = await fam.post(fam.body("postpartum_visit", delivered + timedelta(days=7)))
    c = await fam.post(fam.body("postpartum_42d_check", delivered + timedelta(days=42)))
    assert (v["day_after_delivery"], v["is_42d_check"]) == (7, False)
    assert (c["day_after_delivery"], c["is_42d_check"]) == (42, True)
    evs = [m for t, m in await events_of(stack, f"pregnancy:{fam.pregnancy_id}") if t.endswith("encounter.recorded")]
    assert [(e.type, e.postpartum_visit.day_after_delivery) for e in evs[1:]] == [
        ("postpartum_visit", 7), ("postpartum_42d_check", 42)]


async def test_newborn_visit_and_child_check_store_who_z_scores(fam: Family, stack: Stack,
                                                               http: httpx.AsyncClient) -> None:
    born = fam.lmp + timedelta(days=280)
    child = (await fam.deliver(born))["children"][0]
    nv = await fam.post(fam.body("newborn_visit", born, child, weight_kg=4.0, height_cm=52.0,
                                 feeding="exclusive_breastfeeding"))
    assert nv["age_days"] == 0 and nv["is_newborn_visit"]
    assert nv["weight_for_age_z"] == round(lms_z(4.0, WFA_BOYS_0), 2)
    assert nv["height_for_age_z"] == round(lms_z(52.0, LHFA_BOYS_0), 2)
    later = born + timedelta(days=200)
    ck = await fam.post(fam.body("child_health_check", later, child, weight_kg=8.1, haemoglobin_g_l=118))
    assert ck["age_days"] == 200 and ck["height_for_age_z"] is None and ck["weight_for_height_z"] is None
    assert ck["haemoglobin_g_l"] == 118 and ck["weight_for_age_z"] is not None
    evs = [m for t, m in await events_of(stack, f"person:{child}") if t.endswith("encounter.recorded")]
    cc = evs[1].child_check
    assert (cc.age_days, cc.weight_kg, cc.haemoglobin_g_l, cc.is_newborn_visit) == (200, 8.1, 118, False)
    assert cc.height_for_age_z != cc.height_for_age_z  # NaN when not computable
    view = (await http.get(f"{fam.url}/persons/{child}")).json()
    assert [c["encounter_id"] for c in view["checks"]] == [nv["encounter_id"], ck["encounter_id"]]


async def test_folic_acid_dispensing_goes_to_the_woman(fam: Family, stack: Stack) -> None:
    out = await fam.post(fam.body("folic_acid_dispensed", fam.lmp - timedelta(days=30), fam.mother_id,
                                  person_id=fam.mother_id, quantity=30))
    assert out["person_id"] == fam.mother_id and out["quantity"] == 30
    evs = [m for t, m in await events_of(stack, f"person:{fam.mother_id}") if t.endswith("encounter.recorded")]
    assert [(e.folic_acid.person_id, e.folic_acid.quantity) for e in evs] == [(fam.mother_id, 30)]


async def test_maternal_death_is_derived_from_the_pregnancy(http: httpx.AsyncClient, stack: Stack) -> None:
    delivered = date(2025, 10, 1)
    within, beyond = await Family(http, stack).book(), await Family(http, stack).book()
    for f in (within, beyond):
        await f.deliver(delivered)
    d42 = delivered + timedelta(days=42)
    d1 = await within.post(within.body("death", d42, within.mother_id, person_id=within.mother_id,
                                       died_on=d42.isoformat()))
    d2 = await beyond.post(beyond.body("death", delivered + timedelta(days=43), beyond.mother_id,
                                       died_on=(delivered + timedelta(days=43)).isoformat(), cause="trauma"))
    assert (d1["maternal"], d1["pregnancy_id"]) == (True, within.pregnancy_id)
    assert (d2["maternal"], d2["pregnancy_id"]) == (False, "")
    assert d1["age_days"] == (delivered + timedelta(days=42) - date(1995, 4, 4)).days
    evs = [m for t, m in await events_of(stack, f"person:{within.mother_id}") if t.endswith("encounter.recorded")]
    assert (evs[0].death.maternal, evs[0].death.pregnancy_id, evs[0].death.died_on) == (
        True, within.pregnancy_id, (delivered + timedelta(days=42)).isoformat())
    # during pregnancy, before any delivery
    pregnant = await Family(http, stack).book()
    d3 = await pregnant.post(pregnant.body("death", pregnant.lmp + timedelta(days=150), pregnant.mother_id,
                                           died_on=(pregnant.lmp + timedelta(days=150)).isoformat()))
    assert (d3["maternal"], d3["pregnancy_id"]) == (True, pregnant.pregnancy_id)


def _rejections(f: Family, child: str, man: str, open_: str) -> list[tuple[str, dict[str, Any], str, int]]:
    lmp = f.lmp
    return [
        ("visit before LMP", f.body("prenatal_visit", lmp - timedelta(days=1)), "occurred_at", 422),
        ("gestational week out of range", f.body("prenatal_visit", lmp + timedelta(days=60), gestational_weeks=47),
         "gestational_weeks", 422),
        ("unknown risk grade", f.body("prenatal_visit", lmp + timedelta(days=60), risk_grade="blue"),
         "risk_grade", 422),
        ("birth weight implausible", f.body("delivery", lmp + timedelta(days=200), open_, place="hospital",
                                            mode="vaginal",
                                            babies=[{"sex": "F", "birth_weight_g": 9100, "outcome": "live"}]),
         "babies.0.birth_weight_g", 422),
        ("delivery on a closed episode", f.body("delivery", lmp + timedelta(days=281), place="hospital",
                                                mode="vaginal", babies=[{"sex": "F", "outcome": "live"}]),
         "subject_id", 409),
        ("child check before birth", f.body("child_health_check", lmp + timedelta(days=270), child, weight_kg=3.0),
         "occurred_at", 422),
        ("implausible weight", f.body("child_health_check", lmp + timedelta(days=300), child, weight_kg=300),
         "weight_kg", 422),
        ("unknown pregnancy", f.body("prenatal_visit", lmp + timedelta(days=60), "P-nope"), "subject_id", 422),
        ("unknown person", f.body("child_health_check", lmp + timedelta(days=300), str(uuid.uuid4())),
         "subject_id", 422),
        ("folic acid for a man", f.body("folic_acid_dispensed", lmp, man, quantity=30), "person_id", 422),
        ("unknown institution", {**f.body("prenatal_visit", lmp + timedelta(days=60)), "institution_code": "NOPE"},
         "institution_code", 422),
        ("unknown type", f.body("home_birth_party", lmp), "type", 422),
        ("unknown field", f.body("prenatal_visit", lmp + timedelta(days=60), colour="red"), "colour", 422),
        ("postpartum visit before delivery date", f.body("postpartum_visit", lmp + timedelta(days=279)),
         "occurred_at", 422),
        ("death before birth", f.body("death", lmp, child, died_on=(lmp + timedelta(days=10)).isoformat()),
         "died_on", 422),
    ]


async def test_each_rule_refuses_naming_its_field_and_changes_nothing(fam: Family, stack: Stack,
                                                                      http: httpx.AsyncClient) -> None:
    born = fam.lmp + timedelta(days=280)
    child = (await fam.deliver(born))["children"][0]
    r = await http.post(f"{fam.url}/persons", json={"name": "李强", "sex": "M", "birth_date": "1990-01-01",
                                                    "residence_code": fam.residence})
    man = r.json()["person_id"]
    still_pregnant = (await Family(http, stack).book()).pregnancy_id
    for what, body, field, status in _rejections(fam, child, man, still_pregnant):
        before = await footprint(stack)
        r = await http.post(f"{fam.url}/encounters", json=body)
        assert r.status_code == status, (what, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], (what, r.json())
        assert await footprint(stack) == before, what


async def test_postpartum_visit_needs_a_delivery_and_nothing_happens_after_death(fam: Family,
                                                                                 http: httpx.AsyncClient) -> None:
    r = await http.post(f"{fam.url}/encounters", json=fam.body("postpartum_visit", fam.lmp + timedelta(days=200)))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject_id"
    died = fam.lmp + timedelta(days=150)
    await fam.post(fam.body("death", died, fam.mother_id, died_on=died.isoformat()))
    late = fam.body("delivery", died + timedelta(days=5), place="hospital", mode="caesarean",
                    babies=[{"sex": "F", "outcome": "live"}])
    r = await http.post(f"{fam.url}/encounters", json=late)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "occurred_at", r.text
    r = await http.post(f"{fam.url}/encounters", json=fam.body("death", died, fam.mother_id, died_on=died.isoformat()))
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "person_id"


async def test_idempotency_corrections_and_voids_keep_the_history(fam: Family, stack: Stack,
                                                                  http: httpx.AsyncClient) -> None:
    body = fam.body("prenatal_visit", fam.lmp + timedelta(days=90), risk_grade="green")
    first = await fam.post(body)
    assert (await fam.post(body, 200)) == first  # a retry: the stored record, nothing new
    r = await http.post(f"{fam.url}/encounters", json={**body, "risk_grade": "red"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "version"
    corrected = await fam.post({**body, "risk_grade": "red", "version": 2}, 200)
    assert (corrected["version"], corrected["risk_grade"]) == (2, "red")
    r = await http.post(f"{fam.url}/encounters", json={**body, "risk_grade": "yellow", "version": 1})
    assert r.status_code == 409
    r = await http.request("DELETE", f"{fam.url}/encounters/{SOURCE}/{body['encounter_id']}",
                           json={"reason": "wrong patient"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["version"]) == ("voided", 3)
    r = await http.post(f"{fam.url}/encounters", json={**body, "version": 4})
    assert r.status_code == 409
    conn = await registry_db(stack)
    try:
        hist = await conn.fetch("select version, voided, reason from encounter_history where source = $1 and "
                                "encounter_id = $2 order by version", SOURCE, body["encounter_id"])
    finally:
        await conn.close()
    assert [(h["version"], h["voided"], h["reason"]) for h in hist] == [
        (1, False, None), (2, False, "correction"), (3, True, "wrong patient")]
    evs = [m for t, m in await events_of(stack, f"pregnancy:{fam.pregnancy_id}") if t.endswith("encounter.recorded")]
    assert [(e.version, e.voided, e.prenatal_visit.risk_grade) for e in evs] == [
        (1, False, "green"), (2, False, "red"), (3, True, "red")]


async def test_a_voided_delivery_reopens_the_episode(fam: Family, http: httpx.AsyncClient) -> None:
    on = fam.lmp + timedelta(days=270)
    dl = await fam.deliver(on)
    r = await http.request("DELETE", f"{fam.url}/encounters/{SOURCE}/{dl['encounter_id']}", json={"reason": "dup"})
    assert r.status_code == 200
    again = await fam.deliver(on + timedelta(days=1))
    assert again["children"] and again["children"] != dl["children"]
    preg = (await http.get(f"{fam.url}/pregnancies/{fam.pregnancy_id}")).json()
    assert preg["facts"]["delivered_on"] == (on + timedelta(days=1)).isoformat()


async def test_batch_answers_each_item_and_a_bad_item_spares_its_neighbours(fam: Family, stack: Stack,
                                                                             http: httpx.AsyncClient) -> None:
    on = fam.lmp + timedelta(days=268)
    visit = fam.body("prenatal_visit", fam.lmp + timedelta(days=80))
    items = [visit,
             fam.body("prenatal_visit", fam.lmp - timedelta(days=3)),  # before the LMP
             visit,  # the same again in the batch: a no-op
             fam.body("delivery", on, place="hospital", mode="vaginal",
                      babies=[{"sex": "F", "outcome": "live"}, {"sex": "M", "outcome": "live"}]),
             fam.body("postpartum_visit", on + timedelta(days=3)),  # sees the delivery of the same batch
             "not an object",
             {**visit, "version": 2, "risk_grade": "yellow"}]  # a correction within the batch
    before = await footprint(stack)
    r = await http.post(f"{fam.url}/encounters:batch", json=items)
    assert r.status_code == 200, r.text
    res = r.json()
    assert [i["status"] for i in res["items"]] == [201, 422, 200, 201, 201, 422, 200] and res["accepted"] == 5
    assert res["items"][1]["errors"][0]["field"] == "occurred_at"
    assert res["items"][0]["id"] == visit["encounter_id"] and len(res["items"][3]["children"]) == 2
    after = await footprint(stack)
    # outbox: 2 children + 4 encounter versions; encounters: 3; history: 4 versions; persons: 2 children
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (6, 3, 4, 2)
    r = await http.post(f"{fam.url}/encounters:batch", json=[visit] * 1001)
    assert r.status_code == 413


async def test_a_pregnancy_registration_is_voided_only_after_its_encounters(fam: Family, stack: Stack,
                                                                            http: httpx.AsyncClient) -> None:
    visit = await fam.post(fam.body("prenatal_visit", fam.lmp + timedelta(days=70)))
    url = f"{fam.url}/pregnancies/{fam.pregnancy_id}"
    r = await http.request("DELETE", url, json={"reason": "booked twice"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "pregnancy_id"
    r = await http.request("DELETE", f"{fam.url}/encounters/{SOURCE}/{visit['encounter_id']}", json={"reason": "x"})
    assert r.status_code == 200
    r = await http.request("DELETE", url, json={"reason": "booked twice"})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await http.post(f"{fam.url}/encounters", json=fam.body("prenatal_visit", fam.lmp + timedelta(days=80)))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject_id"
    evs = [m for t, m in await events_of(stack, f"pregnancy:{fam.pregnancy_id}") if t.endswith("pregnancy.recorded")]
    assert [(m.version, m.voided) for m in evs] == [(1, False), (2, True)]


async def test_a_client_posts_only_for_institutions_in_its_region(fam: Family, stack: Stack) -> None:
    other = await make_token(stack, ["registry:write"], region=fresh_county())
    mine = await make_token(stack, ["registry:write"], region=fam.county)
    body = fam.body("prenatal_visit", fam.lmp + timedelta(days=70))
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"{fam.url}/encounters", json=body, headers={"Authorization": f"Bearer {other}"})
        # an institution outside the caller's region is answered like an unknown one (it reveals nothing)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "institution_code", r.text
        assert r.json()["errors"][0]["reason"].startswith(f"unknown institution {fam.inst}")
        r = await c.post(f"{fam.url}/encounters:batch", json=[body], headers={"Authorization": f"Bearer {other}"})
        assert r.json()["items"][0]["status"] == 422
        r = await c.post(f"{fam.url}/encounters", json=body, headers={"Authorization": f"Bearer {mine}"})
        assert r.status_code == 201, r.text


async def test_a_corrected_delivery_date_moves_the_childs_birth(fam: Family, stack: Stack,
                                                                http: httpx.AsyncClient) -> None:
    on = fam.lmp + timedelta(days=272)
    body = fam.body("delivery", on, place="hospital", mode="vaginal", babies=[{"sex": "F", "outcome": "live"}])
    child = (await fam.post(body))["children"][0]
    fixed_on = on - timedelta(days=1)
    out = await fam.post({**body, "occurred_at": at(fixed_on), "version": 2}, 200)
    assert out["children"] == [child] and out["gestational_days"] == 271
    view = (await http.get(f"{fam.url}/persons/{child}")).json()
    assert (view["birth_date"], view["version"], view["residence"]) == (
        fixed_on.isoformat(), 2, [{"since": fixed_on.isoformat(), "region_code": fam.residence}])
    evs = [m for _, m in await events_of(stack, f"person:{child}")]
    assert [(m.version, m.birth_date) for m in evs] == [(1, on.isoformat()), (2, fixed_on.isoformat())]


async def test_pregnancies_batch_answers_each_item(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = sorted(await setup_institutions(http, stack, county))[0]
    mother = {"name": "孙丽", "sex": "F", "birth_date": "1996-06-06", "residence_code": village(county)}

    def preg(lmp: str, booked: str) -> dict[str, Any]:
        return {"pregnancy_id": f"P-{uuid.uuid4().hex[:10]}", "source": SOURCE, "mother": mother, "lmp_date": lmp,
                "registered_on": booked, "institution_code": inst}

    items = [preg("2025-01-01", "2025-03-01"), preg("2025-05-01", "2025-03-01"), preg("2025-02-01", "2025-04-01")]
    r = await http.post(f"{stack.url('registry')}/v1/pregnancies:batch", json=items)
    assert r.status_code == 200, r.text
    assert [i["status"] for i in r.json()["items"]] == [201, 422, 201]
    assert r.json()["items"][1]["errors"][0]["field"] == "lmp_date"
    for i in (0, 2):
        got = await http.get(f"{stack.url('registry')}/v1/pregnancies/{items[i]['pregnancy_id']}")
        assert got.status_code == 200
    assert (await http.get(f"{stack.url('registry')}/v1/pregnancies/{items[1]['pregnancy_id']}")).status_code == 404
    # an item refused after it wrote (its new "mother" is created, then found to be a man) is rolled back alone
    man = {**preg("2025-02-01", "2025-04-01"), "mother": {**mother, "name": "张伟", "sex": "M"}}
    before = await footprint(stack)
    r = await http.post(f"{stack.url('registry')}/v1/pregnancies:batch", json=[man, preg("2025-03-01", "2025-05-01")])
    assert [i["status"] for i in r.json()["items"]] == [422, 201], r.text
    assert r.json()["items"][0]["errors"][0]["field"] == "mother"
    after = await footprint(stack)
    # only the second item's mother (a new person: no ID number to match) and its two events
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (2, 0, 0, 1)


async def test_concurrent_single_posts_are_each_answered_as_if_posted_alone(fam: Family, stack: Stack) -> None:
    """Single posts arriving together are written in shared units of work (group commit); each request still gets
    its own answer, a refused one changes nothing, and two racing posts of one new encounter meet as in order."""
    other = await make_token(stack, ["registry:write"], region=fresh_county())
    mine = await make_token(stack, ["registry:write"], region=fam.county)
    valid = [fam.body("prenatal_visit", fam.lmp + timedelta(days=60 + i)) for i in range(40)]
    early = [fam.body("prenatal_visit", fam.lmp - timedelta(days=1 + i)) for i in range(5)]
    foreign = [fam.body("prenatal_visit", fam.lmp + timedelta(days=90)) for _ in range(5)]
    twin = fam.body("prenatal_visit", fam.lmp + timedelta(days=100), risk_grade="green")
    rival = {**twin, "risk_grade": "orange"}  # the same new encounter, version 1, other content
    same = fam.body("prenatal_visit", fam.lmp + timedelta(days=101))
    posts = ([(b, mine) for b in valid + early] + [(b, other) for b in foreign]
             + [(twin, mine), (rival, mine), (same, mine), (same, mine)])
    order = list(range(len(posts)))
    random.Random(5).shuffle(order)  # callers of both regions interleaved, so shared units mix them
    before = await footprint(stack)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=len(posts))) as c:
        sent = await asyncio.gather(*(c.post(f"{fam.url}/encounters", json=posts[i][0],
                                             headers={"Authorization": f"Bearer {posts[i][1]}"}) for i in order))
    rs = [r for _, r in sorted(zip(order, sent, strict=True), key=lambda x: x[0])]
    codes = [r.status_code for r in rs]
    assert codes[:40] == [201] * 40
    for r in rs[:40]:
        assert r.json()["gestational_days"] is not None
    assert [r.json()["encounter_id"] for r in rs[:40]] == [b["encounter_id"] for b in valid]
    assert codes[40:45] == [422] * 5 and {r.json()["errors"][0]["field"] for r in rs[40:45]} == {"occurred_at"}
    assert codes[45:50] == [422] * 5 and {r.json()["errors"][0]["field"] for r in rs[45:50]} == {"institution_code"}
    assert sorted(codes[50:52]) == [201, 409] and sorted(codes[52:54]) == [200, 201]
    winner = rs[50] if codes[50] == 201 else rs[51]
    conn = await registry_db(stack)
    try:
        stored = await conn.fetchval("select body->>'risk_grade' from encounter where source = $1 and "
                                     "encounter_id = $2", SOURCE, twin["encounter_id"])
    finally:
        await conn.close()
    assert stored == winner.json()["risk_grade"]
    after = await footprint(stack)
    # 40 visits + the rival pair's winner + one of the identical pair: one encounter, one version, one event each
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (42, 42, 42, 0)
