"""Bearer-token auth shared by all services.

A token belongs to a client; a client has scopes and a region prefix (the part of the 12-digit region tree
it may see; "" = everywhere). Tokens are random 256-bit strings and only their SHA-256 is stored, in the
platform's credential database (`<prefix>auth`), which every service reads (decisions.md: one identity
store, not four copies). Lookups are cached briefly so auth costs no query on the hot path.

Three kinds of bearer token resolve to a `Principal`:
- opaque tokens (`mch_...`) of machine clients (and scripts' person tokens), with an expiry (rotation: kit.accounts);
- the platform's own access tokens: short-lived JWTs (HS256, key in the credential database or MCH_JWT_SECRET)
  issued by `POST /v1/auth/login` (kit.login) to a person; the scopes are derived from the roles at every
  verification, never read from the token, and the account must still be active;
- when configured (MCH_OIDC_*), an external OpenID Connect provider's JWTs (e.g. Keycloak), verified against its
  JWKS; its claims are mapped to roles, region and institution, and an unknown role grants nothing.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import Request
from sqlalchemy import text

from kit import logs
from kit.db import Database
from kit.errors import Problem
from kit.roles import ROLES, scopes_of
from kit.settings import Settings, get_settings

log = logging.getLogger("kit.auth")

#: `iss` and `aud` of the platform's own access tokens (an external provider's tokens carry its issuer)
ISSUER = "mch-platform"
#: a region prefix: 2/4/6/9/12 digits, or "" (national, never a default)
REGION_RE = re.compile(r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})?$")

#: every scope of the platform; `pii:read` unmasks personal fields, `admin` is the operators' own
SCOPES = (
    "registry:write", "registry:read", "registry:merge",
    "screening:write", "screening:read",
    "certificates:stock", "certificates:issue", "certificates:read", "certificates:verify",
    "certificates:prepare", "certificates:seal", "certificates:void",
    "indicators:read", "indicators:admin", "reports:submit", "reports:approve",
    "pii:read", "audit:read", "accounts:admin", "admin",
    "persons:review",
    "quality:read", "quality:answer", "quality:accept", "quality:admin",
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
-- a person's password (argon2id hash) and the lockout counter: apart from api_client, so the upsert of an
-- account (kit.clients.create_person) never touches a password
create table if not exists account_password (
    client_id text primary key references api_client(client_id),
    password_hash text not null,
    failed_count int not null default 0,
    locked_until timestamptz,
    changed_at timestamptz not null default now()
);
-- refresh tokens of logged-in persons (SHA-256 only): one family per login, rotated on each use; a used one
-- presented again revokes its family (it was stolen or replayed)
create table if not exists refresh_token (
    token_sha256 text primary key,
    client_id text not null references api_client(client_id),
    family uuid not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz,
    revoked_at timestamptz
);
create index if not exists refresh_token_family on refresh_token (family);
-- the key the platform signs its access tokens with, generated once (kit.migrate), shared by all services
create table if not exists signing_key (
    kid text primary key,
    secret text not null,
    created_at timestamptz not null default now()
);
"""


def auth_grants(role: str) -> str:
    """What a service's database role may do in the credential database: read accounts and tokens, count failed
    logins, keep refresh tokens; never create accounts or change a password (that is the operators' CLI)."""
    return (f'grant select on api_client, api_token, signing_key to "{role}"; '
            f'grant select, update on account_password to "{role}"; '
            f'grant select, insert, update on refresh_token to "{role}"')


def new_signing_secret() -> str:
    """256 random bits from the OS's CSPRNG, for HS256."""
    return secrets.token_urlsafe(32)


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


def new_refresh_token() -> str:
    return "mchr_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Account:
    """A person's account as the login reads it (the claims of its access tokens)."""

    account_id: str
    name: str
    kind: str
    roles: tuple[str, ...]
    region: str
    institution_code: str
    staff_id: str


