"""Probabilistic person matching (概率匹配, Fellegi–Sunter) with the weights of a Splink-trained model.

A new record is compared with each candidate field by field; each comparison falls into the first of its levels
whose condition holds (exact, same pinyin, one typo, ..., else), exactly as Splink's CASE WHEN does. The level's
m and u probabilities — estimated by Splink (u by random sampling, m by EM) on a synthetic population and stored
in `registry/data/matching_model.json` — give its Bayes factor m/u; the match weight is log2 of the prior odds
plus the sum of log2(m/u) (a null level adds nothing), and the probability is 2^w / (1 + 2^w).

The levels are written once here, as pairs of (Splink SQL, the same condition in Python); `linkage.train` builds
the Splink comparisons from the SQL and the service evaluates the Python, so a match online costs microseconds
instead of a DuckDB query per candidate. `test_matching_model` checks both give the same level on sample pairs.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pypinyin import lazy_pinyin
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein

MODEL_FILE = Path(__file__).resolve().parent.parent / "data" / "matching_model.json"
Grade = Literal["certain", "probable", "possible", "certainly-not"]
Decision = Literal["link", "review", "new"]


@dataclass(frozen=True)
class Features:
    """The fields a person is matched on, normalised once (pinyin without tones, digits only)."""

    name: str
    name_py: str
    surname_py: str
    given_py: str
    birth_date: str  # YYYYMMDD: a digit typo or two swapped digits is one edit
    sex: str
    phone: str | None
    residence: str
    mother_id: str | None
    document: str | None

    @property
    def birth_year(self) -> int:
        return int(self.birth_date[:4])


def pinyin(name: str) -> tuple[str, ...]:
    """拼音 of each character without tones (王晓丽 and 王小丽 both wang xiao li); non-Han characters kept.
    Character by character, each its commonest reading: the same everywhere (service, training, batch) and a
    cache of a few thousand characters makes a million names cheap (whole names barely repeat)."""
    return tuple(_reading(c) for c in name.replace(" ", "").replace("·", ""))


@lru_cache(maxsize=32768)
def _reading(char: str) -> str:
    return "".join(lazy_pinyin(char)).lower()


def features(name: str, sex: str, birth_date: date | str, residence: str, phone: str | None = None,
             mother_id: str | None = None, document: str | None = None) -> Features:
    py = pinyin(name.strip())
    bd = (f"{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}" if isinstance(birth_date, date)
          else birth_date.replace("-", ""))
    digits = re.sub(r"\D", "", phone or "")[-11:] or None
    doc = re.sub(r"[\s-]", "", document).upper() if document else None
    return Features(name.strip(), "".join(py), py[0] if py else "", "".join(py[1:]), bd, sex, digits,
                    residence, mother_id, doc or None)


# ------------------------------------------------------------------ the comparison levels (Splink SQL ↔ Python)
Pred = Callable[[Features, Features], bool]


@dataclass(frozen=True)
class Level:
    label: str
    sql: str
    holds: Pred
    is_null: bool = False
    #: u fixed in the settings instead of sampled: for agreements too rare among different persons for random
    #: sampling to observe (a shared document, a phone one digit away), which Splink could not estimate
    u_fixed: float | None = None


def _lev(a: str | None, b: str | None, k: int) -> bool:
    return a is not None and b is not None and Levenshtein.distance(a, b) <= k


def _dl(a: str | None, b: str | None, k: int) -> bool:
    return a is not None and b is not None and DamerauLevenshtein.distance(a, b) <= k


_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")


def _resident_id(doc: str | None) -> bool:
    return doc is not None and _RESIDENT_ID.fullmatch(doc) is not None


def _null(col: str, get: Callable[[Features], Any]) -> Level:
    return Level(f"{col} missing", f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
                 lambda a, b: get(a) is None or get(b) is None, is_null=True)


def _else() -> Level:
    return Level("else", "ELSE", lambda a, b: True)


#: comparison (Splink output column name) → its levels, first that holds wins (Splink's order)
COMPARISONS: dict[str, list[Level]] = {
    "name": [
        Level("name exact", '"name_l" = "name_r"', lambda a, b: a.name == b.name),
        Level("same pinyin (homophone)", '"name_py_l" = "name_py_r"', lambda a, b: a.name_py == b.name_py),
        Level("pinyin within 2 edits", 'levenshtein("name_py_l", "name_py_r") <= 2',
              lambda a, b: _lev(a.name_py, b.name_py, 2)),
        _else(),
    ],
    "birth_date": [
        Level("birth date exact", '"birth_date_l" = "birth_date_r"', lambda a, b: a.birth_date == b.birth_date),
        Level("birth date one typo or swap", 'damerau_levenshtein("birth_date_l", "birth_date_r") <= 1',
              lambda a, b: _dl(a.birth_date, b.birth_date, 1)),
        Level("birth date two edits", 'damerau_levenshtein("birth_date_l", "birth_date_r") <= 2',
              lambda a, b: _dl(a.birth_date, b.birth_date, 2)),
        _else(),
    ],
    "sex": [
        Level("sex exact", '"sex_l" = "sex_r"', lambda a, b: a.sex == b.sex),
        _else(),
    ],
    "phone": [
        _null("phone", lambda f: f.phone),
        Level("phone exact", '"phone_l" = "phone_r"', lambda a, b: a.phone == b.phone),
        # u fixed: two different phones one edit apart is too rare for sampling to see (≈ 1e-8 for random
        # numbers; 1e-6 allows for families' and neighbours' numbers)
        Level("phone one typo or swap", 'damerau_levenshtein("phone_l", "phone_r") <= 1',
              lambda a, b: _dl(a.phone, b.phone, 1), u_fixed=1e-6),
        _else(),
    ],
    "residence": [
        Level("same village", '"residence_l" = "residence_r"', lambda a, b: a.residence == b.residence),
        Level("same county", 'substr("residence_l", 1, 6) = substr("residence_r", 1, 6)',
              lambda a, b: a.residence[:6] == b.residence[:6]),
        Level("same city", 'substr("residence_l", 1, 4) = substr("residence_r", 1, 4)',
              lambda a, b: a.residence[:4] == b.residence[:4]),
        _else(),
    ],
    "mother_id": [
        _null("mother_id", lambda f: f.mother_id),
        Level("same mother", '"mother_id_l" = "mother_id_r"', lambda a, b: a.mother_id == b.mother_id),
        _else(),
    ],
    "document": [
        _null("document", lambda f: f.document),
        Level("document exact", '"document_l" = "document_r"', lambda a, b: a.document == b.document,
              u_fixed=1e-7),
        # two different 身份证号: two persons (each person has one, and an exact one was not found)
        Level("two different resident ID numbers",
              "regexp_full_match(\"document_l\", '[0-9]{17}[0-9X]') AND "
              "regexp_full_match(\"document_r\", '[0-9]{17}[0-9X]')",
              lambda a, b: _resident_id(a.document) and _resident_id(b.document)),
        _else(),
    ],
}

#: Splink blocking rules (batch) — the online candidate query in store/matching.py uses the same keys
BLOCKING_RULES = (
    'l."name_py" = r."name_py" AND l."birth_year" = r."birth_year"',
    'l."birth_date" = r."birth_date" AND l."surname_py" = r."surname_py"',
    'l."birth_date" = r."birth_date" AND l."given_py" = r."given_py"',
    'l."name_py" = r."name_py" AND substr(l."residence", 1, 6) = substr(r."residence", 1, 6)',
    'l."phone" = r."phone"',
    'l."document" = r."document"',
)


# ------------------------------------------------------------------ the stored model
@dataclass(frozen=True)
class Model:
    """The Splink-trained weights: per comparison, the log2 Bayes factor of each level (None for a null level)."""

    version: str
    prior_weight: float
    weights: dict[str, list[float | None]]
    #: match weights: at or above `upper` links automatically; at or above `lower` goes to review
    upper: float
    lower: float

    def weight(self, a: Features, b: Features) -> float:
        w = self.prior_weight
        for col, levels in COMPARISONS.items():
            w += self.weights[col][self.level(col, levels, a, b)] or 0.0
        return w

    @staticmethod
    def level(col: str, levels: list[Level], a: Features, b: Features) -> int:
        return next(i for i, lv in enumerate(levels) if lv.holds(a, b))

    def gammas(self, a: Features, b: Features) -> dict[str, str]:
        """The level each comparison fell into (its label): what a reviewer is shown beside the probability."""
        return {col: levels[self.level(col, levels, a, b)].label for col, levels in COMPARISONS.items()}

    def decide(self, w: float) -> Decision:
        return "link" if w >= self.upper else "review" if w >= self.lower else "new"

    def grade(self, w: float) -> Grade:
        """IHE PDQm / FHIR match-grade of a candidate (Patient/$match)."""
        if w >= self.upper:
            return "certain"
        if w >= self.lower:
            return "probable"
        return "possible" if w >= self.lower - 10 else "certainly-not"


def probability(w: float) -> float:
    return 1.0 / (1.0 + 2.0 ** -w) if w > -1000 else 0.0


def weight_of(p: float) -> float:
    return math.log2(p / (1.0 - p))


def model_from_json(doc: dict[str, Any]) -> Model:
    """The service's view of the stored model; refuses a model whose levels are not the ones written here (the
    code and the trained weights must describe the same comparisons)."""
    settings = doc["splink_settings"]
    weights: dict[str, list[float | None]] = {}
    stored = {c["output_column_name"]: c["comparison_levels"] for c in settings["comparisons"]}
    if set(stored) != set(COMPARISONS):
        raise ValueError(f"model comparisons {sorted(stored)} are not {sorted(COMPARISONS)}")
    for col, levels in COMPARISONS.items():
        got = stored[col]
        if [lv.get("label_for_charts") for lv in got] != [lv.label for lv in levels]:
            raise ValueError(f"model levels of {col} differ from the code's: retrain (python -m linkage.train)")
        if any("m_probability" not in lv or "u_probability" not in lv for lv in got if not lv.get("is_null_level")):
            raise ValueError(f"model levels of {col} are not all trained")
        # a level never seen among matches (m → 0) weighs very little, not minus infinity
        weights[col] = [None if lv.get("is_null_level") else
                        math.log2(max(lv["m_probability"], 1e-9) / max(lv["u_probability"], 1e-9)) for lv in got]
    return Model(doc["version"], weight_of(settings["probability_two_random_records_match"]), weights,
                 doc["thresholds"]["upper_match_weight"], doc["thresholds"]["lower_match_weight"])


@lru_cache(maxsize=1)
def stored_model() -> Model:
    return model_from_json(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
