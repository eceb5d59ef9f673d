"""Reporting periods: month `2021-09`, quarter `2021Q3`, half `2021H1`, calendar year `2021`, and the MCH
statistical year `2021SY` (1 Oct 2020 – 30 Sep 2021, 全国妇幼卫生年报)."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

PERIOD_RE = re.compile(r"^(\d{4})(?:(SY)|H([12])|Q([1-4])|-(0[1-9]|1[0-2]))?$")


@dataclass(frozen=True)
class Period:
    key: str
    start: date
    end: date  # inclusive

    def months(self) -> list[str]:
        out = []
        y, m = self.start.year, self.start.month
        while date(y, m, 1) <= self.end:
            out.append(f"{y}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


#: the years a query may ask for: beyond them a period's months run past the calendar (year 9999's last
#: month has no successor) and no record can fall in them anyway (births from 1900, nothing in the future)
FIRST_YEAR, LAST_YEAR = 1900, 2100


def queryable(p: Period) -> bool:
    return FIRST_YEAR <= p.start.year and p.end.year <= LAST_YEAR


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def parse(key: str) -> Period:
    m = PERIOD_RE.match(key)
    if not m:
        raise ValueError("period must be YYYY, YYYYSY, YYYYH1/H2, YYYYQ1..Q4 or YYYY-MM")
    y = int(m.group(1))
    if m.group(2):
        return Period(key, date(y - 1, 10, 1), date(y, 9, 30))
    if m.group(3):
        h = int(m.group(3))
        return Period(key, date(y, 1 + 6 * (h - 1), 1), _month_end(y, 6 * h))
    if m.group(4):
        q = int(m.group(4))
        return Period(key, date(y, 3 * q - 2, 1), _month_end(y, 3 * q))
    if m.group(5):
        mo = int(m.group(5))
        return Period(key, date(y, mo, 1), _month_end(y, mo))
    return Period(key, date(y, 1, 1), date(y, 12, 31))


def keys_of(d: date) -> tuple[str, str, str, str, str]:
    """Every period an event dated `d` counts in: month, quarter, half, year, statistical year."""
    y, m = d.year, d.month
    return (f"{y}-{m:02d}", f"{y}Q{(m - 1) // 3 + 1}", f"{y}H{1 if m <= 6 else 2}", f"{y}",
            f"{y + 1 if m >= 10 else y}SY")


def stored_key(when: str) -> str:
    """Where a contribution is stored: a dated one (`2021-09-30`) under its month `2021-09`, summed into the
    quarter, half, year and statistical year at read time; one that belongs to a single period (`@2021Q3`: the
    latest check in the period) under that key; a standing one (`^2021-09`: a population entered or left, a
    stock movement) under its month, summed from the beginning up to a period's last month."""
    return when if when[0] in "@^" else when[:7]


def stored_keys(key: str) -> list[str]:
    """The stored keys of the flows and per-period counts whose sum is the reporting period `key`: its months
    and its own `@key` (standing quantities are added up to `last_month(key)`)."""
    return [*parse(key).months(), "@" + key]


def last_month(key: str) -> str:
    e = parse(key).end
    return f"{e.year}-{e.month:02d}"


def started(key: str, today: date) -> bool:
    """A period that has not started has no standing population or stock yet (it is not projected)."""
    return parse(key).start <= today


def counts_in(when: str, key: str, today: date) -> bool:
    """Whether a contribution stored at `when` counts in the reporting period `key` — the rule the store's
    read query implements in SQL."""
    if when.startswith("^"):
        return started(key, today) and when[1:] <= last_month(key)
    return stored_key(when) in stored_keys(key)


def next_day(d: date) -> date:
    return d + timedelta(days=1)


def target_year(key: str) -> int | None:
    """Annual targets (任务数) apply to the calendar year and to the statistical year of the same number."""
    m = PERIOD_RE.match(key)
    if m and not (m.group(3) or m.group(4) or m.group(5)):
        return int(m.group(1))
    return None
