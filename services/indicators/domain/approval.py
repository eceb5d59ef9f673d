"""Submit → approve → lock (上报 → 审核 → 锁定), per report, period and reporting unit. Pure rules.

Anchor: DHIS2 data approval. A reporting unit is a region at one of the configured levels (default township
乡镇 → county 县区 → city 地市). The unit's statistician submits (上报): the figures are filed as a snapshot. A
person with the approver role whose region covers the unit — its own level's bureau or any level above —
approves (审核通过), which locks the filing: the snapshot never changes, and a unit can be approved only when
every unit below it is. Unapproving (退回) needs a reason and is refused while the level above has approved;
after it the unit's statistician resubmits, which files a new snapshot. Who acts is the logged-in person
(kit.auth.Principal), never a name in a body; the approver is not the person who submitted (四眼原则).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from kit.records import fail

from indicators.domain import periods, regions

#: level name → region code length
#: level name → region code length; institutions (a hospital, a health centre) are below every region level
LEVELS: dict[str, int] = {"province": 2, "city": 4, "county": 6, "township": 9, "institution": 99}
LEVEL_ZH: dict[str, str] = {"province": "省", "city": "地市", "county": "县区", "township": "乡镇",
                            "institution": "机构"}
INSTITUTION = LEVELS["institution"]
#: an institution as a reporting unit: `inst:<institution code>` (codes are free text, regions digits)
INST = "inst:"
INST_RE = re.compile(r"^inst:[A-Za-z0-9_.-]{1,64}$")
DEFAULT_LEVELS = ("township", "county", "city")
#: the reports that are filed (every one files the figures of every catalogue indicator of the unit) and their
#: default levels: the annual report level by level from the townships; the institutions' monthly report
#: (医疗机构月报) from the institutions to the township and the county
REPORTS: dict[str, str] = {"annual": "妇幼卫生年报", "monthly": "妇幼卫生月报（机构）"}
REPORT_LEVELS: dict[str, tuple[str, ...]] = {"annual": DEFAULT_LEVELS, "monthly": ("institution", "township", "county")}
MAX_REASON = 500

SUBMITTED, APPROVED, RETURNED = "submitted", "approved", "returned"
STATE_ZH = {SUBMITTED: "已上报", APPROVED: "已审核（锁定）", RETURNED: "已退回", "": "未上报"}


def configured_levels(spec: str | None = None, report: str = "annual") -> tuple[int, ...]:
    """The approval levels of a report, lowest first, as region code lengths (99: institutions).
    `MCH_APPROVAL_LEVELS_<REPORT>` (e.g. MCH_APPROVAL_LEVELS_ANNUAL="county,city"; for the annual report also
    `MCH_APPROVAL_LEVELS`) configures them; unknown names are an error at start-up."""
    default = ",".join(REPORT_LEVELS[report])
    env = os.environ.get(f"MCH_APPROVAL_LEVELS_{report.upper()}") or (
        os.environ.get("MCH_APPROVAL_LEVELS") if report == "annual" else None)
    raw = spec if spec is not None else env or default
    names = [x.strip() for x in raw.split(",") if x.strip()]
    unknown = [n for n in names if n not in LEVELS]
    if unknown or not names:
        raise ValueError(f"MCH_APPROVAL_LEVELS: unknown levels {unknown}; known: {', '.join(LEVELS)}")
    return tuple(sorted({LEVELS[n] for n in names}, reverse=True))


def all_levels() -> dict[str, tuple[int, ...]]:
    return {r: configured_levels(report=r) for r in REPORTS}


def is_institution(unit: str) -> bool:
    return unit.startswith(INST)


@dataclass(frozen=True)
class Filing:
    """What is stored for one (report, period, unit)."""

    report: str
    period: str
    unit: str
    state: str
    submitted_by: str
    approved_by: str | None = None


def check_target(report: str, period: str, unit: str, levels: tuple[int, ...]) -> None:
    """The report, period and unit of a request are well-formed and the unit is at an approval level."""
    if is_institution(unit):
        check_listing(report, period, "")
        if not INST_RE.match(unit):
            raise fail("unit", "an institution is inst:<institution code> (letters, digits, _ . -)")
        if INSTITUTION not in levels:
            raise fail("unit", "institutions are not an approval level of this report")
        return
    check_listing(report, period, unit)
    if not unit:
        raise fail("unit", "must be a region code of 2, 4, 6 or 9 digits")
    if len(unit) not in levels:
        names = ", ".join(n for n, n_len in LEVELS.items() if n_len in levels)
        raise fail("unit", f"a unit of this length is not an approval level (levels: {names})")


def check_listing(report: str, period: str, region: str) -> None:
    if report not in REPORTS:
        raise fail("report", f"unknown report; known: {', '.join(REPORTS)}", 404)
    try:
        periods.parse(period)
    except ValueError as e:
        raise fail("period", str(e)) from e
    if not regions.is_prefix(region):
        raise fail("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")


def level_below(unit: str, levels: tuple[int, ...]) -> int | None:
    """The code length of the units just below `unit` in the approval hierarchy (99: institutions), if any."""
    if is_institution(unit):
        return None
    lower = [n for n in levels if n > len(unit)]
    return min(lower) if lower else None


def level_above(unit: str, levels: tuple[int, ...], region: str = "") -> str | None:
    """The unit just above `unit` in the approval hierarchy, if any (an institution's: from its `region`)."""
    if is_institution(unit):
        upper = [n for n in levels if n < INSTITUTION]
        return region[:max(upper)] if upper and region else None
    upper = [n for n in levels if n < len(unit)]
    return unit[:max(upper)] if upper else None


def can_submit(current: Filing | None) -> None:
    """A unit is (re)submitted unless its filing is locked: an approved filing is unapproved first."""
    if current is not None and current.state == APPROVED:
        raise fail("unit", "the filing is approved and locked; it must be unapproved (退回) before it is "
                   "submitted again", 409)


def can_approve(current: Filing | None, actor: str, below_not_approved: list[str]) -> None:
    if current is None or current.state != SUBMITTED:
        state = STATE_ZH[current.state if current else ""]
        raise fail("unit", f"only a submitted filing can be approved (it is {state})", 409)
    if current.submitted_by == actor:
        raise fail("unit", "the person who submitted a filing cannot approve it (四眼原则)", 409)
    if below_not_approved:
        shown = ", ".join(below_not_approved[:20]) + (" …" if len(below_not_approved) > 20 else "")
        raise fail("unit", f"every unit below must be approved first; not approved: {shown}", 409)


def can_unapprove(current: Filing | None, parent: Filing | None, reason: str | None) -> str:
    """Returns the cleaned reason. A filing that is submitted or approved can be returned, with a reason, while
    the level above has not approved its own filing (that would change figures under a locked filing)."""
    clean = check_reason(reason)
    if current is None or current.state not in (SUBMITTED, APPROVED):
        raise fail("unit", f"only a submitted or approved filing can be unapproved (it is "
                   f"{STATE_ZH[current.state if current else '']})", 409)
    if parent is not None and parent.state == APPROVED:
        raise fail("unit", f"the unit above ({parent.unit}) has approved its filing; it must be unapproved first",
                   409)
    return clean


def check_reason(reason: str | None) -> str:
    clean = (reason or "").strip()
    if not clean:
        raise fail("reason", "a reason is required to unapprove (退回原因)")
    if len(clean) > MAX_REASON or "\x00" in clean:
        raise fail("reason", f"at most {MAX_REASON} characters, no NUL")
    return clean


Figures = dict[str, list[int | None]]  # indicator code → [numerator, denominator]


def figures(rows: list[dict[str, Any]], codes: list[str], with_denominator: set[str]) -> Figures:
    """The filed figures of a unit from counter rows (code, part, n): every indicator, zero or not."""
    out: Figures = {c: [0, 0 if c in with_denominator else None] for c in codes}
    for r in rows:
        if r["code"] in out:
            out[r["code"]][0 if r["part"] == "n" else 1] = int(r["n"])
    return out


def differences(filed: Figures, current: Figures) -> list[str]:
    """The indicators whose current figures differ from the filed ones (a late correction)."""
    return [c for c in current if filed.get(c) != current[c]]



def deadline(period: str) -> date:
    """The last day to file a period (报送时限) in the statistical year's calendar: a quarter by the 10th of the
    month after it (Q4 by 10 January), the third quarter — which closes the statistical year — by 12 October, as
    does the statistical year itself (and 1–9月); a month or another cumulative period by the 10th of the next
    month; a calendar year by 10 January, a half year with its quarter."""
    p = periods.parse(period)
    end = p.end
    if end.month == 9 and (period.endswith("Q3") or period.endswith("SY") or period.endswith("..09")):
        return date(end.year, 10, 12)
    nxt = date(end.year + 1, 1, 10) if end.month == 12 else date(end.year, end.month + 1, 10)
    return nxt


def completeness(units: dict[str, tuple[str, date | None]], due: date) -> dict[str, Any]:
    """units: unit → (state, day first submitted, China time). Expected = every unit listed; submitted = filed at
    least once; on time = first filed by the deadline."""
    rows = []
    for unit, (state, first) in sorted(units.items()):
        rows.append({"unit": unit, "state": state, "state_zh": STATE_ZH[state],
                     "first_submitted_on": first.isoformat() if first else None,
                     "on_time": first is not None and first <= due})
    expected = len(rows)
    submitted = sum(1 for r in rows if r["first_submitted_on"])
    on_time = sum(1 for r in rows if r["on_time"])
    approved = sum(1 for r in rows if r["state"] == APPROVED)

    def pct(n: int) -> float | None:
        return round(n * 100 / expected, 2) if expected else None

    return {"deadline": due.isoformat(), "expected": expected, "submitted": submitted, "on_time": on_time,
            "approved": approved, "completeness": pct(submitted), "timeliness": pct(on_time), "units": rows}