def issue_access_token(account: Account, key: str, ttl_s: int, now: float | None = None) -> tuple[str, int]:
    """A signed access token (JWT, HS256) for a logged-in person; returns (token, seconds it lives)."""
    iat = int(now if now is not None else time.time())
    claims = {"iss": ISSUER, "aud": ISSUER, "sub": account.account_id, "name": account.name, "kind": account.kind,
              "roles": sorted(account.roles), "region": account.region, "institution": account.institution_code,
              "staff_id": account.staff_id, "iat": iat, "exp": iat + ttl_s, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="HS256"), ttl_s


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a token's claims (`realm_access.roles`), or None."""
    cur: Any = claims
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def principal_from_claims(claims: dict[str, Any]) -> Principal | None:
    """Our own access token's claims → a Principal, with the scopes the roles grant *now* (kit.roles)."""
    roles, region = claims.get("roles"), claims.get("region")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return None
    if not isinstance(region, str) or not REGION_RE.match(region):
        return None
    try:
        scopes = scopes_of(roles)
    except ValueError:
        return None
    return Principal(str(claims["sub"]), str(claims.get("name", "")), scopes, region,
                     extra={"auth": "jwt", "jti": str(claims.get("jti", ""))}, kind=str(claims.get("kind", "person")),
                     roles=frozenset(roles), institution_code=str(claims.get("institution", "")),
                     staff_id=str(claims.get("staff_id", "")))


def principal_from_oidc(claims: dict[str, Any], s: Settings) -> Principal | None:
    """An external provider's claims → a Principal (a person). Roles it names that the platform does not know,
    or that only systems hold, grant nothing; a token without a valid region is refused (never national by
    default; the provider says `national` for that)."""
    raw_roles = claim_at(claims, s.oidc_roles_claim)
    roles = frozenset(r for r in (raw_roles if isinstance(raw_roles, list) else [])
                      if isinstance(r, str) and r in ROLES and ROLES[r].holder != "system")
    region = claim_at(claims, s.oidc_region_claim)
    if isinstance(region, list) and len(region) == 1:  # Keycloak user attributes may come as one-element lists
        region = region[0]
    if not isinstance(region, str) or not region:
        return None
    region = "" if region == "national" else region
    if not REGION_RE.match(region):
        return None
    user = claim_at(claims, s.oidc_username_claim) or claims.get("sub")
    inst, staff = claim_at(claims, s.oidc_institution_claim), claim_at(claims, s.oidc_staff_id_claim)
    name = claim_at(claims, s.oidc_name_claim) or user
    return Principal(f"oidc:{user}", str(name), scopes_of(roles), region, extra={"auth": "oidc"}, kind="person",
                     roles=roles, institution_code=str(inst or ""), staff_id=str(staff or ""))


