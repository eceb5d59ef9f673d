"""People log in; short-lived signed tokens; systems' long-lived tokens expire and rotate; external OIDC tokens.

Against the test stack (real Postgres, the four services) and, where a test needs other settings (a short
lockout, a short auth cache, an OpenID Connect provider), an API process of the same code started in this test
with those settings on the same databases: no part of the identity path is mocked.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from kit import accounts
from kit.app import create_app
from kit.clients import create_client
from kit.roles import scopes_of
from kit.settings import Settings

from tests.conftest import Stack, fresh_county

OIDC_ISSUER = "https://keycloak.test/realms/mch"
OIDC_AUDIENCE = "mch-console"
LOCKOUT_S = 2
CACHE_TTL_S = 1.0


# ------------------------------------------------------------------------------------------- fixtures
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(provider_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """The provider's JWKS, served by a tiny HTTP server on 127.0.0.1 (what Keycloak's certs endpoint does)."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "kc-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/realms/mch/protocol/openid-connect/certs"
    server.shutdown()


@pytest.fixture(scope="module")
def api_settings(stack: Stack, jwks_url: str) -> Settings:
    return Settings(db_prefix=stack.settings.db_prefix, kafka_bootstrap=stack.settings.kafka_bootstrap,
                    service="registry", auth_cache_ttl_s=CACHE_TTL_S, login_lockout_s=LOCKOUT_S,
                    oidc_jwks_url=jwks_url, oidc_issuer=OIDC_ISSUER, oidc_audience=OIDC_AUDIENCE)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(api_settings: Settings) -> AsyncIterator[str]:
    """The registry API in this process with the test's settings (short lockout and cache, an OIDC provider)."""
    from registry.api.routes import router

    app = create_app("registry", [router], title="registry (identity test)", settings=api_settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
        assert not task.done(), "the in-process API did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _person(stack: Stack, roles: list[str], region: str, password: str | None = None) -> tuple[str, str]:
    new = accounts.NewPerson("测试 登录", roles, region, staff_id=uuid.uuid4().hex[:6],
                             account_id=f"t-{uuid.uuid4().hex[:10]}")
    return await accounts.create_person_account(stack.settings, new, password)


async def _login(c: httpx.AsyncClient, base: str, user: str, password: str) -> httpx.Response:
    return await c.post(f"{base}/v1/auth/login", json={"username": user, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _admin(stack: Stack) -> asyncpg.Connection:
    return await accounts.connect(stack.settings)


# ------------------------------------------------------------------------------------------- login
async def test_login_token_calls_the_apis_of_every_service(stack: Stack) -> None:
    county = fresh_county()
    user, pw = await _person(stack, ["statistician"], county)
    async with httpx.AsyncClient(timeout=30) as c:
        r = await _login(c, stack.url("registry"), user, pw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == stack.settings.access_token_ttl_s
        assert body["account"]["roles"] == ["statistician"] and body["account"]["region"] == county
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == user and claims["roles"] == ["statistician"] and claims["region"] == county
        assert claims["exp"] - claims["iat"] == stack.settings.access_token_ttl_s
        for key in ("name", "kind", "institution", "staff_id", "jti"):
            assert key in claims
        # a token from one service's login works at the others (one credential database, one key)
        me = await c.get(f"{stack.url('certificates')}/v1/auth/me", headers=_bearer(body["access_token"]))
        assert me.status_code == 200 and me.json()["account_id"] == user
        assert set(me.json()["scopes"]) == set(scopes_of(["statistician"]))
        values = await c.get(f"{stack.url('indicators')}/v1/indicators/values",
                             params={"period": str(dt.date.today().year), "region": county},
                             headers=_bearer(body["access_token"]))
        assert values.status_code == 200, values.text
        # the region travels with the token: a neighbouring province is refused
        other = "11" if not county.startswith("11") else "12"
        outside = await c.get(f"{stack.url('indicators')}/v1/indicators/values",
                              params={"period": str(dt.date.today().year), "region": other},
                              headers=_bearer(body["access_token"]))
        assert outside.status_code == 403


async def test_wrong_password_unknown_user_and_bad_bodies(stack: Stack) -> None:
    user, pw = await _person(stack, ["auditor"], fresh_county())
    async with httpx.AsyncClient(timeout=30) as c:
        wrong = await _login(c, stack.url("registry"), user, pw + "x")
        unknown = await _login(c, stack.url("registry"), f"nobody-{uuid.uuid4().hex[:6]}", pw)
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.headers["content-type"].startswith("application/problem+json")
        assert wrong.json()["detail"] == unknown.json()["detail"]  # nothing tells which accounts exist
        for body, field in (({"password": pw}, "username"), ({"username": user}, "password"),
                            ({"username": user, "password": 7}, "password"),
                            ({"username": "a\x00b", "password": pw}, "username"),
                            ({"username": "", "password": pw}, "username")):
            r = await c.post(f"{stack.url('screening')}/v1/auth/login", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_five_failures_lock_until_the_lockout_ends(stack: Stack, api: str) -> None:
    user, pw = await _person(stack, ["statistician"], fresh_county())
    async with httpx.AsyncClient(timeout=30) as c:
        for _ in range(stack.settings.login_max_failures):
            assert (await _login(c, api, user, "not-the-password")).status_code == 401
        locked = await _login(c, api, user, pw)
        assert locked.status_code == 401
        nobody = (await _login(c, api, f"nobody-{uuid.uuid4().hex[:6]}", pw)).json()
        assert {**locked.json(), "request_id": ""} == {**nobody, "request_id": ""}  # the same refusal
        await asyncio.sleep(LOCKOUT_S + 0.5)
        assert (await _login(c, api, user, pw)).status_code == 200


async def test_fewer_failures_than_the_limit_do_not_lock(stack: Stack) -> None:
    user, pw = await _person(stack, ["statistician"], fresh_county())
    async with httpx.AsyncClient(timeout=30) as c:
        for _ in range(stack.settings.login_max_failures - 1):
            assert (await _login(c, stack.url("registry"), user, "not-the-password")).status_code == 401
        assert (await _login(c, stack.url("registry"), user, pw)).status_code == 200
        # a success starts the count again
        for _ in range(stack.settings.login_max_failures - 1):
            assert (await _login(c, stack.url("registry"), user, "not-the-password")).status_code == 401
        assert (await _login(c, stack.url("registry"), user, pw)).status_code == 200


# ------------------------------------------------------------------------------------------- refresh, logout
async def test_refresh_rotates_and_a_replay_ends_the_session(stack: Stack) -> None:
    user, pw = await _person(stack, ["report_approver"], fresh_county())
    base = stack.url("registry")
    async with httpx.AsyncClient(timeout=30) as c:
        first = (await _login(c, base, user, pw)).json()
        r = await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["refresh_expires_in"] <= first["refresh_expires_in"]  # rotation never extends a session
        assert (await c.get(f"{base}/v1/auth/me", headers=_bearer(second["access_token"]))).status_code == 200
        # the used refresh token is refused; presenting it ends the session (the rotated one too)
        replay = await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401
        after = await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert after.status_code == 401


async def test_logout_revokes_the_refresh_token(stack: Stack) -> None:
    user, pw = await _person(stack, ["bureau_reader"], fresh_county())
    base = stack.url("certificates")
    async with httpx.AsyncClient(timeout=30) as c:
        session = (await _login(c, base, user, pw)).json()
        assert (await c.post(f"{base}/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
                ).status_code == 204
        r = await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert r.status_code == 401
        # an operator revokes a session by its refresh token (kit.accounts token revoke)
        other = (await _login(c, base, user, pw)).json()
        assert await accounts.revoke_token(stack.settings, other["refresh_token"])
        r = await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
        assert r.status_code == 401
        bad = await c.post(f"{base}/v1/auth/logout", json={"refresh_token": 12})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "refresh_token"


# ------------------------------------------------------------------------------------------- access tokens
async def _signing_key(stack: Stack) -> str:
    conn = await _admin(stack)
    try:
        return str(await conn.fetchval("select secret from signing_key order by created_at desc limit 1"))
    finally:
        await conn.close()


async def test_expired_and_tampered_access_tokens_are_refused(stack: Stack) -> None:
    county = fresh_county()
    user, pw = await _person(stack, ["statistician"], county)
    base = stack.url("indicators")
    async with httpx.AsyncClient(timeout=30) as c:
        token = (await _login(c, base, user, pw)).json()["access_token"]
        assert (await c.get(f"{base}/v1/auth/me", headers=_bearer(token))).status_code == 200
        claims = jwt.decode(token, options={"verify_signature": False})
        # signed with the platform's own key, but expired a minute ago
        key = await _signing_key(stack)
        now = int(time.time())
        expired = jwt.encode({**claims, "iat": now - 960, "exp": now - 60}, key, algorithm="HS256")
        r = await c.get(f"{base}/v1/auth/me", headers=_bearer(expired))
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        # the same token with a role added to its claims: the signature no longer matches
        head, _, rest = token.partition(".")
        _, _, sig = rest.partition(".")
        forged = base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["statistician", "operator"]}).encode())
        tampered = f"{head}.{forged.decode().rstrip('=')}.{sig}"
        assert (await c.get(f"{base}/v1/auth/me", headers=_bearer(tampered))).status_code == 401
        # and one signed with another key
        other = jwt.encode({**claims, "roles": ["operator"]}, "not-the-platform-key-" * 2, algorithm="HS256")
        assert (await c.get(f"{base}/v1/auth/me", headers=_bearer(other))).status_code == 401


async def test_disabled_account_stops_working_within_the_cache_ttl(stack: Stack, api: str) -> None:
    user, pw = await _person(stack, ["statistician"], fresh_county())
    async with httpx.AsyncClient(timeout=30) as c:
        session = (await _login(c, api, user, pw)).json()
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(session["access_token"]))).status_code == 200
        assert await accounts.set_disabled(stack.settings, user, True)
        await asyncio.sleep(CACHE_TTL_S + 0.3)
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(session["access_token"]))).status_code == 401
        assert (await _login(c, api, user, pw)).status_code == 401
        assert (await c.post(f"{api}/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
                ).status_code == 401
        assert await accounts.set_disabled(stack.settings, user, False)
        assert (await _login(c, api, user, pw)).status_code == 200


async def test_reset_password_replaces_the_old_one_and_ends_sessions(stack: Stack) -> None:
    user, pw = await _person(stack, ["auditor"], fresh_county())
    base = stack.url("registry")
    async with httpx.AsyncClient(timeout=30) as c:
        session = (await _login(c, base, user, pw)).json()
        new_pw = await accounts.reset_password(stack.settings, user)
        assert new_pw != pw
        assert (await _login(c, base, user, pw)).status_code == 401
        assert (await _login(c, base, user, new_pw)).status_code == 200
        assert (await c.post(f"{base}/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
                ).status_code == 401


async def test_create_person_upsert_keeps_the_password(stack: Stack) -> None:
    """kit.clients.create_person (scripts, the demo loader) updates an account without touching its password."""
    from kit.clients import create_person

    county = fresh_county()
    user, pw = await _person(stack, ["certificate_custodian"], county)
    aid, token = await create_person(stack.settings, "改名后", ["certificate_custodian"], county, account_id=user)
    assert aid == user
    async with httpx.AsyncClient(timeout=30) as c:
        r = await _login(c, stack.url("registry"), user, pw)
        assert r.status_code == 200 and r.json()["account"]["name"] == "改名后"
        assert (await c.get(f"{stack.url('registry')}/v1/auth/me", headers=_bearer(token))).status_code == 200


# ------------------------------------------------------------------------------------------- system tokens
async def test_expired_system_token_is_refused(stack: Stack) -> None:
    cid, token = await create_client(stack.settings, "expiring-his", ["registry:read"], fresh_county())
    base = stack.url("screening")
    async with httpx.AsyncClient(timeout=30) as c:
        conn = await _admin(stack)
        try:
            life = await conn.fetchval("select expires_at - now() from api_token where client_id = $1", cid)
            assert dt.timedelta(days=364) < life <= dt.timedelta(days=stack.settings.system_token_ttl_days)
        finally:
            await conn.close()
        _, expired = await create_client(stack.settings, "expired-his", ["registry:read"], fresh_county(),
                                                   ttl=dt.timedelta(seconds=-1))
        assert (await c.get(f"{base}/v1/auth/me", headers=_bearer(token))).status_code == 200
        r = await c.get(f"{base}/v1/auth/me", headers=_bearer(expired))
        assert r.status_code == 401 and r.json()["status"] == 401


async def test_rotation_keeps_the_old_token_inside_the_grace_only(stack: Stack, api: str) -> None:
    cid, old = await create_client(stack.settings, "rotating-his", ["registry:read"], fresh_county())
    grace = dt.timedelta(seconds=2)
    new = await accounts.rotate(stack.settings, cid, grace)
    async with httpx.AsyncClient(timeout=30) as c:
        for tok in (old, new):
            r = await c.get(f"{api}/v1/auth/me", headers=_bearer(tok))
            assert r.status_code == 200 and r.json()["account_id"] == cid
        await asyncio.sleep(grace.total_seconds() + 0.5)
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(old))).status_code == 401
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(new))).status_code == 200
    assert await accounts.revoke_token(stack.settings, new)
    await asyncio.sleep(CACHE_TTL_S + 0.3)
    async with httpx.AsyncClient(timeout=30) as c:
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(new))).status_code == 401


