"""The accounts CLI (`python -m kit.accounts`, `python -m kit.clients`) against a scratch credential database."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from kit.auth import hash_token
from kit.migrate import create_databases
from kit.roles import scopes_of
from kit.settings import Settings

SUBCOMMANDS: tuple[list[str], ...] = (
    [], ["person"], ["person", "create"], ["person", "reset-password"], ["person", "disable"], ["person", "enable"],
    ["person", "roles"], ["system"], ["system", "create"], ["system", "rotate"], ["system", "disable"], ["token"],
    ["token", "revoke"], ["list"])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Settings]:
    """A credential database of its own (`kt_<random>_auth`), dropped afterwards."""
    s = Settings(db_prefix=f"kt{uuid.uuid4().hex[:6]}_")
    asyncio.run(create_databases(s, services=()))
    yield s

    async def drop() -> None:
        conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user, database="postgres")
        try:
            await conn.execute(f'drop database if exists "{s.auth_database}" with (force)')
        finally:
            await conn.close()

    asyncio.run(drop())


def cli(settings: Settings | None, *args: str, module: str = "kit.accounts",
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"MCH_DB_PREFIX": settings.db_prefix} if settings else {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=60)


def values(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def fetch(settings: Settings, sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.pg_admin_user,
                                     database=settings.auth_database)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.parametrize("sub", SUBCOMMANDS, ids=lambda s: " ".join(s) or "top")
def test_every_subcommand_has_help(sub: list[str]) -> None:
    r = cli(None, *sub, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


@pytest.mark.parametrize("module", ["kit.accounts", "kit.clients"])
def test_creating_a_system_needs_an_explicit_region(scratch: Settings, module: str) -> None:
    name = f"his-{uuid.uuid4().hex[:6]}"
    args = ["system", "create", "--name", name, "--roles", "his"] if module == "kit.accounts" else \
        ["create", "--name", name, "--scopes", "registry:write"]
    r = cli(scratch, *args, module=module)
    assert r.returncode != 0 and "--region" in r.stderr
    assert not fetch(scratch, "select 1 from api_client where name = $1", name)
    # the whole country only when said so
    ok = cli(scratch, *args, "--region", "national", module=module)
    assert ok.returncode == 0, ok.stderr
    cid = values(ok.stdout)["client_id"]
    assert fetch(scratch, "select region_prefix from api_client where client_id = $1", cid)[0][0] == ""


def test_person_lifecycle_through_the_cli(scratch: Settings) -> None:
    aid = f"clerk-{uuid.uuid4().hex[:6]}"
    r = cli(scratch, "person", "create", "--name", "张敏", "--staff-id", "0231", "--institution", "321324H01",
            "--roles", "certificate_custodian", "--region", "321324", "--account-id", aid)
    assert r.returncode == 0, r.stderr
    pw = values(r.stdout)["password"]
    row = fetch(scratch, "select c.roles, c.scopes, c.region_prefix, c.institution_code, p.password_hash "
                "from api_client c join account_password p using (client_id) where client_id = $1", aid)[0]
    assert row["roles"] == ["certificate_custodian"] and row["region_prefix"] == "321324"
    assert set(row["scopes"]) == set(scopes_of(["certificate_custodian"])) and row["institution_code"] == "321324H01"
    assert row["password_hash"].startswith("$argon2id$") and pw not in row["password_hash"]

    assert cli(scratch, "person", "roles", aid, "--roles", "certificate_custodian,office_head").returncode == 0
    roles = fetch(scratch, "select roles, scopes from api_client where client_id = $1", aid)[0]
    assert roles["roles"] == ["certificate_custodian", "office_head"]
    assert set(roles["scopes"]) == set(scopes_of(["certificate_custodian", "office_head"]))
    refused = cli(scratch, "person", "roles", aid, "--roles", "his")  # a system's role
    assert refused.returncode != 0 and "system" in refused.stderr

    reset = cli(scratch, "person", "reset-password", aid, "--password-stdin", stdin="Another-secret-42\n")
    assert reset.returncode == 0 and "Another-secret-42" not in reset.stdout
    assert fetch(scratch, "select password_hash from account_password where client_id = $1", aid)[0][0] != \
        row["password_hash"]
    assert cli(scratch, "person", "reset-password", aid, "--password-stdin", stdin="short\n").returncode != 0

    assert cli(scratch, "person", "disable", aid).returncode == 0
    assert fetch(scratch, "select disabled_at from api_client where client_id = $1", aid)[0][0] is not None
    listed = cli(scratch, "list")
    assert any(line.startswith(aid) and "disabled" in line and "321324" in line
               for line in listed.stdout.splitlines())
    assert cli(scratch, "person", "enable", aid).returncode == 0
    assert fetch(scratch, "select disabled_at from api_client where client_id = $1", aid)[0][0] is None
    assert cli(scratch, "person", "create", "--name", "x", "--roles", "statistician").returncode != 0


def test_system_rotate_and_revoke_through_the_cli(scratch: Settings) -> None:
    r = cli(scratch, "system", "create", "--name", "county-his", "--roles", "his", "--region", "320582")
    assert r.returncode == 0, r.stderr
    cid, old = values(r.stdout)["client_id"], values(r.stdout)["token"]
    rot = cli(scratch, "system", "rotate", cid, "--grace-days", "3")
    assert rot.returncode == 0, rot.stderr
    new = values(rot.stdout)["token"]
    rows = {x["token_sha256"]: x for x in fetch(
        scratch, "select token_sha256, extract(epoch from expires_at - now()) as life from api_token "
        "where client_id = $1", cid)}
    assert 3 * 86400 - 60 < rows[hash_token(old)]["life"] <= 3 * 86400
    assert rows[hash_token(new)]["life"] > 364 * 86400
    assert cli(scratch, "token", "revoke", new).returncode == 0
    assert cli(scratch, "token", "revoke", new).returncode != 0  # already revoked
    assert fetch(scratch, "select revoked_at from api_token where token_sha256 = $1", hash_token(new))[0][0]
    assert any(line.startswith(cid) and "his" in line for line in cli(scratch, "list").stdout.splitlines())
