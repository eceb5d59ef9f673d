"""An independent reference calculation of the registry-fed indicators, written straight from
`shared/spec/indicators.md` (and docs/decisions.md) over the records a test posted — sharing no code with the
indicators service. The property test compares the live, incremental numbers with this.

Deliberately plain: loops over the stories for every question, no caching, no cleverness.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal


@dataclass
class Visit:
    on: date
    grade: str = ""


@dataclass
class ChildCheck:
    on: date
    weight_kg: float | None = None
    height_cm: float | None = None
    feeding: str | None = None
    haemoglobin: float | None = None


@dataclass
class Child:
    sex: str
    weight_g: int | None
    live: bool
    person_id: str = ""
    newborn_visits: list[date] = field(default_factory=list)
    checks: list[ChildCheck] = field(default_factory=list)
    died: date | None = None
    #: moves of the child's residence after birth: (since, 12-digit region)
    moves: list[tuple[date, str]] = field(default_factory=list)
    hbig_hours: list[float] = field(default_factory=list)
    metabolic: bool = False      # screened for PKU and CH
    hearing: bool = False


@dataclass
class InfectionTest:
    infection: str
    on: date
    timing: str
    positive: bool


@dataclass
class PrenatalScreen:
    on: date
    high_risk: bool
    contacted: bool


@dataclass
class Family:
    """One woman's pregnancy as finally recorded (after corrections and voids)."""

    pregnancy_id: str
    residence: str
    booking_institution: str
    lmp: date
    booked: date
    visits: list[Visit] = field(default_factory=list)
    delivered: date | None = None
    place: str = "hospital"
    mode: str = "vaginal"
    delivery_institution: str = ""
    licensed: bool = True
    babies: list[Child] = field(default_factory=list)
    postpartum: list[date] = field(default_factory=list)
    folic_acid: list[date] = field(default_factory=list)
    mother_died: date | None = None
    #: moves of the mother's residence: (since, 12-digit region)
    moves: list[tuple[date, str]] = field(default_factory=list)
    infection_tests: list[InfectionTest] = field(default_factory=list)
    prenatal_screens: list[PrenatalScreen] = field(default_factory=list)
    #: the same woman registered again as another person, booking the same pregnancy (a second, undelivered
    #: registration), and whether that record is finally merged into this one (合并) — else it is a woman of
    #: its own (never merged, or merged and unmerged)
    duplicate: Family | None = None
    merged: bool = False

    def residence_on(self, on: date) -> str:
        return where(self.residence, self.moves, on)


def where(first: str, moves: list[tuple[date, str]], on: date) -> str:
    """The residence on a date: the latest move on or before it, else the first residence."""
    current = first
    for since, region in sorted(moves):
        if since <= on:
            current = region
    return current


