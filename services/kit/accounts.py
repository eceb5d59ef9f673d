"""Accounts (账号): people who log in and systems with long-lived tokens — the operators' CLI and its functions.

    python -m kit.accounts person create --name 张敏 --staff-id 0231 --institution 321324H01 \\
        --roles certificate_custodian --region 321324        # prints a generated password
    python -m kit.accounts person reset-password ACCOUNT_ID   # prints a new one (or --password-stdin)
    python -m kit.accounts person disable|enable ACCOUNT_ID
    python -m kit.accounts person roles ACCOUNT_ID --roles statistician,report_approver
    python -m kit.accounts system create --name county-his --roles his --region 321324
    python -m kit.accounts system rotate CLIENT_ID [--grace-days 7]
    python -m kit.accounts token revoke TOKEN
    python -m kit.accounts list

Every account acts for a region; no command defaults to the whole country (`--region national` says so).
Passwords are hashed with argon2id (argon2-cffi), tokens are stored as SHA-256 only. Works on the credential
database as the admin role (`<prefix>auth`), like kit.migrate.
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kit.auth import REGION_RE, SCOPES, hash_token, new_token
from kit.roles import ROLES, scopes_of
from kit.settings import Settings, get_settings

#: argon2id with the library's defaults (RFC 9106 low-memory profile)
HASHER = PasswordHasher()
MIN_PASSWORD = 10
#: opaque tokens handed to person accounts by scripts and tests (people log in for short-lived ones)
PERSON_TOKEN_TTL = timedelta(days=30)


async def connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.pg_admin_user,
                                 database=settings.auth_database)


def parse_region(region: str) -> str:
    """`national` (the only way to say the whole country) → ""; else a 2/4/6/9/12-digit code prefix."""
    if region == "national":
        return ""
    if not region or not REGION_RE.match(region):
        raise ValueError("region must be a 2/4/6/9/12-digit code prefix, or 'national' for the whole country")
    return region


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or "\x00" in password:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")


def generated_password() -> str:
    return secrets.token_urlsafe(12)


def _person_roles(roles: list[str]) -> frozenset[str]:
    scopes = scopes_of(roles)
    not_for_people = [r for r in roles if ROLES[r].holder == "system"]
    if not_for_people:
        raise ValueError(f"roles {not_for_people} are for systems, not persons")
    return scopes


# ---------------------------------------------------------------------------------------------- people
async def upsert_person(conn: asyncpg.Connection, name: str, roles: list[str], region: str, *,
                        institution_code: str = "", staff_id: str = "", phone: str | None = None,
                        account_id: str | None = None) -> str:
    """Create or update a person's account (never its password); returns the account id."""
    scopes = _person_roles(roles)
    if not REGION_RE.match(region):
        raise ValueError("region must be a 2/4/6/9/12-digit code prefix")
    aid = account_id or f"p-{uuid.uuid4().hex[:10]}"
    await conn.execute(
        "insert into api_client (client_id, name, scopes, region_prefix, kind, roles, institution_code, "
        "staff_id, phone) values ($1, $2, $3, $4, 'person', $5, $6, $7, $8) on conflict (client_id) do "
        "update set name = excluded.name, scopes = excluded.scopes, region_prefix = excluded.region_prefix, "
        "kind = 'person', roles = excluded.roles, institution_code = excluded.institution_code, "
        "staff_id = excluded.staff_id, phone = excluded.phone",
        aid, name, sorted(scopes), region, sorted(roles), institution_code, staff_id, phone)
    return aid


async def store_password(conn: asyncpg.Connection, account_id: str, password: str) -> None:
    """Set a person's password: unlocks the account and ends its sessions (refresh tokens revoked)."""
    check_password(password)
    digest = await asyncio.to_thread(HASHER.hash, password)
    if await conn.fetchval("select kind from api_client where client_id = $1", account_id) != "person":
        raise ValueError(f"no person account {account_id}")
    await conn.execute(
        "insert into account_password (client_id, password_hash) values ($1, $2) on conflict (client_id) do "
        "update set password_hash = excluded.password_hash, failed_count = 0, locked_until = null, "
        "changed_at = now()", account_id, digest)
    await conn.execute("update refresh_token set revoked_at = now() where client_id = $1 and revoked_at is null",
                       account_id)


