"""Rules of the blank stock (证件库存), custodians (专人管理, 证章分离) and issuance (签发 / 补发 / 换发 / 废证).

Every rule raises a `kit.records.DomainError` naming the field and the reason (the web layer turns it into
problem+json once, in kit); the database enforces the same invariants again (migration c0001), so a bug here can
refuse too much but never let a serial be used twice. Who acts is an account id from the login, never a body.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from kit.records import DomainError, fail

SERIAL_RE = re.compile(r"^[A-Z]\d{9}$")
#: the largest range one batch or allocation may name (a year of a large city is ~100,000 births)
MAX_RANGE = 200_000

Kind = Literal["first", "first_out_of_institution", "reissue", "replacement"]
KINDS: tuple[str, ...] = ("first", "first_out_of_institution", "reissue", "replacement")
FIRST_KINDS = ("first", "first_out_of_institution")
#: names of the kinds in the bureau's register (发放登记表)
KIND_ZH = {"first": "机构内首次签发", "first_out_of_institution": "机构外首次签发", "reissue": "补发",
           "replacement": "换发"}
STATUS_ZH = {"prepared": "待盖章", "issued": "已签发", "voided": "废证", "superseded": "已收回/失效"}
ROLES = ("certificate", "seal")

#: the life of a serial (the database trigger `serial_guard` holds the same table)
TRANSITIONS: frozenset[tuple[str, str]] = frozenset({
    ("bureau", "in_stock"), ("bureau", "voided"), ("in_stock", "prepared"), ("in_stock", "voided"),
    ("prepared", "issued"), ("prepared", "voided"), ("issued", "superseded"), ("issued", "voided"),
})


def can_move(state: str, to: str) -> bool:
    return (state, to) in TRANSITIONS


# ------------------------------------------------------------------ serial ranges
@dataclass(frozen=True)
class SerialRange:
    """A range of serials of one letter prefix, both ends included."""

    prefix: str
    first: int
    last: int

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    @property
    def serial_from(self) -> str:
        return serial_of(self.prefix, self.first)

    @property
    def serial_to(self) -> str:
        return serial_of(self.prefix, self.last)


def serial_of(prefix: str, number: int) -> str:
    return f"{prefix}{number:09d}"


def check_serial(serial: str, field: str = "serial") -> str:
    if not SERIAL_RE.match(serial):
        raise invalid(field, f"{serial!r} is not a certificate serial (one capital letter and 9 digits, "
                             "e.g. Q510012345)")
    return serial


def parse_range(serial_from: str, serial_to: str) -> SerialRange:
    check_serial(serial_from, "serial_from")
    check_serial(serial_to, "serial_to")
    if serial_from[0] != serial_to[0]:
        raise invalid("serial_to", f"a range keeps one letter prefix: {serial_from[0]} ≠ {serial_to[0]}")
    a, b = int(serial_from[1:]), int(serial_to[1:])
    if b < a:
        raise invalid("serial_to", f"{serial_to} is before serial_from {serial_from}")
    if b - a + 1 > MAX_RANGE:
        raise invalid("serial_to", f"a range holds at most {MAX_RANGE} serials, this one {b - a + 1}")
    return SerialRange(serial_from[0], a, b)


def invalid(field: str, reason: str) -> DomainError:
    return fail(field, reason)


def conflict(reason: str, field: str) -> DomainError:
    """The state forbids it (409): another record already holds what was asked."""
    return fail(field, reason, 409)


def refused(reason: str) -> DomainError:
    """The authenticated person may not do this (403): the actor comes from the login, so the field is `actor`."""
    return fail("actor", reason, 403)


def check_not_future(on: date, today: date, field: str) -> None:
    if on > today:
        raise invalid(field, f"{on} is in the future")


# ------------------------------------------------------------------ custodians
@dataclass(frozen=True)
class Custodian:
    """A person account assigned to keep an institution's blanks (certificate) or its seal (seal)."""

    institution_code: str
    account_id: str
    staff_id: str   # 工号, shown beside the name in the register
    name: str
    role: str


#: the account role (kit.roles) a custodian assignment needs
ACCOUNT_ROLE = {"certificate": "certificate_custodian", "seal": "seal_custodian"}


def check_assignment(new: Custodian, current: list[Custodian]) -> Literal["unchanged", "assign"]:
    """`current` are the institution's current custodians (at most one per role).

    The same person in the same role again is a no-op; the same person in the other role is refused
    (证章分离: the certificate custodian and the seal custodian are different people).
    """
    for c in current:
        if c.account_id == new.account_id:
            if c.role == new.role:
                return "unchanged"
            raise invalid("account_id", f"already the {c.role} custodian at {new.institution_code}: one person "
                                        "cannot hold both roles (证章分离)")
    return "assign"


