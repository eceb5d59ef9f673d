"""Queries (数据质疑) back to the reporting institution: one per finding, with a life of its own.

    open ──answer──▶ answered ("confirmed as recorded", with a comment)
      │                 │
      ├──accept (bureau)┴──▶ accepted
      └── the finding disappears: corrected (the record was fixed) / withdrawn (the record was voided)
    corrected / withdrawn ── the finding comes back ──▶ open again

An open query past its due date escalates to the level above (the institution's county bureau): it is then
listed as `escalated` and counted against the institution's score. Pure: no database, no clock of its own."""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from kit.records import DomainError, field_error

from quality.domain.rules import Finding

LIVE = ("open", "answered", "accepted")  # the finding still holds
STATUSES = (*LIVE, "corrected", "withdrawn")
QUERY_NAMESPACE = uuid.UUID("5b0c3f1e-8a43-4b8e-9a57-2f3c6d1e7a90")


@dataclass(frozen=True)
class Query:
    key: str
    rule_id: str
    record_key: str
    institution_code: str
    detail: str
    period: str
    status: str
    opened_on: date
    due_on: date
    closed_on: date | None = None
    comment: str | None = None
    answered_by: str | None = None
    version: int = 1

    @property
    def id(self) -> str:
        """A stable id for URLs (the key holds slashes): the same finding always has the same query id."""
        return str(uuid.uuid5(QUERY_NAMESPACE, self.key))

    def overdue(self, today: date) -> bool:
        return self.status == "open" and self.due_on < today

    def level(self, today: date) -> str:
        """Who must act: the institution, or (escalated, 逾期上报) the bureau above it."""
        return "bureau" if self.overdue(today) else "institution"


def opened(f: Finding, today: date, due_days: int) -> Query:
    return Query(f.key, f.rule_id, f.record_key, f.institution_code, f.detail, f.period, "open", today,
                 today + timedelta(days=due_days))


def reconcile(existing: dict[str, Query], found: dict[str, Finding], voided_records: set[str], today: date,
              due_days: int) -> list[Query]:
    """The queries of one evaluation unit after it was evaluated again: new findings open queries, findings
    that came back re-open theirs, findings gone close theirs as corrected (or withdrawn if their record was
    voided). Returns only the queries that changed."""
    changed = []
    for key, f in found.items():
        q = existing.get(key)
        if q is None:
            changed.append(opened(f, today, due_days))
        elif q.status not in LIVE:
            changed.append(dataclasses.replace(q, status="open", opened_on=today,
                                               due_on=today + timedelta(days=due_days), closed_on=None,
                                               detail=f.detail, institution_code=f.institution_code,
                                               version=q.version + 1))
        elif q.detail != f.detail or q.institution_code != f.institution_code:
            changed.append(dataclasses.replace(q, detail=f.detail, institution_code=f.institution_code,
                                               version=q.version + 1))
    for key, q in existing.items():
        if key not in found and q.status in LIVE:
            status = "withdrawn" if q.record_key in voided_records else "corrected"
            changed.append(dataclasses.replace(q, status=status, closed_on=today, version=q.version + 1))
    return changed


def answer(q: Query, comment: str, actor: str) -> Query:
    """The institution confirms the record as recorded (核实无误), saying why."""
    if q.status not in ("open", "answered"):
        raise DomainError([field_error("status", f"the query is {q.status}: only an open query is answered")], 409)
    return dataclasses.replace(q, status="answered", comment=comment, answered_by=actor, version=q.version + 1)


def accept(q: Query, comment: str | None, actor: str, today: date) -> Query:
    """The bureau accepts the record as it is (the query ends; the finding stays known)."""
    if q.status not in ("open", "answered"):
        raise DomainError([field_error("status", f"the query is {q.status}: only an open or answered query is "
                                       "accepted")], 409)
    return dataclasses.replace(q, status="accepted", comment=comment or q.comment, answered_by=actor,
                               closed_on=today, version=q.version + 1)
