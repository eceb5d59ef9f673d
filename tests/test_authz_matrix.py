"""The authorisation matrix (issue 15), generated from every service's live OpenAPI: each operation × (no token,
a bad token, an expired token, a token without the operation's scopes, a system token where a person must act,
another county's token on county A's objects, county A's own token).

Every operation declares how it is authorised (kit.app writes `x-mch-scopes` / `x-mch-person` from its
`require(...)`, or the route says `x-mch-auth: none|any`): an operation that declares nothing checks no token
and fails here. Every operation that is not public must also be listed in REGION below with the requests that
try it on county A's objects as county B and as A, or in REGION_FREE with the reason it holds no regional
object — so a new endpoint without a region check fails this test until someone writes down how it is checked.
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import Office, births, issue, new_prefix, office, prepare, stock
from kit.clients import create_client
from registry.domain import fhir

from tests.conftest import Stack, fresh_county, make_person, make_token, village
from tests.test_certificates_api import dsn, urls, wait_known
from tests.test_isolation_registry import County, book, mother
from tests.test_person_matching import borderline_variants, first_with
from tests.test_person_matching import woman as matching_woman
from tests.test_registry_persons import id_number
from tests.test_screening_api import body as screening_body
from tests.test_screening_api import post as post_screening

SERVICES = ("registry", "screening", "certificates", "indicators", "quality")
Op = tuple[str, str, str]  # (service, METHOD, path template)


async def operations(http: httpx.AsyncClient, stack: Stack) -> dict[Op, dict[str, Any]]:
    out: dict[Op, dict[str, Any]] = {}
    for svc in SERVICES:
        spec = (await http.get(stack.url(svc) + "/openapi.json")).json()
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                out[(svc, method.upper(), path)] = op
    return out


def filled(path: str) -> str:
    return path.replace("{", "matrix-").replace("}", "")


def problem(r: httpx.Response, status: int, what: str) -> None:
    assert r.status_code == status, (what, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), (what, r.headers)


async def expired_token(stack: Stack, region: str) -> str:
    """A system token with every scope whose life ended a minute ago."""
    _, tok = await create_client(stack.settings, f"expired-{uuid.uuid4().hex[:6]}",
                                 ["registry:read", "registry:write", "screening:read", "screening:write",
                                  "certificates:read", "indicators:read", "indicators:admin"], region)
    from kit.auth import hash_token

    conn = await asyncpg.connect(host=stack.settings.pg_host, port=stack.settings.pg_port,
                                 user=stack.settings.pg_admin_user, database=stack.settings.auth_database)
    try:
        await conn.execute("update api_token set expires_at = now() - interval '1 minute' where token_sha256 = $1",
                           hash_token(tok))
    finally:
        await conn.close()
    return tok


async def test_every_operation_answers_the_token_matrix(http: httpx.AsyncClient, stack: Stack) -> None:
    ops = await operations(http, stack)
    county = fresh_county()
    expired = await expired_token(stack, county)
    no_scopes = await make_token(stack, [], county)
    all_scopes = await make_token(stack, ["registry:write", "registry:read", "screening:write", "screening:read",
                                          "certificates:stock", "certificates:prepare", "certificates:seal",
                                          "certificates:void", "certificates:read", "certificates:verify",
                                          "indicators:read", "indicators:admin"], county)
    undeclared = [op for op, spec in ops.items()
                  if spec.get("x-mch-auth") not in ("none", "any") and not spec.get("x-mch-scopes")]
    assert undeclared == [], f"operations that check no token: {undeclared}"
    async with httpx.AsyncClient(timeout=30) as c:
        for (svc, method, path), spec in sorted(ops.items()):
            if spec.get("x-mch-auth") == "none":
                continue
            url = stack.url(svc) + filled(path)
            kw: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            what = f"{method} {svc}{path}"
            problem(await c.request(method, url, **kw), 401, what + " without a token")
            problem(await c.request(method, url, headers={"Authorization": "Bearer mch_not-a-token"}, **kw), 401,
                    what + " with an unknown token")
            problem(await c.request(method, url, headers={"Authorization": f"Bearer {expired}"}, **kw), 401,
                    what + " with an expired token")
            if spec.get("x-mch-scopes"):
                problem(await c.request(method, url, headers={"Authorization": f"Bearer {no_scopes}"}, **kw),
                        403, what + " without its scopes")
            if spec.get("x-mch-person"):
                problem(await c.request(method, url, headers={"Authorization": f"Bearer {all_scopes}"}, **kw),
                        403, what + " with a system token")


# ------------------------------------------------------------------------------------------ other / right region
@dataclass
class World:
    """County A's objects, and the headers of A's and B's accounts (each with every scope of its kind)."""

    a: County
    b: County
    pregnancy_id: str
    mother_id: str
    encounter: str
    marriage: str
    screening: str
    case_id: str
    office: Office
    other: Office
    kids: list[str]
    cert: dict[str, Any]
    pending: dict[str, Any]
    readers: dict[str, dict[str, str]]
    #: a person of each county who submits and approves reports
    people: dict[str, dict[str, str]]
    #: a batch of blanks county A received (both persons confirmed)
    batch_no: str
    #: a data-quality query (质疑) addressed to A's hospital, and each county's hospital quality officer
    query_id: str = ""
    officers: dict[str, dict[str, str]] = field(default_factory=dict)


