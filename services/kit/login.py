"""People log in (登录): `/v1/auth/login`, `/refresh`, `/logout`, `/me`, served by every service through kit.

A login checks the password (argon2id), counts failures (5 in a row lock the account for 15 minutes) and answers
a short-lived signed access token (JWT, 15 min) and a refresh token (opaque, stored hashed, 12 h per login,
rotated on each use). Every refusal — unknown account, wrong password, locked, disabled — is the same 401, so a
caller learns nothing about which accounts exist. The credential database is shared, so a person logs in at any
service and the token works at all four.
"""
from __future__ import annotations

import asyncio
import uuid
from functools import lru_cache
from typing import Annotated, Any

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.accounts import HASHER
from kit.auth import (
    Account,
    Authenticator,
    Principal,
    authenticate,
    hash_token,
    issue_access_token,
    new_refresh_token,
)
from kit.db import Database
from kit.errors import Problem

router = APIRouter(prefix="/v1/auth", tags=["auth"])

#: marks, in the OpenAPI, the operations that need no bearer token (the login itself) or any valid one (`/me`):
#: the authorisation matrix test reads it instead of expecting a 401/403 there
PUBLIC = {"x-mch-auth": "none"}
ANY_TOKEN = {"x-mch-auth": "any"}


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise ValueError("must not contain NUL characters")
    return v


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: the account id (登录名), e.g. demo-321324-stat
    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]

    _nul = field_validator("username", "password")(_no_nul)


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]

    _nul = field_validator("refresh_token")(_no_nul)


class AccountOut(BaseModel):
    account_id: str
    name: str
    kind: str
    roles: list[str]
    region: str
    institution_code: str
    staff_id: str
    scopes: list[str]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    account: AccountOut


def _refused() -> Problem:
    """The one answer to every failed login or refresh: nothing about why."""
    return Problem(401, "Unauthorized", "the username or password is not correct, or the session has ended",
                   kind="unauthorized", headers={"WWW-Authenticate": "Bearer"})


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash(uuid.uuid4().hex)


def _verify(stored: str | None, password: str) -> bool:
    """argon2 verification (or, with no account, the same work against a dummy: equal timing either way)."""
    try:
        return HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


_ACCOUNT = ("c.client_id, c.name, c.kind, c.roles, c.region_prefix, c.institution_code, c.staff_id, "
            "c.scopes")


def _account(row: Any) -> Account:
    return Account(row.client_id, row.name, row.kind, tuple(row.roles), row.region_prefix, row.institution_code,
                   row.staff_id)


async def _issue(conn: AsyncConnection, auth: Authenticator, row: Any, family: uuid.UUID,
                 session_end: Any = None) -> TokenOut:
    """An access token and a new refresh token of the session `family` (which ends `refresh_token_ttl_s` after
    the login: rotation never extends it)."""
    s = auth.settings
    refresh = new_refresh_token()
    life = (await conn.execute(text(
        "insert into refresh_token (token_sha256, client_id, family, expires_at) values (:h, :c, :f, "
        "coalesce(cast(:end as timestamptz), now() + make_interval(secs => :ttl))) "
        "returning extract(epoch from expires_at - now())"),
        {"h": hash_token(refresh), "c": row.client_id, "f": family, "end": session_end,
         "ttl": s.refresh_token_ttl_s})).scalar()
    access, expires_in = issue_access_token(_account(row), await auth.signing_key(), s.access_token_ttl_s)
    account = AccountOut(account_id=row.client_id, name=row.name, kind=row.kind, roles=sorted(row.roles),
                         region=row.region_prefix, institution_code=row.institution_code, staff_id=row.staff_id,
                         scopes=sorted(row.scopes))
    return TokenOut(access_token=access, expires_in=expires_in, refresh_token=refresh,
                    refresh_expires_in=int(life or 0), account=account)


