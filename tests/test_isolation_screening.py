"""Region isolation in screening (issue 15, OWASP API #1), with two county clients on the real stack: county B can
neither read, void nor correct A's results, nor read or work A's follow-up cases; what it cannot see answers exactly
like what does not exist (404, no region code). B may screen a child of A who came to B's institution (continuity of
care): it sees that result and its case, not where the child lives."""
from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
from kit.clients import create_client

from tests.conftest import Stack, fresh_county
from tests.test_screening_api import SOURCE, body, family, institution, known, post

SCOPES = ["screening:write", "screening:read", "pii:read"]


async def screening_db(stack: Stack) -> asyncpg.Connection:
    s = stack.settings
    return await asyncpg.connect(s.dsn(s.database("screening"), s.role("screening")).replace("+asyncpg", ""))


def hidden(r: httpx.Response, *secrets: str) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for s in secrets:
        assert s not in r.text, (s, r.text)


async def test_a_county_cannot_read_void_or_correct_another_countys_screening(http: httpx.AsyncClient,
                                                                              stack: Stack) -> None:
    a_code, b_code = fresh_county(), fresh_county()
    _, a_tok = await create_client(stack.settings, "county-a", SCOPES, a_code)
    b_id, b_tok = await create_client(stack.settings, "county-b", SCOPES, b_code)
    a, b = {"Authorization": f"Bearer {a_tok}"}, {"Authorization": f"Bearer {b_tok}"}
    a_inst, b_inst = await institution(http, stack, a_code), await institution(http, stack, b_code)
    f = await family(http, stack, a_code, a_inst)
    await known(http, stack, f)
    theirs = body("newborn_hearing", f.child_id, a_inst, f.born + timedelta(1), round="initial", result="refer",
                  note="母亲李某电话138")
    r = await post(http, stack, theirs, a)
    assert r.status_code == 201 and r.json()["followup"], r.text
    case_id = r.json()["followup"]["case_id"]
    url = f"{stack.url('screening')}/v1"
    key = f"{SOURCE}/{theirs['screening_id']}"
    async with httpx.AsyncClient(timeout=30, headers=b) as c:
        hidden(await c.get(f"{url}/screenings/{key}"), a_code, "李某")
        hidden(await c.request("DELETE", f"{url}/screenings/{key}", json={"reason": "attack"}), a_code)
        hidden(await c.get(f"{url}/followups/{case_id}"), a_code, "李某")
        hidden(await c.post(f"{url}/followups/{case_id}/actions", json={"action": "closed", "on": str(f.born),
                                                                         "outcome": "normal"}), a_code)
        r = await c.post(f"{url}/screenings", json={**theirs, "institution_code": b_inst, "version": 2,
                                                    "result": "pass"})
        assert r.status_code == 409 and a_code not in r.text and "李某" not in r.text, r.text
        # screening as A's institution: answered like an unknown institution
        r = await c.post(f"{url}/screenings", json={**body("newborn_hearing", f.child_id, a_inst, f.born),
                                                    "round": "initial", "result": "pass"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "institution_code", r.text
        assert r.json()["errors"][0]["reason"].startswith(f"unknown institution {a_inst}")
    conn = await screening_db(stack)
    try:
        row = await conn.fetchrow("select version, voided, classification from screening where source = $1 and "
                                  "screening_id = $2", SOURCE, theirs["screening_id"])
        assert (row["version"], row["voided"]) == (1, False)
        assert await conn.fetchval("select status from followup_case where case_id = $1::uuid", case_id) == "open"
        assert await conn.fetchval("select count(*) from pii_audit where client_id = $1", b_id) == 0
    finally:
        await conn.close()


async def test_the_care_giving_county_sees_its_own_result_and_works_its_case(http: httpx.AsyncClient,
                                                                             stack: Stack) -> None:
    a_code, b_code = fresh_county(), fresh_county()
    _, a_tok = await create_client(stack.settings, "county-a", SCOPES, a_code)
    b_id, b_tok = await create_client(stack.settings, "county-b", SCOPES, b_code)
    a, b = {"Authorization": f"Bearer {a_tok}"}, {"Authorization": f"Bearer {b_tok}"}
    a_inst, b_inst = await institution(http, stack, a_code), await institution(http, stack, b_code)
    f = await family(http, stack, a_code, a_inst)
    await known(http, stack, f)
    ours = body("newborn_hearing", f.child_id, b_inst, f.born + timedelta(2), round="initial", result="refer")
    r = await post(http, stack, ours, b)
    assert r.status_code == 201, r.text
    assert r.json()["followup"] and "region_code" not in r.json()["followup"] and a_code not in r.text
    case_id = r.json()["followup"]["case_id"]
    url = f"{stack.url('screening')}/v1"
    key = f"{SOURCE}/{ours['screening_id']}"
    async with httpx.AsyncClient(timeout=30) as c:
        mine = await c.get(f"{url}/screenings/{key}", headers=b)
        assert mine.status_code == 200 and a_code not in mine.text, mine.text
        residence = await c.get(f"{url}/screenings/{key}", headers=a)  # her county of residence sees it too
        assert residence.status_code == 200 and residence.json()["followup"]["region_code"].startswith(a_code)
        r = await c.post(f"{url}/followups/{case_id}/actions", headers=b,
                         json={"action": "contacted", "on": str(f.born + timedelta(3))})
        assert r.status_code == 201, r.text
        # only the institution's county corrects or voids the result
        hidden(await c.request("DELETE", f"{url}/screenings/{key}", headers=a, json={"reason": "x"}))
        r = await c.request("DELETE", f"{url}/screenings/{key}", headers=b, json={"reason": "entered twice"})
        assert r.status_code == 200 and r.json()["status"] == "voided"
    conn = await screening_db(stack)
    try:
        actions = await conn.fetch("select action, recorded_by from followup_action where case_id = $1::uuid "
                                   "order by seq", case_id)
        assert [(x["action"], x["recorded_by"]) for x in actions] == [("contacted", b_id)]
        assert await conn.fetchval("select voided_by from screening where source = $1 and screening_id = $2",
                                   SOURCE, ours["screening_id"]) == b_id
        audited = await conn.fetch("select subject_kind, subject_id from pii_audit where client_id = $1", b_id)
        assert [(x["subject_kind"], x["subject_id"]) for x in audited] == [("screening", key)]
    finally:
        await conn.close()