#: operations that hold no object of a region, and why (the rest must be in REGION)
REGION_FREE = {
    ("registry", "GET", "/v1/auth/me"): "the caller's own account",
    ("screening", "GET", "/v1/auth/me"): "the caller's own account",
    ("certificates", "GET", "/v1/auth/me"): "the caller's own account",
    ("indicators", "GET", "/v1/auth/me"): "the caller's own account",
    ("screening", "GET", "/v1/rules"): "the published classification rules",
    ("indicators", "GET", "/v1/indicators"): "the catalogue of definitions",
    ("indicators", "GET", "/v1/reports/forms"): "the report forms' layouts",
    ("indicators", "GET", "/v1/reports/forms/{form}"): "a report form's layout",
    ("certificates", "GET", "/v1/certificates/verify"):
        "verification answers only valid / status for a serial, name and birth date held together (decision "
        "59), rate-limited",
    ("certificates", "POST", "/v1/stock/batches"):
        "blanks are received into the office head's own county (the region comes from the login, not the body)",
    ("indicators", "POST", "/v1/admin/reconcile"): "an operator's check of the whole store (indicators:admin)",
    ("quality", "GET", "/v1/auth/me"): "the caller's own account",
    ("quality", "GET", "/v1/quality/rules"): "the published quality rules",
    ("quality", "GET", "/v1/quality/reconciliation"): "an operator's check of the whole store (quality:admin)",

    ("certificates", "GET", "/v1/stock/batches"):
        "lists only the batches of the caller's own region (the region comes from the login, not the query)",
}

Request = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments
#: each operation: (how county B tries A's object → the statuses that refuse it, how A itself does → success)
Case = Callable[[World, Stack], Awaitable[tuple[Request, tuple[int, ...], Request | None]]]


def couple(county: str) -> list[dict[str, Any]]:
    wife = mother(county, date(1995, 1, 2) + timedelta(days=uuid.uuid4().int % 900))
    born = date(1992, 4, 4) + timedelta(days=uuid.uuid4().int % 900)
    husband = {**mother(county), "name": "王强", "sex": "M", "birth_date": born.isoformat(),
               "id_number": id_number(born, "M")}
    return [wife, husband]


def _reg(s: Stack, path: str) -> str:
    return s.url("registry") + "/v1" + path


async def _build(http: httpx.AsyncClient, stack: Stack) -> World:
    a_code, b_code = fresh_county(), fresh_county()
    scopes = ["registry:write", "registry:read", "screening:write", "screening:read", "pii:read"]
    a_id, a_tok = await create_client(stack.settings, f"his-{a_code}", scopes, a_code)
    b_id, b_tok = await create_client(stack.settings, f"his-{b_code}", scopes, b_code)
    a, b = County(stack, a_code, a_tok, a_id), County(stack, b_code, b_tok, b_id)
    await a.hospital()
    await b.hospital()
    lmp = today() - timedelta(days=200)
    pid, mid, _ = await book(a, lmp)
    visit = a.visit(pid, lmp + timedelta(days=70))
    r = await a.call("POST", "/encounters", visit)
    assert r.status_code == 201, r.text
    rid = f"M-{uuid.uuid4().hex[:10]}"
    r = await a.call("POST", "/marriage-registrations", {
        "registration_id": rid, "source": "his-iso", "registered_on": str(today() - timedelta(days=30)),
        "region_code": village(a_code), "persons": couple(a_code)})
    assert r.status_code == 201, r.text
    # a screening result of A's child with its follow-up case
    from tests.test_screening_api import family, known
    fam = await family(http, stack, a_code, a.inst)
    await known(http, stack, fam)
    sb = screening_body("newborn_hearing", fam.child_id, a.inst, fam.born + timedelta(1), round="initial",
                        result="refer")
    r = await post_screening(http, stack, sb, a.headers)
    assert r.status_code == 201, r.text
    case_id = r.json()["followup"]["case_id"]
    # certificates: A's office with a certificate issued and one pending; B's office
    reg, certs = urls(stack)
    o = await office(http, reg, certs, village(a_code), stack.settings)
    kids = await births(http, reg, o.code, village(a_code), 2, today() - timedelta(days=2))
    await wait_known(dsn(stack), kids)
    sf, _ = await stock(http, certs, o, new_prefix(), 1, 10, today() - timedelta(days=1))
    batch_no = (await http.get(f"{certs}/v1/stock/serials/{sf}", headers=o.by(o.head))).json()["batch_no"]
    cert = await issue(http, certs, o, kids[0])
    pending = (await prepare(http, certs, o, kids[1])).json()
    other = await office(http, reg, certs, village(b_code), stack.settings)
    await stock(http, certs, other, new_prefix(), 1, 5, today())
    readers, people = {}, {}
    for code in (a_code, b_code):
        _, person_tok = await make_person(stack, ["statistician", "report_approver"], code)
        people[code] = {"Authorization": f"Bearer {person_tok}"}
        tok = await make_token(stack, ["certificates:read", "indicators:read", "indicators:admin", "pii:read"], code)
        readers[code] = {"Authorization": f"Bearer {tok}"}
    encounter = f"{visit['source']}/{visit['encounter_id']}"
    officers = {}
    for code, inst in ((a_code, a.inst), (b_code, b.inst)):
        _, tok = await make_person(stack, ["quality_officer"], code, institution_code=inst)
        officers[code] = {"Authorization": f"Bearer {tok}"}
    query_id = await _bad_delivery(http, stack, a, pid, officers[a_code])
    return World(a, b, pid, mid, encounter, f"his-iso/{rid}", f"{sb['source']}/{sb['screening_id']}", case_id,
                 o, other, kids, cert, pending, readers, people, batch_no, query_id, officers)