# ------------------------------------------------------------------------------------------- OpenID Connect
def _oidc_token(key: rsa.RSAPrivateKey, roles: list[str], region: str | None, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": OIDC_ISSUER, "aud": OIDC_AUDIENCE, "sub": uuid.uuid4().hex,
                              "preferred_username": f"kc-{uuid.uuid4().hex[:6]}", "name": "外部 用户",
                              "realm_access": {"roles": roles}, "iat": now, "exp": now + 300, **extra}
    if region is not None:
        claims["region"] = region
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "kc-1"})


async def test_oidc_provider_tokens_are_verified_by_its_jwks(api: str, provider_key: rsa.RSAPrivateKey) -> None:
    county = fresh_county()
    async with httpx.AsyncClient(timeout=30) as c:
        token = _oidc_token(provider_key, ["statistician", "realm-admin", "his"], county,
                            institution_code=f"{county}H01")
        r = await c.get(f"{api}/v1/auth/me", headers=_bearer(token))
        assert r.status_code == 200, r.text
        me = r.json()
        # a role the platform does not know (realm-admin) or that only systems hold (his) grants nothing
        assert me["roles"] == ["statistician"] and set(me["scopes"]) == set(scopes_of(["statistician"]))
        assert me["region"] == county and me["institution_code"] == f"{county}H01"
        assert me["account_id"].startswith("oidc:kc-") and me["kind"] == "person"
        # the statistician may read the registry: a missing institution answers 404, not 401/403
        got = await c.get(f"{api}/v1/institutions/{county}X99", headers=_bearer(token))
        assert got.status_code == 404
        # only unknown roles: authenticated, but no scope at all
        nothing = _oidc_token(provider_key, ["realm-admin"], county)
        assert (await c.get(f"{api}/v1/institutions/{county}X99", headers=_bearer(nothing))).status_code == 403
        # signed by another key under the provider's key id: refused
        forged = _oidc_token(rsa.generate_private_key(public_exponent=65537, key_size=2048), ["statistician"],
                             county)
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(forged))).status_code == 401
        # another audience, or no region: refused
        wrong_aud = _oidc_token(provider_key, ["statistician"], county, aud="another-client")
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(wrong_aud))).status_code == 401
        no_region = _oidc_token(provider_key, ["statistician"], None)
        assert (await c.get(f"{api}/v1/auth/me", headers=_bearer(no_region))).status_code == 401


