"""Operators' command for API clients and tokens (stored hashed in the credential database).

    python -m kit.clients create --name his-county-hospital --scopes registry:write --region 320582
    python -m kit.clients token CLIENT_ID        # another token for an existing client
    python -m kit.clients revoke TOKEN
    python -m kit.clients list
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid

import asyncpg

from kit.auth import SCOPES, hash_token, new_token
from kit.settings import Settings, get_settings

REGION_RE = re.compile(r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})?$")


async def _conn(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.pg_admin_user,
                                 database=settings.auth_database)


async def create_client(settings: Settings, name: str, scopes: list[str], region: str = "",
                        client_id: str | None = None) -> tuple[str, str]:
    """Create (or update) a client and issue it a token; returns (client_id, token)."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scopes {bad}; known: {', '.join(SCOPES)}")
    if not REGION_RE.match(region):
        raise ValueError("region must be a 2/4/6/9/12-digit code prefix, or empty for everywhere")
    cid = client_id or f"{name}-{uuid.uuid4().hex[:8]}"
    token = new_token()
    conn = await _conn(settings)
    try:
        async with conn.transaction():
            await conn.execute(
                "insert into api_client (client_id, name, scopes, region_prefix) values ($1, $2, $3, $4) "
                "on conflict (client_id) do update set name = excluded.name, scopes = excluded.scopes, "
                "region_prefix = excluded.region_prefix", cid, name, scopes, region)
            await conn.execute("insert into api_token (token_sha256, client_id) values ($1, $2)",
                               hash_token(token), cid)
    finally:
        await conn.close()
    return cid, token


async def create_person(settings: Settings, name: str, roles: list[str], region: str, *,
                        institution_code: str = "", staff_id: str = "", phone: str | None = None,
                        account_id: str | None = None) -> tuple[str, str]:
    """Create (or update) a person's account (人员账号) with roles; returns (account_id, token).

    The scopes are the roles' (kit.roles); the region is required — a person acts for a county, a city, ...
    The token returned here is an opaque one for scripts and tests; people log in for short-lived ones."""
    from kit.roles import ROLES, scopes_of

    scopes = scopes_of(roles)
    not_for_people = [r for r in roles if ROLES[r].holder == "system"]
    if not_for_people:
        raise ValueError(f"roles {not_for_people} are for systems, not persons")
    if not REGION_RE.match(region):
        raise ValueError("region must be a 2/4/6/9/12-digit code prefix")
    aid = account_id or f"p-{uuid.uuid4().hex[:10]}"
    token = new_token()
    conn = await _conn(settings)
    try:
        async with conn.transaction():
            await conn.execute(
                "insert into api_client (client_id, name, scopes, region_prefix, kind, roles, institution_code, "
                "staff_id, phone) values ($1, $2, $3, $4, 'person', $5, $6, $7, $8) on conflict (client_id) do "
                "update set name = excluded.name, scopes = excluded.scopes, region_prefix = excluded.region_prefix, "
                "kind = 'person', roles = excluded.roles, institution_code = excluded.institution_code, "
                "staff_id = excluded.staff_id, phone = excluded.phone",
                aid, name, sorted(scopes), region, sorted(roles), institution_code, staff_id, phone)
            await conn.execute("insert into api_token (token_sha256, client_id) values ($1, $2)",
                               hash_token(token), aid)
    finally:
        await conn.close()
    return aid, token


async def issue_token(settings: Settings, client_id: str) -> str:
    token = new_token()
    conn = await _conn(settings)
    try:
        await conn.execute("insert into api_token (token_sha256, client_id) values ($1, $2)", hash_token(token),
                           client_id)
    finally:
        await conn.close()
    return token


async def revoke(settings: Settings, token: str) -> bool:
    conn = await _conn(settings)
    try:
        r = await conn.execute("update api_token set revoked_at = now() where token_sha256 = $1 "
                               "and revoked_at is null", hash_token(token))
    finally:
        await conn.close()
    return r.endswith("1")


async def list_clients(settings: Settings) -> list[asyncpg.Record]:
    conn = await _conn(settings)
    try:
        return list(await conn.fetch(
            "select c.client_id, c.name, c.scopes, c.region_prefix, count(t.*) filter (where t.revoked_at is null) "
            "as tokens from api_client c left join api_token t using (client_id) group by c.client_id "
            "order by c.created_at"))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m kit.clients", description="API clients and tokens")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create a client and print a new token")
    c.add_argument("--name", required=True)
    c.add_argument("--scopes", required=True, help="comma list, or 'all'")
    c.add_argument("--region", default="", help="region prefix the client may see ('' = all)")
    c.add_argument("--client-id")
    t = sub.add_parser("token", help="issue another token to a client")
    t.add_argument("client_id")
    r = sub.add_parser("revoke", help="revoke a token")
    r.add_argument("token")
    sub.add_parser("list", help="list clients")
    a = p.parse_args(argv)
    s = get_settings()
    if a.cmd == "create":
        scopes = list(SCOPES) if a.scopes == "all" else [x.strip() for x in a.scopes.split(",") if x.strip()]
        try:
            cid, tok = asyncio.run(create_client(s, a.name, scopes, a.region, a.client_id))
        except ValueError as e:
            sys.exit(str(e))
        print(f"client_id={cid}\ntoken={tok}")
    elif a.cmd == "token":
        print(asyncio.run(issue_token(s, a.client_id)))
    elif a.cmd == "revoke":
        sys.exit(0 if asyncio.run(revoke(s, a.token)) else "no such active token")
    else:
        for row in asyncio.run(list_clients(s)):
            print(f"{row['client_id']}\t{row['name']}\t{','.join(row['scopes'])}\t{row['region_prefix'] or '*'}\t"
                  f"{row['tokens']} tokens")


if __name__ == "__main__":
    main()
