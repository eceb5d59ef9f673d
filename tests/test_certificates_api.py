"""Birth certificates (出生医学证明) through the real stack: every rule, each refusal with its reason, the
database's own guards, the audit chain, the register and the events."""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import (
    Office,
    assign,
    births,
    issue,
    new_prefix,
    office,
    prepare,
    seal,
    stock,
    void,
    wait_known,
)
from kit.clients import create_person
from kit.events import parse, payload
from mch.events.v1 import certificates_pb2 as pb

from tests.conftest import Stack, fresh_county, make_person, make_token, village
from tests.demo_county import small_county

pytestmark = pytest.mark.stack


def urls(stack: Stack) -> tuple[str, str]:
    return stack.url("registry"), stack.url("certificates")


def dsn(stack: Stack) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{stack.spec.db_prefix}certificates"


async def setup(http: httpx.AsyncClient, stack: Stack, children: int = 1, blanks: int = 20,
                place: str = "hospital") -> tuple[Office, list[str], str, str]:
    """An institution with custodians, `children` live births there, `blanks` serials in its stock."""
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    kids = await births(http, reg, o.code, village(county), children, today() - timedelta(days=3), place)
    await wait_known(dsn(stack), kids)
    prefix = new_prefix()
    sf, st = await stock(http, certs, o, prefix, 1, blanks, today() - timedelta(days=1))
    return o, kids, sf, st


