"""Token claims → Principal: the platform's own access tokens and an external provider's (pure functions)."""
from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from kit.auth import ISSUER, Account, issue_access_token, principal_from_claims, principal_from_oidc
from kit.roles import scopes_of
from kit.settings import Settings

KEY = "k" * 43
OIDC = Settings(oidc_jwks_url="http://127.0.0.1:1/certs", oidc_issuer="https://sso.test/realms/mch",
                oidc_audience="mch-console")


def test_access_token_carries_the_account_and_scopes_come_from_the_roles() -> None:
    acct = Account("demo-321324H01-seal", "印章管理员", "person", ("seal_custodian",), "321324", "321324H01", "S1")
    t0 = time.time()
    token, ttl = issue_access_token(acct, KEY, 900, now=t0)
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience=ISSUER, issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == ttl == 900 and claims["iat"] == int(t0)
    p = principal_from_claims(claims)
    assert p is not None and p.actor == acct.account_id and p.is_person and p.has_role("seal_custodian")
    assert p.scopes == scopes_of(["seal_custodian"]) and p.region_prefix == "321324"
    assert p.institution_code == "321324H01" and p.staff_id == "S1"
    # two tokens of one account are told apart (jti)
    assert jwt.decode(issue_access_token(acct, KEY, 900)[0], KEY, algorithms=["HS256"], audience=ISSUER)["jti"] \
        != claims["jti"]


@pytest.mark.parametrize("change", [{"roles": ["statistician", "root"]}, {"roles": "statistician"},
                                    {"region": "32132"}, {"region": 321324}, {"roles": [1]}])
def test_our_claims_that_do_not_make_sense_grant_nothing(change: dict[str, Any]) -> None:
    claims = {"sub": "a", "roles": ["statistician"], "region": "321324", **change}
    assert principal_from_claims(claims) is None


def _oidc(**claims: Any) -> dict[str, Any]:
    return {"sub": "0f3c", "preferred_username": "wang.fang", "name": "王芳", **claims}


def test_external_roles_map_to_ours_and_unknown_ones_grant_nothing() -> None:
    p = principal_from_oidc(_oidc(realm_access={"roles": ["statistician", "offline_access", "his", "auditor"]},
                                  region=["3213"], institution_code="321324H03"), OIDC)
    assert p is not None and p.roles == frozenset({"statistician", "auditor"})
    assert p.scopes == scopes_of(["statistician", "auditor"]) and p.region_prefix == "3213"
    assert p.client_id == "oidc:wang.fang" and p.name == "王芳" and p.institution_code == "321324H03"
    none = principal_from_oidc(_oidc(realm_access={"roles": ["uma_authorization"]}, region="321324"), OIDC)
    assert none is not None and none.scopes == frozenset()


@pytest.mark.parametrize("region, expected", [("national", ""), ("32", "32"), ("", None), (None, None),
                                              ("3213245", None), (["321324", "3201"], None), (321324, None)])
def test_external_region_is_required_and_national_only_when_said(region: Any, expected: str | None) -> None:
    claims = _oidc(realm_access={"roles": ["bureau_reader"]})
    if region is not None:
        claims["region"] = region
    p = principal_from_oidc(claims, OIDC)
    assert (p.region_prefix if p else None) == expected


def test_claim_names_are_settings() -> None:
    s = OIDC.model_copy(update={"oidc_roles_claim": "resource_access.mch-console.roles",
                                "oidc_region_claim": "attrs.county"})
    p = principal_from_oidc(_oidc(resource_access={"mch-console": {"roles": ["operator"]}},
                                  attrs={"county": "321324"}, realm_access={"roles": ["auditor"]}), s)
    assert p is not None and p.roles == frozenset({"operator"}) and p.region_prefix == "321324"