async def login(db: Database, auth: Authenticator, username: str, password: str) -> TokenOut:
    """Check the password; count a failure (locking after `login_max_failures`) or open a session."""
    s = auth.settings
    async with db.connect() as conn:
        row = (await conn.execute(text(
            f"select {_ACCOUNT}, p.password_hash, coalesce(p.locked_until > now(), false) as locked, "
            "c.disabled_at is not null as disabled from api_client c join account_password p using (client_id) "
            "where c.client_id = :u and c.kind = 'person'"), {"u": username})).first()
    ok = await asyncio.to_thread(_verify, row.password_hash if row else None, password)
    if row is None or row.locked or row.disabled:
        raise _refused()
    async with db.begin() as conn:
        if not ok:
            await conn.execute(text(
                "update account_password set failed_count = case when failed_count + 1 >= :max then 0 "
                "else failed_count + 1 end, locked_until = case when failed_count + 1 >= :max "
                "then now() + make_interval(secs => :lock) else locked_until end where client_id = :u"),
                {"u": username, "max": s.login_max_failures, "lock": s.login_lockout_s})
        else:  # a lock set by a concurrent failure since the read above still wins
            ok = bool((await conn.execute(text(
                "update account_password set failed_count = 0 where client_id = :u "
                "and (locked_until is null or locked_until <= now()) returning 1"), {"u": username})).scalar())
            if ok:
                return await _issue(conn, auth, row, uuid.uuid4())
    raise _refused()


async def refresh(db: Database, auth: Authenticator, token: str) -> TokenOut:
    """Rotate a refresh token: the presented one is used up; presenting a used one again ends the session."""
    async with db.begin() as conn:
        row = (await conn.execute(text(
            f"select {_ACCOUNT}, r.family, r.expires_at, r.used_at is not null as used, "
            "r.revoked_at is not null or r.expires_at <= now() or c.disabled_at is not null as ended "
            "from refresh_token r join api_client c using (client_id) where r.token_sha256 = :h "
            "for update of r"), {"h": hash_token(token)})).first()
        if row is not None and row.used:  # a replay: end the session, answer like any refusal
            await conn.execute(text("update refresh_token set revoked_at = now() where family = :f "
                                    "and revoked_at is null"), {"f": row.family})
        elif row is not None and not row.ended:
            await conn.execute(text("update refresh_token set used_at = now() where token_sha256 = :h"),
                               {"h": hash_token(token)})
            return await _issue(conn, auth, row, row.family, row.expires_at)
    raise _refused()


async def logout(db: Database, token: str) -> None:
    """End the session the refresh token belongs to (an unknown token changes nothing, answered the same)."""
    async with db.begin() as conn:
        await conn.execute(text(
            "update refresh_token set revoked_at = now() where revoked_at is null and family = "
            "(select family from refresh_token where token_sha256 = :h)"), {"h": hash_token(token)})


def _state(request: Request) -> tuple[Database, Authenticator]:
    return request.app.state.auth_db, request.app.state.authenticator


@router.post("/login", response_model=TokenOut, summary="Log in with an account id and password",
             openapi_extra=PUBLIC,
             responses={401: {"description": "wrong username or password, or the account is locked or disabled"}})
async def post_login(body: LoginBody, request: Request) -> TokenOut:
    """A person's account id and password (argon2-checked) give a short-lived access token and a refresh token. Every
    refusal — unknown account, wrong password, locked, disabled — is the same 401; repeated failures lock the
    account for a while."""
    db, auth = _state(request)
    return await login(db, auth, body.username, body.password)


@router.post("/refresh", response_model=TokenOut, summary="A new access token for a refresh token (rotated)",
             openapi_extra=PUBLIC)
async def post_refresh(body: RefreshBody, request: Request) -> TokenOut:
    """Exchange a refresh token for a new access token and a new refresh token (the old one is used up; presenting a
    used one again ends the whole session). The session never outlives its login's limit."""
    db, auth = _state(request)
    return await refresh(db, auth, body.refresh_token)


@router.post("/logout", status_code=204, summary="End the session of a refresh token", openapi_extra=PUBLIC)
async def post_logout(body: RefreshBody, request: Request) -> Response:
    """End the session of a refresh token (its access tokens expire on their own). An unknown token is answered the
    same: 204."""
    db, _ = _state(request)
    await logout(db, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=AccountOut, summary="Who the bearer token acts as", openapi_extra=ANY_TOKEN)
async def get_me(p: Principal = Depends(authenticate)) -> AccountOut:
    """The account the bearer token acts as: id, name, kind (person or system), roles, scopes, region and institution
    — what a console shows and what every request is authorised against."""
    return AccountOut(account_id=p.client_id, name=p.name, kind=p.kind, roles=sorted(p.roles),
                      region=p.region_prefix, institution_code=p.institution_code, staff_id=p.staff_id,
                      scopes=sorted(p.scopes))