def field_of(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return str(r.json()["errors"][0]["field"])


async def report(http: httpx.AsyncClient, certs: str, o: Office, start: date | None = None) -> dict[str, Any]:
    r = await http.get(f"{certs}/v1/stock/report", params={"institution_code": o.code,
                                                            "from": (start or today()).isoformat(),
                                                            "to": today().isoformat()})
    assert r.status_code == 200, r.text
    return dict(r.json()["rows"][0])


def serial_after(serial: str, k: int) -> str:
    return f"{serial[0]}{int(serial[1:]) + k:09d}"


async def test_two_step_issue_draws_serials_in_order_and_verifies(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, sf, _ = await setup(http, stack, children=2)
    r = await prepare(http, certs, o, kids[0])
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["serial"], first["state"], first["institution_code"]) == (sf, "prepared", o.code)
    # prepared is not yet a certificate: verification says so
    v = await http.get(f"{certs}/v1/certificates/verify",
                       params={"serial": sf, "child_name": "张小明", "birth_date": str(today() - timedelta(days=3))})
    assert v.json() == {"valid": False, "status": "prepared"}
    sealed = await seal(http, certs, o, sf)
    assert sealed.status_code == 200, sealed.text
    assert (sealed.json()["state"], sealed.json()["prepared_by"], sealed.json()["sealed_by"]) == (
        "issued", o.keeper, o.sealer)
    second = await issue(http, certs, o, kids[1])
    assert second["serial"] == serial_after(sf, 1)  # the institution's next serial, in order
    born = str(today() - timedelta(days=3))
    checks = [({"serial": sf, "child_name": "张小明", "birth_date": born}, {"valid": True, "status": "issued"}),
              ({"serial": sf, "child_name": "张小亮", "birth_date": born}, {"valid": False, "status": "mismatch"}),
              ({"serial": sf, "child_name": "张小明", "birth_date": "2001-01-01"},
               {"valid": False, "status": "mismatch"}),
              ({"serial": serial_after(sf, 5), "child_name": "张小明", "birth_date": born},
               {"valid": False, "status": "not_found"}),
              ({"serial": "Z999999999", "child_name": "张小明", "birth_date": born},
               {"valid": False, "status": "not_found"})]
    for params, want in checks:
        v = await http.get(f"{certs}/v1/certificates/verify", params=params)
        assert v.status_code == 200 and v.json() == want, (params, v.text)
    # public security holds only certificates:verify; the other scopes cannot verify
    police = await make_token(stack, ["certificates:verify"])
    other = await make_token(stack, ["certificates:read"])
    v = await http.get(f"{certs}/v1/certificates/verify", params=checks[0][0],
                       headers={"Authorization": f"Bearer {police}"})
    assert v.json() == {"valid": True, "status": "issued"}
    v = await http.get(f"{certs}/v1/certificates/verify", params=checks[0][0],
                       headers={"Authorization": f"Bearer {other}"})
    assert v.status_code == 403
    child = (await http.get(f"{certs}/v1/children/{kids[0]}")).json()
    assert child["born_at"] == o.code and child["certificates"] == [{"serial": sf, "kind": "first",
                                                                     "state": "issued"}]


async def test_every_refusal_names_its_field_and_changes_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    reg, certs = urls(stack)
    o, kids, sf, st = await setup(http, stack, children=2, blanks=3)
    other = await office(http, reg, certs, village(fresh_county()), stack.settings)
    before = await report(http, certs, o)
    keeper, head = o.keeper, o.head
    cases: list[tuple[str, str, str, dict[str, Any], int, str]] = [
        (keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": str(uuid.uuid4()), "child_name": "甲"},
         422, "child_id"),
        (keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": kids[0], "child_name": "甲",
                                              "prepared_by": o.keeper}, 422, "prepared_by"),  # actor: the login
        (other.keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": kids[0], "child_name": "甲"},
         422, "child_id"),  # born elsewhere (another county: as if unknown)
        (keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": kids[0], "child_name": "甲",
                                              "institution_code": other.code}, 403, "actor"),  # not where she works
        (keeper, "POST", "/v1/certificates", {"kind": "first_out_of_institution", "child_id": kids[0],
                                              "child_name": "甲"}, 422, "evidence_ref"),
        (keeper, "POST", "/v1/certificates", {"kind": "reissue", "child_id": kids[0], "child_name": "甲"}, 422,
         "previous_serial"),
        (keeper, "POST", "/v1/certificates", {"kind": "twice", "child_id": kids[0], "child_name": "甲"}, 422, "kind"),
        (keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": kids[0]}, 422, "child_name"),
        (keeper, "POST", "/v1/certificates", {"kind": "first", "child_id": kids[0], "child_name": " "}, 422,
         "child_name"),
        (head, "POST", "/v1/custodians", {"institution_code": o.code, "account_id": o.keeper, "role": "seal"}, 422,
         "account_id"),  # 证章分离: not a seal custodian
        (head, "POST", "/v1/custodians", {"institution_code": "NO-SUCH", "account_id": o.sealer, "role": "seal"},
         422, "institution_code"),
        (head, "POST", "/v1/custodians", {"institution_code": other.code, "account_id": other.sealer,
                                          "role": "seal"}, 422, "institution_code"),  # another county's: unknown
        (head, "POST", "/v1/stock/batches", {"batch_no": "X1", "serial_from": "Q000000009",
                                             "serial_to": "Q000000001", "received_on": str(today())}, 422,
         "serial_to"),
        (head, "POST", "/v1/stock/batches", {"batch_no": "X2", "serial_from": "Q000000001",
                                             "serial_to": "R000000009", "received_on": str(today())}, 422,
         "serial_to"),
        (head, "POST", "/v1/stock/batches", {"batch_no": "X3", "serial_from": "q00000001",
                                             "serial_to": "Q000000009", "received_on": str(today())}, 422,
         "serial_from"),
        (head, "POST", "/v1/stock/batches", {"batch_no": "X4", "serial_from": "Q000000001",
                                             "serial_to": "Q000000009", "received_on": str(today() + timedelta(2))},
         422, "received_on"),
        (head, "POST", "/v1/stock/batches", {"batch_no": "X4b", "serial_from": "Q000000001",
                                             "serial_to": "Q000000009", "received_on": str(today()),
                                             "by": "someone"}, 422, "by"),
        (head, "POST", "/v1/stock/batches", {"batch_no": f"X5-{uuid.uuid4().hex[:6]}", "serial_from": sf,
                                             "serial_to": serial_after(st, 5), "received_on": str(today())}, 409,
         "serial_from"),  # overlaps a received batch: a serial exists once
        (head, "POST", "/v1/stock/allocations", {"institution_code": o.code, "serial_from": sf, "serial_to": st,
                                                 "allocated_on": str(today())}, 409, "serial_from"),  # allocated
        (head, "POST", "/v1/stock/allocations", {"institution_code": "NO-SUCH", "serial_from": sf,
                                                 "serial_to": st, "allocated_on": str(today())}, 422,
         "institution_code"),
        (head, "POST", f"/v1/stock/serials/{sf}/void", {}, 422, "reason"),
        (head, "POST", f"/v1/stock/serials/{sf}/void", {"reason": "污损", "by": o.keeper}, 422, "by"),
    ]
    for who, method, path, body, status, field in cases:
        r = await http.request(method, certs + path, json=body, headers=o.by(who) if who in o.tokens else
                               other.by(who))
        assert r.status_code == status, (path, body, r.text)
        assert field_of(r) == field, (path, body, r.text)
    r = await void(http, certs, o, "Z000000001", "污损", blank=True)
    assert r.status_code == 404 and "Z000000001" in r.json()["detail"], r.text
    assert await report(http, certs, o) == before  # nothing moved
    assert (await http.get(f"{certs}/v1/stock/serials/{sf}")).json()["state"] == "in_stock"
    # the same preparation sent again (a retry after a lost answer) is answered with it: no second blank drawn
    cert = (await prepare(http, certs, o, kids[0])).json()
    moved = await report(http, certs, o)
    r = await prepare(http, certs, o, kids[0])
    assert r.status_code == 200 and r.json()["serial"] == cert["serial"], r.text
    assert await report(http, certs, o) == moved
    # another preparation for the same child while one is pending, then a second first issue
    r = await prepare(http, certs, o, kids[0], child_name="张小红")
    assert (r.status_code, field_of(r)) == (409, "child_id"), r.text
    r = await http.post(f"{certs}/v1/certificates/{cert['serial']}/seal", json={"sealed_by": o.sealer},
                        headers=o.by(o.sealer))
    assert (r.status_code, field_of(r)) == (422, "sealed_by"), r.text  # the actor is the login, not the body
    assert (await seal(http, certs, o, cert["serial"])).status_code == 200
    r = await prepare(http, certs, o, kids[0])
    assert (r.status_code, field_of(r)) == (409, "child_id"), r.text
    # the stock runs out: 3 blanks, one used, one more issued, one voided, then nothing left
    await issue(http, certs, o, kids[1])
    r = await void(http, certs, o, st, "印刷错误", blank=True)
    assert r.status_code == 200 and (r.json()["state"], r.json()["voided_by"]) == ("voided", o.head), r.text
    kid3 = (await births(http, reg, o.code, village(o.region[:6]), 1, today() - timedelta(days=1)))[0]
    await wait_known(dsn(stack), [kid3])
    r = await prepare(http, certs, o, kid3)
    assert (r.status_code, field_of(r)) == (409, "institution_code"), r.text


