"""Region isolation and 证章分离 in the certificates service, tried as an attacker would with two counties'
people on the real stack: county B reads and changes nothing of county A's children, certificates, stock,
register or custodians, and every refusal answers exactly as for something that does not exist; a certificate
is prepared by one logged-in person and sealed by another, never by the preparer, never by a system."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import Office, births, issue, new_prefix, office, prepare, seal, stock, void

from tests.conftest import Stack, fresh_county, make_person, make_token, village
from tests.test_certificates_api import dsn, field_of, urls, wait_known

pytestmark = pytest.mark.stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def same_refusal(a: httpx.Response, b: httpx.Response, key_a: str, key_b: str) -> None:
    """Two refusals are indistinguishable once the key each names is swapped: same status, same body shape."""
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]

    def shape(r: httpx.Response, key: str) -> Any:
        body = json.loads(r.text.replace(key, "KEY"))
        return {k: v for k, v in body.items() if k not in ("instance", "request_id")}  # per-request ids differ

    assert shape(a, key_a) == shape(b, key_b), (a.text, b.text)


async def county_with_issue(http: httpx.AsyncClient, stack: Stack) -> tuple[Office, list[str], dict[str, Any]]:
    """County A: an institution with its people, two children born there, one certificate issued, one pending."""
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    kids = await births(http, reg, o.code, village(county), 2, today() - timedelta(days=2))
    await wait_known(dsn(stack), kids)
    await stock(http, certs, o, new_prefix(), 1, 10, today() - timedelta(days=1))
    cert = await issue(http, certs, o, kids[0])
    return o, kids, cert


async def test_another_county_reads_nothing_of_a_child(http: httpx.AsyncClient, stack: Stack) -> None:
    """The attack of issue 15: county B's client read A's child (birth date, birthplace, serials) from the
    certificates service. Now A's child does not exist for B: the same 404 as a child never born."""
    reg, certs = urls(stack)
    county_a, county_b = fresh_county(), fresh_county()
    code = f"H{uuid.uuid4().hex[:8].upper()}"
    r = await http.put(f"{reg}/v1/institutions/{code}", json={
        "name": "甲县医院", "region_code": village(county_a), "kind": "hospital", "midwifery_licensed": True})
    assert r.status_code < 300, r.text
    kid = (await births(http, reg, code, village(county_a), 1, today() - timedelta(days=2)))[0]
    await wait_known(dsn(stack), [kid])
    reader_a = await make_token(stack, ["certificates:read"], county_a)
    reader_b = await make_token(stack, ["certificates:read", "pii:read"], county_b)
    mine = await http.get(f"{certs}/v1/children/{kid}", headers=bearer(reader_a))
    assert mine.status_code == 200 and mine.json()["born_at"] == code, mine.text
    theirs = await http.get(f"{certs}/v1/children/{kid}", headers=bearer(reader_b))
    assert theirs.status_code == 404, theirs.text
    assert code not in theirs.text and county_a not in theirs.text and "birth" not in theirs.text
    never = str(uuid.uuid4())
    same_refusal(theirs, await http.get(f"{certs}/v1/children/{never}", headers=bearer(reader_b)), kid, never)


