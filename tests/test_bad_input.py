"""Bad input never gets a 5xx (issue 15): what fuzzing found, each refused as a 4xx problem+json naming the field,
nothing changed, and the keep-alive connection still usable afterwards."""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit.clock import today_cn
from kit.tests.test_guard import exchange

from tests.conftest import Stack, fresh_county, make_token, village
from tests.test_registry_encounters import Family, footprint

pytestmark = pytest.mark.stack

PROBLEM = "application/problem+json"


@pytest.fixture
async def one_conn(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client on exactly one keep-alive connection: a dropped connection fails the next request."""
    tok = await make_token(stack, ["registry:write", "registry:read", "screening:write", "screening:read",
                                   "certificates:read", "certificates:stock", "indicators:read",
                                   "indicators:admin", "pii:read"])
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers={"Authorization": f"Bearer {tok}"}) as c:
        yield c


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The response is the given 4xx as RFC 9457 problem+json; returns its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["type"], body
    return body


def fields(r: httpx.Response, status: int = 422) -> list[str]:
    return [e["field"] for e in problem(r, status)["errors"]]


async def still_alive(c: httpx.AsyncClient, stack: Stack) -> None:
    """The same connection answers the next request (uvicorn did not drop it)."""
    r = await c.get(stack.url("registry") + "/healthz")
    assert r.status_code == 200, r.text


@pytest.fixture
async def fam(one_conn: httpx.AsyncClient, stack: Stack) -> Family:
    return await Family(one_conn, stack).book()


# ------------------------------------------------------------------ NUL bytes (Postgres text cannot hold them)
async def test_nul_bytes_in_body_query_and_path_are_refused_naming_the_field(
        fam: Family, one_conn: httpx.AsyncClient, stack: Stack) -> None:
    reg, certs = stack.url("registry"), stack.url("certificates")
    before = await footprint(stack)
    person = {"name": "王\x00芳", "sex": "F", "birth_date": "1990-01-01", "residence_code": fam.residence}
    assert fields(await one_conn.post(f"{reg}/v1/persons", json=person)) == ["name"]
    enc = fam.body("prenatal_visit", fam.lmp + timedelta(days=80), gestational_weeks=11.4)
    assert fields(await one_conn.post(f"{reg}/v1/encounters", json={**enc, "source": "his\x00"})) == ["source"]
    batch = [enc, {**enc, "encounter_id": "E-1", "x\x00": 1}]
    assert fields(await one_conn.post(f"{reg}/v1/encounters:batch", json=batch)) == ["1.x\x00"]
    r = await one_conn.get(f"{certs}/v1/certificates/register",
                           params={"institution_code": "H\x00", "from": "2026-01-01", "to": "2026-01-31"})
    assert fields(r) == ["institution_code"]
    r = await one_conn.get(f"{reg}/v1/persons/ab%00cd")
    assert fields(r) == ["person_id"]
    r = await one_conn.get(f"{stack.url('screening')}/v1/screenings/his%00/S-1")
    assert fields(r) == ["source"]
    assert await footprint(stack) == before
    await still_alive(one_conn, stack)


# ------------------------------------------------------------------ numbers
async def test_integers_beyond_int32_and_non_finite_numbers_are_refused(
        fam: Family, one_conn: httpx.AsyncClient, stack: Stack) -> None:
    reg, scr = stack.url("registry"), stack.url("screening")
    before = await footprint(stack)
    enc = fam.body("prenatal_visit", fam.lmp + timedelta(days=80), gestational_weeks=11.4)
    for big in (2**31, 2**63, 2**64 + 1, -(2**63) - 1):
        assert fields(await one_conn.post(f"{reg}/v1/encounters", json={**enc, "version": big})) == ["version"]
    folic = fam.body("folic_acid_dispensed", fam.lmp + timedelta(days=20), person_id=fam.mother_id,
                     subject_id=fam.mother_id, quantity=2**63)
    assert fields(await one_conn.post(f"{reg}/v1/encounters", json=folic)) == ["quantity"]
    screening = {"screening_id": f"S-{uuid.uuid4().hex[:8]}", "source": "lab", "type": "cfdna", "version": 2**40,
                 "subject_id": fam.pregnancy_id, "performed_on": (fam.lmp + timedelta(days=90)).isoformat(),
                 "institution_code": fam.inst, "result": "low_risk"}
    assert fields(await one_conn.post(f"{scr}/v1/screenings", json=screening)) == ["version"]
    # JSON has no NaN or Infinity; Python's parser takes them (and 1e400 becomes inf): refused by name
    check = fam.body("prenatal_visit", fam.lmp + timedelta(days=81))
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        text = httpx.Request("POST", "/", json={**check, "gestational_weeks": 0}).content.decode()
        text = text.replace('"gestational_weeks":0', f'"gestational_weeks":{raw}')
        r = await one_conn.post(f"{reg}/v1/encounters", content=text,
                                headers={"content-type": "application/json"})
        assert fields(r) == ["gestational_weeks"], raw
    # finite but absurd: a plausible range, named
    assert fields(await one_conn.post(f"{reg}/v1/encounters", json={**check, "gestational_weeks": 1e308})) \
        == ["gestational_weeks"]
    assert await footprint(stack) == before
    await still_alive(one_conn, stack)


async def test_nested_ids_of_the_wrong_json_type_are_refused(fam: Family, one_conn: httpx.AsyncClient,
                                                              stack: Stack) -> None:
    reg = stack.url("registry")
    before = await footprint(stack)
    for ref in (5, None, ["x"], {"a": 1}, 1.5):
        body = {"pregnancy_id": f"P-{uuid.uuid4().hex[:10]}", "source": "his", "mother": {"person_id": ref},
                "lmp_date": fam.lmp.isoformat(), "registered_on": (fam.lmp + timedelta(days=60)).isoformat(),
                "institution_code": fam.inst}
        assert fields(await one_conn.post(f"{reg}/v1/pregnancies", json=body)) == ["mother.person_id"], ref
    marriage = {"registration_id": f"M-{uuid.uuid4().hex[:8]}", "source": "civil", "registered_on": "2026-01-05",
                "region_code": fam.county, "persons": [{"person_id": 7}, {"person_id": fam.mother_id}]}
    assert fields(await one_conn.post(f"{reg}/v1/marriage-registrations", json=marriage)) == ["persons.0.person_id"]
    assert await footprint(stack) == before
    await still_alive(one_conn, stack)


async def test_periods_beyond_year_9999_or_before_1900_are_refused(one_conn: httpx.AsyncClient,
                                                                    stack: Stack) -> None:
    url = stack.url("indicators") + "/v1/indicators/values"
    for period, breakdown in [("9999-12", "month"), ("9999Q4", "month"), ("9999", "month"), ("0000SY", None),
                              ("0001-01", None), ("99999", None), ("1899", None)]:
        params = {"period": period, "region": "32", **({"breakdown": breakdown} if breakdown else {})}
        assert fields(await one_conn.get(url, params=params)) == ["period"], period
    await still_alive(one_conn, stack)


# ------------------------------------------------------------------ downloads
async def test_a_download_named_in_chinese_uses_rfc_5987(one_conn: httpx.AsyncClient, stack: Stack) -> None:
    """A download's header carries its name as RFC 5987 `filename*` beside an ASCII `filename` (the names may be
    Chinese: kit.downloads); a non-ASCII institution code — not a code at all — is a 422 naming it, never the
    500 a raw header value gave, and the connection stays usable."""
    certs = stack.url("certificates")
    period = {"from": "2026-01-01", "to": "2026-01-31", "format": "csv"}
    r = await one_conn.get(f"{certs}/v1/certificates/register", params={"institution_code": "县妇幼保健院", **period})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "institution_code", r.text
    await still_alive(one_conn, stack)
    r = await one_conn.get(f"{certs}/v1/certificates/register", params={"institution_code": "H-NOWHERE-1", **period})
    if r.status_code == 200:  # a national token sees the (empty) register of any institution
        cd = r.headers["content-disposition"]
        assert cd.isascii()
        star = cd.split("filename*=UTF-8''", 1)[1].split(";")[0]
        assert unquote(star) == "register-H-NOWHERE-1-2026-01-01-2026-01-31.csv"
    else:
        assert r.status_code == 404, r.text
    await still_alive(one_conn, stack)


# ------------------------------------------------------------------ implausible values
async def test_implausible_values_are_refused_naming_the_field(fam: Family, one_conn: httpx.AsyncClient,
                                                               stack: Stack) -> None:
    reg = stack.url("registry")
    before = await footprint(stack)
    tomorrow = (today_cn() + timedelta(days=1)).isoformat()
    person = {"name": "王芳", "sex": "F", "birth_date": "1990-01-01", "residence_code": fam.residence}
    for bad, field in [({"birth_date": tomorrow}, "birth_date"), ({"birth_date": "1899-12-31"}, "birth_date"),
                       ({"name": "   "}, "name"), ({"name": "\u3000\t"}, "name")]:
        assert fields(await one_conn.post(f"{reg}/v1/persons", json={**person, **bad})) == [field], bad
    r = await one_conn.post(f"{reg}/v1/persons/{fam.mother_id}/residence",
                            json={"since": tomorrow, "region_code": fam.residence})
    assert fields(r) == ["since"]
    on = fam.lmp + timedelta(days=80)
    enc = fam.body("prenatal_visit", on)
    r = await one_conn.post(f"{reg}/v1/encounters", json={**enc, "occurred_at": f"{on.isoformat()}T09:30:00"})
    assert fields(r) == ["occurred_at"]
    assert await footprint(stack) == before
    # a plain date stays allowed
    r = await one_conn.post(f"{reg}/v1/encounters", json={**enc, "occurred_at": on.isoformat()})
    assert r.status_code == 201, r.text
    targets = stack.url("indicators") + "/v1/targets"
    target = {"code": "premarital_exam_couples", "region": fam.county, "year": 2026}
    for bad in (-1, 0, 10**12, 2**63):
        assert fields(await one_conn.put(targets, json={**target, "target": bad})) == ["target"], bad
    await still_alive(one_conn, stack)


# ------------------------------------------------------------------ the problem shape of every 4xx
async def test_every_4xx_is_problem_json_naming_the_field(one_conn: httpx.AsyncClient, stack: Stack) -> None:
    reg = stack.url("registry")
    person = {"name": "王芳", "sex": "F", "birth_date": "1990-01-01", "residence_code": village(fresh_county())}
    problem(await one_conn.get(f"{reg}/v1/no-such-thing"), 404)
    problem(await one_conn.patch(f"{reg}/v1/persons"), 405)
    assert fields(await one_conn.post(f"{reg}/v1/persons", content=b"name=x",
                                      headers={"content-type": "application/x-www-form-urlencoded"}),
                  415) == ["content-type"]
    r = await one_conn.post(f"{reg}/v1/persons", content=b'{"name": "x",, }',
                            headers={"content-type": "application/json"})
    body = problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["body"]
    assert "position 13" in body["errors"][0]["reason"], body
    r = await one_conn.post(f"{reg}/v1/persons", content=b'{"name": "\xff"}',
                            headers={"content-type": "application/json"})
    assert fields(r) == ["body"]
    await still_alive(one_conn, stack)
    del person


async def test_request_bodies_have_a_size_limit(one_conn: httpx.AsyncClient, stack: Stack) -> None:
    reg = stack.url("registry")
    limit = stack.settings.max_body_bytes
    big = b'{"name": "' + b"x" * limit + b'"}'
    r = await one_conn.post(f"{reg}/v1/persons", content=big, headers={"content-type": "application/json"})
    assert fields(r, 413) == ["body"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"name": "'
        for _ in range(limit // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    r = await one_conn.post(f"{reg}/v1/persons", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert fields(r, 413) == ["body"]
    await still_alive(one_conn, stack)
    # a full batch of 1000 encounters fits well under the limit
    enc = {"encounter_id": "E-" + "x" * 60, "source": "his-" + "y" * 60, "type": "prenatal_visit",
           "occurred_at": "2026-01-01T09:30:00+08:00", "institution_code": "H" * 20, "subject_id": "P" * 40,
           "gestational_weeks": 12.5, "risk_grade": "yellow"}
    assert len(httpx.Request("POST", "/", json=[enc] * 1000).content) < limit // 4


async def test_an_unexpected_error_is_a_500_with_the_request_id_and_the_connection_stays(
        one_conn: httpx.AsyncClient, stack: Stack) -> None:
    """The test stack's apps carry a route that fails on purpose (MCH_TEST_ROUTES, never in production)."""
    for svc in ("registry", "indicators"):
        rid = uuid.uuid4().hex
        r = await one_conn.get(stack.url(svc) + "/__test__/error", headers={"X-Request-ID": rid})
        body = problem(r, 500)
        assert (body["request_id"], r.headers["x-request-id"]) == (rid, rid)
        assert "Traceback" not in r.text and "RuntimeError" not in r.text
        await still_alive(one_conn, stack)
        port = int(stack.url(svc).rsplit(":", 1)[1])  # the same TCP connection, not a quietly reopened one
        assert await exchange(port, ["/__test__/error", "/healthz", "/__test__/error", "/healthz"]) == [
            b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 200 OK"] * 2


async def test_dates_far_from_today_never_reach_the_database_as_errors(fam: Family, one_conn: httpx.AsyncClient,
                                                                       stack: Stack) -> None:
    reg = stack.url("registry")
    before = await footprint(stack)
    for on in ("9999-12-31", "0001-01-01"):
        enc = fam.body("prenatal_visit", date(2026, 1, 1))
        r = await one_conn.post(f"{reg}/v1/encounters", json={**enc, "occurred_at": on})
        assert fields(r) == ["occurred_at"], on
    assert await footprint(stack) == before
    await still_alive(one_conn, stack)


# ------------------------------------------------------------------ mutation fuzzing of valid records
#: any JSON value, as a careless or hostile client sends it: text with NUL and unpaired surrogates (escaped as
#: \udXXX on the wire), integers far beyond int64, floats including NaN and ±Infinity, nested lists and objects
NASTY = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", 2**31, -(2**31), 2**63, 2**64 + 1, -(2**63) - 1,
                         1e308, -1e308, float("nan"), float("inf"), float("-inf"), 1e10, 0, -1, 0.5, True, None,
                         [], {}, {"person_id": 5}, [{"person_id": None}], "", " ", "\u3000", "9999-12-31",
                         "0001-01-01", "2026-05-02T09:30:00", "县妇幼保健院", "x" * 5000])
