"""The certificate office's three service-side pieces (issue 16), through the real stack: the certificate's
content checked field by field by the certificates service; a batch of blanks received by two persons (双人验收);
the worklist search in the registry (the mothers' fields masked as the role allows, every read audited)."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import births, call, confirm, new_prefix, office, prepare, stock, wait_known

from tests.conftest import Stack, fresh_county, make_person, make_token, village
from tests.test_certificates_api import dsn, field_of, report, urls

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parent.parent


def test_the_service_and_the_console_hold_the_same_form() -> None:
    """The console fills and prints the fields the service checks: one list, two copies kept equal."""
    a, b = (json.loads((ROOT / "services" / s / "data" / "content_fields.json").read_text(encoding="utf-8"))
            for s in ("certificates", "console"))
    assert a["groups"] == b["groups"]


def content(name: str, born: str, county: str, **over: Any) -> dict[str, Any]:
    return {"child_name": name, "child_sex": "F", "birth_date": born, "birth_time": "08:30",
            "gestational_weeks": 39, "birth_weight_g": 3250, "birth_length_cm": 50, "health": "good",
            "birth_province": "江苏省", "birth_city": "宿迁市", "birth_county": "泗阳县", "birth_region_code": county,
            "place_type": "hospital", "mother_name": "王丽", "mother_age": 29, "mother_nationality": "中国",
            "mother_ethnicity": "汉族", "mother_id_type": "passport", "mother_id_number": "E12345678", **over}


async def test_content_is_checked_field_by_field(stack: Stack, http: httpx.AsyncClient) -> None:
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    born = today() - timedelta(days=2)
    (kid,) = await births(http, reg, o.code, village(county), 1, born)
    await wait_known(dsn(stack), [kid])
    await stock(http, certs, o, new_prefix(), 1, 3, born)
    before = await report(http, certs, o)
    wrong = content("张小满", (born - timedelta(days=1)).isoformat(), "329999" if county[:6] != "329999" else
                    "329998", birth_weight_g=80000, health="excellent", birth_time="25:61", gestational_weeks=39.5,
                    mother_nationality="中\x01国", mother_id_type="resident_id", mother_id_number="11010519491231002Y",
                    father_name="李强", colour="红")
    r = await prepare(http, certs, o, kid, child_name="张小满", content=wrong)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    named = {e["field"] for e in r.json()["errors"]}
    assert named == {f"content.{k}" for k in ("birth_date", "birth_region_code", "birth_weight_g", "health",
                                              "birth_time", "gestational_weeks", "mother_nationality",
                                              "mother_id_number", "colour")}, r.json()
    assert await report(http, certs, o) == before  # nothing drawn
    # another child's name in the content than on the certificate
    r = await prepare(http, certs, o, kid, child_name="张小满", content=content("张大满", born.isoformat(), county[:6]))
    assert (r.status_code, field_of(r)) == (422, "content.child_name"), r.text
    # a complete, coherent form is stored typed, as the certificate's content
    r = await prepare(http, certs, o, kid, child_name="张小满", content=content("张小满", born.isoformat(), county[:6]))
    assert r.status_code == 201, r.text
    got = (await http.get(f"{certs}/v1/certificates/{r.json()['serial']}")).json()["content"]
    assert got["birth_length_cm"] == "50.0" and got["birth_weight_g"] == 3250 and got["birth_region_code"] == county[:6]


async def test_a_batch_needs_the_office_head_and_a_custodian(stack: Stack, http: httpx.AsyncClient) -> None:
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    other = await office(http, reg, certs, village(fresh_county()), stack.settings)
    prefix, batch = new_prefix(), f"B-{uuid.uuid4().hex[:10]}"
    sf, st = f"{prefix}00001", f"{prefix}00004"
    r = await call(http, "POST", f"{certs}/v1/stock/batches", headers=o.by(o.head), json={
        "batch_no": batch, "serial_from": sf, "serial_to": st, "received_on": today().isoformat()})
    assert r.status_code == 201 and r.json()["status"] == "awaiting_confirmation", r.text
    waiting = (await http.get(f"{certs}/v1/stock/batches", params={"awaiting": "true"},
                              headers=o.by(o.keeper))).json()["batches"]
    assert [b["batch_no"] for b in waiting] == [batch]
    allocate = {"institution_code": o.code, "serial_from": sf, "serial_to": st, "allocated_on": today().isoformat()}
    r = await http.post(f"{certs}/v1/stock/allocations", headers=o.by(o.head), json=allocate)
    assert (r.status_code, field_of(r)) == (409, "serial_from") and "双人验收" in r.text, r.text
    bureau = await _bureau(http, certs, o)
    assert bureau["received"] == 0  # not stock until confirmed
    # the office head and a seal custodian cannot confirm; another county's custodian finds no such batch
    for who in (o.head, o.sealer):
        assert (await confirm(http, certs, o, batch, as_=who)).status_code == 403
    r = await confirm(http, certs, other, batch)
    assert r.status_code == 404, r.text
    # a person holding both roles cannot be both persons
    _, tok = await make_person(stack, ["office_head", "certificate_custodian"], county[:6])
    own = f"B-{uuid.uuid4().hex[:10]}"
    by_both = {"Authorization": f"Bearer {tok}"}
    r = await call(http, "POST", f"{certs}/v1/stock/batches", headers=by_both, json={
        "batch_no": own, "serial_from": f"{prefix}00011", "serial_to": f"{prefix}00012",
        "received_on": today().isoformat()})
    assert r.status_code == 201, r.text
    r = await http.post(f"{certs}/v1/stock/batches/{own}/confirmation", headers=by_both)
    assert (r.status_code, field_of(r)) == (403, "actor") and "双人验收" in r.text, r.text
    r = await confirm(http, certs, o, batch)
    assert r.status_code == 200 and r.json()["confirmed_by"] == o.keeper, r.text
    assert (await confirm(http, certs, o, batch)).status_code == 200  # the same confirmation again
    assert (await _bureau(http, certs, o))["received"] == 4
    r = await http.post(f"{certs}/v1/stock/allocations", headers=o.by(o.head), json=allocate)
    assert r.status_code == 201, r.text
    db = await asyncpg.connect(dsn(stack))
    try:
        rows = await db.fetch("select actor, action from audit_log where subject = $1 order by id", f"batch:{batch}")
    finally:
        await db.close()
    assert [(x["actor"], x["action"]) for x in rows] == [(o.head, "stock.receive"), (o.keeper, "stock.confirm")]


async def _bureau(http: httpx.AsyncClient, certs: str, o: Any) -> dict[str, Any]:
    r = await http.get(f"{certs}/v1/stock/report", params={"region": o.region[:6], "from": today().isoformat(),
                                                           "to": today().isoformat()})
    assert r.status_code == 200, r.text
    return dict(r.json()["bureau"])


async def test_the_worklist_search_finds_mothers_masked_and_audited(stack: Stack, http: httpx.AsyncClient) -> None:
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    born = today() - timedelta(days=4)
    kids = await births(http, reg, o.code, village(county), 10, born)  # two deliveries: 8 + 2 babies
    url = f"{reg}/v1/institutions/{o.code}/births"
    clerk = {"Authorization": "Bearer " + await make_token(stack, ["registry:read"], county)}
    everyone = (await http.get(url, params={"birth_date": born.isoformat()}, headers=clerk)).json()["items"]
    assert sorted(i["child_id"] for i in everyone) == sorted(kids)
    assert {i["mother_name"] for i in everyone} == {"母*"}  # masked: the token holds no pii:read
    record = everyone[-1]["hospital_record_no"]
    by_record = (await http.get(url, params={"q": record}, headers=clerk)).json()["items"]
    assert {i["hospital_record_no"] for i in by_record} == {record} and len(by_record) in (2, 8)
    assert (await http.get(url, params={"birth_date": (born - timedelta(days=1)).isoformat()},
                           headers=clerk)).json()["items"] == []
    reader = {"Authorization": "Bearer " + await make_token(stack, ["registry:read", "pii:read"], county)}
    by_name = (await http.get(url, params={"q": "母亲"}, headers=reader)).json()["items"]
    assert len(by_name) == len(kids) and {i["mother_name"] for i in by_name} == {"母亲"}
    # another county's clerk: the institution is unknown
    stranger = {"Authorization": "Bearer " + await make_token(stack, ["registry:read"], fresh_county())}
    assert (await http.get(url, headers=stranger)).status_code == 404
    db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{stack.spec.db_prefix}registry")
    try:
        mothers = {i["mother_id"] for i in everyone}
        n = await db.fetchval("select count(*) from pii_audit where subject_kind = 'person' "
                              "and subject_id = any($1::text[])", list(mothers))
    finally:
        await db.close()
    # each search read each mother it returned: 2 (by date) + 1 (by record) + 2 (by name, unmasked)
    assert n == 2 * len(mothers) + 1