async def test_another_county_reads_nothing_of_certificates_stock_register_custodians(
        http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, cert = await county_with_issue(http, stack)
    b = fresh_county()
    reader_b = bearer(await make_token(stack, ["certificates:read", "pii:read"], b))
    serial, unused = cert["serial"], "Z000000007"
    for path_of in (lambda s: f"/v1/certificates/{s}", lambda s: f"/v1/stock/serials/{s}"):
        theirs = await http.get(certs + path_of(serial), headers=reader_b)
        assert theirs.status_code == 404 and kids[0] not in theirs.text and o.code not in theirs.text, theirs.text
        same_refusal(theirs, await http.get(certs + path_of(unused), headers=reader_b), serial, unused)
    period = {"from": str(today() - timedelta(days=5)), "to": str(today())}
    for path, params in (("/v1/certificates/register", period), ("/v1/custodians", {}),
                         ("/v1/stock/report", period)):
        theirs = await http.get(certs + path, params={"institution_code": o.code, **params}, headers=reader_b)
        none = await http.get(certs + path, params={"institution_code": "NO-SUCH-1", **params}, headers=reader_b)
        assert theirs.status_code == 404, (path, theirs.text)
        same_refusal(theirs, none, o.code, "NO-SUCH-1")
    # a report of A's county asked by B: 403, and nothing about A in it
    r = await http.get(f"{certs}/v1/stock/report", params={"region": o.region[:6], **period}, headers=reader_b)
    assert r.status_code == 403 and o.code not in r.text
    # B's own county report holds nothing of A (not even A's bureau stock)
    r = await http.get(f"{certs}/v1/stock/report", params={"region": b, **period}, headers=reader_b)
    assert r.status_code == 200 and r.json()["rows"] == [] and r.json()["bureau"]["closing"] == 0, r.text


async def test_another_county_changes_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    """B's office head, custodians and stock cannot void, seal, allocate to, assign at or prepare for A."""
    reg, certs = urls(stack)
    o, kids, cert = await county_with_issue(http, stack)
    pending = (await prepare(http, certs, o, kids[1])).json()
    other = await office(http, reg, certs, village(fresh_county()), stack.settings)
    await stock(http, certs, other, new_prefix(), 1, 5, today())
    before = (await http.get(f"{certs}/v1/stock/serials/{cert['serial']}")).json()
    # void A's issued certificate, seal A's pending one: as if they did not exist
    for serial in (cert["serial"], pending["serial"]):
        r = await void(http, certs, other, serial, "错发")
        same_refusal(r, await void(http, certs, other, "Z000000008", "错发"), serial, "Z000000008")
        r = await seal(http, certs, other, serial)
        same_refusal(r, await seal(http, certs, other, "Z000000008"), serial, "Z000000008")
        assert r.status_code == 404
    r = await void(http, certs, other, serial_of(cert["serial"], 5), "破损", blank=True)  # A's blank in stock
    assert r.status_code == 404, r.text
    # allocate B's blanks to A's hospital, assign B's person at A's hospital: A's hospital is unknown to B
    for path, body in (("/v1/stock/allocations", {"institution_code": o.code, "serial_from": "Z000000001",
                                                   "serial_to": "Z000000001", "allocated_on": str(today())}),
                       ("/v1/custodians", {"institution_code": o.code, "account_id": other.sealer, "role": "seal"})):
        theirs = await http.post(certs + path, json=body, headers=other.by(other.head))
        none = await http.post(certs + path, json={**body, "institution_code": "NO-SUCH-2"},
                               headers=other.by(other.head))
        assert (theirs.status_code, field_of(theirs)) == (422, "institution_code"), theirs.text
        same_refusal(theirs, none, o.code, "NO-SUCH-2")
    # B's certificate custodian prepares for A's child: A's child is unknown to B
    r = await prepare(http, certs, other, kids[1], kind="first_out_of_institution", evidence_ref="x")
    never = str(uuid.uuid4())
    same_refusal(r, await prepare(http, certs, other, never, kind="first_out_of_institution", evidence_ref="x"),
                 kids[1], never)
    assert (r.status_code, field_of(r)) == (422, "child_id")
    after = (await http.get(f"{certs}/v1/stock/serials/{cert['serial']}")).json()
    assert after == before
    assert (await http.get(f"{certs}/v1/certificates/{pending['serial']}")).json()["state"] == "prepared"


def serial_of(serial: str, k: int) -> str:
    return f"{serial[0]}{int(serial[1:]) + k:09d}"


async def test_prepared_by_one_person_sealed_by_another_the_audit_names_both(http: httpx.AsyncClient,
                                                                              stack: Stack) -> None:
    o, _kids, cert = await county_with_issue(http, stack)
    assert (cert["prepared_by"], cert["sealed_by"]) == (o.keeper, o.sealer) and o.keeper != o.sealer
    conn = await asyncpg.connect(dsn(stack))
    try:
        rows = await conn.fetch("select action, actor, client_id from audit_log where subject = $1 order by id",
                                f"serial:{cert['serial']}")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("certificate.prepare", o.keeper, o.keeper),
                                        ("certificate.seal", o.sealer, o.sealer)]


async def test_the_preparer_never_seals_and_a_system_never_prepares_or_seals(http: httpx.AsyncClient,
                                                                            stack: Stack) -> None:
    reg, certs = urls(stack)
    o, kids, _ = await county_with_issue(http, stack)
    # a person holding both roles (a small office): assigned to keep the blanks, she prepares but cannot seal
    both, token = await make_person(stack, ["certificate_custodian", "seal_custodian"], o.region[:6], o.code,
                                    "钱两岗")
    o.tokens[both] = token
    r = await http.post(f"{certs}/v1/custodians", headers=o.by(o.head),
                        json={"institution_code": o.code, "account_id": both, "role": "certificate"})
    assert r.status_code == 201, r.text
    pending = (await prepare(http, certs, o, kids[1], as_=both)).json()
    assert pending["prepared_by"] == both
    r = await seal(http, certs, o, pending["serial"], as_=both)
    assert (r.status_code, field_of(r)) == (403, "actor") and "证章分离" in r.text, r.text
    # a seal custodian of another institution of the same county is not this one's
    elsewhere = await office(http, reg, certs, village(o.region[:6], 2), stack.settings)
    o.tokens[elsewhere.sealer] = elsewhere.tokens[elsewhere.sealer]
    r = await seal(http, certs, o, pending["serial"], as_=elsewhere.sealer)
    assert (r.status_code, field_of(r)) == (403, "actor"), r.text
    # a system token, whatever its scopes, neither prepares nor seals (stack.token holds every scope)
    system = await make_token(stack, ["certificates:prepare", "certificates:seal", "certificates:read"],
                              o.region[:6])
    for token in (system, stack.token):
        r = await http.post(f"{certs}/v1/certificates/{pending['serial']}/seal", headers=bearer(token))
        assert (r.status_code, field_of(r)) == (403, "authorization"), r.text
        r = await http.post(f"{certs}/v1/certificates", headers=bearer(token),
                            json={"kind": "first", "child_id": kids[1], "child_name": "张小明",
                                  "institution_code": o.code})
        assert (r.status_code, field_of(r)) == (403, "authorization"), r.text
    assert (await http.get(f"{certs}/v1/certificates/{pending['serial']}")).json()["state"] == "prepared"
    # the seal custodian seals it
    r = await seal(http, certs, o, pending["serial"])
    assert r.status_code == 200 and (r.json()["prepared_by"], r.json()["sealed_by"]) == (both, o.sealer), r.text
