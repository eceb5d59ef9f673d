"""The annual report's layout (pure): sections with Chinese headings, and for every indicator its numerator,
denominator, value, unit, target (任务数) and completion (完成率), in the order of the bureau's summaries
(seeds 000/001: 孕产妇健康管理, 儿童健康管理, 妇女保健, 出生缺陷防治, 出生医学证明)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from indicators.domain import provisional
from indicators.domain.catalogue import Catalogue
from indicators.domain.targets import evaluate
from indicators.domain.values import value

#: section code of the catalogue → heading of the bureau summary; unknown sections go last under their own code
SECTIONS: tuple[tuple[str, str], ...] = (
    ("maternal", "孕产妇健康管理"),
    ("child", "儿童健康管理"),
    ("women", "妇女保健与婚前保健"),
    ("screening", "出生缺陷防治与预防母婴传播"),
    ("certificates", "出生医学证明管理"),
    ("births", "出生人口、性别比与人口基数"),
    ("pmtct", "预防艾滋病、梅毒和乙肝母婴传播"),
    ("quality", "数据质量（质控）"),
)
NUMERALS = "一二三四五六七八九十"
UNIT_ZH = {"count": "人/例", "%": "%", "‰": "‰", "1/万": "1/万", "1/10万": "1/10万", "女=100": "女=100"}


@dataclass(frozen=True)
class ReportPeriod:
    year: int
    statistical: bool  # the MCH statistical year (1 Oct – 30 Sep) instead of the calendar year

    @property
    def key(self) -> str:
        return f"{self.year}SY" if self.statistical else str(self.year)

    @property
    def label_zh(self) -> str:
        if self.statistical:
            return f"{self.year}统计年度（{self.year - 1}年10月1日至{self.year}年9月30日）"
        return f"{self.year}年（1月1日至12月31日）"


def section_order(cat: Catalogue) -> list[tuple[str, str]]:
    known = dict(SECTIONS)
    present: list[tuple[str, str]] = []
    for ind in cat.indicators:
        if ind.section not in [s for s, _ in present]:
            present.append((ind.section, known.get(ind.section, ind.section)))
    rank = {s: i for i, (s, _) in enumerate(SECTIONS)}
    return sorted(present, key=lambda s: rank.get(s[0], len(SECTIONS)))


def build(cat: Catalogue, region: str, period: ReportPeriod, counts: Mapping[tuple[str, str], int],
          targets: Mapping[str, tuple[Decimal, str]], today: date | None = None) -> dict[str, Any]:
    """counts: (code, part 'n'|'d') → n for the region and period; targets: code → the year's target and its
    comparison (a count's completion, a rate's red / amber / green)."""
    sections = []
    for i, (sec, title) in enumerate(section_order(cat)):
        rows = []
        for ind in cat.indicators:
            if ind.section != sec:
                continue
            num = counts.get((ind.code, "n"), 0)
            den = counts.get((ind.code, "d"), 0) if ind.denominator is not None else None
            v = value(ind, num, den)
            row = {"code": ind.code, "name_zh": ind.name_zh, "numerator": num, "denominator": den,
                   "value": v, "unit": ind.unit, "target": None, "completion": None,
                   **(provisional.status(ind, period.key, today) if today else {})}
            if ind.code in targets:
                row.update(evaluate(ind, v, num, *targets[ind.code]))
            rows.append(row)
        sections.append({"section": sec, "title_zh": f"{NUMERALS[i] if i < 10 else i + 1}、{title}", "rows": rows})
    return {"region": region, "year": period.year, "period": period.key, "period_zh": period.label_zh,
            "catalogue_version": cat.version, "sections": sections}
