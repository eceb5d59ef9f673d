"""Every operation of every service's OpenAPI refuses a request without a valid token — none, malformed, unknown,
revoked or expired — with 401 problem+json and a Bearer challenge, and a refused write changes nothing. Screening
and certificates had no such test: an endpoint added without the auth dependency passed unnoticed."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from kit.auth import SCOPES, hash_token
from kit.clients import revoke

from tests.conftest import Stack, fresh_county, make_person, make_token

OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
SERVICES = ("registry", "screening", "certificates", "indicators", "quality")


async def _expired_token(stack: Stack, scopes: list[str]) -> str:
    """A token whose expiry has passed (set by the operator in the credential database)."""
    token = await make_token(stack, scopes)
    s = stack.settings
    conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user, database=s.auth_database)
    try:
        await conn.execute("update api_token set expires_at = now() - interval '1 second' where token_sha256 = $1",
                           hash_token(token))
    finally:
        await conn.close()
    return token


async def _bad_credentials(stack: Stack) -> dict[str, dict[str, str]]:
    every = list(SCOPES)   # a token that could do anything, were it valid
    revoked = await make_token(stack, every)
    assert await revoke(stack.settings, revoked)
    return {"none": {}, "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
            "empty bearer": {"Authorization": "Bearer"},
            "unknown": {"Authorization": f"Bearer {uuid.uuid4().hex}"},
            "revoked": {"Authorization": f"Bearer {revoked}"},
            "expired": {"Authorization": f"Bearer {await _expired_token(stack, every)}"}}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for path, item in doc["paths"].items():
        if path in OPEN:
            continue
        for method, op in item.items():
            if op.get("x-mch-auth") == "none":
                continue  # declared public (logging in, health): tests/test_login.py covers those
            if method in ("get", "post", "put", "delete", "patch"):
                out.append((method.upper(), path.replace("{", "").replace("}", "")))  # params: any value
    return out


def _refused(r: httpx.Response) -> bool:
    return (r.status_code == 401 and r.headers.get("content-type", "").startswith("application/problem+json")
            and r.headers.get("www-authenticate", "").lower().startswith("bearer") and r.json()["status"] == 401)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_operation_needs_a_valid_token(stack: Stack, service: str) -> None:
    base = stack.url(service)
    bad = await _bad_credentials(stack)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        doc = (await anonymous.get(f"{base}/openapi.json")).json()
        ops = _operations(doc)
        assert len(ops) >= 3, ops
        wrong = []
        for method, path in ops:
            for what, headers in bad.items():
                r = await anonymous.request(method, f"{base}{path}", headers=headers)
                if not _refused(r):
                    wrong.append(f"{method} {path} ({what}): {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


async def test_a_refused_write_changes_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    expired = await _expired_token(stack, list(SCOPES))
    batch = {"batch_no": f"B-{uuid.uuid4().hex[:10]}", "serial_from": f"Y{uuid.uuid4().int % 10**4:04d}00001",
             "received_on": date.today().isoformat()}
    batch["serial_to"] = batch["serial_from"][:-1] + "5"
    url = f"{stack.url('certificates')}/v1/stock/batches"
    r = await http.post(url, json=batch, headers={"Authorization": f"Bearer {expired}"})
    assert _refused(r), r.text
    # the same batch is new to the ledger: the refused request received nothing (received by an office head)
    _, head = await make_person(stack, ["office_head"], fresh_county())
    r = await http.post(url, json=batch, headers={"Authorization": f"Bearer {head}"})
    assert r.status_code == 201, r.text
    screening = {"screening_id": f"S-{uuid.uuid4().hex[:12]}", "source": "his-401", "type": "cervical",
                 "subject_id": str(uuid.uuid4()), "performed_on": (date.today() - timedelta(1)).isoformat(),
                 "institution_code": "X", "method": "hpv", "result": "normal"}
    r = await http.post(f"{stack.url('screening')}/v1/screenings", json=screening,
                        headers={"Authorization": f"Bearer {expired}"})
    assert _refused(r), r.text
    r = await http.get(f"{stack.url('screening')}/v1/screenings/his-401/{screening['screening_id']}")
    assert r.status_code == 404, r.text
