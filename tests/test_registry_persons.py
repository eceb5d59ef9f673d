"""Persons (ID numbers, dedup, residence history, masking and audit), marriage registrations and the region table,
through the real API."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from kit.clock import today_cn
from stdnum.cn import ric

from tests.conftest import Stack, fresh_county, make_token, village
from tests.test_registry_encounters import events_of, registry_db

ROOT = Path(__file__).resolve().parent.parent


def id_number(birth: date, sex: str, place: str = "320582") -> str:
    """A valid 身份证号: place + birth date + sequence (odd = man) + GB 11643 check digit."""
    seq = random.randrange(0, 999)
    if seq % 2 != (1 if sex == "M" else 0):
        seq = (seq + 1) % 1000
    body = f"{place}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit


def person(sex: str = "F", birth: date | None = None, residence: str | None = None, **kw: Any) -> dict[str, Any]:
    birth = birth or date(1990, 1, 1) + timedelta(days=random.randrange(0, 3000))
    return {"id_number": id_number(birth, sex), "name": "赵敏", "sex": sex, "birth_date": birth.isoformat(),
            "residence_code": residence or village(fresh_county()), "phone": "13912345678", **kw}


async def test_the_same_id_number_is_the_same_person(http: httpx.AsyncClient, stack: Stack) -> None:
    url = stack.url("registry") + "/v1/persons"
    p = person()
    r1 = await http.post(url, json=p)
    r2 = await http.post(url, json={**p, "name": "赵敏敏"})
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json()["person_id"] == r2.json()["person_id"]


async def test_bad_persons_are_refused_naming_the_field(http: httpx.AsyncClient, stack: Stack) -> None:
    url = stack.url("registry") + "/v1/persons"
    p = person()
    bad_check = p["id_number"][:-1] + ("0" if p["id_number"][-1] != "0" else "1")
    other_day = (date.fromisoformat(p["birth_date"]) + timedelta(days=1)).isoformat()
    for body, field in [({**p, "id_number": bad_check}, "id_number"),
                        ({**p, "birth_date": other_day}, "id_number"),
                        ({**p, "sex": "M"}, "id_number"),
                        ({**p, "residence_code": "329999001001"}, "residence_code"),  # no such county
                        ({**p, "residence_code": "32058210100"}, "residence_code"),
                        ({**p, "sex": "X"}, "sex")]:
        r = await http.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], r.text


async def test_personal_fields_are_masked_unless_pii_read_and_reads_are_audited(http: httpx.AsyncClient,
                                                                                stack: Stack) -> None:
    county = fresh_county()
    p = person(residence=village(county, 1, 2))
    pid = (await http.post(stack.url("registry") + "/v1/persons", json=p)).json()["person_id"]
    url = f"{stack.url('registry')}/v1/persons/{pid}"
    plain = await make_token(stack, ["registry:read"], region=county)
    pii = await make_token(stack, ["registry:read", "pii:read"], region=county)
    elsewhere = await make_token(stack, ["registry:read", "pii:read"], region=fresh_county())
    conn = await registry_db(stack)
    try:
        r = await http.get(url, headers={"Authorization": f"Bearer {plain}"})
        masked = r.json()
        assert masked["name"] == "赵*" and masked["id_number"] == p["id_number"][0] + "*" * 17
        assert "1391" not in masked["phone"] and masked["sex"] == "F"
        r = await http.get(url, headers={"Authorization": f"Bearer {pii}"})
        assert (r.json()["name"], r.json()["id_number"], r.json()["phone"]) == (p["name"], p["id_number"], p["phone"])
        audit = await conn.fetch("select fields, unmasked from pii_audit where subject_id = $1 order by id", pid)
        fields = ["document_number", "id_number", "name", "phone"]  # a resident ID is her document too
        assert [(sorted(a["fields"]), a["unmasked"]) for a in audit] == [(fields, False), (fields, True)]
        r = await http.get(url, headers={"Authorization": f"Bearer {elsewhere}"})
        assert r.status_code == 404 and county not in r.text  # as if she did not exist
    finally:
        await conn.close()


async def test_a_move_is_history_not_an_overwrite(http: httpx.AsyncClient, stack: Stack) -> None:
    first, second = village(fresh_county(), 1, 1), village(fresh_county(), 2, 7)
    p = person(residence=first, birth=date(1991, 5, 5))
    pid = (await http.post(stack.url("registry") + "/v1/persons", json=p)).json()["person_id"]
    url = f"{stack.url('registry')}/v1/persons/{pid}/residence"
    r = await http.post(url, json={"since": "2024-03-01", "region_code": second})
    assert r.status_code == 201 and r.json()["version"] == 2
    assert (await http.post(url, json={"since": "2024-03-01", "region_code": second})).status_code == 200
    r = await http.post(url, json={"since": "1980-01-01", "region_code": second})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    r = await http.post(url, json={"since": "2024-05-01", "region_code": "12345"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region_code"
    tomorrow = today_cn() + timedelta(days=1)  # a residence starting in the future is refused, naming the field
    r = await http.post(url, json={"since": tomorrow.isoformat(), "region_code": second})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since", r.text
    view = (await http.get(f"{stack.url('registry')}/v1/persons/{pid}")).json()
    assert view["residence"] == [{"since": "1991-05-05", "region_code": first},
                                 {"since": "2024-03-01", "region_code": second}]
    assert view["residence_code"] == second
    evs = [m for _, m in await events_of(stack, f"person:{pid}")]
    assert [(m.version, [(s.since, s.region_code) for s in m.residence]) for m in evs] == [
        (1, [("1991-05-05", first)]), (2, [("1991-05-05", first), ("2024-03-01", second)])]
    assert all(not hasattr(m, "name") and not hasattr(m, "id_number") for m in evs)  # no PII on the bus


async def test_marriage_registrations_idempotent_corrected_and_voided(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    url = stack.url("registry") + "/v1/marriage-registrations"
    wife = (await http.post(stack.url("registry") + "/v1/persons", json=person())).json()["person_id"]
    body = {"registration_id": f"M-{uuid.uuid4().hex[:8]}", "source": "civil-affairs", "registered_on": "2025-05-20",
            "region_code": village(county, 1, 1), "persons": [{"person_id": wife}, person("M")]}
    r = await http.post(url, json=body)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["person_ids"][0] == wife and len(set(first["person_ids"])) == 2
    assert (await http.post(url, json=body)).status_code == 200
    assert (await http.post(url, json={**body, "registered_on": "2025-05-21"})).status_code == 409
    r = await http.post(url, json={**body, "registered_on": "2025-05-21", "version": 2})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = await http.request("DELETE", f"{url}/civil-affairs/{body['registration_id']}", json={"reason": "duplicate"})
    assert r.status_code == 200 and r.json()["status"] == "voided"
    evs = [m for _, m in await events_of(stack, f"marriage:civil-affairs/{body['registration_id']}")]
    assert [(m.version, m.registered_on, m.voided, len(m.person_ids)) for m in evs] == [
        (1, "2025-05-20", False, 2), (2, "2025-05-21", False, 2), (3, "2025-05-21", True, 2)]
    for bad, field in [({**body, "registration_id": "M-x1", "persons": [{"person_id": wife}, {"person_id": wife}]},
                        "persons"),
                       ({**body, "registration_id": "M-x2", "region_code": "999999999999"}, "region_code"),
                       ({**body, "registration_id": "M-x3", "persons": [{"person_id": wife}]}, "persons")]:
        r = await http.post(url, json=bad)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    r = await http.post(url + ":batch", json=[{**body, "registration_id": f"M-{uuid.uuid4().hex[:8]}"},
                                              {**body, "registration_id": "M-x4", "region_code": "1"}])
    assert [i["status"] for i in r.json()["items"]] == [201, 422]


async def test_the_shipped_region_table_is_loaded(stack: Stack) -> None:
    shipped = [ln for ln in (ROOT / "services/registry/data/regions.csv").read_text(encoding="utf-8").splitlines()
               if ln[:2].isdigit()]
    conn = await registry_db(stack)
    try:
        assert await conn.fetchval("select count(*) from region") == len(shipped)
        assert await conn.fetchval("select name from region where code = '320582'") == "张家港市"
    finally:
        await conn.close()


async def test_a_newer_region_file_is_loaded_by_the_command(stack: Stack, tmp_path: Path) -> None:
    county = fresh_county()
    shipped = (ROOT / "services/registry/data/regions.csv").read_text(encoding="utf-8")
    newer = tmp_path / "regions.csv"
    newer.write_text(shipped + f"{county}101,示例镇\n{county}101001,示例村\n", encoding="utf-8")
    env = {**os.environ, "MCH_DB_PREFIX": stack.spec.db_prefix}

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "registry.regions", *args], env=env, check=True,
                             capture_output=True, text=True)
        return out.stdout

    assert "loaded" in run("load", str(newer))
    conn = await registry_db(stack)
    try:
        assert await conn.fetchval("select count(*) from region where code like $1", county + "%") == 3
        run("load", str(ROOT / "services/registry/data/regions.csv"))
        assert await conn.fetchval("select count(*) from region where code like $1", county + "%") == 1
    finally:
        await conn.close()