JSON_VALUES = NASTY | NASTY | st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
    | st.sampled_from(["", " ", "\u3000", "2026-13-45", "9999-12-31", "0001-01-01", "2026-05-02T09:30:00",
                       "1/0", "-1", "null"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


def _paths(v: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value can be replaced (objects' keys and lists' items, nested)."""
    out = [at] if at else []
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, (*at, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, (*at, i))
    return out


def _mutated(body: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    doc = json.loads(json.dumps(body))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


async def test_mutated_valid_records_never_get_a_5xx(fam: Family, stack: Stack) -> None:
    """Valid records of every kind the registry and screening take, each with one value replaced by any JSON (or
    removed): whatever the value, the answer is a 2xx or a 4xx problem naming the field — never a 5xx. Unlike
    schemathesis, this reaches the domain rules and the SQL behind real ids."""
    reg, scr = stack.url("registry"), stack.url("screening")
    on = fam.lmp + timedelta(days=90)
    bases: list[tuple[str, Any]] = [
        (f"{reg}/v1/encounters", fam.body("prenatal_visit", on, gestational_weeks=12.5, risk_grade="yellow")),
        (f"{reg}/v1/encounters", fam.body("delivery", fam.lmp + timedelta(days=270), place="hospital",
                                          mode="vaginal", babies=[{"sex": "F", "birth_weight_g": 3100,
                                                                   "outcome": "live"}])),
        (f"{reg}/v1/encounters:batch", [fam.body("folic_acid_dispensed", fam.lmp - timedelta(days=20),
                                                 fam.mother_id, person_id=fam.mother_id, quantity=30)]),
        (f"{reg}/v1/pregnancies", {"pregnancy_id": "P-MUT", "source": "his", "lmp_date": fam.lmp.isoformat(),
                                   "registered_on": on.isoformat(), "institution_code": fam.inst,
                                   "mother": {"person_id": fam.mother_id}}),
        (f"{reg}/v1/persons", {"name": "王芳", "sex": "F", "birth_date": "1990-01-01",
                               "residence_code": fam.residence, "phone": "13912345678"}),
        (f"{reg}/v1/persons/{fam.mother_id}/residence", {"since": "2024-01-01", "region_code": fam.residence}),
        (f"{reg}/v1/marriage-registrations", {"registration_id": "M-MUT", "source": "civil",
                                              "registered_on": "2024-05-01", "region_code": fam.county,
                                              "persons": [{"person_id": fam.mother_id},
                                                          {"name": "李雷", "sex": "M", "birth_date": "1989-02-02",
                                                           "residence_code": fam.residence}]}),
        (f"{scr}/v1/screenings", {"screening_id": "S-MUT", "source": "lab", "type": "prenatal_serum",
                                  "subject_id": fam.pregnancy_id, "performed_on": on.isoformat(),
                                  "institution_code": fam.inst, "t21_risk": "1/270", "t18_risk": "1/8000",
                                  "ntd_risk": "low"}),
    ]
    auth = dict(fam.http.headers)
    broken: list[str] = []
    with httpx.Client(timeout=30, headers=auth) as client:
        for url, base in bases:
            _mutation_campaign(client, url, base, broken)
    assert not broken, "\n".join(broken[:20])


def _mutation_campaign(client: httpx.Client, url: str, base: Any, broken: list[str]) -> None:
    """Posts `base` with one value replaced (or removed) many times; keeps every answer that breaks the rule."""

    @settings(max_examples=int(os.environ.get("MCH_MUTATIONS", "25")), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(_paths(base)), value=JSON_VALUES, drop=st.booleans())
    def post(path: tuple[Any, ...], value: Any, drop: bool) -> None:
        body = _mutated(base, path, value, drop)
        content = json.dumps(body, ensure_ascii=True, allow_nan=True).encode()
        try:
            r = client.post(url, content=content, headers={"content-type": "application/json"})
        except httpx.TransportError as e:  # the server dropped the connection
            broken.append(f"{url} {path}={value!r}: {type(e).__name__} {e}")
            return
        ok = r.status_code < 400 or (
            r.status_code < 500 and r.headers.get("content-type", "").startswith(PROBLEM)
            and (r.status_code != 422 or all(e.get("field") for e in r.json().get("errors") or [{}])))
        if not ok:
            broken.append(f"{url} {path}={value!r}: {r.status_code} {r.text[:300]}")

    post()
