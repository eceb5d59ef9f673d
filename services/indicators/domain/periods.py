"""Reporting periods: month `2021-09`, quarter `2021Q3`, half `2021H1`, calendar year `2021`, the MCH
statistical year `2021SY` (1 Oct 2020 – 30 Sep 2021, 全国妇幼卫生年报), and the cumulative periods of a year
(累计, 截止N月底): `2021-01..09` (1–9月 of the calendar year) and `2021SY..03` (the statistical year 2021 from
1 Oct 2020 to the end of March 2021).

A cumulative period that is also an ordinary period (1–3月 is Q1, 1–12月 the year, 10–12月 of a statistical
year the previous calendar year's Q4) is stored as that period (`canonical`), so nothing is counted twice.

A cumulative period's flows are the sum of its months. Its per-period counts (a child counted once, by its latest
check in the period) are not sums of months, and are not stored per cumulative period either (that doubled the rows
each event touches): they are stored as *steps* of their window (the calendar year `2021-01`, the statistical year
`2021SY`), `+2021-01..05` = the count of 1–5月 minus that of 1–4月, only for the months whose cumulative period
is not an ordinary one (1–5月 = Q1's count + the steps of April and May: `step_keys`; decision in
docs/decisions/pending-h1.md)."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

PERIOD_RE = re.compile(r"^(\d{4})(?:(SY)|H([12])|Q([1-4])|-(0[1-9]|1[0-2]))?$")
#: cumulative: `2021-01..09` (calendar year to the end of September), `2021SY..03` (statistical year to March)
CUMULATIVE_RE = re.compile(r"^(\d{4})(-01|SY)\.\.(0[1-9]|1[0-2])$")
#: the months of a statistical year in order (October of the year before to September)
SY_MONTHS = (10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9)


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


def cumulative_end(year: int, statistical: bool, month: int) -> date:
    """The last day of a cumulative period: the end of `month` in the calendar year, or in the statistical year
    `year` (October to December fall in the year before)."""
    return _month_end(year - 1 if statistical and month >= 10 else year, month)


def parse(key: str) -> Period:
    c = CUMULATIVE_RE.match(key)
    if c:
        y, sy, mo = int(c.group(1)), c.group(2) == "SY", int(c.group(3))
        return Period(key, date(y - 1, 10, 1) if sy else date(y, 1, 1), cumulative_end(y, sy, mo))
    m = PERIOD_RE.match(key)
    if not m:
        raise ValueError("period must be YYYY, YYYYSY, YYYYH1/H2, YYYYQ1..Q4, YYYY-MM, or cumulative "
                         "YYYY-01..MM (1–MM月) or YYYYSY..MM (statistical year to the end of MM)")
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


def is_cumulative(key: str) -> bool:
    return CUMULATIVE_RE.match(key) is not None


def canonical(key: str) -> str:
    """The key a period's per-period counts are stored under: a cumulative period that is also an ordinary one
    (1–1月, 1–3月, 1–6月, 1–12月; 10–10月, 10–12月, 10–9月 of a statistical year) is stored as that one."""
    c = CUMULATIVE_RE.match(key)
    if not c:
        return key
    y, sy, mo = int(c.group(1)), c.group(2) == "SY", int(c.group(3))
    if not sy:
        return {1: f"{y}-01", 3: f"{y}Q1", 6: f"{y}H1", 12: f"{y}"}.get(mo, key)
    return {10: f"{y - 1}-10", 12: f"{y - 1}Q4", 9: f"{y}SY"}.get(mo, key)


def _cumulative_keys(d: date) -> list[str]:
    """The cumulative periods (not also ordinary ones) that contain the day `d`."""
    y, m = d.year, d.month
    out = [f"{y}-01..{n:02d}" for n in range(m, 13)]
    sy = y + 1 if m >= 10 else y
    out += [f"{sy}SY..{n:02d}" for n in SY_MONTHS[SY_MONTHS.index(m):]]
    return [k for k in out if canonical(k) == k]


def keys_of(d: date) -> tuple[str, ...]:
    """Every period an event dated `d` counts in: month, quarter, half, year, statistical year, then the
    cumulative periods of the calendar and the statistical year that contain it (those not also ordinary)."""
    return _keys_of_month(d.year, d.month)


@lru_cache(maxsize=4096)
def _keys_of_month(y: int, m: int) -> tuple[str, ...]:
    """The keys depend on the month only: cached (the engine asks for every check and every month of a child)."""
    return (f"{y}-{m:02d}", f"{y}Q{(m - 1) // 3 + 1}", f"{y}H{1 if m <= 6 else 2}", f"{y}",
            f"{y + 1 if m >= 10 else y}SY", *_cumulative_keys(date(y, m, 1)))


#: a step of a cumulative window (`+2021-01..05`, `+2021SY..11`): stored as is
STEP = "+"


def window_months(window: str) -> tuple[int, ...]:
    """The months of a cumulative window in order: `2021-01` January to December, `2021SY` October to September."""
    return SY_MONTHS if window.endswith("SY") else tuple(range(1, 13))


@lru_cache(maxsize=8192)
def window_step(key: str) -> tuple[str, int] | None:
    """(window, month) of a cumulative period or of the ordinary period a cumulative one equals (`canonical`):
    `2021-01..05` → (`2021-01`, 5); `2021Q1` → (`2021-01`, 3); `2020Q4` → (`2021SY`, 12); `2021SY` → (`2021SY`, 9);
    None for the others (`2021Q2`, `2021-05`)."""
    c = CUMULATIVE_RE.match(key)
    if c:
        return c.group(1) + ("SY" if c.group(2) == "SY" else "-01"), int(c.group(3))
    m = PERIOD_RE.match(key)
    if not m:
        return None
    y = int(m.group(1))
    if m.group(2):
        return f"{y}SY", 9
    if m.group(3):
        return (f"{y}-01", 6) if m.group(3) == "1" else None
    if m.group(4):
        return {"1": (f"{y}-01", 3), "4": (f"{y + 1}SY", 12)}.get(m.group(4))
    if m.group(5):
        return {"01": (f"{y}-01", 1), "10": (f"{y + 1}SY", 10)}.get(m.group(5))
    return f"{y}-01", 12


def step_key(window: str, month: int) -> str:
    """Where the change of a window's per-period count at `month` is stored (`+2021-01..05`)."""
    return f"{STEP}{window}..{month:02d}"


