"""The indicator catalogue as data (DHIS2-style): each indicator = numerator and denominator, each a
population of entities with filters over the entities' attributes. Changing a filter or a parameter is a
data change; the engine back-fills from stored facts."""
from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "catalogue" / "v1.json"

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Condition:
    attr: str
    op: str
    value: Any

    def holds(self, attrs: dict[str, Any]) -> bool:
        v = attrs.get(self.attr)
        if v is None:
            return self.op == "==" and self.value is None
        return OPS[self.op](v, self.value)


@dataclass(frozen=True)
class Count:
    """Entities of `population` for which every condition holds."""

    population: str
    where: tuple[Condition, ...] = ()

    def counts(self, attrs: dict[str, Any]) -> bool:
        for c in self.where:  # Condition.holds, inlined: this runs for every entity × measure
            v = attrs.get(c.attr)
            if v is None:
                if not (c.op == "==" and c.value is None):
                    return False
            elif not OPS[c.op](v, c.value):
                return False
        return True

    @cached_property
    def key(self) -> str:
        """The measure this count is stored under: the population, plus a short hash of its filter. Indicators
        that count the same thing (live births are the denominator of a dozen rates) share one stored count."""
        if not self.where:
            return self.population
        canon = json.dumps([[c.attr, c.op, c.value] for c in self.where], sort_keys=True, ensure_ascii=False)
        return f"{self.population}#{hashlib.sha256(canon.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Indicator:
    code: str
    name_zh: str
    name_en: str
    unit: str
    factor: int
    section: str
    definition: str
    numerator: Count
    denominator: Count | None

    def public(self) -> dict[str, Any]:
        def show(c: Count | None) -> Any:
            if c is None:
                return None
            return {"population": c.population, "where": [[x.attr, x.op, x.value] for x in c.where]}

        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "factor": self.factor, "section": self.section, "definition": self.definition,
                "numerator": show(self.numerator), "denominator": show(self.denominator)}


def _count(d: dict[str, Any] | None, params: dict[str, Any]) -> Count | None:
    """A population with filters; a value "$name" is the catalogue parameter `name` (e.g. the HBIG hours)."""
    if d is None:
        return None
    conds = []
    for attr, op, value in d.get("where", []):
        if op not in OPS:
            raise ValueError(f"unknown operator {op}")
        if isinstance(value, str) and value.startswith("$"):
            if value[1:] not in params:
                raise ValueError(f"unknown parameter {value}")
            value = params[value[1:]]
        conds.append(Condition(attr, op, tuple(value) if isinstance(value, list) else value))
    return Count(d["population"], tuple(conds))


@dataclass(frozen=True)
class Catalogue:
    version: int
    digest: str
    indicators: tuple[Indicator, ...]
    #: named parameters the definitions refer to as "$name" (e.g. hbig_hours: 24)
    parameters: tuple[tuple[str, Any], ...] = ()

    def by_code(self) -> dict[str, Indicator]:
        return {i.code: i for i in self.indicators}

    @cached_property
    def measures(self) -> dict[str, Count]:
        """Every distinct count of the catalogue (numerators and denominators), by its stored key."""
        out: dict[str, Count] = {}
        for i in self.indicators:
            for c in (i.numerator, i.denominator):
                if c is not None:
                    out.setdefault(c.key, c)
        return out

    @cached_property
    def measures_by_population(self) -> dict[str, list[tuple[str, Count]]]:
        out: dict[str, list[tuple[str, Count]]] = {}
        for key, c in self.measures.items():
            out.setdefault(c.population, []).append((key, c))
        return out

    def parts(self, codes: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
        """(indicator code, "n"|"d", measure key) of the indicators `codes` (default: all)."""
        wanted = None if codes is None else set(codes)
        return [(i.code, part, c.key) for i in self.indicators if wanted is None or i.code in wanted
                for part, c in (("n", i.numerator), ("d", i.denominator)) if c is not None]

    def populations(self) -> set[str]:
        out = set()
        for i in self.indicators:
            out.add(i.numerator.population)
            if i.denominator:
                out.add(i.denominator.population)
        return out


def by_measure(parts: Iterable[tuple[str, str, str]]) -> dict[str, list[tuple[str, str]]]:
    """(code, part, measure) rows → measure → the indicator parts it counts."""
    out: dict[str, list[tuple[str, str]]] = {}
    for code, part, measure in parts:
        out.setdefault(measure, []).append((code, part))
    return out


def parse(doc: dict[str, Any]) -> Catalogue:
    items = []
    params = {k: v["value"] for k, v in doc.get("parameters", {}).items()}
    for d in doc["indicators"]:
        num = _count(d["numerator"], params)
        assert num is not None
        items.append(Indicator(d["code"], d["name_zh"], d["name_en"], d["unit"], int(d.get("factor", 1)),
                               d.get("section", ""), d.get("definition", ""), num,
                               _count(d.get("denominator"), params)))
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    return Catalogue(int(doc["version"]), digest, tuple(items), tuple(sorted(params.items())))


def load(path: Path = CATALOGUE_FILE) -> Catalogue:
    return parse(json.loads(path.read_text(encoding="utf-8")))