async def test_oidc_tokens_are_refused_where_no_provider_is_configured(stack: Stack,
                                                                       provider_key: rsa.RSAPrivateKey) -> None:
    token = _oidc_token(provider_key, ["statistician"], fresh_county())
    async with httpx.AsyncClient(timeout=30) as c:
        assert (await c.get(f"{stack.url('registry')}/v1/auth/me", headers=_bearer(token))).status_code == 401



# ------------------------------------------------------------------------------------------- demo people
async def test_demo_people_log_in_with_their_printed_passwords(stack: Stack) -> None:
    """`make run` ensures the demo county's people (devstack.ensure_demo_people); run here on the test stack."""
    import devstack

    from demo import county as demo_county

    c = demo_county.load()
    logins = await asyncio.to_thread(devstack.ensure_demo_people, stack.spec)
    by_id = {a: (pw, roles) for a, pw, roles in logins}
    expected = {f"demo-{c.code}-{sfx}": roles for sfx, _, roles in devstack.DEMO_BUREAU}
    expected |= {f"demo-{h.code}-{sfx}": roles for h in c.hospitals for sfx, _, roles in devstack.DEMO_OFFICE}
    assert set(by_id) == set(expected) and f"demo-{c.code}-stat" in by_id
    assert f"demo-{c.code}H03-seal" in by_id  # the county MCH centre is a certificate office too
    printed = (stack.spec.run_dir / "demo-logins.txt").read_text(encoding="utf-8")
    async with httpx.AsyncClient(timeout=30) as http:
        for account in (f"demo-{c.code}-stat", f"demo-{c.hospitals[0].code}-cert"):
            pw, roles = by_id[account]
            assert f"{account}\t{pw}\t" in printed
            r = await _login(http, stack.url("certificates"), account, pw)
            assert r.status_code == 200, r.text
            me = r.json()["account"]
            assert me["roles"] == expected[account] == roles.split(",") and me["region"] == c.code
            if account.endswith("-cert"):
                assert me["institution_code"] == c.hospitals[0].code
        # ensuring again keeps the sessions and the passwords
        session = (await _login(http, stack.url("registry"), f"demo-{c.code}-stat", by_id[f"demo-{c.code}-stat"][0]))
        await asyncio.to_thread(devstack.ensure_demo_people, stack.spec)
        r = await http.post(f"{stack.url('registry')}/v1/auth/refresh",
                            json={"refresh_token": session.json()["refresh_token"]})
        assert r.status_code == 200
