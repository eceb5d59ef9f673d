"""Region isolation in the registry (issue 15, OWASP API #1), tried as an attacker would: two county clients on the
real stack. County B must not take over A's resident, re-home A's hospital, or void and read A's records; an object
outside the caller's region answers exactly like one that does not exist (404, no region code)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from kit.clients import create_client

from tests.conftest import Stack, fresh_county, make_token, village
from tests.test_registry_encounters import events_of, registry_db
from tests.test_registry_persons import id_number

SOURCE = "his-iso"
SCOPES = ["registry:write", "registry:read", "pii:read"]


class County:
    """A county's system client (HIS interface) with its hospital."""

    def __init__(self, stack: Stack, code: str, token: str, account: str = "") -> None:
        self.url = stack.url("registry") + "/v1"
        self.account = account
        self.code = code
        self.inst = f"HISO{uuid.uuid4().hex[:10]}"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30, headers=self.headers) as c:
            return await c.request(method, self.url + path, json=json, **kw)

    async def hospital(self) -> None:
        r = await self.call("PUT", f"/institutions/{self.inst}", {
            "name": "县人民医院", "region_code": village(self.code, 1, 1), "kind": "hospital",
            "midwifery_licensed": True})
        assert r.status_code == 201, r.text

    def visit(self, subject: str, on: date, **kw: Any) -> dict[str, Any]:
        return {"encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": SOURCE, "type": "prenatal_visit",
                "occurred_at": f"{on.isoformat()}T10:00:00+08:00", "institution_code": self.inst,
                "subject_id": subject, **kw}


async def counties(stack: Stack) -> tuple[County, County]:
    a_code, b_code = fresh_county(), fresh_county()
    a_id, a_tok = await create_client(stack.settings, f"his-{a_code}", SCOPES, a_code)
    b_id, b_tok = await create_client(stack.settings, f"his-{b_code}", SCOPES, b_code)
    a, b = County(stack, a_code, a_tok, a_id), County(stack, b_code, b_tok, b_id)
    await a.hospital()
    await b.hospital()
    return a, b


def mother(county: str, birth: date = date(1994, 3, 8)) -> dict[str, Any]:
    return {"id_number": id_number(birth, "F"), "name": "李秀英", "sex": "F", "birth_date": birth.isoformat(),
            "residence_code": village(county, 2, 3), "phone": "13800001111"}


def assert_hidden(r: httpx.Response, *secrets: str) -> None:
    """A refusal that reveals nothing: 404 problem+json, none of A's region codes or values in it."""
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for s in secrets:
        assert s not in r.text, (s, r.text)


async def book(a: County, lmp: date) -> tuple[str, str, dict[str, Any]]:
    """A books a pregnancy of a resident of A: (pregnancy id, mother id, the mother posted)."""
    m = mother(a.code)
    pid = f"P-{uuid.uuid4().hex[:12]}"
    r = await a.call("POST", "/pregnancies", {
        "pregnancy_id": pid, "source": SOURCE, "mother": m, "lmp_date": lmp.isoformat(),
        "registered_on": (lmp + timedelta(days=60)).isoformat(), "institution_code": a.inst})
    assert r.status_code == 201, r.text
    return pid, r.json()["mother_id"], m