async def _bad_delivery(http: httpx.AsyncClient, stack: Stack, a: County, pid: str,
                        officer: dict[str, str]) -> str:
    """A delivery of A's pregnancy (LMP 200 days ago: 28 weeks) with a 5000 g baby: a query to A's hospital."""
    r = await a.call("POST", "/encounters", a.visit(pid, today() - timedelta(days=1), type="delivery",
                                                    place="hospital", mode="vaginal",
                                                    babies=[{"sex": "F", "birth_weight_g": 5000, "outcome": "live"}]))
    assert r.status_code == 201, r.text

    async def found() -> str | None:
        got = await http.get(stack.url("quality") + "/v1/quality/queries", headers=officer)
        return next((q["id"] for q in got.json()["items"] if q["rule_id"] == "Q101"), None)

    from tests.conftest import wait_for
    return await wait_for(found, 30)  # type: ignore[no-any-return]


def _cases() -> dict[Op, Case]:
    cases: dict[Op, Case] = {}

    def case(svc: str, method: str, path: str) -> Callable[[Case], Case]:
        def put(f: Case) -> Case:
            cases[(svc, method, path)] = f
            return f
        return put

    @case("registry", "GET", "/v1/institutions/{institution_code}")
    async def _i(w: World, s: Stack) -> Any:
        return (("GET", _reg(s, f"/institutions/{w.a.inst}"), {"headers": w.b.headers}), (404,),
                ("GET", _reg(s, f"/institutions/{w.a.inst}"), {"headers": w.a.headers}))

    @case("registry", "GET", "/v1/institutions/{institution_code}/births")
    async def _ib(w: World, s: Stack) -> Any:
        return (("GET", _reg(s, f"/institutions/{w.a.inst}/births"), {"headers": w.b.headers}), (404,),
                ("GET", _reg(s, f"/institutions/{w.a.inst}/births"), {"headers": w.a.headers}))

    @case("certificates", "POST", "/v1/stock/batches/{batch_no}/confirmation")
    async def _bc(w: World, s: Stack) -> Any:
        # county B's custodian confirms county A's batch: as unknown as a missing one
        url = crt(s, f"/stock/batches/{w.batch_no}/confirmation")
        return ("POST", url, {"headers": w.other.by(w.other.keeper)}), (404,), None

    @case("registry", "PUT", "/v1/institutions/{institution_code}")
    async def _ip(w: World, s: Stack) -> Any:
        move = {"name": "县人民医院", "region_code": village(w.b.code), "kind": "hospital", "midwifery_licensed": True}
        return (("PUT", _reg(s, f"/institutions/{w.a.inst}"), {"headers": w.b.headers, "json": move}),
                (403, 404), None)

    @case("registry", "GET", "/v1/pregnancies/{pregnancy_id}")
    async def _p(w: World, s: Stack) -> Any:
        url = _reg(s, f"/pregnancies/{w.pregnancy_id}")
        return ("GET", url, {"headers": w.b.headers}), (404,), ("GET", url, {"headers": w.a.headers})

    @case("registry", "DELETE", "/v1/pregnancies/{pregnancy_id}")
    async def _pd(w: World, s: Stack) -> Any:
        return (("DELETE", _reg(s, f"/pregnancies/{w.pregnancy_id}"),
                 {"headers": w.b.headers, "params": {"reason": "attack"}}), (404,), None)

    @case("registry", "POST", "/v1/pregnancies")
    async def _pp(w: World, s: Stack) -> Any:
        theirs, mine = ({"pregnancy_id": f"P-{uuid.uuid4().hex[:12]}", "source": "his-iso",
                         "mother": mother(w.a.code), "lmp_date": str(today() - timedelta(days=90)),
                         "registered_on": str(today() - timedelta(days=10)), "institution_code": w.a.inst}
                        for _ in range(2))
        return ("POST", _reg(s, "/pregnancies"), {"headers": w.b.headers, "json": theirs}), (403, 404, 422), \
            ("POST", _reg(s, "/pregnancies"), {"headers": w.a.headers, "json": mine})

    @case("registry", "POST", "/v1/pregnancies:batch")
    async def _ppb(w: World, s: Stack) -> Any:
        booking = {"pregnancy_id": f"P-{uuid.uuid4().hex[:12]}", "source": "his-iso", "mother": mother(w.a.code),
                   "lmp_date": str(today() - timedelta(days=90)), "registered_on": str(today() - timedelta(days=10)),
                   "institution_code": w.a.inst}
        return ("POST", _reg(s, "/pregnancies:batch"), {"headers": w.b.headers, "json": [booking]}), \
            (403, 404, 422, 207), None

    @case("registry", "GET", "/v1/persons/{person_id}")
    async def _pe(w: World, s: Stack) -> Any:
        url = _reg(s, f"/persons/{w.mother_id}")
        return ("GET", url, {"headers": w.b.headers}), (404,), ("GET", url, {"headers": w.a.headers})

    @case("registry", "GET", "/v1/persons")
    async def _ps(w: World, s: Stack) -> Any:
        # a search for A's mother's children as B: she is answered as unknown (B's name searches find B's residents
        # only: tests/test_registry_search.py)
        url = _reg(s, "/persons")
        return ("GET", url, {"headers": w.b.headers, "params": {"mother": w.mother_id}}), (404,), \
            ("GET", url, {"headers": w.a.headers, "params": {"mother": w.mother_id}})

    @case("registry", "POST", "/v1/persons")
    async def _pep(w: World, s: Stack) -> Any:
        return ("POST", _reg(s, "/persons"), {"headers": w.b.headers, "json": mother(w.a.code, date(1990, 2, 2))}), \
            (403,), \
            ("POST", _reg(s, "/persons"), {"headers": w.a.headers, "json": mother(w.a.code)})

    @case("registry", "POST", "/v1/persons/{person_id}/residence")
    async def _pr(w: World, s: Stack) -> Any:
        move = {"since": str(today()), "region_code": village(w.b.code)}
        return ("POST", _reg(s, f"/persons/{w.mother_id}/residence"), {"headers": w.b.headers, "json": move}), \
            (404,), None

    @case("registry", "POST", "/v1/encounters")
    async def _e(w: World, s: Stack) -> Any:
        theirs, mine = (w.a.visit(w.pregnancy_id, today() - timedelta(days=20)) for _ in range(2))
        return ("POST", _reg(s, "/encounters"), {"headers": w.b.headers, "json": theirs}), (404, 422), \
            ("POST", _reg(s, "/encounters"), {"headers": w.a.headers, "json": mine})

    @case("registry", "POST", "/fhir/r4")
    async def _fhir(w: World, s: Stack) -> Any:
        """B's HIS sends a FHIR Bundle recording a visit on A's pregnancy (her EpisodeOfCare by its identifier)."""
        def doc(v: dict[str, Any]) -> dict[str, Any]:
            ident = [{"system": f"{fhir.SOURCE}{v['source']}", "value": w.pregnancy_id}]
            inst = {"identifier": {"system": fhir.INSTITUTION, "value": v["institution_code"]}}
            return {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:m", "resource": {"resourceType": "Patient", "identifier": [
                    {"system": fhir.PERSON_ID, "value": w.mother_id}]}},
                {"fullUrl": "urn:uuid:p", "resource": {
                    "resourceType": "EpisodeOfCare", "status": "active", "identifier": ident,
                    "patient": {"reference": "urn:uuid:m"}, "managingOrganization": inst,
                    "period": {"start": (today() - timedelta(days=130)).isoformat()},
                    "extension": [{"url": fhir.LMP, "valueDate": (today() - timedelta(days=200)).isoformat()}]}},
                {"fullUrl": "urn:uuid:e", "resource": {
                    "resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                    "identifier": [{"system": f"{fhir.SOURCE}{v['source']}", "value": v["encounter_id"]}],
                    "type": [{"coding": [{"system": fhir.ENCOUNTER_TYPE, "code": "prenatal_visit"}]}],
                    "period": {"start": v["occurred_at"]}, "serviceProvider": inst,
                    "episodeOfCare": [{"reference": "urn:uuid:p"}]}}]}
        theirs = w.b.visit(w.pregnancy_id, today() - timedelta(days=22))
        return ("POST", s.url("registry") + "/fhir/r4", {"headers": w.b.headers, "json": doc(theirs)}), \
            (404, 409, 422), None

    @case("registry", "POST", "/fhir/r4/Patient/$match")
    async def _pdqm(w: World, s: Stack) -> Any:
        """B matches A's mother by her own details: nothing of her is answered (200 with no entry)."""
        async with httpx.AsyncClient(timeout=30) as c:
            her = (await c.get(_reg(s, f"/persons/{w.mother_id}"), headers=w.a.headers)).json()
        patient = {"resourceType": "Patient", "name": [{"text": her["name"]}], "gender": "female",
                   "birthDate": her["birth_date"],
                   "address": [{"extension": [{"url": fhir.REGION, "valueCode": her["residence_code"]}]}]}
        body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient}]}
        url = s.url("registry") + "/fhir/r4/Patient/$match"
        return ("POST", url, {"headers": w.b.headers, "json": body}), (200,), None

    @case("registry", "POST", "/v1/encounters:batch")
    async def _eb(w: World, s: Stack) -> Any:
        visit = w.a.visit(w.pregnancy_id, today() - timedelta(days=21))
        return ("POST", _reg(s, "/encounters:batch"), {"headers": w.b.headers, "json": [visit]}), \
            (404, 422, 207), None

    @case("registry", "DELETE", "/v1/encounters/{source}/{encounter_id}")
    async def _ed(w: World, s: Stack) -> Any:
        return (("DELETE", _reg(s, f"/encounters/{w.encounter}"), {"headers": w.b.headers,
                                                                 "params": {"reason": "attack"}}), (404,), None)

    @case("registry", "POST", "/v1/marriage-registrations")
    async def _m(w: World, s: Stack) -> Any:
        reg = {"registration_id": f"M-{uuid.uuid4().hex[:10]}", "source": "his-iso",
               "registered_on": str(today() - timedelta(days=3)), "region_code": village(w.a.code),
               "persons": couple(w.a.code)}
        return ("POST", _reg(s, "/marriage-registrations"), {"headers": w.b.headers, "json": reg}), (403, 422), None

    @case("registry", "POST", "/v1/marriage-registrations:batch")
    async def _mb(w: World, s: Stack) -> Any:
        reg = {"registration_id": f"M-{uuid.uuid4().hex[:10]}", "source": "his-iso",
               "registered_on": str(today() - timedelta(days=3)), "region_code": village(w.a.code),
               "persons": couple(w.a.code)}
        return ("POST", _reg(s, "/marriage-registrations:batch"), {"headers": w.b.headers, "json": [reg]}), \
            (403, 422, 207), None

    @case("registry", "DELETE", "/v1/marriage-registrations/{source}/{registration_id}")
    async def _md(w: World, s: Stack) -> Any:
        return (("DELETE", _reg(s, f"/marriage-registrations/{w.marriage}"),
                 {"headers": w.b.headers, "params": {"reason": "attack"}}), (404,), None)

    def scr(s: Stack, path: str) -> str:
        return s.url("screening") + "/v1" + path

    @case("screening", "GET", "/v1/screenings/{source}/{screening_id}")
    async def _s(w: World, s: Stack) -> Any:
        url = scr(s, f"/screenings/{w.screening}")
        return ("GET", url, {"headers": w.b.headers}), (404,), ("GET", url, {"headers": w.a.headers})

    @case("screening", "DELETE", "/v1/screenings/{source}/{screening_id}")
    async def _sd(w: World, s: Stack) -> Any:
        return ("DELETE", scr(s, f"/screenings/{w.screening}"), {"headers": w.b.headers,
                                                                "json": {"reason": "attack"}}), (404,), None

    for batch in ("/v1/screenings", "/v1/screenings:batch"):
        @case("screening", "POST", batch)
        async def _sp(w: World, s: Stack, batch: str = batch) -> Any:
            b = screening_body("hbig", w.kids[0], w.a.inst, today() - timedelta(days=1), hours_after_birth=3)
            payload: Any = [b] if batch.endswith(":batch") else b
            return ("POST", s.url("screening") + batch, {"headers": w.b.headers, "json": payload}), \
                (404, 422, 207), None

    @case("screening", "GET", "/v1/followups")
    async def _f(w: World, s: Stack) -> Any:
        return ("GET", scr(s, "/followups"), {"headers": w.b.headers, "params": {"region": w.a.code}}), (403,), \
            ("GET", scr(s, "/followups"), {"headers": w.a.headers, "params": {"region": w.a.code}})

    @case("screening", "GET", "/v1/followups/{case_id}")
    async def _fc(w: World, s: Stack) -> Any:
        url = scr(s, f"/followups/{w.case_id}")
        return ("GET", url, {"headers": w.b.headers}), (404,), ("GET", url, {"headers": w.a.headers})

    @case("screening", "POST", "/v1/followups/{case_id}/actions")
    async def _fa(w: World, s: Stack) -> Any:
        act = {"action": "contacted", "on": str(today())}
        return ("POST", scr(s, f"/followups/{w.case_id}/actions"), {"headers": w.b.headers, "json": act}), \
            (404,), ("POST", scr(s, f"/followups/{w.case_id}/actions"), {"headers": w.a.headers, "json": act})

    def crt(s: Stack, path: str) -> str:
        return s.url("certificates") + "/v1" + path

    @case("certificates", "GET", "/v1/certificates/{serial}")
    async def _c(w: World, s: Stack) -> Any:
        url = crt(s, f"/certificates/{w.cert['serial']}")
        return ("GET", url, {"headers": w.readers[w.b.code]}), (404,), ("GET", url, {"headers": w.readers[w.a.code]})

    @case("certificates", "GET", "/v1/children/{child_id}")
    async def _ch(w: World, s: Stack) -> Any:
        url = crt(s, f"/children/{w.kids[0]}")
        return ("GET", url, {"headers": w.readers[w.b.code]}), (404,), ("GET", url, {"headers": w.readers[w.a.code]})

    @case("certificates", "GET", "/v1/stock/serials/{serial}")
    async def _ss(w: World, s: Stack) -> Any:
        url = crt(s, f"/stock/serials/{w.cert['serial']}")
        return ("GET", url, {"headers": w.readers[w.b.code]}), (404,), ("GET", url, {"headers": w.readers[w.a.code]})

    period = {"from": str(today() - timedelta(days=5)), "to": str(today())}
    for path in ("/v1/certificates/register", "/v1/custodians", "/v1/stock/report"):
        @case("certificates", "GET", path)
        async def _lists(w: World, s: Stack, path: str = path) -> Any:
            q = {"institution_code": w.office.code, **(period if path != "/v1/custodians" else {})}
            url = s.url("certificates") + path
            return ("GET", url, {"headers": w.readers[w.b.code], "params": q}), (404,), \
                ("GET", url, {"headers": w.readers[w.a.code], "params": q})

    @case("certificates", "GET", "/v1/worklist")
    async def _wl(w: World, s: Stack) -> Any:
        url, q = crt(s, "/worklist"), {"institution_code": w.office.code}
        return ("GET", url, {"headers": w.readers[w.b.code], "params": q}), (404,), \
            ("GET", url, {"headers": w.readers[w.a.code], "params": q})

    @case("certificates", "POST", "/v1/certificates/{serial}/prints")
    async def _cpr(w: World, s: Stack) -> Any:
        return ("POST", crt(s, f"/certificates/{w.cert['serial']}/prints"),
                {"headers": w.other.by(w.other.sealer), "json": {"reason": "补打"}}), (404,), None

    @case("certificates", "POST", "/v1/certificates/{serial}/seal")
    async def _cs(w: World, s: Stack) -> Any:
        return ("POST", crt(s, f"/certificates/{w.pending['serial']}/seal"), {"headers": w.other.by(w.other.sealer)}), \
            (404,), None

    @case("certificates", "POST", "/v1/certificates/{serial}/void")
    async def _cv(w: World, s: Stack) -> Any:
        return ("POST", crt(s, f"/certificates/{w.cert['serial']}/void"),
                {"headers": w.other.by(w.other.head), "json": {"reason": "错发"}}), (404,), None

    @case("certificates", "POST", "/v1/stock/serials/{serial}/void")
    async def _sv(w: World, s: Stack) -> Any:
        blank = w.cert["serial"][:-2] + "09"
        return ("POST", crt(s, f"/stock/serials/{blank}/void"),
                {"headers": w.other.by(w.other.head), "json": {"reason": "破损"}}), (404,), None

    @case("certificates", "POST", "/v1/certificates")
    async def _cp(w: World, s: Stack) -> Any:
        body = {"kind": "first_out_of_institution", "child_id": w.kids[1], "child_name": "张小明",
                "evidence_ref": "x"}
        return ("POST", crt(s, "/certificates"), {"headers": w.other.by(w.other.keeper), "json": body}), (422,), None

    @case("certificates", "POST", "/v1/stock/allocations")
    async def _sa(w: World, s: Stack) -> Any:
        body = {"institution_code": w.office.code, "serial_from": "Z000000001", "serial_to": "Z000000001",
                "allocated_on": str(today())}
        return ("POST", crt(s, "/stock/allocations"), {"headers": w.other.by(w.other.head), "json": body}), \
            (404, 422), None

    @case("certificates", "POST", "/v1/custodians")
    async def _cu(w: World, s: Stack) -> Any:
        body = {"institution_code": w.office.code, "account_id": w.other.sealer, "role": "seal"}
        return ("POST", crt(s, "/custodians"), {"headers": w.other.by(w.other.head), "json": body}), (404, 422), None

    def ind(s: Stack, path: str) -> str:
        return s.url("indicators") + "/v1" + path

    @case("indicators", "GET", "/v1/indicators/values")
    async def _v(w: World, s: Stack) -> Any:
        q = {"region": w.a.code, "period": str(today().year)}
        return ("GET", ind(s, "/indicators/values"), {"headers": w.readers[w.b.code], "params": q}), (403,), \
            ("GET", ind(s, "/indicators/values"), {"headers": w.readers[w.a.code], "params": q})

    @case("indicators", "GET", "/v1/reports/annual")
    async def _an(w: World, s: Stack) -> Any:
        q = {"region": w.a.code, "year": str(today().year)}
        return ("GET", ind(s, "/reports/annual"), {"headers": w.readers[w.b.code], "params": q}), (403,), \
            ("GET", ind(s, "/reports/annual"), {"headers": w.readers[w.a.code], "params": q})

    @case("indicators", "PUT", "/v1/targets")
    async def _t(w: World, s: Stack) -> Any:
        body = {"region": w.a.code, "year": today().year, "code": "live_births", "target": 100}
        return ("PUT", ind(s, "/targets"), {"headers": w.readers[w.b.code], "json": body}), (403,), None

    year = str(today().year)
    for path, q in (("/reports/annual/filings", {"period": year}), ("/reports/annual/completeness", {"period": year}),
                    ("/reports/statutory", {"period": year, "form": "maternal"}), ("/targets", {"year": year})):
        api = "/v1" + path.replace("/reports/annual/", "/reports/{report}/")

        @case("indicators", "GET", api)
        async def _ireads(w: World, s: Stack, path: str = path, q: dict[str, str] = q) -> Any:
            params = {**q, "region": w.a.code}
            return ("GET", ind(s, path), {"headers": w.readers[w.b.code], "params": params}), (403, 404), \
                ("GET", ind(s, path), {"headers": w.readers[w.a.code], "params": params})

    @case("indicators", "GET", "/v1/reports/{report}/filings/{period}/{unit}")
    async def _fv(w: World, s: Stack) -> Any:
        url = ind(s, f"/reports/annual/filings/{year}/{w.a.code}")
        return ("GET", url, {"headers": w.readers[w.b.code]}), (403, 404), None

    for step, body in (("submit", None), ("approve", None), ("unapprove", {"reason": "attack"})):
        @case("indicators", "POST", f"/v1/reports/{{report}}/filings/{{period}}/{{unit}}/{step}")
        async def _fs(w: World, s: Stack, step: str = step, body: dict[str, str] | None = body) -> Any:
            url = ind(s, f"/reports/annual/filings/{year}/{w.a.code}/{step}")
            return ("POST", url, {"headers": w.people[w.b.code], "json": body}), (403, 404), None

    @case("indicators", "DELETE", "/v1/targets/{year}/{region}/{code}")
    async def _td(w: World, s: Stack) -> Any:
        return ("DELETE", ind(s, f"/targets/{year}/{w.a.code}/live_births"), {"headers": w.readers[w.b.code]}), \
            (403, 404), None

    @case("indicators", "PUT", "/v1/populations")
    async def _pp(w: World, s: Stack) -> Any:
        body = {"region": w.a.code, "year": int(year), "kind": "total", "value": 100}
        return ("PUT", ind(s, "/populations"), {"headers": w.readers[w.b.code], "json": body}), (403,), None

    @case("indicators", "GET", "/v1/populations")
    async def _pl(w: World, s: Stack) -> Any:
        params = {"year": year, "region": w.a.code}
        return ("GET", ind(s, "/populations"), {"headers": w.readers[w.b.code], "params": params}), (403,), \
            ("GET", ind(s, "/populations"), {"headers": w.readers[w.a.code], "params": params})

    @case("indicators", "DELETE", "/v1/populations/{year}/{region}/{kind}")
    async def _pd(w: World, s: Stack) -> Any:
        return ("DELETE", ind(s, f"/populations/{year}/{w.a.code}/total"), {"headers": w.readers[w.b.code]}), \
            (403, 404), None

    @case("indicators", "POST", "/v1/targets/decompose")
    async def _tdc(w: World, s: Stack) -> Any:
        body = {"code": "live_births", "region": w.a.code, "year": int(year)}
        return ("POST", ind(s, "/targets/decompose"), {"headers": w.readers[w.b.code], "json": body}), \
            (403, 404), None

    @case("indicators", "PUT", "/v1/regions/{code}")
    async def _rn(w: World, s: Stack) -> Any:
        return ("PUT", ind(s, f"/regions/{w.a.code}001"), {"headers": w.readers[w.b.code],
                                                           "json": {"name": "攻击镇", "kind": "local"}}), \
            (403,), None

    async def pending_pair(w: World, s: Stack) -> tuple[int, dict[str, str], dict[str, str]]:
        """A pair of A's county in its review queue; (match id, A's reviewer, B's reviewer)."""
        p = matching_woman(w.a.code)
        for body in (p, first_with("review", p, borderline_variants(p, w.a.code))):
            r = await w.a.call("POST", "/persons", body)
            assert r.status_code == 201, r.text
        heads = []
        for code in (w.a.code, w.b.code):
            _, tok = await make_person(s, ["reviewer"], code)
            heads.append({"Authorization": f"Bearer {tok}"})
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.get(_reg(s, "/persons/review"), headers=heads[0])
        return r.json()["items"][-1]["match_id"], heads[0], heads[1]

    @case("registry", "GET", "/v1/persons/review")
    async def _rq(w: World, s: Stack) -> Any:
        _, mine, theirs = await pending_pair(w, s)
        return ("GET", _reg(s, "/persons/review"), {"headers": theirs}), (200,), \
            ("GET", _reg(s, "/persons/review"), {"headers": mine})

    for step in ("confirm", "reject"):
        @case("registry", "POST", f"/v1/persons/review/{{match_id}}/{step}")
        async def _rd(w: World, s: Stack, step: str = step) -> Any:
            match_id, mine, theirs = await pending_pair(w, s)
            url = _reg(s, f"/persons/review/{match_id}/{step}")
            return ("POST", url, {"headers": theirs, "json": {"reason": "attack"}}), (404,), \
                ("POST", url, {"headers": mine, "json": {"reason": "核实"}}) if step == "reject" else None

    # merges (合并, issue 19): both records must be the caller's; B's reviewer reaches neither of A's
    async def merger(s: Stack, county: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await make_token(s, ['registry:merge', 'registry:read'], county)}"}

    @case("registry", "POST", "/v1/persons/{person_id}/merge")
    async def _mg(w: World, s: Stack) -> Any:
        body = {"duplicate": w.kids[0], "reason": "attack"}
        return ("POST", _reg(s, f"/persons/{w.mother_id}/merge"),
                {"headers": await merger(s, w.b.code), "json": body}), (404,), None

    @case("registry", "POST", "/v1/persons/{person_id}/unmerge")
    async def _umg(w: World, s: Stack) -> Any:
        return ("POST", _reg(s, f"/persons/{w.mother_id}/unmerge"),
                {"headers": await merger(s, w.b.code), "json": {"reason": "attack"}}), (404,), None

    @case("registry", "GET", "/v1/persons/{person_id}/merges")
    async def _mgs(w: World, s: Stack) -> Any:
        url = _reg(s, f"/persons/{w.mother_id}/merges")
        return ("GET", url, {"headers": await merger(s, w.b.code)}), (404,), \
            ("GET", url, {"headers": await merger(s, w.a.code)})

    def qual(s: Stack, path: str) -> str:
        return s.url("quality") + "/v1/quality" + path

    for path in ("/queries", "/scores"):
        @case("quality", "GET", "/v1/quality" + path)
        async def _ql(w: World, s: Stack, path: str = path) -> Any:
            q = {"region": w.a.code}
            return ("GET", qual(s, path), {"headers": w.people[w.b.code], "params": q}), (403,), \
                ("GET", qual(s, path), {"headers": w.people[w.a.code], "params": q})

    @case("quality", "GET", "/v1/quality/queries/{query_id}")
    async def _qg(w: World, s: Stack) -> Any:
        url = qual(s, f"/queries/{w.query_id}")
        return ("GET", url, {"headers": w.people[w.b.code]}), (404,), ("GET", url, {"headers": w.officers[w.a.code]})

    @case("quality", "POST", "/v1/quality/queries/{query_id}/answer")
    async def _qa(w: World, s: Stack) -> Any:
        url, body = qual(s, f"/queries/{w.query_id}/answer"), {"comment": "核实无误"}
        return ("POST", url, {"headers": w.officers[w.b.code], "json": body}), (404,), \
            ("POST", url, {"headers": w.officers[w.a.code], "json": body})

    @case("quality", "POST", "/v1/quality/queries/{query_id}/accept")
    async def _qc(w: World, s: Stack) -> Any:
        return ("POST", qual(s, f"/queries/{w.query_id}/accept"), {"headers": w.people[w.b.code], "json": {}}), \
            (404,), None

    return cases


