"""Quality rules as data (rules/v1.json, DHIS2's validation rules and outlier detection): each rule has an id,
a Chinese and an English description, a severity, a scope and a `check` whose meaning its `kind` gives.

Kinds and the unit each is evaluated on:
- per record: birthweight_gestation (a delivery), child_z_implausible (a child check), high_risk_past_due (a
  follow-up case, against "today");
- per pregnancy (a PregnancyFile): dates_order, delivery_without_booking, mother_age, twins_disagree and the
  missing follow-ups newborn_visit_missing / certificate_missing (against "today");
- per institution and month: aggregate (left / operator / right over measures) and outlier (modified z-score
  of a measure's monthly counts, Iglewicz & Hoaglin).

Every function here is pure: the same records and the same "today" give the same findings, whatever order the
events came in. That is what makes the live evaluation equal to a recomputation."""
from __future__ import annotations

import json
import math
import operator
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from quality.domain.records import Encounter, FollowupCase, PregnancyFile

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
KINDS = ("birthweight_gestation", "dates_order", "delivery_without_booking", "child_z_implausible", "mother_age",
         "twins_disagree", "newborn_visit_missing", "certificate_missing", "high_risk_past_due", "aggregate",
         "outlier")
OPERATORS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}
MEASURES = ("women_delivered", "live_births", "caesareans", "booked", "hiv_tested")