async def password_matches(conn: asyncpg.Connection, account_id: str, password: str) -> bool:
    stored = await conn.fetchval("select password_hash from account_password where client_id = $1", account_id)
    if stored is None:
        return False
    try:
        return await asyncio.to_thread(HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewPerson:
    name: str
    roles: list[str]
    region: str
    institution_code: str = ""
    staff_id: str = ""
    phone: str | None = None
    account_id: str | None = None


async def create_person_account(settings: Settings, p: NewPerson, password: str | None = None) -> tuple[str, str]:
    """Create (or update) a person who logs in; returns (account_id, password) — generated unless given."""
    pw = password or generated_password()
    check_password(pw)
    conn = await connect(settings)
    try:
        async with conn.transaction():
            if p.account_id and await conn.fetchval("select 1 from api_client where client_id = $1", p.account_id):
                raise ValueError(f"account {p.account_id} exists: use `person roles` or `person reset-password`")
            aid = await upsert_person(conn, p.name, p.roles, parse_region(p.region),
                                      institution_code=p.institution_code, staff_id=p.staff_id, phone=p.phone,
                                      account_id=p.account_id)
            await store_password(conn, aid, pw)
    finally:
        await conn.close()
    return aid, pw


async def ensure_person(settings: Settings, p: NewPerson, password: str) -> str:
    """The account exists as described and logs in with `password` (left alone, sessions kept, if it already
    does). For the demo's known accounts."""
    conn = await connect(settings)
    try:
        async with conn.transaction():
            aid = await upsert_person(conn, p.name, p.roles, parse_region(p.region),
                                      institution_code=p.institution_code, staff_id=p.staff_id, phone=p.phone,
                                      account_id=p.account_id)
            if await password_matches(conn, aid, password):
                await conn.execute("update account_password set failed_count = 0, locked_until = null "
                                   "where client_id = $1", aid)
            else:
                await store_password(conn, aid, password)
            await conn.execute("update api_client set disabled_at = null where client_id = $1", aid)
    finally:
        await conn.close()
    return aid


async def reset_password(settings: Settings, account_id: str, password: str | None = None) -> str:
    pw = password or generated_password()
    conn = await connect(settings)
    try:
        async with conn.transaction():
            await store_password(conn, account_id, pw)
    finally:
        await conn.close()
    return pw


async def set_disabled(settings: Settings, account_id: str, disabled: bool) -> bool:
    """Disable (tokens and sessions stop working within the services' auth cache TTL) or enable an account."""
    conn = await connect(settings)
    try:
        async with conn.transaction():
            r = await conn.execute(
                "update api_client set disabled_at = case when $2 then coalesce(disabled_at, now()) end "
                "where client_id = $1", account_id, disabled)
            if disabled:
                await conn.execute("update refresh_token set revoked_at = now() where client_id = $1 "
                                   "and revoked_at is null", account_id)
    finally:
        await conn.close()
    return r.endswith(" 1")


async def set_roles(settings: Settings, account_id: str, roles: list[str]) -> None:
    """Replace a person's roles (access tokens already issued keep theirs until they expire, ≤ 15 min)."""
    scopes = _person_roles(roles)
    conn = await connect(settings)
    try:
        r = await conn.execute("update api_client set roles = $2, scopes = $3 where client_id = $1 "
                               "and kind = 'person'", account_id, sorted(roles), sorted(scopes))
    finally:
        await conn.close()
    if not r.endswith(" 1"):
        raise ValueError(f"no person account {account_id}")


# ---------------------------------------------------------------------------------------------- tokens
async def insert_token(conn: asyncpg.Connection, client_id: str, ttl: timedelta | None) -> str:
    token = new_token()
    await conn.execute("insert into api_token (token_sha256, client_id, expires_at) values "
                       "($1, $2, now() + $3::interval)", hash_token(token), client_id, ttl)
    return token


async def create_system(settings: Settings, name: str, region: str, *, roles: list[str] | None = None,
                        scopes: list[str] | None = None, client_id: str | None = None,
                        ttl: timedelta | None = None) -> tuple[str, str]:
    """Create (or update) a machine client with roles and/or scopes; returns (client_id, token).
    `region` is a code prefix; "" is national (the CLI asks for `--region national` to say so)."""
    roles = roles or []
    bad_roles = [r for r in roles if r in ROLES and ROLES[r].holder == "person"]
    if bad_roles:
        raise ValueError(f"roles {bad_roles} are for persons, not systems")
    granted = set(scopes_of(roles)) | set(scopes or [])
    bad = sorted(s for s in granted if s not in SCOPES)
    if bad:
        raise ValueError(f"unknown scopes {bad}; known: {', '.join(SCOPES)}")
    if not REGION_RE.match(region):
        raise ValueError("region must be a 2/4/6/9/12-digit code prefix, or 'national'")
    cid = client_id or f"{name}-{uuid.uuid4().hex[:8]}"
    conn = await connect(settings)
    try:
        async with conn.transaction():
            await conn.execute(
                "insert into api_client (client_id, name, scopes, region_prefix, roles) values ($1, $2, $3, $4, $5) "
                "on conflict (client_id) do update set name = excluded.name, scopes = excluded.scopes, "
                "region_prefix = excluded.region_prefix, roles = excluded.roles",
                cid, name, sorted(granted), region, sorted(roles))
            token = await insert_token(conn, cid, ttl or timedelta(days=settings.system_token_ttl_days))
    finally:
        await conn.close()
    return cid, token


async def issue_token(settings: Settings, client_id: str, ttl: timedelta | None = None) -> str:
    conn = await connect(settings)
    try:
        return await insert_token(conn, client_id, ttl or timedelta(days=settings.system_token_ttl_days))
    finally:
        await conn.close()


async def rotate(settings: Settings, client_id: str, grace: timedelta | None = None) -> str:
    """A new token for a client; its other live tokens expire after `grace` (default 7 days), so the system can
    switch over without an outage."""
    grace = timedelta(days=settings.rotation_grace_days) if grace is None else grace
    conn = await connect(settings)
    try:
        async with conn.transaction():
            if not await conn.fetchval("select 1 from api_client where client_id = $1", client_id):
                raise ValueError(f"no client {client_id}")
            await conn.execute(
                "update api_token set expires_at = least(coalesce(expires_at, 'infinity'), now() + $2::interval) "
                "where client_id = $1 and revoked_at is null", client_id, grace)
            return await insert_token(conn, client_id, timedelta(days=settings.system_token_ttl_days))
    finally:
        await conn.close()


async def revoke_token(settings: Settings, token: str) -> bool:
    """Revoke an opaque token, or a refresh token (with the rest of its login session)."""
    conn = await connect(settings)
    try:
        r = await conn.execute("update api_token set revoked_at = now() where token_sha256 = $1 "
                               "and revoked_at is null", hash_token(token))
        r2 = await conn.execute(
            "update refresh_token set revoked_at = now() where revoked_at is null and family = "
            "(select family from refresh_token where token_sha256 = $1)", hash_token(token))
    finally:
        await conn.close()
    return r.endswith(" 1") or not r2.endswith(" 0")


async def list_accounts(settings: Settings) -> list[asyncpg.Record]:
    conn = await connect(settings)
    try:
        return list(await conn.fetch(
            "select c.client_id, c.kind, c.name, c.roles, c.scopes, c.region_prefix, c.institution_code, "
            "c.staff_id, c.disabled_at, p.locked_until > now() as locked, "
            "count(t.*) filter (where t.revoked_at is null and (t.expires_at is null or t.expires_at > now())) "
            "as tokens, max(t.expires_at) filter (where t.revoked_at is null) as expires_at "
            "from api_client c left join api_token t using (client_id) left join account_password p "
            "using (client_id) group by c.client_id, p.locked_until order by c.kind, c.client_id"))
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------- CLI
def _csv(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def _password_arg(a: argparse.Namespace) -> str | None:
    return sys.stdin.readline().rstrip("\n") if a.password_stdin else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit.accounts", description="People (who log in) and systems "
                                "(long-lived tokens) of the platform; every account acts for a region.")
    kinds = p.add_subparsers(dest="kind", required=True)

    person = kinds.add_parser("person", help="staff who log in (人员)").add_subparsers(dest="cmd", required=True)
    c = person.add_parser("create", help="create a person; prints a generated password unless --password-stdin")
    c.add_argument("--name", required=True)
    c.add_argument("--staff-id", default="", help="工号 at the institution")
    c.add_argument("--phone")
    c.add_argument("--institution", default="", help="institution code ('' for a bureau)")
    c.add_argument("--roles", required=True, help=f"comma list of: {', '.join(ROLES)}")
    c.add_argument("--region", required=True, help="region code prefix the person acts for, or 'national'")
    c.add_argument("--account-id", help="the login name (default: generated)")
    c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    r = person.add_parser("reset-password", help="set a new password (prints it unless --password-stdin); "
                          "unlocks the account and ends its sessions")
    r.add_argument("account_id")
    r.add_argument("--password-stdin", action="store_true")
    for cmd, what in (("disable", "tokens and sessions stop working"), ("enable", "may log in again")):
        d = person.add_parser(cmd, help=f"{cmd} an account ({what})")
        d.add_argument("account_id")
    ro = person.add_parser("roles", help="replace a person's roles")
    ro.add_argument("account_id")
    ro.add_argument("--roles", required=True, help="comma list")

    system = kinds.add_parser("system", help="machine clients (系统) with long-lived tokens").add_subparsers(
        dest="cmd", required=True)
    sc = system.add_parser("create", help="create a system client and print its token")
    sc.add_argument("--name", required=True)
    sc.add_argument("--region", required=True, help="region code prefix, or 'national' (explicitly)")
    sc.add_argument("--roles", default="", help="comma list of roles a system may hold (his, verifier, ...)")
    sc.add_argument("--scopes", default="", help="comma list of extra scopes, or 'all'")
    sc.add_argument("--client-id")
    sc.add_argument("--days", type=int, help="token lifetime in days (default 365)")
    sr = system.add_parser("rotate", help="issue a new token; the old ones expire after the grace period")
    sr.add_argument("client_id")
    sr.add_argument("--grace-days", type=float, help="how long the old token still works (default 7)")
    sd = system.add_parser("disable", help="disable a system client (its tokens stop working)")
    sd.add_argument("client_id")

    token = kinds.add_parser("token", help="tokens").add_subparsers(dest="cmd", required=True)
    tr = token.add_parser("revoke", help="revoke a system token or a refresh token (its whole session)")
    tr.add_argument("token")

    kinds.add_parser("list", help="people and systems: roles, region, status, token expiry")
    return p


def _run(a: argparse.Namespace, s: Settings) -> str:
    """Carry out one subcommand; returns what to print."""
    if a.kind == "person" and a.cmd == "create":
        new = NewPerson(a.name, _csv(a.roles), a.region, a.institution, a.staff_id, a.phone, a.account_id)
        aid, pw = asyncio.run(create_person_account(s, new, _password_arg(a)))
        return f"account_id={aid}" + ("" if a.password_stdin else f"\npassword={pw}")
    if a.kind == "person" and a.cmd == "reset-password":
        pw = asyncio.run(reset_password(s, a.account_id, _password_arg(a)))
        return "password set" if a.password_stdin else f"password={pw}"
    if a.kind in ("person", "system") and a.cmd in ("disable", "enable"):
        who = getattr(a, "account_id", None) or a.client_id
        if not asyncio.run(set_disabled(s, who, a.cmd == "disable")):
            raise ValueError(f"no account {who}")
        return f"{who} {a.cmd}d"
    if a.kind == "person" and a.cmd == "roles":
        asyncio.run(set_roles(s, a.account_id, _csv(a.roles)))
        return f"{a.account_id} roles={a.roles}"
    if a.kind == "system" and a.cmd == "create":
        scopes = list(SCOPES) if a.scopes == "all" else _csv(a.scopes)
        ttl = timedelta(days=a.days) if a.days else None
        cid, tok = asyncio.run(create_system(s, a.name, parse_region(a.region), roles=_csv(a.roles),
                                             scopes=scopes, client_id=a.client_id, ttl=ttl))
        return f"client_id={cid}\ntoken={tok}"
    if a.kind == "system" and a.cmd == "rotate":
        grace = timedelta(days=a.grace_days) if a.grace_days is not None else None
        return f"token={asyncio.run(rotate(s, a.client_id, grace))}"
    if a.kind == "token":
        if not asyncio.run(revoke_token(s, a.token)):
            raise ValueError("no such active token")
        return "revoked"
    return "\n".join(list_line(r) for r in asyncio.run(list_accounts(s)))


def list_line(r: asyncpg.Record) -> str:
    status = "disabled" if r["disabled_at"] else "locked" if r["locked"] else "active"
    expiry = r["expires_at"].isoformat(timespec="minutes") if r["expires_at"] else "-"
    what = ",".join(r["roles"]) or ",".join(r["scopes"])
    return (f"{r['client_id']}\t{r['kind']}\t{r['name']}\t{what}\t{r['region_prefix'] or 'national'}\t"
            f"{r['institution_code'] or '-'}\t{status}\t{r['tokens']} tokens, until {expiry}")


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    try:
        print(_run(a, get_settings()))
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
