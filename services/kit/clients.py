"""Operators' command for API clients and tokens — the older, smaller face of `kit.accounts` (kept for scripts,
tests and `mchctl clients`); the functions are thin wrappers over kit.accounts.

    python -m kit.clients create --name his-county-hospital --scopes registry:write --region 320582
    python -m kit.clients create --name ops --scopes all --region national   # the whole country, said explicitly
    python -m kit.clients token CLIENT_ID        # another token for an existing client
    python -m kit.clients revoke TOKEN
    python -m kit.clients list
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

import asyncpg

from kit import accounts
from kit.auth import SCOPES
from kit.settings import Settings, get_settings


async def create_client(settings: Settings, name: str, scopes: list[str], region: str = "",
                        client_id: str | None = None, ttl: timedelta | None = None) -> tuple[str, str]:
    """Create (or update) a system client and issue it a token (365 days unless `ttl`); returns (client_id,
    token). `region` "" is national: callers say so (the CLI requires `--region national`)."""
    return await accounts.create_system(settings, name, region, scopes=scopes, client_id=client_id, ttl=ttl)


async def create_person(settings: Settings, name: str, roles: list[str], region: str, *,
                        institution_code: str = "", staff_id: str = "", phone: str | None = None,
                        account_id: str | None = None, ttl: timedelta = accounts.PERSON_TOKEN_TTL) -> tuple[str, str]:
    """Create (or update) a person's account (人员账号) with roles; returns (account_id, token).

    The scopes are the roles' (kit.roles); the region is required — a person acts for a county, a city, ...
    The token returned here is an opaque one (30 days) for scripts and tests; people log in for short-lived
    ones. The password, if the person has one, is left as it is."""
    conn = await accounts.connect(settings)
    try:
        async with conn.transaction():
            aid = await accounts.upsert_person(conn, name, roles, region, institution_code=institution_code,
                                               staff_id=staff_id, phone=phone, account_id=account_id)
            token = await accounts.insert_token(conn, aid, ttl)
    finally:
        await conn.close()
    return aid, token


async def issue_token(settings: Settings, client_id: str) -> str:
    return await accounts.issue_token(settings, client_id)


async def revoke(settings: Settings, token: str) -> bool:
    return await accounts.revoke_token(settings, token)


async def list_clients(settings: Settings) -> list[asyncpg.Record]:
    return await accounts.list_accounts(settings)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m kit.clients", description="API clients and tokens "
                                "(see also python -m kit.accounts for people and rotation)")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create a client and print a new token")
    c.add_argument("--name", required=True)
    c.add_argument("--scopes", required=True, help="comma list, or 'all'")
    c.add_argument("--region", required=True, help="region prefix the client may see, or 'national'")
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
            cid, tok = asyncio.run(create_client(s, a.name, scopes, accounts.parse_region(a.region), a.client_id))
        except ValueError as e:
            sys.exit(str(e))
        print(f"client_id={cid}\ntoken={tok}")
    elif a.cmd == "token":
        print(asyncio.run(issue_token(s, a.client_id)))
    elif a.cmd == "revoke":
        sys.exit(0 if asyncio.run(revoke(s, a.token)) else "no such active token")
    else:
        for row in asyncio.run(list_clients(s)):
            print(accounts.list_line(row))


if __name__ == "__main__":
    main()