REGION = _cases()


@pytest.mark.stack
async def test_another_countys_token_reaches_nothing_of_county_a(http: httpx.AsyncClient, stack: Stack) -> None:
    ops = await operations(http, stack)
    regional = {op for op, spec in ops.items() if spec.get("x-mch-auth") != "none"}
    unclassified = sorted(regional - set(REGION) - set(REGION_FREE))
    assert unclassified == [], f"operations with no region case and no reason to have none: {unclassified}"
    w = await _build(http, stack)
    refused: list[str] = []
    async with httpx.AsyncClient(timeout=30) as c:
        # reads and harmless writes of A first; the attempts on A's objects after (they must change nothing)
        plans = [(op, await REGION[op](w, stack)) for op in sorted(regional & set(REGION))]
        for op, (_, _, mine) in plans:
            if mine is not None:
                r = await c.request(mine[0], mine[1], **mine[2])
                assert r.status_code < 300, (op, "as A", r.status_code, r.text)
        for op, (theirs, statuses, _) in plans:
            r = await c.request(theirs[0], theirs[1], **theirs[2])
            if r.status_code < 300 and "items" in r.json():  # a batch: each item refused
                assert all(item["status"] >= 400 for item in r.json()["items"]), (op, r.text)
            elif r.status_code == 200 and r.json().get("resourceType") == "Bundle":  # a FHIR search: nothing
                assert r.json()["entry"] == [], (op, r.text)
            else:
                assert r.status_code in statuses, (op, "as B", r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/problem+json"), (op, r.text)
            for secret in (w.a.inst, w.mother_id, w.office.code):
                if secret not in theirs[1] and secret not in str(theirs[2].get("json", "")) \
                        and secret not in str(theirs[2].get("params", "")):
                    assert secret not in r.text, (op, "reveals", secret, r.text)
            refused.append(f"{op[1]} {op[0]}{op[2]}")
        # A's objects are as they were: the pregnancy, the person, the certificate and the case still A's
        for url, hdr in ((_reg(stack, f"/pregnancies/{w.pregnancy_id}"), w.a.headers),
                         (_reg(stack, f"/persons/{w.mother_id}"), w.a.headers),
                         (stack.url("certificates") + f"/v1/certificates/{w.cert['serial']}", w.readers[w.a.code]),
                         (stack.url("screening") + f"/v1/followups/{w.case_id}", w.a.headers)):
            r = await c.get(url, headers=hdr)
            assert r.status_code == 200 and r.json().get("status", "active") not in ("voided",), (url, r.text)
        person = (await c.get(_reg(stack, f"/persons/{w.mother_id}"), headers=w.a.headers)).json()
        assert person["residence_code"].startswith(w.a.code), person
    assert len(refused) == len(regional & set(REGION))