@lru_cache(maxsize=1024)
def is_anchor(window: str, month: int) -> bool:
    """Whether 1–month of the window is also an ordinary period (1–3月 is Q1): its count is stored under that
    period's `@` key, and the steps of the months after it start from there."""
    key = f"{window}..{month:02d}"
    return canonical(key) != key


@lru_cache(maxsize=4096)
def step_keys(key: str) -> tuple[str, ...]:
    """The stored keys whose sum is the per-period count of a cumulative period that is not an ordinary one: the
    `@` key of the last ordinary one before it in its window (1–5月: Q1) and the window's steps after that up to
    its last month (`+..04`, `+..05`)."""
    step = window_step(key)
    assert step is not None, key
    window, last = step
    months = window_months(window)
    upto = months[:months.index(last) + 1]
    anchor = max(i for i, m in enumerate(upto) if is_anchor(window, m))
    return ("@" + canonical(f"{window}..{upto[anchor]:02d}"), *(step_key(window, m) for m in upto[anchor + 1:]))


def stored_key(when: str) -> str:
    """Where a contribution is stored: a dated one (`2021-09-30`) under its month `2021-09`, summed into the
    quarter, half, year and statistical year at read time; one that belongs to a single period (`@2021Q3`: the
    latest check in the period) under that key; a standing one (`^2021-09`: a population entered or left, a
    stock movement) under its month, summed from the beginning up to a period's last month."""
    return when if when[0] in "@^+" else when[:7]


def stored_keys(key: str) -> list[str]:
    """The stored keys of the flows and per-period counts whose sum is the reporting period `key`: its months
    and its own `@key` (standing quantities are added up to `last_month(key)`). A cumulative period's per-period
    counts are those of the ordinary period it equals, if any (`canonical`), else the steps of its window."""
    c = canonical(key)
    if is_cumulative(c):
        return [*parse(key).months(), *step_keys(c)]
    return [*parse(key).months(), "@" + c]


def last_month(key: str) -> str:
    e = parse(key).end
    return f"{e.year}-{e.month:02d}"


def started(key: str, today: date) -> bool:
    """A period that has not started has no standing population or stock yet (it is not projected)."""
    return _start(key) <= today


@lru_cache(maxsize=4096)
def _start(key: str) -> date:
    return parse(key).start


def counts_in(when: str, key: str, today: date) -> bool:
    """Whether a contribution stored at `when` counts in the reporting period `key` — the rule the store's
    read query implements in SQL."""
    if when.startswith("^"):
        return started(key, today) and when[1:] <= _last_month(key)
    return stored_key(when) in _stored_set(key)


@lru_cache(maxsize=4096)
def _stored_set(key: str) -> frozenset[str]:
    """`stored_keys` as a set, cached: the engine asks for every changed contribution × approved filing."""
    return frozenset(stored_keys(key))


@lru_cache(maxsize=4096)
def _last_month(key: str) -> str:
    return last_month(key)


def next_day(d: date) -> date:
    return d + timedelta(days=1)


def target_year(key: str) -> int | None:
    """Annual targets (任务数) apply to the calendar year and to the statistical year of the same number, and to
    their cumulative periods (截止N月底: completion so far against the year's target)."""
    c = CUMULATIVE_RE.match(key)
    if c:
        return int(c.group(1))
    m = PERIOD_RE.match(key)
    if m and not (m.group(3) or m.group(4) or m.group(5)):
        return int(m.group(1))
    return None


def label_zh(key: str) -> str:
    """The period as a bureau writes it: 2026年, 2026年1–9月（截止9月底）, 2026统计年度, 2026年第3季度, ..."""
    p = parse(key)
    c = CUMULATIVE_RE.match(key)
    if c:
        if c.group(2) == "SY":
            return (f"{c.group(1)}统计年度{p.start.year}年10月至{p.end.year}年{p.end.month}月"
                    f"（截止{p.end.month}月底）")
        return f"{c.group(1)}年1–{p.end.month}月（截止{p.end.month}月底）"
    m = PERIOD_RE.match(key)
    assert m
    y = m.group(1)
    if m.group(2):
        return f"{y}统计年度（{int(y) - 1}年10月1日至{y}年9月30日）"
    if m.group(3):
        return f"{y}年{'上' if m.group(3) == '1' else '下'}半年"
    if m.group(4):
        return f"{y}年第{m.group(4)}季度"
    if m.group(5):
        return f"{y}年{int(m.group(5))}月"
    return f"{y}年（1月1日至12月31日）"


def month_before(key: str) -> str:
    """The month before a period starts (期初: the stock at its end)."""
    s = parse(key).start
    return f"{s.year - 1}-12" if s.month == 1 else f"{s.year}-{s.month - 1:02d}"
