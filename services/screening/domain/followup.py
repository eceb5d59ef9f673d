"""Follow-up cases (随访 / 召回 / 专案管理): opened by a high-risk, positive or refer result (or a high-risk
pregnancy grade), due by a date from the rules, worked through actions until closed or lost.

A case is never deleted: a result corrected to normal (or voided) closes its open case with a
`closed_reason`, and a later correction back to positive reopens it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from screening.domain.model import DomainError, fail

ACTIONS = ("contacted", "diagnosed", "treated", "referred", "closed", "lost")
#: actions that end a case; `lost` = lost to follow-up (失访)
CLOSING = frozenset({"closed", "lost"})
HIGH_RISK_PREGNANCY = "pregnancy_high_risk"


@dataclass(frozen=True)
class Action:
    action: str
    on: date
    note: str | None = None
    outcome: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "on": self.on.isoformat(), "note": self.note, "outcome": self.outcome}


@dataclass(frozen=True)
class Case:
    case_id: str
    screening_type: str
    reason: str
    subject_key: str
    person_id: str
    pregnancy_id: str | None
    region_code: str
    institution_code: str
    opened_on: date
    due_on: date
    screening_source: str | None = None
    screening_id: str | None = None
    status: str = "open"
    closed_on: date | None = None
    outcome: str | None = None
    closed_reason: str | None = None
    version: int = 1
    actions: tuple[Action, ...] = field(default_factory=tuple)

    @property
    def screening_key(self) -> str:
        return f"{self.screening_source}/{self.screening_id}" if self.screening_source else ""

    def overdue(self, today: date) -> bool:
        return self.status == "open" and self.due_on < today

    def managed(self) -> bool:
        """≥ 1 action (high_risk_management_rate's 'managed')."""
        return bool(self.actions)


def add_action(case: Case, action: str, on: date, today: date, note: str | None = None,
               outcome: str | None = None) -> tuple[Case, bool]:
    """The case after one more action, and whether anything changed (a retry of the last action does not)."""
    new = Action(action, on, note, outcome if action != "lost" else (outcome or "lost"))
    if case.actions and case.actions[-1] == new:
        return case, False
    if action not in ACTIONS:
        raise fail("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    # a 专案 that ended with its pregnancy still takes the actions of before that end, posted late (HIS data
    # entry lags); a closing one among them closes it by its own action instead
    ended = case.status == "closed" and ended_with_pregnancy(case)
    if case.status == "closed" and not (ended and case.closed_on is not None and on <= case.closed_on):
        why = case.closed_reason or f"action {case.actions[-1].action if case.actions else 'closed'}"
        raise fail("case_id", f"the case was closed on {case.closed_on} ({why}); no action after closing", 409)
    errs = []
    if on < case.opened_on:
        errs.append({"field": "on", "reason": f"{on} is before the case was opened ({case.opened_on})"})
    if on > today:
        errs.append({"field": "on", "reason": f"{on} is in the future"})
    if case.actions and on < case.actions[-1].on:
        errs.append({"field": "on", "reason": f"actions are recorded in order: the last one was on "
                     f"{case.actions[-1].on}"})
    if action == "closed" and not outcome:
        errs.append({"field": "outcome", "reason": "closing a case needs its outcome (e.g. diagnosed_normal, "
                     "confirmed_treated)"})
    if errs:
        raise DomainError(errs)
    changes: dict[str, Any] = {"actions": (*case.actions, new), "version": case.version + 1}
    if action in CLOSING:
        changes.update(status="closed", closed_on=on, outcome=new.outcome, closed_reason=None)
    return dataclasses.replace(case, **changes), True


def ended_with_pregnancy(case: Case) -> bool:
    return (case.closed_reason or "").startswith("pregnancy ended")


def close_for(case: Case, on: date, reason: str) -> Case:
    """Close an open case without an action: its result no longer needs follow-up (corrected, voided)."""
    if case.status == "closed":
        return case
    return dataclasses.replace(case, status="closed", closed_on=max(on, case.opened_on), closed_reason=reason,
                               outcome=None, version=case.version + 1)


def pregnancy_end_reason(delivered_on: date) -> str:
    """Why a 高危专案 case closed by itself: its pregnancy ended."""
    return f"pregnancy ended (delivered on {delivered_on.isoformat()})"


def at_pregnancy_end(case: Case, delivered_on: date | None) -> Case:
    """高危孕产妇专案管理 runs until the pregnancy ends: an open case closes on the delivery date, with the reason
    (decision 50). A case already closed by this same end stays as it is; one closed for an end that is no
    longer recorded (the delivery voided or re-dated) opens again."""
    if delivered_on is None:
        if case.status == "closed" and ended_with_pregnancy(case):
            return dataclasses.replace(case, status="open", closed_on=None, closed_reason=None, outcome=None,
                                       version=case.version + 1)
        return case
    reason = pregnancy_end_reason(delivered_on)
    if case.status == "closed" and ended_with_pregnancy(case) and case.closed_reason != reason:
        return dataclasses.replace(case, closed_on=max(delivered_on, case.opened_on), closed_reason=reason,
                                   version=case.version + 1)
    return close_for(case, delivered_on, reason)


def reopen(case: Case, reason: str, due_on: date) -> Case:
    """A result corrected back to a class that needs follow-up: the case it had opens again (if it had been
    closed by a correction, not by its own actions)."""
    if case.status == "open":
        if (case.reason, case.due_on) == (reason, due_on):
            return case
        return dataclasses.replace(case, reason=reason, due_on=due_on, version=case.version + 1)
    if case.closed_reason is None or ended_with_pregnancy(case):
        return case  # closed by its own actions (the follow-up happened), or by the end of its pregnancy
    return dataclasses.replace(case, status="open", closed_on=None, closed_reason=None, outcome=None, reason=reason,
                               due_on=due_on, version=case.version + 1)