async def test_a_county_cannot_take_over_another_countys_resident(stack: Stack) -> None:
    """Attack (a): register her ID number, move her into B, read her unmasked, post her care into B's figures."""
    a, b = await counties(stack)
    lmp = date.today() - timedelta(days=120)
    pregnancy_id, mother_id, m = await book(a, lmp)
    # registering her ID number links the same person (continuity of care), and tells B nothing more
    r = await b.call("POST", "/persons", {**m, "name": "冒名", "residence_code": village(b.code, 1, 1)})
    assert r.status_code == 200 and r.json() == {"person_id": mother_id, "created": False}, r.text
    # the move out of A is refused as if she did not exist; nothing changes
    r = await b.call("POST", f"/persons/{mother_id}/residence",
                     {"since": (date.today() - timedelta(days=1)).isoformat(), "region_code": village(b.code, 1, 1)})
    assert_hidden(r, a.code)
    r = await b.call("GET", f"/persons/{mother_id}")
    assert_hidden(r, a.code, m["name"], m["id_number"], m["phone"])
    r = await b.call("GET", f"/pregnancies/{pregnancy_id}")
    assert_hidden(r, a.code, m["name"])
    # a move checks both ends: A may not move her into B either (the new region is the caller's own input: 403)
    r = await a.call("POST", f"/persons/{mother_id}/residence",
                     {"since": (date.today() - timedelta(days=1)).isoformat(), "region_code": village(b.code, 1, 1)})
    assert r.status_code == 403 and r.json()["detail"].startswith("region_code"), r.text
    mine = await a.call("GET", f"/persons/{mother_id}")
    assert mine.status_code == 200 and mine.json()["name"] == m["name"]  # not renamed by B's post
    assert mine.json()["residence"] == [{"since": m["birth_date"], "region_code": m["residence_code"]}]
    person_events = await events_of(stack, f"person:{mother_id}")
    assert [ev.version for _, ev in person_events] == [1]
    # B may post its own care for her (she came to B's hospital); she stays A's resident (A's figures)
    r = await b.call("POST", "/encounters", b.visit(pregnancy_id, lmp + timedelta(days=100), risk_grade="green"))
    assert r.status_code == 201, r.text
    evs = [ev for t, ev in await events_of(stack, f"pregnancy:{pregnancy_id}") if t.endswith("encounter.recorded")]
    assert [(ev.person_id, ev.institution_region) for ev in evs] == [(mother_id, village(b.code, 1, 1))]
    person_events = await events_of(stack, f"person:{mother_id}")
    assert [[(s.since, s.region_code) for s in ev.residence] for _, ev in person_events] == [
        [(m["birth_date"], m["residence_code"])]]


