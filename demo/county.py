"""The demo county (示范县) as data: townships, villages, institutions and the rates the generator draws from."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COUNTY_FILE = Path(__file__).resolve().parent / "county.json"


@dataclass(frozen=True)
class Township:
    number: int  # 1-based: the 3 township digits of the region code
    name: str
    villages: int
    weight: int


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    kind: str  # hospital | health_centre | mch_centre | agency
    region_code: str
    midwifery_licensed: bool
    delivery_share: int  # relative share of the county's deliveries (0: none)
    township: int

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "region_code": self.region_code, "kind": self.kind,
                "midwifery_licensed": self.midwifery_licensed}


@dataclass(frozen=True)
class County:
    code: str  # 6 digits PPCCDD
    name: str
    townships: tuple[Township, ...]
    institutions: tuple[Institution, ...]
    rates: dict[str, Any]

    def village(self, township: int, village: int) -> str:
        """12-digit residence code PPCCDD TTT VVV (现住址)."""
        return f"{self.code}{township:03d}{village:03d}"

    def township_code(self, township: int) -> str:
        return f"{self.code}{township:03d}"

    @property
    def hospitals(self) -> list[Institution]:
        return [i for i in self.institutions if i.delivery_share]

    def health_centre(self, township: int) -> Institution:
        """The township's health centre (乡镇卫生院): bookings, antenatal and postpartum visits, child checks."""
        for i in self.institutions:
            if i.kind == "health_centre" and i.township == township and not i.delivery_share:
                return i
        return self.hospitals[0]


def load(code: str | None = None, path: Path = COUNTY_FILE, **rate_overrides: Any) -> County:
    """The county of `county.json`, optionally under another 6-digit code (tests use a fresh one)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    code = code or doc["code"]
    if len(code) != 6 or not code.isdigit():
        raise ValueError("a county code has 6 digits")
    towns = tuple(Township(i + 1, t["name"], t["villages"], t["weight"]) for i, t in enumerate(doc["townships"]))
    insts = [Institution(f"{code}{h['suffix']}", h["name"], h["kind"], f"{code}{h['township']:03d}001",
                         True, h["deliveries"], h["township"]) for h in doc["hospitals"]]
    for t in towns:  # one health centre per township (乡镇卫生院 / 社区卫生服务中心): bookings, visits, child checks
        insts.append(Institution(f"{code}C{t.number:02d}", f"{t.name}卫生院", "health_centre",
                                 f"{code}{t.number:03d}001", False, 0, t.number))
    rates = {**doc["rates"], **rate_overrides}
    return County(code, doc["name"], towns, tuple(insts), rates)