class RuleError(ValueError):
    """A rule file is malformed (found when it is loaded, never while evaluating)."""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    severity: str
    scope: str
    description_zh: str
    description_en: str
    check: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One breach of one rule: `key` identifies it across re-evaluations (rule + what it is about);
    `record_key` is the record to fix, `institution_code` whoever posted it (the query goes there)."""

    rule_id: str
    key: str
    record_key: str
    institution_code: str
    detail: str
    period: str = ""  # YYYY-MM of the record's clinical date


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    birthweight_band: dict[int, tuple[int, int]]
    query_due_days: int
    timeliness_days: int

    def of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]

    def by_id(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def _parse(doc: dict[str, Any]) -> RuleSet:
    rules = []
    for r in doc["rules"]:
        if r["kind"] not in KINDS:
            raise RuleError(f"rule {r.get('id')}: unknown kind {r['kind']}")
        if r["severity"] not in ("error", "warning"):
            raise RuleError(f"rule {r['id']}: severity is error or warning")
        c = r["check"]
        if r["kind"] == "aggregate" and (c["operator"] not in OPERATORS or c["left"] not in MEASURES
                                         or c["right"] not in MEASURES):
            raise RuleError(f"rule {r['id']}: left / right are measures {MEASURES}, operator one of {list(OPERATORS)}")
        if r["kind"] == "outlier" and c["measure"] not in MEASURES:
            raise RuleError(f"rule {r['id']}: unknown measure {c['measure']}")
        rules.append(Rule(r["id"], r["kind"], r["severity"], r["scope"], r["description_zh"], r["description_en"], c))
    if len({r.id for r in rules}) != len(rules):
        raise RuleError("rule ids are unique")
    band = {int(w): (int(lo), int(hi)) for w, lo, hi in doc["birthweight_plausible_g"]}
    return RuleSet(doc["version"], tuple(rules), band, int(doc["query_due_days"]), int(doc["timeliness_days"]))


def load(path: Path | None = None) -> RuleSet:
    """The rule set in force (the newest file in rules/)."""
    path = path or sorted(RULES_DIR.glob("v*.json"))[-1]
    return _parse(json.loads(path.read_text(encoding="utf-8")))


def _month(d: date) -> str:
    return d.strftime("%Y-%m")


# ---------------------------------------------------------------- per record
def birthweight_findings(rs: RuleSet, e: Encounter) -> list[Finding]:
    """A weighed baby outside the plausible band of its completed gestational week (weeks outside the table:
    not judged)."""
    out = []
    for rule in rs.of_kind("birthweight_gestation"):
        week = e.gestational_days // 7
        band = rs.birthweight_band.get(week)
        if band is None:
            continue
        for i, b in enumerate(e.babies):
            if b.weight_g and not band[0] <= b.weight_g <= band[1]:
                out.append(Finding(rule.id, f"{rule.id}:{e.key}#{i}", e.key, e.institution_code,
                                   f"baby {i + 1}: {b.weight_g} g at {week} weeks (plausible {band[0]}-{band[1]} g)",
                                   _month(e.occurred_on)))
    return out


def child_z_findings(rs: RuleSet, e: Encounter) -> list[Finding]:
    out = []
    for rule in rs.of_kind("child_z_implausible"):
        bad = [f"{name} {e.z[name]:.2f} outside [{lo}, {hi}]" for name, (lo, hi) in rule.check.items()
               if name in e.z and not math.isnan(e.z[name]) and not lo <= e.z[name] <= hi]
        if bad:
            out.append(Finding(rule.id, f"{rule.id}:{e.key}", e.key, e.institution_code, "; ".join(bad),
                               _month(e.occurred_on)))
    return out


def encounter_findings(rs: RuleSet, e: Encounter) -> list[Finding]:
    """The per-record rules of one live encounter."""
    if e.voided:
        return []
    if e.type == "delivery":
        return birthweight_findings(rs, e)
    if e.type == "child_check":
        return child_z_findings(rs, e)
    return []


def case_findings(rs: RuleSet, c: FollowupCase, today: date) -> list[Finding]:
    out = []
    for rule in rs.of_kind("high_risk_past_due"):
        if c.case_type in rule.check["case_types"] and c.status == "open" and c.due_on < today:
            out.append(Finding(rule.id, f"{rule.id}:{c.key}", c.key, c.institution_code,
                               f"{c.case_type} due {c.due_on.isoformat()}, still open", _month(c.due_on)))
    return out


# ---------------------------------------------------------------- per pregnancy
def _deliveries(f: PregnancyFile) -> list[Encounter]:
    return sorted((e for e in f.encounters if e.type == "delivery"), key=lambda e: (e.occurred_on, e.key))


def dates_order_findings(rs: RuleSet, f: PregnancyFile) -> list[Finding]:
    """LMP ≤ booking; LMP ≤ every prenatal visit ≤ delivery; delivery ≥ LMP; delivery ≤ every postpartum visit.
    The finding goes to the record that is out of place."""
    out: list[Finding] = []
    p = f.pregnancy
    deliveries = _deliveries(f)
    delivered = deliveries[0].occurred_on if deliveries else None
    for rule in rs.of_kind("dates_order"):
        def add(key: str, inst: str, on: date, why: str, rid: str = rule.id) -> None:
            out.append(Finding(rid, f"{rid}:{key}", key, inst, why, _month(on)))
        if p.booked_on < p.lmp:
            add(p.key, p.institution_code, p.booked_on, f"booked {p.booked_on} before the LMP {p.lmp}")
        for e in f.encounters:
            if e.type == "prenatal_visit" and e.occurred_on < p.lmp:
                add(e.key, e.institution_code, e.occurred_on, f"prenatal visit {e.occurred_on} before the LMP {p.lmp}")
            elif e.type == "prenatal_visit" and delivered is not None and e.occurred_on > delivered:
                add(e.key, e.institution_code, e.occurred_on,
                    f"prenatal visit {e.occurred_on} after the delivery {delivered}")
            elif e.type == "delivery" and e.occurred_on < p.lmp:
                add(e.key, e.institution_code, e.occurred_on, f"delivery {e.occurred_on} before the LMP {p.lmp}")
            elif e.type == "postpartum_visit" and delivered is not None and e.occurred_on < delivered:
                add(e.key, e.institution_code, e.occurred_on,
                    f"postpartum visit {e.occurred_on} before the delivery {delivered}")
    return out


def booking_findings(rs: RuleSet, f: PregnancyFile) -> list[Finding]:
    """未建册分娩: the pregnancy was booked on or after the day of its delivery."""
    out = []
    for rule in rs.of_kind("delivery_without_booking"):
        for d in _deliveries(f):
            if f.pregnancy.booked_on >= d.occurred_on:
                out.append(Finding(rule.id, f"{rule.id}:{d.key}", d.key, d.institution_code,
                                   f"booked {f.pregnancy.booked_on}, delivered {d.occurred_on}", _month(d.occurred_on)))
    return out


def _age_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def mother_age_findings(rs: RuleSet, f: PregnancyFile) -> list[Finding]:
    out: list[Finding] = []
    p = f.pregnancy
    if f.mother is None:
        return out
    age = _age_years(f.mother.birth_date, p.booked_on)
    for rule in rs.of_kind("mother_age"):
        if not rule.check["min_years"] <= age <= rule.check["max_years"]:
            out.append(Finding(rule.id, f"{rule.id}:{p.key}", p.key, p.institution_code,
                               f"mother {age} years old at booking {p.booked_on}", _month(p.booked_on)))
    return out


def twins_findings(rs: RuleSet, f: PregnancyFile) -> list[Finding]:
    """A multiple birth whose children's registered birth dates are further apart than `max_days_apart`, from each
    other or from the delivery."""
    out = []
    for rule in rs.of_kind("twins_disagree"):
        limit = timedelta(days=rule.check["max_days_apart"])
        for d in _deliveries(f):
            kids = [f.children[b.child_id] for b in d.babies if b.child_id in f.children]
            if len(d.babies) < 2 or not kids:
                continue
            dates = [k.birth_date for k in kids] + [d.occurred_on]
            if max(dates) - min(dates) > limit:
                out.append(Finding(rule.id, f"{rule.id}:{d.key}", d.key, d.institution_code,
                                   "birth dates " + ", ".join(sorted({x.isoformat() for x in dates})),
                                   _month(d.occurred_on)))
    return out


def _live_children(d: Encounter) -> list[str]:
    return [b.child_id for b in d.babies if b.outcome == "live" and b.child_id]


def followup_findings(rs: RuleSet, f: PregnancyFile, today: date) -> list[Finding]:
    """漏访 / 漏发证: a live-born child `days_after_birth` days old (the deadline passed: today > birth + N) with
    no newborn visit / no first certificate (prepared or issued; a voided one does not count)."""
    out = []
    for d in _deliveries(f):
        for child in _live_children(d):
            for rule in rs.of_kind("newborn_visit_missing") + rs.of_kind("certificate_missing"):
                if today <= d.occurred_on + timedelta(days=rule.check["days_after_birth"]):
                    continue
                if rule.kind == "newborn_visit_missing":
                    done = any(e.is_newborn_visit for e in f.child_encounters.get(child, []))
                else:
                    done = any(c.kind.startswith("first") and c.status in ("prepared", "issued", "superseded")
                               for c in f.certificates.get(child, []))
                if not done:
                    out.append(Finding(rule.id, f"{rule.id}:{d.key}#{child}", d.key, d.institution_code,
                                       f"child {child} born {d.occurred_on}: {rule.description_en.lower()}",
                                       _month(d.occurred_on)))
    return out


def pregnancy_findings(rs: RuleSet, f: PregnancyFile, today: date) -> list[Finding]:
    """Every pregnancy-level rule on one live pregnancy's file."""
    if f.pregnancy.voided:
        return []
    return (dates_order_findings(rs, f) + booking_findings(rs, f) + mother_age_findings(rs, f)
            + twins_findings(rs, f) + followup_findings(rs, f, today))