def check_assignable(role: str, account: Mapping[str, Any] | None, institution_code: str) -> None:
    """The account to assign is a person of this institution holding the matching role (kit.roles); an unknown
    account and one outside the caller's region are the same refusal (the caller loads it scoped)."""
    if account is None:
        raise invalid("account_id", "no such person account")
    if account["kind"] != "person":
        raise invalid("account_id", "custodians are people (person accounts), not systems")
    if account["institution_code"] != institution_code:
        raise invalid("account_id", f"the person works at {account['institution_code'] or 'a bureau'}, not at "
                                    f"{institution_code}")
    if ACCOUNT_ROLE[role] not in account["roles"]:
        raise invalid("account_id", f"the person lacks the role {ACCOUNT_ROLE[role]}")


# ------------------------------------------------------------------ issuance
@dataclass(frozen=True)
class ChildFacts:
    """What the registry's events told us about a child."""

    child_id: str
    birth_date: date | None          # None: the person event has not arrived (yet)
    born_at: str | None              # institution of the delivery; None: no (live, not voided) delivery known
    birth_place: str | None          # hospital | home | en_route | other
    #: the region of the institution of birth: the child's region in this service (decision 59)
    region: str | None = None


@dataclass(frozen=True)
class CertificateFacts:
    serial: str
    state: str
    kind: str
    child_id: str
    institution_code: str
    prepared_by: str


def replayed_preparation(kind: str, prepared_by: str, institution_code: str,
                         child_certificates: list[CertificateFacts]) -> CertificateFacts | None:
    """The child's certificate still being prepared of this kind, by this custodian, at this institution: a
    preparation sent again (a retry after a lost answer) is answered with it instead of drawing another blank
    (the caller also compares what was written on it)."""
    for c in child_certificates:
        if (c.state, c.kind, c.prepared_by, c.institution_code) == ("prepared", kind, prepared_by, institution_code):
            return c
    return None


def same_preparation(stored: tuple[str | None, str | None, str | None], sent: tuple[str, str | None, str | None]) \
        -> bool:
    """Whether what was written on a pending certificate (name, previous serial, evidence) is what was sent again
    (the name as it is written: trimmed; no evidence and empty evidence are the same)."""
    (name, previous, evidence), (name_sent, previous_sent, evidence_sent) = stored, sent
    return (name, previous, evidence or None) == (name_sent.strip(), previous_sent, evidence_sent or None)