class Authenticator:
    """Resolves bearer tokens to principals, with a short positive cache (never past a token's own expiry)."""

    def __init__(self, db: Database, ttl_s: float | None = None, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or get_settings()
        self.ttl_s = self.settings.auth_cache_ttl_s if ttl_s is None else ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._key: str | None = self.settings.jwt_secret or None
        self._jwks: jwt.PyJWKClient | None = (
            jwt.PyJWKClient(self.settings.oidc_jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if self.settings.oidc_enabled else None)

    async def signing_key(self) -> str:
        """The platform's HS256 key: MCH_JWT_SECRET, else the one kit.migrate generated in the credential
        database (read once per process)."""
        if self._key is None:
            async with self.db.connect() as conn:
                key = (await conn.execute(text(
                    "select secret from signing_key order by created_at desc limit 1"))).scalar()
            if not key:
                raise RuntimeError("no signing key in the credential database: run python -m kit.migrate")
            self._key = str(key)
        return self._key

    async def principal(self, token: str) -> Principal | None:
        digest = hash_token(token)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        found = await (self._jwt(token) if token.count(".") == 2 else self._opaque(digest))
        if found is None:
            return None
        p, life_s = found
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + min(self.ttl_s, life_s), p)
        return p

    async def _opaque(self, digest: str) -> tuple[Principal, float] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(text(
                "select c.client_id, c.name, c.scopes, c.region_prefix, c.kind, c.roles, c.institution_code, "
                "c.staff_id, extract(epoch from t.expires_at - now()) as life_s from api_token t "
                "join api_client c using (client_id) where t.token_sha256 = :h "
                "and t.revoked_at is null and c.disabled_at is null "
                "and (t.expires_at is null or t.expires_at > now())"),
                {"h": digest})).first()
        if row is None:
            return None
        p = Principal(row.client_id, row.name, frozenset(row.scopes), row.region_prefix, extra={"auth": "token"},
                      kind=row.kind, roles=frozenset(row.roles), institution_code=row.institution_code,
                      staff_id=row.staff_id)
        return p, float(row.life_s) if row.life_s is not None else self.ttl_s

    async def _jwt(self, token: str) -> tuple[Principal, float] | None:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            if issuer == ISSUER:
                claims = jwt.decode(token, await self.signing_key(), algorithms=["HS256"], issuer=ISSUER,
                                    audience=ISSUER, leeway=5,
                                    options={"require": ["exp", "iat", "sub", "jti", "roles", "region"]})
                p = principal_from_claims(claims)
                if p is None or not await self._active(p.client_id):
                    return None
            elif self._jwks is not None and issuer == self.settings.oidc_issuer:
                claims = await self._verify_oidc(token)
                p = principal_from_oidc(claims, self.settings)
            else:
                return None
        except jwt.PyJWTError as e:
            log.info("refused a JWT: %s", type(e).__name__)
            return None
        return (p, float(claims["exp"]) - time.time()) if p is not None else None

    async def _verify_oidc(self, token: str) -> dict[str, Any]:
        """Verify an external provider's token against its JWKS (fetched in a thread: PyJWKClient blocks)."""
        assert self._jwks is not None
        key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        algorithms = [a.strip() for a in self.settings.oidc_algorithms.split(",") if a.strip()]
        return jwt.decode(token, key.key, algorithms=algorithms, issuer=self.settings.oidc_issuer,
                          audience=self.settings.oidc_audience, leeway=5,
                          options={"require": ["exp", "iat", "sub"]})

    async def _active(self, account_id: str) -> bool:
        """A person's account still exists and is not disabled (the caller caches the answer for the TTL)."""
        async with self.db.connect() as conn:
            return bool((await conn.execute(text(
                "select 1 from api_client where client_id = :a and disabled_at is null"),
                {"a": account_id})).scalar())


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
        raise _unauthorized("the token is not valid (unknown, expired or revoked)")
    request.state.principal = p
    logs.actor.set(f"{p.kind}:{p.client_id} {p.name}")
    return p


def require(*scopes: str, person: bool = False):  # type: ignore[no-untyped-def]
    """FastAPI dependency: a valid token holding every one of `scopes`; with `person`, the token of a person
    logged in (人员), never a system's — what someone signs for (preparing, sealing, approving) is done by
    someone. kit.app writes both into each operation's OpenAPI (`x-mch-scopes`, `x-mch-person`)."""

    async def dependency(request: Request) -> Principal:
        p = await authenticate(request)
        missing = [s for s in scopes if not p.has(s)]
        if missing:
            raise Problem(403, "Forbidden", f"the token lacks the scope {', '.join(missing)}",
                          kind="forbidden-scope")
        if person and not p.is_person:
            reason = "this is done by a person logged in (a staff account), not by a system token"
            raise Problem(403, "Forbidden", reason, kind="forbidden-system",
                          errors=[{"field": "authorization", "reason": reason}])
        return p

    dependency.__name__ = ("person_" if person else "require_") + "_".join(s.replace(":", "_") for s in scopes)
    dependency.mch_scopes = scopes  # type: ignore[attr-defined]
    dependency.mch_person = person  # type: ignore[attr-defined]
    return dependency


def scopes_required(dependant: Any) -> tuple[tuple[str, ...], bool] | None:
    """(the scopes, person only) a route's `require(...)` dependency demands (searched through
    sub-dependencies), or None when the route checks no token — kit.app writes them into the OpenAPI."""
    for dep in dependant.dependencies:
        found = getattr(dep.call, "mch_scopes", None)
        if found is not None:
            return tuple(found), bool(getattr(dep.call, "mch_person", False))
        sub = scopes_required(dep)
        if sub is not None:
            return sub
    return None


def mask(value: str | None, keep_start: int = 1, keep_end: int = 0) -> str | None:
    """張三 → 张*; 320582199001011234 → 3***********1234 style masking of personal fields."""
    if value is None:
        return None
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + (value[-keep_end:] if keep_end else "")