def add_years(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


def add_months(d: date, n: int) -> date:
    y, m = d.year + (d.month - 1 + n) // 12, (d.month - 1 + n) % 12 + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(y, m, day)
        except ValueError:
            continue
    raise AssertionError


def rate(n: int, d: int, factor: int) -> float | None:
    """indicators.md: numerator ÷ denominator × factor, rounded half-up to 2 decimals; null when d = 0."""
    if d == 0:
        return None
    return float((Decimal(n) * factor / Decimal(d)).quantize(Decimal("0.01"), ROUND_HALF_UP))


#: the catalogue's factors (indicators.md units): ‰ for child mortality, 1/10万 for maternal mortality, else %
#: (programme indicators, issue 21: ‰ near misses and neonatal tetanus, 1/万 birth defects)
PER_MILLE = ("neonatal_mortality_rate", "infant_mortality_rate", "under5_mortality_rate",
             "maternal_near_miss_ratio", "neonatal_tetanus_rate")
PER_100K = ("maternal_mortality_ratio",)
PER_10K = ("birth_defect_rate",)


def expected_value(code: str, n: int, d: int | None) -> float | int | None:
    """The value the API must serve for (n, d): the count itself, or the rate with the catalogue's factor."""
    if d is None:
        return n
    factor = 1000 if code in PER_MILLE else 100000 if code in PER_100K else 10000 if code in PER_10K else 100
    return rate(n, d, factor)


def identities(families: list[Family]) -> list[Family]:
    """The women as finally identified: a merged duplicate registration is the same woman and the same
    pregnancy — its visits and folic acid are hers, its booking is not another pregnancy; an unmerged one is a
    woman of her own."""
    out = []
    for f in families:
        dup = f.duplicate
        if dup is not None and f.merged:
            f = replace(f, visits=[*f.visits, *dup.visits], folic_acid=[*f.folic_acid, *dup.folic_acid],
                        duplicate=None)
        elif dup is not None:
            out.append(dup)
        out.append(f)
    return out


def values(families: list[Family], region: str, start: date, end: date,
           today: date) -> dict[str, tuple[int, int | None]]:
    """(numerator, denominator) of each registry-fed indicator for residents of `region` in [start, end]."""
    families = identities(families)

    def inside(d: date | None) -> bool:
        return d is not None and start <= d <= end

    out: dict[str, list[int]] = {}

    def add(code: str, n: int = 0, d: int = 0) -> None:
        cur = out.setdefault(code, [0, 0])
        cur[0] += n
        cur[1] += d

    lb_total = 0
    for f in families:
        def mine(on: date, f: Family = f) -> bool:
            return f.residence_on(on).startswith(region)

        # women delivered at >= 28 weeks in the period, and their live births
        if f.delivered and inside(f.delivered) and mine(f.delivered) and (f.delivered - f.lmp).days >= 28 * 7:
            live = [b for b in f.babies if b.live]
            lb_total += len(live)
            facility = f.place == "hospital" and f.licensed
            checks = sorted({v.on for v in f.visits if v.on <= f.delivered})
            first_gest = (checks[0] - f.lmp).days if checks else None
            early_check = first_gest is not None and first_gest < 91
            pp = any(0 <= (p - f.delivered).days <= 28 for p in f.postpartum)
            grades = [v.grade for v in f.visits]
            high = any(g in ("orange", "red", "purple") for g in grades)
            add("women_delivered", 1)
            add("early_booking_rate", int((f.booked - f.lmp).days < 91 and early_check))
            add("antenatal_check_rate", int(len(checks) >= 1))
            add("antenatal_5plus_rate", int(len(checks) >= 5))
            add("systematic_management_rate", int(early_check and len(checks) >= 5 and facility and pp))
            add("postpartum_visit_rate", int(pp))
            add("high_risk_share", int(high), 1)
            # infection tests during the pregnancy (to the delivery day) or at labour
            tested = {t.infection for t in f.infection_tests if t.timing == "labour" or t.on <= f.delivered}
            for inf in ("hiv", "syphilis", "hbsag"):
                add(f"{inf}_test_rate", int(inf in tested), 1)
            add("prenatal_screening_rate", int(any(x.on <= f.delivered for x in f.prenatal_screens)), 1)
            exposed = any(t.infection == "hbsag" and t.positive and (t.timing == "labour" or t.on <= f.delivered)
                          for t in f.infection_tests)
            for b in live:
                if exposed:
                    add("hbig_rate", int(any(h <= 24 for h in b.hbig_hours)), 1)
                add("metabolic_screening_rate", int(b.metabolic), 1)
                add("hearing_screening_rate", int(b.hearing), 1)
            for b in live:
                add("live_births", 1)
                add("hospital_delivery_rate", int(facility))
                add("caesarean_rate", int(f.mode == "caesarean"))
                add("newborn_visit_rate", int(any(0 <= (v - f.delivered).days <= 28 for v in b.newborn_visits)), 1)
                if b.weight_g:
                    add("low_birth_weight_rate", int(b.weight_g < 2500), 1)
        # maternal deaths: during pregnancy or within 42 days of its end (death date in the period)
        if f.mother_died and inside(f.mother_died) and mine(f.mother_died):
            end_of_pregnancy = f.delivered
            maternal = f.mother_died >= f.lmp and (end_of_pregnancy is None
                                                   or f.mother_died <= end_of_pregnancy + timedelta(days=42))
            add("maternal_mortality_ratio", int(maternal))
        # pregnancies booked in the period: the folic-acid target group
        if inside(f.booked) and mine(f.booked):
            took = any(f.lmp - timedelta(days=90) <= d <= f.lmp + timedelta(days=84) for d in f.folic_acid)
            add("folic_acid_uptake_rate", int(took), 1)
            add("booked_screening_rate", int(bool(f.prenatal_screens)), 1)
        # high-risk prenatal screens, on the screening date, where the mother lived then
        for x in f.prenatal_screens:
            if x.high_risk and inside(x.on) and mine(x.on):
                add("prenatal_high_risk_followup_rate", int(x.contacted), 1)
        # children: deaths by age, and the period-end child populations
        for b in f.babies:
            if not (b.live and f.delivered and (f.delivered - f.lmp).days >= 28 * 7):
                continue
            born = f.delivered
            home = f.residence_on(born)   # a newborn lives where its mother lives on the birth date

            def lives(on: date, b: Child = b, home: str = home) -> bool:
                return where(home, b.moves, on).startswith(region)

            if b.died and inside(b.died) and lives(b.died):
                add("neonatal_mortality_rate", int((b.died - born).days < 28))
                add("infant_mortality_rate", int(b.died < add_years(born, 1)))
                add("under5_mortality_rate", int(b.died < add_years(born, 5)))
            # feeding and haemoglobin: anchored on the check date, whatever became of the child after it
            in_period = [c for c in b.checks if start <= c.on <= end]
            # the latest check in the period decides, counted where the child lived on its date
            feeding = [c for c in in_period if c.feeding and c.on < add_months(born, 6)]
            if feeding:
                latest = max(feeding, key=lambda c: c.on)
                if lives(latest.on):
                    add("exclusive_breastfeeding_rate", int(latest.feeding == "exclusive_breastfeeding"), 1)
            hb = [c for c in in_period if c.haemoglobin and add_months(born, 6) <= c.on < add_months(born, 60)]
            if hb:
                latest = max(hb, key=lambda c: c.on)
                assert latest.haemoglobin is not None
                if lives(latest.on):
                    add("under5_anaemia_rate", int(latest.haemoglobin < 110), 1)
            # the period must have started by today's month; the child under 7 (3) and alive at its end
            if start > today or born > end or end >= add_years(born, 7) or (b.died and b.died <= end):
                continue
            if not lives(end):
                continue
            add("under7_health_management_rate", int(any(c.weight_kg and c.height_cm for c in in_period)), 1)
            if end < add_years(born, 3):
                due = Decimal(0)
                for year, per_year in enumerate((4, 2, 2)):
                    y0, y1 = add_years(born, year), add_years(born, year + 1)
                    lo, hi = max(start, y0), min(end, y1 - timedelta(days=1))
                    if hi >= lo:
                        due += Decimal(per_year) * ((hi - lo).days + 1) / (y1 - y0).days
                required = int(due.quantize(Decimal(1), ROUND_HALF_UP))
                add("under3_systematic_management_rate", int(len(in_period) >= required), 1)
    for code in ("early_booking_rate", "antenatal_check_rate", "antenatal_5plus_rate",
                 "systematic_management_rate", "postpartum_visit_rate", "hospital_delivery_rate", "caesarean_rate",
                 "maternal_mortality_ratio", "neonatal_mortality_rate", "infant_mortality_rate",
                 "under5_mortality_rate"):
        out.setdefault(code, [0, 0])[1] = lb_total
    counts = ("live_births", "women_delivered")
    result: dict[str, tuple[int, int | None]] = {}
    for code in (*counts, "early_booking_rate", "antenatal_check_rate", "antenatal_5plus_rate",
                 "systematic_management_rate", "postpartum_visit_rate", "hospital_delivery_rate", "caesarean_rate",
                 "maternal_mortality_ratio", "high_risk_share", "newborn_visit_rate", "low_birth_weight_rate",
                 "neonatal_mortality_rate", "infant_mortality_rate", "under5_mortality_rate",
                 "under3_systematic_management_rate", "under7_health_management_rate",
                 "exclusive_breastfeeding_rate", "under5_anaemia_rate", "folic_acid_uptake_rate",
                 "hiv_test_rate", "syphilis_test_rate", "hbsag_test_rate", "prenatal_screening_rate",
                 "booked_screening_rate", "hbig_rate", "metabolic_screening_rate", "hearing_screening_rate",
                 "prenatal_high_risk_followup_rate"):
        n, d = out.get(code, [0, 0])
        result[code] = (n, None) if code in counts else (n, d)
    return result