async def test_reissue_and_replacement_supersede_the_one_valid_certificate(http: httpx.AsyncClient,
                                                                          stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, _sf, _ = await setup(http, stack, children=1)
    born = str(today() - timedelta(days=3))
    first = await issue(http, certs, o, kids[0])
    # 补发 after loss: the lost one stays valid until the reissue is sealed, then it is invalid
    re_ = (await prepare(http, certs, o, kids[0], "reissue", previous_serial=first["serial"])).json()
    assert (await http.get(f"{certs}/v1/certificates/verify", params={
        "serial": first["serial"], "child_name": "张小明", "birth_date": born})).json()["valid"] is True
    sealed = await seal(http, certs, o, re_["serial"])
    assert sealed.json()["state"] == "issued"
    old = (await http.get(f"{certs}/v1/certificates/{first['serial']}")).json()
    assert (old["state"], old["superseded_by"]) == ("superseded", re_["serial"])
    v = await http.get(f"{certs}/v1/certificates/verify", params={"serial": first["serial"], "child_name": "张小明",
                                                                  "birth_date": born})
    assert v.json() == {"valid": False, "status": "superseded"}
    # an uncontrolled reprint of the lost one is refused: it is no longer valid
    r = await prepare(http, certs, o, kids[0], "reissue", previous_serial=first["serial"])
    assert (r.status_code, field_of(r)) == (409, "previous_serial"), r.text
    # 换发 after a correction: the name changes, the old one is collected
    rep = await issue(http, certs, o, kids[0], "replacement", previous_serial=re_["serial"], child_name="张晓明")
    assert rep["child_name"] == "张**"  # the seal custodian holds no pii:read: the name is masked to her
    rep = (await http.get(f"{certs}/v1/certificates/{rep['serial']}")).json()
    assert (rep["kind"], rep["child_name"], rep["previous_serial"]) == ("replacement", "张晓明", re_["serial"])
    states = {c["serial"]: c["state"] for c in (await http.get(f"{certs}/v1/children/{kids[0]}")).json()[
        "certificates"]}
    assert states == {first["serial"]: "superseded", re_["serial"]: "superseded", rep["serial"]: "issued"}
    rpt = await report(http, certs, o)
    assert rpt["issued_by_kind"] == {"first": 1, "first_out_of_institution": 0, "reissue": 1, "replacement": 1}
    assert rpt["voided"] == 0  # superseded certificates are not 废证
    assert rpt["closing"] == rpt["opening"] + rpt["received"] - rpt["issued"] - rpt["voided"] == 20 - 3


async def test_out_of_institution_first_issue_needs_evidence(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, _, _ = await setup(http, stack, children=1, place="home")
    r = await prepare(http, certs, o, kids[0], "first")
    assert (r.status_code, field_of(r)) == (422, "kind"), r.text
    cert = await issue(http, certs, o, kids[0], "first_out_of_institution", evidence_ref="接生人证明 2026-17")
    assert (cert["kind"], cert["evidence_ref"], cert["state"]) == ("first_out_of_institution",
                                                                  "接生人证明 2026-17", "issued")


async def test_voided_serials_are_kept_reported_and_never_reused(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, sf, _ = await setup(http, stack, children=2, blanks=10)
    opening = await report(http, certs, o)
    spoiled = (await prepare(http, certs, o, kids[0])).json()["serial"]      # misprinted while prepared
    r = await void(http, certs, o, spoiled, "打印错位")
    assert r.status_code == 200 and r.json()["state"] == "voided", r.text
    blank = serial_after(sf, 1)                                                # a blank torn in the drawer
    r = await void(http, certs, o, blank, "破损", blank=True)
    assert r.status_code == 200, r.text
    a = await issue(http, certs, o, kids[0])
    assert a["serial"] == serial_after(sf, 2)  # neither voided serial is drawn again
    wrong = await issue(http, certs, o, kids[1])
    r = await void(http, certs, o, wrong["serial"], "错发")
    assert r.status_code == 200, r.text
    for s in (spoiled, blank, wrong["serial"]):
        r = await void(http, certs, o, s, "again")
        assert r.status_code in (404, 409), r.text
        r = await seal(http, certs, o, s)
        assert r.status_code in (404, 409), r.text
        info = (await http.get(f"{certs}/v1/stock/serials/{s}")).json()
        assert info["state"] == "voided" and info["history"][-1]["state"] == "voided"
    again = await issue(http, certs, o, kids[1])  # wrongly issued one voided: the child gets a new first issue
    assert again["serial"] == serial_after(sf, 4)
    rpt = await report(http, certs, o)
    assert rpt["voided"] == 3 and rpt["issued"] == 2
    assert rpt["closing"] == opening["closing"] - 5 == rpt["opening"] + rpt["received"] - rpt["issued"] - 3


async def test_custodian_changes_are_history(http: httpx.AsyncClient, stack: Stack) -> None:
    """Custodians are person accounts of the institution, assigned by the office head; a change ends the previous
    assignment (history), and one person never holds both roles at once (证章分离)."""
    _reg, certs = urls(stack)
    o, kids, _, _ = await setup(http, stack, children=1)
    same = await assign(http, certs, o, o.keeper, "certificate")
    assert same.status_code == 200, same.text  # idempotent
    new, token = await make_person(stack, ["certificate_custodian", "seal_custodian"], o.region[:6], o.code, "赵新")
    o.tokens[new] = token
    r = await assign(http, certs, o, new, "certificate")
    assert r.status_code == 201 and r.json()["name"] == "赵新", r.text
    hist = (await http.get(f"{certs}/v1/custodians", params={"institution_code": o.code})).json()["custodians"]
    keepers = [(c["account_id"], c["ended_at"] is None) for c in hist if c["role"] == "certificate"]
    assert keepers == [(o.keeper, False), (new, True)]
    r = await prepare(http, certs, o, kids[0])  # the former keeper can no longer draw blanks
    assert (r.status_code, field_of(r)) == (403, "actor"), r.text
    r = await prepare(http, certs, o, kids[0], as_=new)
    assert r.status_code == 201 and r.json()["prepared_by"] == new, r.text
    # the former keeper, given the seal role, may now keep the seal: never both at once
    await create_person(stack.settings, "王证管", ["seal_custodian"], o.region[:6], institution_code=o.code,
                        staff_id=f"K-{o.code}", account_id=o.keeper)
    r = await assign(http, certs, o, o.keeper, "seal")
    assert r.status_code == 201, r.text
    r = await assign(http, certs, o, new, "seal")
    assert (r.status_code, field_of(r)) == (422, "account_id") and "证章分离" in r.text, r.text
    # a person of another institution is never assigned
    stranger, _ = await make_person(stack, ["seal_custodian"], o.region[:6], "ELSEWHERE")
    r = await assign(http, certs, o, stranger, "seal")
    assert (r.status_code, field_of(r)) == (422, "account_id"), r.text


async def test_the_database_itself_refuses_double_issue_reuse_and_rewrites(http: httpx.AsyncClient,
                                                                           stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, sf, _ = await setup(http, stack, children=1, blanks=5)
    cert = await issue(http, certs, o, kids[0])
    spare = serial_after(sf, 1)
    await void(http, certs, o, spare, "破损", blank=True)
    conn = await asyncpg.connect(dsn(stack).replace("postgres@", f"{stack.spec.db_prefix}certificates@"))
    try:
        attempts = [
            # a voided serial can never change again (reuse)
            ("update serial set state = 'in_stock' where serial = $1", [spare], "never change again"),
            # a second valid certificate for the same child
            ("update serial set state = 'issued', kind = 'reissue', previous_serial = $1, child_id = $2, "
             "child_name = 'x', prepared_by = 'a', prepared_on = current_date, sealed_by = 'b' where serial = $3",
             [cert["serial"], uuid.UUID(kids[0]), serial_after(sf, 2)], "transition"),
            ("update serial set state = 'prepared', kind = 'first', child_id = $1, child_name = 'x', "
             "prepared_by = 'a', prepared_on = current_date where serial = $2",
             [uuid.UUID(kids[0]), serial_after(sf, 2)], "one_first_issue_per_child"),
            # an issued certificate rewritten in place (sealed by its preparer, or given to another child)
            ("update serial set sealed_by = prepared_by where serial = $1", [cert["serial"]],
             "issued -> issued is not an allowed transition"),
            ("update serial set state = 'superseded', superseded_by = $1, child_id = $2 where serial = $1",
             [cert["serial"], uuid.uuid4()], "cannot be rewritten"),
            ("delete from serial where serial = $1", [spare], "cannot be deleted"),
            ("update audit_log set actor = 'someone else'", [], "append-only"),
            ("delete from audit_log", [], "append-only"),
            ("delete from stock_movement", [], "append-only"),
            ("update custodian set role = 'seal' where account_id = $1", [o.keeper], "append-only"),
        ]
        for stmt, args, msg in attempts:
            with pytest.raises(asyncpg.PostgresError) as e:
                await conn.execute(stmt, *args)
            assert msg in str(e.value), (stmt, str(e.value))
        # the check and the unique index hold even where the trigger lets a transition through
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("update serial set state = 'prepared', kind = 'first', child_id = $1, "
                               "child_name = 'x', prepared_by = 'a', prepared_on = current_date where serial = $2",
                               uuid.uuid4(), serial_after(sf, 3))
            await conn.execute("update serial set state = 'issued', sealed_by = 'a' where serial = $1",
                               serial_after(sf, 3))
    finally:
        await conn.close()


def run_audit(stack: Stack) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MCH_DB_PREFIX": stack.spec.db_prefix}
    return subprocess.run([sys.executable, "-m", "certificates.audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_audit_chain_names_the_first_tampered_row(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, _, _ = await setup(http, stack, children=1)
    cert = await issue(http, certs, o, kids[0])
    ok = await asyncio.to_thread(run_audit, stack)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    conn = await asyncpg.connect(dsn(stack))
    try:
        row = await conn.fetchrow("select lane, seq, actor from audit_log where action = 'certificate.seal' "
                                  "and subject = $1", f"serial:{cert['serial']}")
        assert row["actor"] == o.sealer  # every action is attributed to the person
        async with conn.transaction():  # a superuser bypassing the append-only trigger
            await conn.execute("set local session_replication_role = replica")
            await conn.execute("update audit_log set actor = 'someone else' where lane = $1 and seq = $2",
                               row["lane"], row["seq"])
        bad = await asyncio.to_thread(run_audit, stack)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert f"BROKEN at lane {row['lane']} row {row['seq']}:" in bad.stdout, bad.stdout
    finally:
        async with conn.transaction():
            await conn.execute("set local session_replication_role = replica")
            await conn.execute("update audit_log set actor = $3 where lane = $1 and seq = $2", row["lane"],
                               row["seq"], row["actor"])
        await conn.close()
    assert (await asyncio.to_thread(run_audit, stack)).returncode == 0


async def test_register_in_json_csv_xlsx_with_masked_names(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, sf, _ = await setup(http, stack, children=2)
    await issue(http, certs, o, kids[0])
    pending = (await prepare(http, certs, o, kids[1])).json()
    params = {"institution_code": o.code, "from": str(today()), "to": str(today())}
    clerk = await make_token(stack, ["certificates:read"])
    r = await http.get(f"{certs}/v1/certificates/register", params=params,
                       headers={"Authorization": f"Bearer {clerk}"})
    body = r.json()
    assert [c["heading"] for c in body["columns"]][:3] == ["序号", "出生医学证明编号", "签发类型"]
    rows = body["rows"]
    assert [(x["serial"], x["status"], x["kind"]) for x in rows] == [
        (sf, "已签发", "机构内首次签发"), (pending["serial"], "待盖章", "机构内首次签发")]
    assert rows[0]["child_name"] == "张**" and rows[0]["sealed_by"] == f"李印管（S-{o.code}）"
    assert rows[0]["prepared_by"] == f"王证管（K-{o.code}）"
    full = await http.get(f"{certs}/v1/certificates/register", params=params)  # the test token has pii:read
    assert full.json()["rows"][0]["child_name"] == "张小明"
    csv_ = await http.get(f"{certs}/v1/certificates/register", params={**params, "format": "csv"})
    text = csv_.content.decode("utf-8-sig").splitlines()
    assert text[0].startswith("序号,出生医学证明编号,签发类型") and len(text) == 3 and sf in text[1]
    xlsx = await http.get(f"{certs}/v1/certificates/register", params={**params, "format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as z:
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "出生医学证明编号" in strings and sf in strings
    conn = await asyncpg.connect(dsn(stack))
    try:
        audited = await conn.fetch("select unmasked from pii_audit where subject_kind = 'register' "
                                   "and subject_id like $1", f"{o.code}:%")
    finally:
        await conn.close()
    assert sorted(a["unmasked"] for a in audited) == [False, True, True, True]


async def test_region_and_scope_are_enforced(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, _, _ = await setup(http, stack, children=1)
    body = {"kind": "first", "child_id": kids[0], "child_name": "张小明"}
    read_only = await make_token(stack, ["certificates:read"])
    r = await http.post(f"{certs}/v1/certificates", headers={"Authorization": f"Bearer {read_only}"}, json=body)
    assert r.status_code == 403, r.text
    _, sealer_only = await make_person(stack, ["seal_custodian"], o.region[:6], o.code)
    r = await http.post(f"{certs}/v1/certificates", headers={"Authorization": f"Bearer {sealer_only}"}, json=body)
    assert r.status_code == 403, r.text
    elsewhere = await make_token(stack, ["certificates:read"], fresh_county())
    r = await http.get(f"{certs}/v1/stock/report", params={"region": o.region[:6], "from": str(today()),
                                                            "to": str(today())},
                       headers={"Authorization": f"Bearer {elsewhere}"})
    assert r.status_code == 403 and o.region not in r.text, r.text


async def test_certificate_and_stock_events_are_in_the_outbox(http: httpx.AsyncClient, stack: Stack) -> None:
    _reg, certs = urls(stack)
    o, kids, _sf, _st = await setup(http, stack, children=1, blanks=4)
    cert = await issue(http, certs, o, kids[0])
    conn = await asyncpg.connect(dsn(stack))
    try:
        rows = await conn.fetch("select event_type, envelope from outbox where key = any($1::text[]) order by id",
                                [f"person:{kids[0]}", f"stock:{o.code}"])
    finally:
        await conn.close()
    changed = [payload(parse(r["envelope"]), pb.CertificateChanged) for r in rows
               if r["event_type"] == "certificates.certificate.changed"]
    assert [(c.serial, c.status, c.version, c.kind) for c in changed] == [
        (cert["serial"], "prepared", 3, "first"), (cert["serial"], "issued", 4, "first")]
    assert changed[-1].institution_region == o.region and changed[-1].issued_on == str(today())
    moved = [payload(parse(r["envelope"]), pb.StockMoved) for r in rows
             if r["event_type"] == "certificates.stock.moved"]
    assert [(m.kind, m.quantity) for m in moved] == [("allocated", 4), ("issued", -1)]
    assert sum(m.quantity for m in moved) == 3


async def test_verification_is_rate_limited_per_client(stack: Stack) -> None:
    """A token cannot guess its way through the register: past its burst, verification answers 429 with
    Retry-After, while another client still verifies."""
    certs = stack.url("certificates")
    settings = stack.settings
    guesser = await make_token(stack, ["certificates:verify"])
    other = await make_token(stack, ["certificates:verify"])
    tries = 4 * settings.rate_limit_burst  # far more than the burst plus what refills while they are sent
    params = {"serial": "Z999999999", "child_name": "张小明", "birth_date": str(today())}
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {guesser}"}) as c:
        rs = await asyncio.gather(*(c.get(f"{certs}/v1/certificates/verify", params=params)
                                    for _ in range(tries)))
    codes = [r.status_code for r in rs]
    assert set(codes) == {200, 429} and codes.count(200) >= settings.rate_limit_burst, codes
    refused = next(r for r in rs if r.status_code == 429)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["Retry-After"]) >= 1
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {other}"}) as c:
        r = await c.get(f"{certs}/v1/certificates/verify", params=params)
    assert r.status_code == 200 and r.json() == {"valid": False, "status": "not_found"}


async def test_demo_offices_issue_as_their_people(stack: Stack) -> None:
    """The demo loader posts certificates as each hospital's people: prepared by `demo-<code>-cert`, sealed by
    `demo-<code>-seal`, stock and custodians by `demo-<code>-head`; every certificate step is accepted."""
    county = await small_county(stack)
    by = {r.name: r for r in county.results}
    for step in ("cert_stock", "cert_custodians", "cert_spoiled", "certificates", "cert_seals"):
        assert by[step].planned and by[step].accepted == by[step].planned, by[step].line()
    codes = {o.body["institution_code"] for o in county.plan["certificates"].ops}
    conn = await asyncpg.connect(dsn(stack))
    try:
        rows = await conn.fetch("select institution_code, prepared_by, sealed_by from serial "
                                "where institution_code = any($1::text[]) and state in ('issued', 'superseded')",
                                list(codes))
        heads = await conn.fetch("select distinct actor from audit_log where action = 'stock.allocate' "
                                 "and details like any($1::text[])", [f'%"{c}"%' for c in codes])
    finally:
        await conn.close()
    assert len(rows) == by["certificates"].accepted + by["cert_after"].accepted
    assert all((r["prepared_by"], r["sealed_by"]) == (f"demo-{r['institution_code']}-cert",
                                                      f"demo-{r['institution_code']}-seal") for r in rows)
    assert {h["actor"] for h in heads} == {f"demo-{c}-head" for c in codes}


async def test_bad_input_is_a_4xx_problem_never_a_5xx(http: httpx.AsyncClient, stack: Stack) -> None:
    """NUL bytes, odd codes and oversized values anywhere in a path, a query or a body: a 4xx problem+json that
    names the field where there is one, and the connection stays usable."""
    _reg, certs = urls(stack)
    o, kids, sf, _ = await setup(http, stack, children=1, blanks=2)
    nul = "A\x00B"
    period = {"from": str(today()), "to": str(today())}
    asks: list[tuple[str | None, str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        (None, "GET", f"/v1/stock/serials/{nul}", None, None),
        (None, "GET", f"/v1/certificates/{nul}", None, None),
        (None, "GET", f"/v1/children/{nul}", None, None),
        (None, "GET", "/v1/custodians", {"institution_code": nul}, None),
        (None, "GET", "/v1/certificates/register", {"institution_code": "妇幼保健院", **period}, None),
        (None, "GET", "/v1/certificates/register", {"institution_code": o.code, "from": "99999-01-01",
                                                    "to": str(today())}, None),
        (None, "GET", "/v1/stock/report", {"institution_code": nul, **period}, None),
        (None, "GET", "/v1/stock/report", {"region": nul, **period}, None),
        (None, "GET", "/v1/certificates/verify", {"serial": nul, "child_name": nul, "birth_date": str(today())},
         None),
        (o.keeper, "POST", "/v1/certificates", None, {"kind": "first", "child_id": kids[0], "child_name": nul}),
        (o.keeper, "POST", "/v1/certificates", None, {"kind": "first", "child_id": nul, "child_name": "甲"}),
        (o.keeper, "POST", "/v1/certificates", None, {"kind": "first", "child_id": kids[0], "child_name": "甲",
                                                      "evidence_ref": nul}),
        (o.keeper, "POST", "/v1/certificates", None, {"kind": "first", "child_id": 12, "child_name": ["甲"]}),
        (o.sealer, "POST", f"/v1/certificates/{nul}/seal", None, None),
        (o.head, "POST", f"/v1/certificates/{sf}/void", None, {"reason": nul}),
        (o.head, "POST", f"/v1/stock/serials/{nul}/void", None, {"reason": "破损"}),
        (o.head, "POST", "/v1/stock/batches", None, {"batch_no": nul, "serial_from": sf, "serial_to": sf,
                                                     "received_on": "10000-01-01"}),
        (o.head, "POST", "/v1/custodians", None, {"institution_code": o.code, "account_id": nul, "role": "seal"}),
    ]
    async with httpx.AsyncClient(timeout=30, headers=http.headers) as one:  # one keep-alive connection
        for who, method, path, params, body in asks:
            r = await one.request(method, certs + path.replace("\x00", "%00"), params=params, json=body,
                                  headers=o.by(who) if who else None)
            assert 400 <= r.status_code < 500, (path, params, body, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            if r.status_code == 422:
                assert r.json()["errors"][0]["field"], r.text
        assert (await one.get(f"{certs}/v1/stock/serials/{sf}")).json()["state"] == "in_stock"
