"""Declarative, versioned classification rules (rules/*.json): cut-offs and due dates are data.

A rule set has a `version` and an `effective_from` date; a result is classified by the newest set in force
on its `performed_on`, and that version is stored with it. Within a type, rules are tried in order and the
first whose condition holds gives the classification (and, if it says so, the follow-up case to open);
otherwise the class is `otherwise` ("normal").

Conditions: `{"fact": f, op: v}` with op one of eq, in, between ([lo, hi] inclusive), ge, gt, le, lt;
`{"any": [...]}`, `{"all": [...]}`. A missing fact makes its condition false.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
OPS = ("eq", "in", "between", "ge", "gt", "le", "lt")


@dataclass(frozen=True)
class FollowupSpec:
    """Which case to open and when it is due: `due_days` after `from` (performed_on or birth_date), and
    never sooner than `min_days` after the screen itself."""

    due_days: int
    anchor: str
    action: str
    min_days: int = 0

    def due_on(self, performed_on: date, birth_date: date | None) -> date:
        base = birth_date if self.anchor == "birth_date" and birth_date is not None else performed_on
        return max(base + timedelta(days=self.due_days), performed_on + timedelta(days=self.min_days))


@dataclass(frozen=True)
class Outcome:
    classification: str
    followup: FollowupSpec | None
    rule_version: str


@dataclass(frozen=True)
class HighRiskCaseSpec:
    grades: frozenset[str]
    due_days: int
    action: str
    #: when the 专案 ends by itself: "delivery" (the end of the pregnancy: a delivery, live or not); "never"
    #: (closed only by its own actions)
    closes_at: str = "delivery"


class RuleError(ValueError):
    """A rule file is malformed (found at load time, never at classification time)."""


def _check_condition(c: Any, where: str) -> None:
    if not isinstance(c, dict):
        raise RuleError(f"{where}: a condition is an object")
    if "any" in c or "all" in c:
        subs = c.get("any", c.get("all"))
        if not isinstance(subs, list) or not subs:
            raise RuleError(f"{where}: any/all take a non-empty list")
        for i, s in enumerate(subs):
            _check_condition(s, f"{where}[{i}]")
        return
    ops = [k for k in c if k != "fact"]
    if "fact" not in c or len(ops) != 1 or ops[0] not in OPS:
        raise RuleError(f"{where}: needs 'fact' and exactly one of {', '.join(OPS)}")
    if ops[0] == "between" and not (isinstance(c["between"], list) and len(c["between"]) == 2):
        raise RuleError(f"{where}: between takes [lo, hi]")


def holds(c: dict[str, Any], facts: dict[str, Any]) -> bool:
    if "any" in c:
        return any(holds(s, facts) for s in c["any"])
    if "all" in c:
        return all(holds(s, facts) for s in c["all"])
    v = facts.get(c["fact"])
    if v is None:
        return False
    if "eq" in c:
        return bool(v == c["eq"])
    if "in" in c:
        return v in c["in"]
    if "between" in c:
        lo, hi = c["between"]
        return bool(lo <= v <= hi)
    if "ge" in c:
        return bool(v >= c["ge"])
    if "gt" in c:
        return bool(v > c["gt"])
    if "le" in c:
        return bool(v <= c["le"])
    return bool(v < c["lt"])


@dataclass(frozen=True)
class RuleSet:
    version: str
    effective_from: date
    types: dict[str, list[dict[str, Any]]]
    otherwise: str
    high_risk_case: HighRiskCaseSpec

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleSet:
        try:
            types = d["types"]
            for t, rules in types.items():
                for i, r in enumerate(rules):
                    _check_condition(r["when"], f"{t}[{i}].when")
                    if not isinstance(r["classification"], str):
                        raise RuleError(f"{t}[{i}]: classification is a string")
                    f = r.get("followup")
                    if f is not None and (f.get("from") not in ("performed_on", "birth_date")
                                          or int(f["due_days"]) < 0):
                        raise RuleError(f"{t}[{i}].followup: from performed_on|birth_date, due_days >= 0")
            hr = d["cases"]["pregnancy_high_risk"]
            if hr.get("closes_at", "delivery") not in ("delivery", "never"):
                raise RuleError("cases.pregnancy_high_risk.closes_at: delivery|never")
            return cls(str(d["version"]), date.fromisoformat(d["effective_from"]), types,
                       d.get("otherwise", "normal"),
                       HighRiskCaseSpec(frozenset(hr["grades"]), int(hr["due_days"]), hr["action"],
                                        hr.get("closes_at", "delivery")))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, RuleError):
                raise
            raise RuleError(f"malformed rule set: {e!r}") from e

    def classify(self, screening_type: str, facts: dict[str, Any]) -> Outcome:
        for r in self.types.get(screening_type, []):
            if holds(r["when"], facts):
                f = r.get("followup")
                spec = FollowupSpec(int(f["due_days"]), f["from"], f.get("action", ""), int(f.get("min_days", 0))) \
                    if f else None
                return Outcome(r["classification"], spec, self.version)
        return Outcome(self.otherwise, None, self.version)


class Rules:
    """Every rule set, newest effective first."""

    def __init__(self, sets: list[RuleSet]) -> None:
        if not sets:
            raise RuleError("no rule set")
        self.sets = sorted(sets, key=lambda s: s.effective_from, reverse=True)

    def for_date(self, on: date) -> RuleSet:
        for s in self.sets:
            if s.effective_from <= on:
                return s
        return self.sets[-1]

    @property
    def current(self) -> RuleSet:
        return self.sets[0]


def load(directory: Path = RULES_DIR) -> Rules:
    return Rules([RuleSet.from_dict(json.loads(p.read_text(encoding="utf-8")))
                  for p in sorted(directory.glob("*.json"))])
