"""Region codes (行政区划代码): 12 digits PPCCDDTTTVVV; queries may name any prefix level 2/4/6/9/12."""
from __future__ import annotations

import re

REGION_RE = re.compile(r"^[0-9]{12}$")
PREFIX_LEVELS = (2, 4, 6, 9, 12)
#: GB/T 2260 province-level codes
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82",
})


def region_problem(code: str) -> str | None:
    """Why `code` is not a valid 12-digit residence code, or None if it is."""
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
