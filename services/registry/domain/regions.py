"""Region codes (行政区划代码): 12 digits PPCCDDTTTVVV; queries may name any prefix level 2/4/6/9/12.

A residence code is checked against the region table (GB/T 2260 provinces, cities and counties, plus any
township / village levels loaded): the county must be known; the township (and village) digits are checked
against the table only where that county's (township's) lower level is loaded, structurally otherwise.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

REGION_RE = re.compile(r"^[0-9]{12}$")
PREFIX_LEVELS = (2, 4, 6, 9, 12)
#: GB/T 2260 province-level codes
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82",
})


def region_problem(code: str) -> str | None:
    """Why `code` is not a structurally valid 12-digit residence code, or None if it is."""
    if not REGION_RE.match(code):
        return "must be a 12-digit administrative division code (PPCCDDTTTVVV)"
    if code[:2] not in PROVINCES:
        return f"province code {code[:2]} is not a GB/T 2260 province"
    if code[2:4] == "00" or code[4:6] == "00":
        return "city and county digits must not be 00 in a residence code"
    return None


def prefix_problem(prefix: str) -> str | None:
    if len(prefix) not in PREFIX_LEVELS or not prefix.isdigit():
        return "must be a region code prefix of 2, 4, 6, 9 or 12 digits"
    return None


@dataclass(frozen=True)
class RegionTable:
    """The known administrative divisions (a code per row, any level 2/4/6/9/12)."""

    codes: frozenset[str]
    #: counties with townships loaded, townships with villages loaded
    detailed: frozenset[str] = field(default=frozenset())

    @classmethod
    def of(cls, codes: Iterable[str]) -> RegionTable:
        cs = frozenset(codes)
        detailed = frozenset(c[:6] for c in cs if len(c) == 9) | frozenset(c[:9] for c in cs if len(c) == 12)
        return cls(cs, detailed)

    def problem(self, code: str) -> str | None:
        """Why `code` is not a valid residence code under this table, or None. An empty table (not loaded)
        checks the structure only."""
        why = region_problem(code)
        if why or not self.codes:
            return why
        county, township = code[:6], code[:9]
        if county not in self.codes:
            return f"county {county} is not in the region table (GB/T 2260)"
        if county in self.detailed and township not in self.codes:
            return f"township {township} is not in the region table of county {county}"
        if township in self.detailed and code not in self.codes:
            return f"village {code} is not in the region table of township {township}"
        return None


def parse_csv(text: str) -> list[tuple[str, str]]:
    """Rows (code, name) of a region file: `code,name` with a header; `#` lines are comments."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    rows: list[tuple[str, str]] = []
    for i, rec in enumerate(csv.reader(io.StringIO("\n".join(lines)))):
        if i == 0 and rec and rec[0].strip() == "code":
            continue
        if len(rec) < 2:
            raise ValueError(f"line {i + 1}: expected code,name")
        code, name = rec[0].strip(), rec[1].strip()
        if not code.isdigit() or len(code) not in PREFIX_LEVELS:
            raise ValueError(f"line {i + 1}: {code!r} is not a 2/4/6/9/12-digit region code")
        rows.append((code, name))
    return rows