async def test_a_county_cannot_rehome_another_countys_hospital(stack: Stack) -> None:
    """Attack (b): PUT A's hospital into B's region, then post care as it."""
    a, b = await counties(stack)
    pregnancy_id, _, _ = await book(a, date.today() - timedelta(days=100))
    moved = {"name": "县人民医院", "region_code": village(b.code, 1, 1), "kind": "hospital", "midwifery_licensed": True}
    r = await b.call("PUT", f"/institutions/{a.inst}", moved)
    assert_hidden(r, a.code)
    r = await b.call("GET", f"/institutions/{a.inst}")
    assert_hidden(r, a.code)
    r = await a.call("GET", f"/institutions/{a.inst}")
    assert r.status_code == 200 and r.json()["region_code"] == village(a.code, 1, 1)
    # posting care as A's hospital: refused like an unknown institution, nothing written
    body = {**b.visit(pregnancy_id, date.today() - timedelta(days=10)), "institution_code": a.inst}
    r = await b.call("POST", "/encounters", body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["institution_code"], r.text
    assert a.code not in r.text
    nowhere = f"H{uuid.uuid4().hex[:8]}"
    unknown = await b.call("POST", "/encounters", {**body, "institution_code": nowhere})
    assert unknown.status_code == 422  # the same answer as for a code that does not exist
    assert unknown.json()["errors"][0]["reason"].replace(nowhere, "X") == \
        r.json()["errors"][0]["reason"].replace(a.inst, "X")
    # a caller whose region covers both the old and the new region may move it (a city bureau's operator)
    city = County(stack, a.code, await make_token(stack, SCOPES, a.code[:2]))
    r = await city.call("PUT", f"/institutions/{a.inst}", moved)
    assert r.status_code == 200 and r.json()["region_code"] == moved["region_code"] and r.json()["version"] == 2


async def test_a_county_cannot_void_and_read_another_countys_records(stack: Stack) -> None:
    """Attack (c): void A's encounters and marriage registrations, and read the voided record in the answer."""
    a, b = await counties(stack)
    lmp = date.today() - timedelta(days=120)
    pregnancy_id, mother_id, _ = await book(a, lmp)
    visit = a.visit(pregnancy_id, lmp + timedelta(days=70), risk_grade="orange")
    assert (await a.call("POST", "/encounters", visit)).status_code == 201
    r = await b.call("DELETE", f"/encounters/{SOURCE}/{visit['encounter_id']}", {"reason": "attack"})
    assert_hidden(r, a.code, "orange", pregnancy_id)
    # a correction posted under A's key by B is refused too (it would overwrite A's record)
    r = await b.call("POST", "/encounters", {**visit, "institution_code": b.inst, "version": 2})
    assert r.status_code in (404, 409) and "orange" not in r.text and a.code not in r.text, r.text
    marriage = {"registration_id": f"M-{uuid.uuid4().hex[:8]}", "source": "civil-affairs",
                "registered_on": (date.today() - timedelta(days=30)).isoformat(),
                "region_code": village(a.code, 1, 1), "persons": [{"person_id": mother_id}, {
                    "id_number": id_number(date(1992, 1, 2), "M"), "name": "张伟", "sex": "M",
                    "birth_date": "1992-01-02", "residence_code": village(a.code, 1, 2)}]}
    assert (await a.call("POST", "/marriage-registrations", marriage)).status_code == 201
    r = await b.call("DELETE", f"/marriage-registrations/civil-affairs/{marriage['registration_id']}",
                     {"reason": "attack"})
    assert_hidden(r, a.code, mother_id)
    r = await b.call("DELETE", f"/pregnancies/{pregnancy_id}", {"reason": "attack"})
    assert_hidden(r, a.code, mother_id)
    conn = await registry_db(stack)
    try:
        assert await conn.fetchval("select voided from encounter where source = $1 and encounter_id = $2",
                                   SOURCE, visit["encounter_id"]) is False
        assert await conn.fetchval("select version from encounter where source = $1 and encounter_id = $2",
                                   SOURCE, visit["encounter_id"]) == 1
        assert await conn.fetchval("select voided from marriage where registration_id = $1",
                                   marriage["registration_id"]) is False
    finally:
        await conn.close()
    # A itself may void them; who voided is the account of the token
    r = await a.call("DELETE", f"/encounters/{SOURCE}/{visit['encounter_id']}", {"reason": "entered twice"})
    assert r.status_code == 200 and r.json()["status"] == "voided"
    r = await a.call("DELETE", f"/marriage-registrations/civil-affairs/{marriage['registration_id']}",
                     {"reason": "entered twice"})
    assert r.status_code == 200 and r.json()["status"] == "voided"
    conn = await registry_db(stack)
    try:
        assert await conn.fetchval("select voided_by from encounter where source = $1 and encounter_id = $2",
                                   SOURCE, visit["encounter_id"]) == a.account
        assert await conn.fetchval("select voided_by from marriage where registration_id = $1",
                                   marriage["registration_id"]) == a.account
    finally:
        await conn.close()


async def test_the_care_giver_sees_what_it_recorded_and_the_residence_county_sees_her(stack: Stack) -> None:
    """decisions.md: a woman who gave birth in another county is seen by her county of residence in full; the
    county that cared for her sees the encounters it recorded, nothing else (no name, birth date, residence)."""
    a, b = await counties(stack)
    lmp = date.today() - timedelta(days=150)
    pregnancy_id, mother_id, m = await book(a, lmp)
    theirs = a.visit(pregnancy_id, lmp + timedelta(days=70), risk_grade="yellow")
    ours = b.visit(pregnancy_id, lmp + timedelta(days=120), risk_grade="green")
    assert (await a.call("POST", "/encounters", theirs)).status_code == 201
    assert (await b.call("POST", "/encounters", ours)).status_code == 201
    r = await b.call("GET", f"/pregnancies/{pregnancy_id}")
    assert r.status_code == 200, r.text
    care = r.json()
    assert [e["encounter_id"] for e in care["encounters"]] == [ours["encounter_id"]]
    for hidden in (a.code, m["name"], m["birth_date"], "yellow"):
        assert hidden not in r.text, hidden
    r = await b.call("GET", f"/persons/{mother_id}")
    assert r.status_code == 200 and [e["encounter_id"] for e in r.json()["encounters"]] == [ours["encounter_id"]]
    for hidden in (a.code, m["name"], m["id_number"], m["birth_date"], m["phone"]):
        assert hidden not in r.text, hidden
    full = (await a.call("GET", f"/pregnancies/{pregnancy_id}")).json()
    assert sorted(e["encounter_id"] for e in full["encounters"]) == sorted(
        [theirs["encounter_id"], ours["encounter_id"]])
    # B's post of her person record again changes nothing of A's
    r = await b.call("POST", "/persons", {**m, "phone": "13999999999", "residence_code": village(b.code, 1, 1)})
    assert r.json() == {"person_id": mother_id, "created": False}
    assert (await a.call("GET", f"/persons/{mother_id}")).json()["phone"] == m["phone"]


async def test_every_read_of_a_person_or_pregnancy_is_audited_with_the_account(stack: Stack) -> None:
    a_code = fresh_county()
    reader_id = f"test-{uuid.uuid4().hex[:6]}"
    masked_id, masked = await create_client(stack.settings, reader_id, ["registry:read"], a_code)
    a = County(stack, a_code, await make_token(stack, SCOPES, a_code))
    await a.hospital()
    pregnancy_id, mother_id, _ = await book(a, date.today() - timedelta(days=90))
    reader = County(stack, a_code, masked)
    assert (await reader.call("GET", f"/persons/{mother_id}")).status_code == 200
    assert (await reader.call("GET", f"/pregnancies/{pregnancy_id}")).status_code == 200
    conn = await registry_db(stack)
    try:
        rows = await conn.fetch("select subject_kind, subject_id, unmasked from pii_audit where client_id = $1 "
                                "order by id", masked_id)
    finally:
        await conn.close()
    assert [(r["subject_kind"], r["subject_id"], r["unmasked"]) for r in rows] == [
        ("person", mother_id, False), ("pregnancy", pregnancy_id, False)]


async def test_a_booking_dated_today_in_china_is_not_future_before_8_am(stack: Stack) -> None:
    """The unit of work's clock is China time: at 07:30 in Beijing (23:30 UTC the day before) a booking dated
    today is accepted, and one dated tomorrow refused (registry use case, fixed clock, the real database)."""
    from datetime import UTC, datetime

    from kit.auth import Principal
    from kit.clock import Clock
    from kit.db import Database
    from kit.records import DomainError
    from kit.scope import Scope
    from registry import service

    county = fresh_county()
    a = County(stack, county, await make_token(stack, SCOPES, county))
    await a.hospital()
    at = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 2026-03-10 07:30 in Beijing
    china_today = date(2026, 3, 10)
    scope = Scope(Principal("clock-test", "clock-test", frozenset(SCOPES), county), Clock(fixed=at))
    assert scope.today() == china_today != at.date()
    db = Database.for_service(stack.settings, "registry", pool_size=1)

    def booking(on: date) -> dict[str, Any]:
        return {"pregnancy_id": f"P-{uuid.uuid4().hex[:12]}", "source": SOURCE, "mother": mother(county),
                "lmp_date": (on - timedelta(days=60)).isoformat(), "registered_on": on.isoformat(),
                "institution_code": a.inst}

    try:
        status, out = await service.register_pregnancy(db, scope, booking(china_today))
        assert status == 201 and out["registered_on"] == china_today.isoformat()
        try:
            await service.register_pregnancy(db, scope, booking(china_today + timedelta(days=1)))
            raise AssertionError("a booking dated tomorrow (China time) was accepted")
        except DomainError as e:
            assert [x["field"] for x in e.errors] == ["registered_on"]
    finally:
        await db.engine.dispose()
