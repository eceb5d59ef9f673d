"""What the generator produces: ordered steps of HTTP operations, as a HIS would send them.

Bodies may name records created earlier by a reference string `@kind:key` (a mother's person id, a child born
in a delivery, a follow-up case, a certificate serial): the poster fills them in from earlier answers, so the
plan itself is pure data and deterministic for a seed."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: how an answer's ids are remembered for later references
CAPTURES = ("person", "mother", "children", "case", "serial")


@dataclass
class Op:
    path: str
    body: dict[str, Any]
    key: str | None = None  # the reference this op's answer defines
    capture: str | None = None  # one of CAPTURES
    group: str | None = None  # ops of one group are posted one after the other, in plan order
    actor: str | None = None  # the person account posting it (a certificate office's staff); None: the system


@dataclass(frozen=True)
class Person:
    """A member of staff the plan acts as (人员账号): the poster ensures the account and posts with its token."""

    name: str
    roles: tuple[str, ...]
    region: str
    institution_code: str
    staff_id: str


@dataclass
class Step:
    """One kind of record, posted in order. `batch_path` set: posted in chunks to the collection's `:batch`."""

    name: str
    service: str  # registry | screening | certificates | indicators
    method: str  # PUT | POST
    ops: list[Op] = field(default_factory=list)
    batch_path: str | None = None

    def add(self, path: str, body: dict[str, Any], key: str | None = None, capture: str | None = None,
            group: str | None = None, actor: str | None = None) -> None:
        self.ops.append(Op(path, body, key, capture, group, actor))


STEP_ORDER: tuple[tuple[str, str, str, str | None], ...] = (
    # name, service, method, batch path
    # maternal records first, so that a bureau watching the first load sees its dashboards fill early
    ("institutions", "registry", "PUT", None),
    ("pregnancies", "registry", "POST", None),
    ("antenatal", "registry", "POST", "/v1/encounters:batch"),
    ("deliveries", "registry", "POST", None),
    ("after_birth", "registry", "POST", "/v1/encounters:batch"),
    ("deaths", "registry", "POST", "/v1/encounters:batch"),
    ("persons", "registry", "POST", "/v1/persons:batch"),
    ("cohort_checks", "registry", "POST", "/v1/encounters:batch"),
    ("marriages", "registry", "POST", "/v1/marriage-registrations:batch"),
    ("screenings", "screening", "POST", "/v1/screenings:batch"),
    ("screenings_with_followup", "screening", "POST", None),
    ("followup_actions", "screening", "POST", None),
    ("cert_stock", "certificates", "POST", None),
    ("cert_custodians", "certificates", "POST", None),
    ("cert_spoiled", "certificates", "POST", None),
    ("certificates", "certificates", "POST", None),
    ("cert_seals", "certificates", "POST", None),
    ("cert_after", "certificates", "POST", None),
    ("cert_after_seals", "certificates", "POST", None),
    ("targets", "indicators", "PUT", None),
    ("populations", "indicators", "PUT", None),
)


@dataclass
class Plan:
    steps: dict[str, Step]
    #: what was planned, for tests and summaries: facts per pregnancy / child, in plain data
    cases: list[dict[str, Any]] = field(default_factory=list)
    #: the people whose accounts post the ops naming them (account id → person)
    people: dict[str, Person] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Plan:
        return cls({name: Step(name, svc, method, batch_path=bp) for name, svc, method, bp in STEP_ORDER})

    def __getitem__(self, name: str) -> Step:
        return self.steps[name]

    def ordered(self) -> list[Step]:
        return [self.steps[name] for name, *_ in STEP_ORDER if self.steps[name].ops]

    def size(self) -> int:
        return sum(len(s.ops) for s in self.steps.values())


def refs_in(value: Any) -> list[str]:
    """Every `@kind:key` reference inside a body or path."""
    if isinstance(value, str):
        return [p for p in value.split("/") if p.startswith("@")] if "/" in value else (
            [value] if value.startswith("@") else [])
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs_in(v)]
    return []


def resolve(value: Any, ids: dict[str, str]) -> Any:
    """The value with every reference replaced by the id it names (KeyError if one is not known)."""
    if isinstance(value, str):
        if "/" in value:
            return "/".join(ids[p] if p.startswith("@") else p for p in value.split("/"))
        return ids[value] if value.startswith("@") else value
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value