# ---------------------------------------------------------------- per institution and month
Measures = dict[tuple[str, str], dict[str, int]]  # (institution, YYYY-MM) -> measure -> count


def aggregate_findings(rs: RuleSet, measures: Measures) -> list[Finding]:
    """DHIS2 validation rules: left side, operator, right side, over one institution's month (a measure with no
    record that month counts 0)."""
    out = []
    for rule in rs.of_kind("aggregate"):
        c = rule.check
        for (inst, month), m in sorted(measures.items()):
            left, right = m.get(c["left"], 0), m.get(c["right"], 0)
            if not OPERATORS[c["operator"]](left, right):
                key = f"{inst}/{month}"
                out.append(Finding(rule.id, f"{rule.id}:{key}", f"month:{key}", inst,
                                   f"{c['left']} {left} {c['operator']} {c['right']} {right} fails", month))
    return out


def modified_z(values: list[int]) -> list[float] | None:
    """Iglewicz–Hoaglin modified z-scores 0.6745 (x − median) / MAD; None when MAD is 0 (no spread to judge)."""
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    if mad == 0:
        return None
    return [0.6745 * (v - med) / mad for v in values]


def _months_back(month: str, n: int) -> list[str]:
    y, m = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def outlier_findings(rs: RuleSet, measures: Measures, months: Iterable[str]) -> list[Finding]:
    """For each of `months`, each institution: its count in the month against its own previous window of
    `months` months including this one (months without records count 0, from the institution's first month on);
    |M| > threshold flags the month."""
    out = []
    for rule in rs.of_kind("outlier"):
        c = rule.check
        by_inst: dict[str, dict[str, int]] = {}
        for (inst, month), m in measures.items():
            by_inst.setdefault(inst, {})[month] = m.get(c["measure"], 0)
        for inst, series in sorted(by_inst.items()):
            first = min(series)
            for month in sorted(set(months)):
                window = [w for w in _months_back(month, c["months"]) if w >= first]
                if month < first or len(window) < c["min_months"]:
                    continue
                values = [series.get(w, 0) for w in window]
                z = modified_z(values)
                if z is not None and abs(z[-1]) > c["threshold"]:
                    key = f"{inst}/{month}"
                    out.append(Finding(rule.id, f"{rule.id}:{key}", f"month:{key}", inst,
                                       f"{c['measure']} {values[-1]} in {month}: modified z {z[-1]:.2f}, window "
                                       f"median {statistics.median(values)}", month))
    return out


def pregnancy_next_check(rs: RuleSet, f: PregnancyFile | None, today: date) -> date | None:
    """The first day after `today` on which a missing-follow-up rule of this file could start to hold (the sweep
    looks at the file again then); None when nothing is pending."""
    if f is None or f.pregnancy.voided:
        return None
    timed = rs.of_kind("newborn_visit_missing") + rs.of_kind("certificate_missing")
    days = [r.check["days_after_birth"] for r in timed]
    pending = [d.occurred_on + timedelta(days=n + 1) for d in _deliveries(f) if _live_children(d) for n in days]
    future = [x for x in pending if x > today]
    return min(future) if future else None


def case_next_check(c: FollowupCase | None, today: date) -> date | None:
    if c is None or c.status != "open" or c.due_on < today:
        return None
    return c.due_on + timedelta(days=1)