def check_prepare(kind: str, child: ChildFacts, institution_code: str, evidence_ref: str | None,
                  previous: CertificateFacts | None, previous_serial: str | None,
                  child_certificates: list[CertificateFacts]) -> None:
    """May `kind` be prepared for this child at this institution? (the preparer is checked by the caller)"""
    if kind not in KINDS:
        raise invalid("kind", f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if child.birth_date is None or child.born_at is None:
        raise invalid("child_id", f"child {child.child_id} is not known to the certificates service: no live "
                                  "birth of this child has been recorded in the registry (yet)")
    live = [c for c in child_certificates if c.state in ("prepared", "issued")]
    pending = [c for c in live if c.state == "prepared"]
    if pending:
        raise conflict(f"certificate {pending[0].serial} is already being prepared for child {child.child_id}; "
                       "seal or void it first", "child_id")
    if kind in FIRST_KINDS:
        if previous_serial:
            raise invalid("previous_serial", "a first issue has no previous certificate")
        used = [c for c in child_certificates if c.state != "voided"]
        if used:
            raise conflict(f"child {child.child_id} already has certificate {used[0].serial} ({used[0].state}); "
                           "a lost one is reissued (kind reissue), a corrected one replaced (kind replacement)",
                           "child_id")
        if kind == "first":
            if child.born_at != institution_code:
                raise invalid("child_id", f"child {child.child_id} was born at {child.born_at}, not at "
                                          f"{institution_code}: a first issue is made by the institution of birth")
            if child.birth_place != "hospital":
                raise invalid("kind", f"the birth took place {child.birth_place}, not in an institution: "
                                      "use first_out_of_institution with evidence_ref")
        elif not (evidence_ref or "").strip():
            raise invalid("evidence_ref", "a first issue for a birth outside an institution needs the reference "
                                          "of its evidence (e.g. the birth-attendant's statement)")
        return
    # reissue (补发) / replacement (换发): of the child's one valid certificate
    if not previous_serial:
        raise invalid("previous_serial", f"a {kind} names the certificate it supersedes")
    if previous is None:
        raise invalid("previous_serial", f"no certificate {previous_serial}")
    if previous.child_id != child.child_id:
        raise invalid("previous_serial", f"certificate {previous_serial} belongs to another child")
    if previous.state == "superseded" and not live:
        return  # its successor was voided as wrongly issued: the child has no valid certificate, issue again
    if previous.state != "issued":
        raise conflict(f"certificate {previous_serial} is {previous.state}, not a valid issued certificate",
                       "previous_serial")


def check_preparer(actor: str, institution_code: str, person_institution: str, keeper: str | None) -> None:
    """Only the institution's current certificate custodian, working there, draws its blanks (专人管理)."""
    if person_institution != institution_code:
        raise refused(f"you work at {person_institution or 'a bureau'}: certificates of {institution_code} are "
                      "prepared by its own certificate custodian")
    if keeper != actor:
        raise refused(f"you are not the current certificate custodian of {institution_code}")


def check_seal(cert: CertificateFacts, sealer: str, person_institution: str, seal_custodian: str | None) -> None:
    """The seal custodian of the certificate's institution seals, and never what they prepared (证章分离)."""
    if cert.state != "prepared":
        raise conflict(f"certificate {cert.serial} is {cert.state}; only a prepared certificate is sealed", "serial")
    if sealer == cert.prepared_by:
        raise refused(f"you prepared certificate {cert.serial}; the seal must be applied by another person, the "
                      "seal custodian (证章分离)")
    if person_institution != cert.institution_code or seal_custodian != sealer:
        raise refused(f"you are not the current seal custodian of {cert.institution_code}")


def check_void_certificate(cert: CertificateFacts) -> None:
    if cert.state not in ("prepared", "issued"):
        raise conflict(f"certificate {cert.serial} is {cert.state} and cannot be voided", "serial")


def check_void_blank(serial: str, state: str | None) -> None:
    if state is None:
        raise fail("serial", f"serial {serial} does not exist", 404)
    if state not in ("bureau", "in_stock"):
        raise conflict(f"serial {serial} is {state}, not a blank in stock"
                       + ("; void the certificate with POST /v1/certificates/{serial}/void"
                          if state in ("prepared", "issued") else ""), "serial")


# ------------------------------------------------------------------ verification (for public security)
def verify(state: str | None, child_name: str | None, birth_date: date | None, asked_name: str,
           asked_birth: date) -> tuple[bool, str]:
    """`{valid, status}` and nothing else: a mismatching name or birth date reveals no status."""
    if state is None or child_name is None or state in ("bureau", "in_stock"):
        return False, "not_found"
    if child_name.strip() != asked_name.strip() or birth_date != asked_birth:
        return False, "mismatch"
    return state == "issued", state


# ------------------------------------------------------------------ stock report
@dataclass
class StockFigures:
    """One institution's (or the bureau's) stock in a period: opening + received − issued − voided = closing.

    For the bureau, `received` are batches (申领入库) and `allocated` the ranges handed to institutions.
    """

    opening: int = 0
    received: int = 0
    allocated: int = 0
    issued_by_kind: dict[str, int] | None = None
    voided: int = 0

    @property
    def issued(self) -> int:
        return sum((self.issued_by_kind or {}).values())

    @property
    def closing(self) -> int:
        return self.opening + self.received - self.allocated - self.issued - self.voided


def figures(rows: list[tuple[str, str | None, bool, int]]) -> StockFigures:
    """Fold movements (kind, certificate kind, before the period?, quantity) into the period's figures.

    Quantities are signed (into the stock: +); a certificate voided after its blank was drawn moves from
    issued (+1) to voided (−1), so each serial that left the stock is counted once, where it ended up.
    """
    f = StockFigures(issued_by_kind={k: 0 for k in KINDS})
    assert f.issued_by_kind is not None
    for kind, cert_kind, before, qty in rows:
        if before:
            f.opening += qty
        elif kind == "received" or (kind == "allocated" and qty > 0):
            f.received += qty
        elif kind == "allocated":
            f.allocated -= qty
        elif kind == "issued":
            f.issued_by_kind[cert_kind or "first"] -= qty
        elif kind == "voided":
            f.voided -= qty
    return f


def check_confirmer(is_custodian: bool) -> None:
    """双人验收: the second confirmation of a batch of blanks is a certificate custodian's (a person)."""
    if not is_custodian:
        raise refused("a batch of blanks is confirmed by a certificate custodian (证件管理员) logged in")


def check_batch_confirmation(actor: str, recorded_by: str, confirmed_by: str | None) -> None:
    """Two different persons receive a batch: who recorded it never confirms it; a confirmation is given once."""
    if actor == recorded_by:
        raise refused("the person who recorded the batch cannot also confirm it: a second person confirms "
                      "(双人验收)")
    if confirmed_by is not None and confirmed_by != actor:
        raise conflict(f"the batch was already confirmed by {confirmed_by}", "batch_no")
