"""Bearer-token auth shared by all services.

A token belongs to a client; a client has scopes and a region prefix (the part of the 12-digit region tree
it may see; "" = everywhere). Tokens are random 256-bit strings and only their SHA-256 is stored, in the
platform's credential database (`<prefix>auth`), which every service reads (decisions.md: one identity
store, not four copies). Lookups are cached briefly so auth costs no query on the hot path.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import text

from kit.db import Database
from kit.errors import Problem

#: every scope of the platform; `pii:read` unmasks personal fields, `admin` is the operators' own
SCOPES = (
    "registry:write", "registry:read",
    "screening:write", "screening:read",
    "certificates:stock", "certificates:issue", "certificates:read", "certificates:verify",
    "certificates:prepare", "certificates:seal", "certificates:void",
    "indicators:read", "indicators:admin", "reports:submit", "reports:approve",
    "pii:read", "audit:read", "accounts:admin", "admin",
)

AUTH_DDL = """
create table if not exists api_client (
    client_id text primary key,
    name text not null,
    scopes text[] not null,
    region_prefix text not null default '' check (region_prefix ~ '^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})?$'),
    created_at timestamptz not null default now()
);
create table if not exists api_token (
    token_sha256 text primary key,
    client_id text not null references api_client(client_id),
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
-- accounts are persons (staff who log in) or systems (machine clients); roles grant the scopes (kit.roles)
alter table api_client add column if not exists kind text not null default 'system'
    check (kind in ('person', 'system'));
alter table api_client add column if not exists roles text[] not null default '{}';
alter table api_client add column if not exists institution_code text not null default '';
alter table api_client add column if not exists staff_id text not null default '';
alter table api_client add column if not exists phone text;
alter table api_client add column if not exists disabled_at timestamptz;
alter table api_token add column if not exists expires_at timestamptz;
"""


@dataclass(frozen=True)
class Principal:
    """Who is acting: a person (人员, logged in) or a named system (a HIS interface, an operator's script).

    `client_id` is the account id — the person's account id or the system client's id — and is what audit rows
    and actor columns (prepared_by, sealed_by, voided_by, ...) record: the actor always comes from the token,
    never from a request body. `scopes` are what the roles grant; `region_prefix` the part of the region tree
    the account acts for ("" only for national accounts, which no one gets by default)."""

    client_id: str
    name: str
    scopes: frozenset[str]
    region_prefix: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: "person" (a member of staff, logged in) or "system" (a machine client with a long-lived token)
    kind: str = "system"
    roles: frozenset[str] = frozenset()
    #: the institution the person works at (a hospital, an MCH centre) or "" for a bureau
    institution_code: str = ""
    #: the person's staff id (工号) at that institution, shown beside the name
    staff_id: str = ""

    @property
    def actor(self) -> str:
        """The id an action is recorded under (audit rows, prepared_by, sealed_by, ...)."""
        return self.client_id

    @property
    def is_person(self) -> bool:
        return self.kind == "person"

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def sees_region(self, region_code: str) -> bool:
        """A code or query prefix is visible if it lies under the client's region (a wider one is not)."""
        return region_code.startswith(self.region_prefix)

    def require_region(self, region: str, field_name: str = "region") -> None:
        if not self.sees_region(region):
            raise Problem(403, "Forbidden", f"{field_name} {region or '(all)'} is outside this client's region "
                          f"{self.region_prefix}", kind="forbidden-region")

    def require_object(self, region_code: str | None, what: str, key: str) -> None:
        """Object-level authorisation in one place: an object (person, pregnancy, encounter, institution,
        certificate, ...) whose *current* region lies outside the caller's is answered exactly as if it did
        not exist — the same 404, no region code, no hint that it exists elsewhere (OWASP API #1)."""
        if region_code is None or not self.sees_region(region_code):
            raise Problem(404, "Not found", f"{what} {key} does not exist", kind="not-found")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "mch_" + secrets.token_urlsafe(32)


class Authenticator:
    """Resolves bearer tokens to principals, with a short positive cache."""

    def __init__(self, db: Database, ttl_s: float = 30.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, token: str) -> Principal | None:
        digest = hash_token(token)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        async with self.db.connect() as conn:
            row = (await conn.execute(text(
                "select c.client_id, c.name, c.scopes, c.region_prefix, c.kind, c.roles, c.institution_code, "
                "c.staff_id from api_token t join api_client c using (client_id) where t.token_sha256 = :h "
                "and t.revoked_at is null and c.disabled_at is null "
                "and (t.expires_at is null or t.expires_at > now())"),
                {"h": digest})).first()
        if row is None:
            return None
        p = Principal(row.client_id, row.name, frozenset(row.scopes), row.region_prefix, kind=row.kind,
                      roles=frozenset(row.roles), institution_code=row.institution_code, staff_id=row.staff_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, p)
        return p


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, kind="unauthorized", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    auth: Authenticator = request.app.state.authenticator
    p = await auth.principal(token.strip())
    if p is None:
        raise _unauthorized("the token is not valid (unknown or revoked)")
    request.state.principal = p
    return p


def require(*scopes: str):  # type: ignore[no-untyped-def]
    """FastAPI dependency: a valid token holding every one of `scopes`."""

    async def dependency(request: Request) -> Principal:
        p = await authenticate(request)
        missing = [s for s in scopes if not p.has(s)]
        if missing:
            raise Problem(403, "Forbidden", f"the token lacks the scope {', '.join(missing)}",
                          kind="forbidden-scope")
        return p

    dependency.__name__ = "require_" + "_".join(s.replace(":", "_") for s in scopes)
    return dependency


def mask(value: str | None, keep_start: int = 1, keep_end: int = 0) -> str | None:
    """張三 → 张*; 320582199001011234 → 3***********1234 style masking of personal fields."""
    if value is None:
        return None
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + (value[-keep_end:] if keep_end else "")
