"""Roles (岗位) as data: what each role of a person or a system may do, as the scopes the services check.

A person's account carries roles; its token carries the union of their scopes. Services check scopes (what
may be done) and the region (where); who did it is the account itself (`Principal.actor`). Change a role
here, not in a router.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    code: str
    #: the Chinese name shown to people (岗位名称)
    name_zh: str
    #: "person": only a logged-in member of staff holds it; "system": only a machine client; "any": both
    holder: str
    scopes: frozenset[str]


def _r(code: str, name_zh: str, holder: str, *scopes: str) -> Role:
    return Role(code, name_zh, holder, frozenset(scopes))


ROLES: dict[str, Role] = {r.code: r for r in (
    #: a hospital's HIS interface (a system): posts persons, pregnancies, encounters, screenings
    _r("his", "HIS接口", "system", "registry:write", "registry:read", "screening:write", "screening:read",
       "quality:read", "quality:answer"),
    #: 证件管理员: keeps the blank certificates, prepares (制证)
    _r("certificate_custodian", "出生医学证明证件管理员", "person",
       "certificates:prepare", "certificates:read", "registry:read"),
    #: 印章管理员: keeps the seal, seals (盖章) what another person prepared
    _r("seal_custodian", "出生医学证明印章管理员", "person", "certificates:seal", "certificates:read"),
    #: 办公室负责人: receives stock, allocates ranges, spoils blanks, voids
    _r("office_head", "出生医学证明办公室负责人", "person",
       "certificates:stock", "certificates:void", "certificates:read"),
    #: public security and civil affairs: verifies a certificate presented to them
    _r("verifier", "证件核验", "any", "certificates:verify"),
    _r("statistician", "统计员", "person", "indicators:read", "reports:submit", "registry:read", "screening:read",
       "quality:read", "quality:accept"),
    _r("report_approver", "报表审核人", "person", "indicators:read", "reports:approve"),
    _r("bureau_reader", "卫健局查阅", "any", "indicators:read", "quality:read"),
    #: 质控员: a hospital's data-quality officer, lists and answers the queries addressed to her institution
    _r("quality_officer", "机构质控员", "person", "quality:read", "quality:answer", "registry:read"),
    #: reads audit trails and unmasked personal data, every read of it audited
    _r("auditor", "审计员", "person", "audit:read", "pii:read", "registry:read", "screening:read",
       "certificates:read"),
    #: 身份审核员: decides the pairs of likely duplicate persons of the region (confirm: merged; reject), comparing
    #: their personal fields (every read audited), and merges and unmerges person records
    _r("reviewer", "身份审核员", "person", "persons:review", "registry:merge", "registry:read", "pii:read"),
    #: runs the platform: targets, rebuilds, reconciliation, accounts; merges person records (issue 19)
    _r("operator", "运维", "any", "indicators:admin", "indicators:read", "accounts:admin", "registry:merge",
       "quality:admin", "quality:read"),
)}


def scopes_of(roles: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    """The scopes a set of roles grants; an unknown role is an error, never silently nothing."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}; known: {', '.join(ROLES)}")
    out: set[str] = set()
    for r in roles:
        out |= ROLES[r].scopes
    return frozenset(out)
