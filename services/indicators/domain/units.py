"""Units of computation: the indicator contributions of one subject, derived from its facts. Pure.

A unit is a subject whose facts decide what it contributes to the counts:

- ``pregnancy:<id>`` (孕产期): the live births and the woman delivered (anchor: delivery date) and the
  booking (anchor: booking date). Depends on the mother (residence, folic acid) and on the live-born
  children (newborn visits) — their facts are loaded with the unit's own.
- ``person:<id>``: deaths (anchor: death date), the child's checks (latest check in each period) and the
  child population at each period end (under 3 / under 7, alive and resident). Depends on ``clock`` (the
  current month) so that children age through time: when a month starts, each child's periods extend.
- ``marriage:<key>``: the two persons registering a marriage (anchor: registration date).
- ``qscore:<institution>:<month>``: the data-quality score parts the quality service published (units_quality).

The engine stores each unit's contributions and applies only the difference when a fact changes, so late,
out-of-order, corrected and voided events move the counts exactly.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from indicators.domain import periods, populations
from indicators.domain import units_births as births
from indicators.domain.catalogue import Catalogue
from indicators.domain.facts import Fact

#: 28 completed weeks: the threshold of a live birth / a woman delivered (活产 / 产妇)
VIABLE_GESTATION_DAYS = 28 * 7
VIABLE_WEIGHT_G = 1000
#: "before 13+0 weeks" (早孕建册): gestational day < 91
EARLY_BOOKING_DAYS = 13 * 7
POSTPARTUM_VISIT_DAYS = 28
NEWBORN_VISIT_DAYS = 28
HIGH_RISK_GRADES = ("orange", "red", "purple")
RISK_ORDER = {"": 0, "green": 1, "yellow": 2, "orange": 3, "red": 4, "purple": 5}
#: 4:2:2 — health checks due in years 1, 2 and 3 of life (3岁以下儿童系统管理)
CHECKS_DUE_PER_YEAR = (4, 2, 2)
PREGNANCY_ENCOUNTERS = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check",
                        "pregnancy_termination", "maternal_near_miss")  # the last two: units_programmes
CLOCK = "clock"
#: screenings filed under the pregnancy episode (the rest belong to the person screened)
PREGNANCY_SCREENINGS = ("prenatal_serum", "cfdna", "maternal_infection_test")
#: 产前筛查: serum screening or cell-free DNA
PRENATAL_SCREENS = ("prenatal_serum", "cfdna")
#: screenings counted per couple (婚检对数, 孕前优生检查对数, 地贫筛查对数)
COUPLE_SCREENINGS = ("premarital_exam", "prepregnancy_exam", "thalassaemia")
#: 两癌检查 target group: women aged 35–64 on the screening date
SCREENING_AGE = (35, 65)
#: BI-RADS 0 (needs more imaging) and 4–6 (suspicious or worse) are abnormal, as screening classifies them
BREAST_ABNORMAL_BIRADS = (0, 4, 5, 6)
#: kinds of certificate issue (签发)
CERT_KINDS = ("first", "first_out_of_institution", "reissue", "replacement")

#: (indicator code, part "n"|"d", when, 12-digit region, institution code, weight); `when` is an ISO date
#: (the contribution counts in every period containing it), "@<period key>" (it counts in that period only),
#: "+<window>..<MM>" (a step of a cumulative window: see `cumulative_steps`), or
#: "^<YYYY-MM>" (a standing quantity: it counts at the end of every period ending in that month or later —
#: a population entered, or left with a negative weight; a stock movement); weight is how much it adds (1 for
#: a case; a stock movement's quantity; −1 for a member leaving a standing population)
Contribution = tuple[str, str, str, str, str, int]
#: what the engine stores: (measure key, when, region, institution, weight) — a measure is one distinct count
#: of the catalogue, shared by every indicator part that counts the same population with the same filter
Measured = tuple[str, str, str, str, int]


@dataclass(frozen=True)
class Entity:
    """One member of a population (a live birth, a woman delivered, a child at a period end, ...)."""

    population: str
    anchor: date
    region: str
    institution: str
    attrs: dict[str, Any] = field(default_factory=dict)
    #: set for populations defined per period (period-end populations, latest check in the period)
    period: str | None = None
    #: how much this member counts: 1, or a quantity (blank certificates moved in or out of stock)
    weight: int = 1
    #: a standing population (期末数): counted at the end of every period ending on or after the anchor's month
    #: (a member leaving is a second entity with weight −1)
    standing: bool = False


# --- small date helpers ----------------------------------------------------------------------------------

def d(s: Any) -> date | None:
    return date.fromisoformat(s) if isinstance(s, str) and s else None


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def add_years(day: date, years: int) -> date:
    return add_months(day, 12 * years)


def number(v: Any) -> float | None:
    """A measured value from an event: 0 / absent / NaN mean not measured."""
    if v is None or v == "":
        return None
    x = float(v)
    return None if math.isnan(x) or x == 0 else x


def zscore(v: Any) -> float | None:
    if v is None or v == "":
        return None
    x = float(v)
    return None if math.isnan(x) else x


# --- facts of a unit -------------------------------------------------------------------------------------

class Facts:
    """The facts loaded for one unit (its own and its dependencies'), indexed for the rules below.

    `alias` (merged subjects, 合并: subject → the subject it is read as): the facts of a merged-away subject are
    the canonical subject's, and a record asked for by a merged-away key (`person:<duplicate>`) is the canonical
    one (the survivor's)."""

    def __init__(self, facts: Iterable[Fact], alias: Mapping[str, str] | None = None) -> None:
        self.by_key: dict[str, Fact] = {}
        self.by_subject: dict[str, list[Fact]] = {}
        self.alias: Mapping[str, str] = alias or {}
        for f in facts:
            self.by_key[f.record_key] = f
            self.by_subject.setdefault(self.canon(f.subject_key), []).append(f)

    def canon(self, key: str) -> str:
        return self.alias.get(key, key)

    def canon_person(self, person_id: str) -> str:
        """The person id a (possibly merged-away) person id is read as."""
        return self.canon(f"person:{person_id}").split(":", 1)[1] if person_id else person_id

    def record(self, key: str) -> Fact | None:
        f = self.by_key.get(self.canon(key))
        return None if f is None or f.voided else f

    def encounters(self, subject: str, *types: str) -> list[dict[str, Any]]:
        out = [f.body for f in self.by_subject.get(self.canon(subject), [])
               if f.record_key.startswith("encounter:") and not f.voided and (not types or f.body["type"] in types)]
        out.sort(key=lambda b: (b["occurred_on"], b.get("encounter_key", "")))
        return out

    def screenings(self, subject: str, *types: str) -> list[dict[str, Any]]:
        out = [f.body for f in self.by_subject.get(self.canon(subject), [])
               if f.record_key.startswith("screening:") and not f.voided and (not types or f.body["type"] in types)]
        out.sort(key=lambda b: (b["performed_on"], b.get("screening_key", "")))
        return out

    def of_kind(self, subject: str, prefix: str) -> list[dict[str, Any]]:
        """The subject's records filed under `prefix` (``case:`` follow-up cases, ``certificate:`` ...)."""
        return [f.body for f in self.by_subject.get(self.canon(subject), [])
                if f.record_key.startswith(prefix) and not f.voided]

    def clock_month(self) -> date | None:
        c = self.record(CLOCK)
        return d(c.body["month"] + "-01") if c else None


def residence_on(person: Fact | None, on: date, fallback: str) -> str:
    """The 12-digit residence (现住址) of a person on a date, from the residence history."""
    if person is None or person.voided:
        return fallback
    current = fallback
    for span in person.body.get("residence", []):
        since = span.get("since") or ""
        if not since or date.fromisoformat(since) <= on:
            current = span["region_code"]
    return current


def first_residence(person: Fact | None) -> str:
    spans = person.body.get("residence", []) if person else []
    return str(spans[0]["region_code"]) if spans else ""


# --- pregnancy episodes ----------------------------------------------------------------------------------

def pregnancy_dependencies(key: str, own: Iterable[Fact], alias: Mapping[str, str] | None = None) -> list[str]:
    fs = Facts(own, alias)
    preg = fs.record(key)
    if preg is None:
        return []
    deps = {f"person:{preg.body['mother_id']}"}
    for dl in fs.encounters(key, "delivery"):
        deps |= {f"person:{b['child_id']}" for b in dl["delivery"].get("babies", []) if b.get("child_id")}
    return sorted(deps)


def _antenatal_checks(fs: Facts, key: str, until: date) -> list[tuple[date, int]]:
    """(date, gestational day) of each day with a counted antenatal check (产前检查) up to the delivery."""
    days: dict[date, int] = {}
    for v in fs.encounters(key, "prenatal_visit"):
        on = d(v["occurred_on"])
        pv = v.get("prenatal_visit", {})
        if on is None or on > until or not pv.get("counts_as_antenatal_check", True):
            continue
        days[on] = min(days.get(on, 10**6), int(pv.get("gestational_days", 0)))
    return sorted(days.items())


def _tested(tests: Sequence[dict[str, Any]], infection: str, until: date) -> list[dict[str, Any]]:
    """The pregnancy's tests for one infection, during pregnancy (up to the delivery date) or at labour (the
    screening service accepts a labour test up to 2 days from the delivery)."""
    return [t for t in tests if t.get("maternal_infection_test", {}).get("infection") == infection
            and (t["maternal_infection_test"].get("timing") == "labour" or (d(t["performed_on"]) or until) <= until)]


def _child_screens(fs: Facts, child_key: str, birth: date) -> dict[str, Any]:
    """What the child's own records say for the live-birth indicators: newborn visit, newborn screens, HBIG,
    first birth certificate."""
    if not child_key:
        return {"newborn_visit_28d": False, "metabolic_screened": False, "hearing_screened": False,
                "hbig_hours": None, "first_certified": False, **births.exposed_child_attrs([])}
    visits = [v for v in fs.encounters(child_key, "newborn_visit")
              if 0 <= ((d(v["occurred_on"]) or birth) - birth).days <= NEWBORN_VISIT_DAYS]
    metabolic = [s for s in fs.screenings(child_key, "newborn_metabolic")
                 if {"pku", "ch"} <= {k.lower() for k, v in s.get("newborn_metabolic", {}).get("conditions", {}).items()
                                      if v}]
    hbig = [float(s.get("hbig", {}).get("hours_after_birth", 0)) for s in fs.screenings(child_key, "hbig")]
    certs = [c for c in fs.of_kind(child_key, "certificate:")
             if c.get("kind") in ("first", "first_out_of_institution") and c.get("issued_on")
             and c.get("status") in ("issued", "superseded")]
    return {"newborn_visit_28d": bool(visits), "metabolic_screened": bool(metabolic),
            "hearing_screened": bool(fs.screenings(child_key, "newborn_hearing")),
            "hbig_hours": min(hbig) if hbig else None, "first_certified": bool(certs),
            **births.exposed_child_attrs(fs.screenings(child_key, "hepb_vaccine", "exposed_infant"))}


def _prenatal_screen_entities(key: str, fs: Facts, p: dict[str, Any], mother: Fact | None) -> list[Entity]:
    """High-risk prenatal screens (产前筛查高风险), anchored on the screening date: followed up when a case
    opened by that result records a contact."""
    contacted = {c.get("screening_key") for c in fs.of_kind(key, "case:")
                 if any(a.get("action") == "contacted" for a in c.get("actions", []))}
    out = []
    for s in fs.screenings(key, *PRENATAL_SCREENS):
        on = d(s["performed_on"])
        if on is None or s.get("classification") != "high_risk":
            continue
        out.append(Entity("prenatal_high_risk_screen", on,
                          residence_on(mother, on, s.get("residence_code") or p["residence_code"]),
                          s.get("institution_code", ""), {"contacted": s.get("screening_key") in contacted}))
    return out


def pregnancy_entities(key: str, fs: Facts) -> list[Entity]:
    preg = fs.record(key)
    if preg is None:
        return []
    p = preg.body
    lmp = d(p["lmp_date"])
    booked = d(p.get("registered_on"))
    mother = fs.record(f"person:{p['mother_id']}")
    out: list[Entity] = _prenatal_screen_entities(key, fs, p, mother)
    if booked is not None and lmp is not None:
        out.append(_booking_entity(fs, key, p, mother, lmp, booked))
    out += _first_antenatal_entity(fs, key, p, mother)
    from indicators.domain import units_programmes  # builds Entity: imported here, not at the top

    out += units_programmes.pregnancy_entities(
        lambda *types: fs.encounters(key, *types), lambda on: residence_on(mother, on, p["residence_code"]),
        lambda on: births.pmtct_attrs(fs.screenings(key, "maternal_infection_test"), fs.of_kind(key, "case:"), on))
    deliveries = fs.encounters(key, "delivery")
    if not deliveries or lmp is None:
        return out
    # one delivery per episode (the registry enforces it); the latest-dated wins if a stale one lingers
    dl = deliveries[-1]
    on = d(dl["occurred_on"])
    assert on is not None
    det = dl["delivery"]
    gest = (on - lmp).days
    region = residence_on(mother, on, p["residence_code"])
    inst = dl["institution_code"]
    facility = det["place"] == "hospital" and bool(det.get("institution_midwifery_licensed"))
    common = {"mode": det["mode"], "place": det["place"], "facility_delivery": facility, "gestational_days": gest,
              **births.hukou_attrs(mother.body if mother else None, region)}
    viable = gest >= VIABLE_GESTATION_DAYS
    infection_tests = fs.screenings(key, "maternal_infection_test")
    hbsag_positive = any(t["maternal_infection_test"].get("result") == "positive"
                         for t in _tested(infection_tests, "hbsag", on))
    pmtct = births.pmtct_attrs(infection_tests, fs.of_kind(key, "case:"), on)
    live = 0
    for b in det.get("babies", []):
        weight = number(b.get("birth_weight_g"))
        if b["outcome"] != "live" or not viable:
            continue
        live += 1
        child_key = f"person:{b['child_id']}" if b.get("child_id") else ""
        child = _child_screens(fs, child_key, on)
        out.append(Entity("live_birth", on, region, inst, {
            **common, "sex": b["sex"], "birth_weight_g": weight, "weighed": weight is not None,
            "low_birth_weight": weight is not None and weight < 2500, **child,
            "mother_hbsag_positive": hbsag_positive, **births.birth_attrs(b), **births.mother_exposure(pmtct)}))
        # 首次签发率: live births of the institution where they were born, with the institution's region
        out.append(Entity("live_birth_in_institution", on, dl.get("institution_region") or region, inst,
                          {"first_certified": child["first_certified"]}))
    if not viable:
        return out
    checks = _antenatal_checks(fs, key, on)
    first_gest = checks[0][1] if checks else None
    early_check = first_gest is not None and first_gest < EARLY_BOOKING_DAYS
    early_booked = booked is not None and (booked - lmp).days < EARLY_BOOKING_DAYS
    pp = [v for v in fs.encounters(key, "postpartum_visit")
          if 0 <= ((d(v["occurred_on"]) or on) - on).days <= POSTPARTUM_VISIT_DAYS]
    grades = [str(v.get("prenatal_visit", {}).get("risk_grade", "")) for v in fs.encounters(key, "prenatal_visit")]
    highest = max(grades, key=lambda g: RISK_ORDER.get(g, 0), default="")
    prenatal = [s for s in fs.screenings(key, *PRENATAL_SCREENS) if (d(s["performed_on"]) or on) <= on]
    out.append(Entity("woman_delivered", on, region, inst, {
        **common, "live_births": live,
        "antenatal_checks": len(checks),
        "early_booking": early_booked and early_check,
        "postpartum_visit_28d": bool(pp),
        "systematic_management": early_check and len(checks) >= 5 and facility and bool(pp),
        "highest_risk_grade": highest, "high_risk": highest in HIGH_RISK_GRADES,
        # 高危专案管理: any follow-up case of the pregnancy with at least one action
        "high_risk_managed": any(c.get("actions") for c in fs.of_kind(key, "case:")),
        "hiv_tested": bool(_tested(infection_tests, "hiv", on)),
        "syphilis_tested": bool(_tested(infection_tests, "syphilis", on)),
        "hbsag_tested": bool(_tested(infection_tests, "hbsag", on)),
        "prenatal_screened": bool(prenatal),
        **pmtct,
    }))
    return out


def _first_antenatal_entity(fs: Facts, key: str, p: dict[str, Any], mother: Fact | None) -> list[Entity]:
    """初次产前保健人数: a pregnancy counted once, on the day of its first counted antenatal check (delivered or
    not), where the mother lived that day, at the institution of that check."""
    deliveries = fs.encounters(key, "delivery")
    until = (d(deliveries[-1]["occurred_on"]) if deliveries else None) or date.max
    first = births.first_antenatal_check(_antenatal_checks(fs, key, until))
    if first is None:
        return []
    visit = next(v for v in fs.encounters(key, "prenatal_visit") if d(v["occurred_on"]) == first
                 and v.get("prenatal_visit", {}).get("counts_as_antenatal_check", True))
    return [Entity("first_antenatal_check", first, residence_on(mother, first, p["residence_code"]),
                   visit.get("institution_code", ""))]


def _booking_entity(fs: Facts, key: str, p: dict[str, Any], mother: Fact | None, lmp: date,
                    booked: date) -> Entity:
    """A pregnancy booked (建册), anchored on the booking date: the target group of folic-acid uptake and of
    the booked-pregnancy screening rate."""
    window = (lmp - timedelta(days=90), lmp + timedelta(days=12 * 7))
    folic = [e for e in fs.encounters(f"person:{p['mother_id']}", "folic_acid_dispensed")
             if window[0] <= (d(e["occurred_on"]) or lmp) <= window[1]]
    return Entity("pregnancy_booked", booked, residence_on(mother, booked, p["residence_code"]),
                  p.get("institution_code", ""), {"folic_acid": bool(folic),
                                                  "screened": bool(fs.screenings(key, *PRENATAL_SCREENS))})


# --- persons: deaths, child checks, child population ---------------------------------------------------

def _partners(key: str, own: Facts) -> list[str]:
    """The partners named on this person's couple screenings (婚检 / 孕前优生 / 地贫)."""
    return sorted({f"person:{s['partner_id']}" for s in own.screenings(key, *COUPLE_SCREENINGS)
                   if s.get("partner_id")})


def person_dependencies(key: str, own: Iterable[Fact], alias: Mapping[str, str] | None = None) -> list[str]:
    fs = Facts(own, alias)
    person = fs.record(key)
    clock = [CLOCK] if person is not None and person.body.get("birth_date") else []
    born_in = person.body.get("born_in_pregnancy_id") if person is not None else ""
    return clock + ([f"pregnancy:{born_in}"] if born_in else []) + _partners(key, fs)


def born_alive_viable(key: str, person: Fact, fs: Facts) -> bool:
    """A child born in a registry pregnancy is a child of the indicators only while that pregnancy's delivery
    records it as a live birth (活产: ≥ 28 weeks); born alive earlier it is a miscarriage (流产) in MCH
    statistics, in no child indicator — the same population as the live births the rates divide by."""
    born_in = person.body.get("born_in_pregnancy_id")
    if not born_in:
        return True
    preg = fs.record(f"pregnancy:{born_in}")
    deliveries = fs.encounters(f"pregnancy:{born_in}", "delivery")
    if preg is None or not deliveries:
        return False
    lmp, on = d(preg.body.get("lmp_date")), d(deliveries[-1]["occurred_on"])
    if lmp is None or on is None or (on - lmp).days < VIABLE_GESTATION_DAYS:
        return False
    me = key.split(":", 1)[1]
    return any(fs.canon_person(b.get("child_id", "")) == me and b.get("outcome") == "live"
               for b in deliveries[-1]["delivery"].get("babies", []))


def _where(person: Fact | None, s: dict[str, Any], on: date) -> str:
    """A screened person's residence on the screening date (the registry's history first, else what the
    screening service knew, else the screening institution's region)."""
    return residence_on(person, on, s.get("residence_code") or s.get("institution_region") or "")


def _couple_entities(key: str, fs: Facts, person: Fact | None) -> list[Entity]:
    """Couples (对): each pair counted once — by the partner that names the other when only one does, by the
    smaller person id when both do. A screening that names no partner is a couple on its own (the partner
    was not recorded), except for 婚检对数 which needs both partners examined."""
    me = key.split(":", 1)[1]
    out: list[Entity] = []
    for kind in COUPLE_SCREENINGS:
        mine = fs.screenings(key, kind)
        for s in mine:
            on = d(s["performed_on"])
            if on is not None and not s.get("partner_id") and kind != "premarital_exam":
                out.append(Entity(f"{kind}_couple", on, _where(person, s, on), s.get("institution_code", ""),
                                  {"both_examined": False}))
        def partner_of(s: dict[str, Any]) -> str:
            return fs.canon_person(s.get("partner_id") or "")  # a merged partner is the survivor (合并)

        for partner in sorted({partner_of(s) for s in mine if s.get("partner_id")} - {me}):
            theirs = fs.screenings(f"person:{partner}", kind)
            if any(partner_of(t) == me for t in theirs) and partner < me:
                continue  # the partner's unit counts this couple
            named = [s for s in mine if partner_of(s) == partner]
            other = [t for t in theirs if partner_of(t) in (me, "")]
            both = bool(other)
            if kind == "premarital_exam" and not both:
                continue
            first_mine, first_other = named[0], other[0] if other else None
            # both examined: counted when the second partner is; otherwise when the first screening happened
            pick = first_mine
            if first_other is not None:
                later = first_other["performed_on"] > first_mine["performed_on"]
                pick = (first_other if later else first_mine) if kind == "premarital_exam" else \
                    (first_mine if later else first_other)
            on = d(pick["performed_on"])
            assert on is not None
            out.append(Entity(f"{kind}_couple", on, _where(person, first_mine, on), pick.get("institution_code", ""),
                              {"both_examined": both}))
    return out


def screening_entities(key: str, fs: Facts, person: Fact | None) -> list[Entity]:
    """The person's own screenings: 婚检 and 孕前优生 persons, 两癌 (women 35–64), and couples."""
    birth = d(person.body.get("birth_date")) if person is not None else None
    sex = str(person.body.get("sex") or "") if person is not None else ""
    out = []
    for s in fs.screenings(key, "premarital_exam", "prepregnancy_exam", "cervical", "breast"):
        on = d(s["performed_on"])
        if on is None:
            continue
        t = s["type"]
        attrs: dict[str, Any]
        if t == "premarital_exam":
            pe = s.get("premarital_exam", {})
            attrs = {"affects_marriage": any(f.get("affects_marriage") for f in pe.get("findings", [])),
                     **births.exam_infection_attrs(pe, sex)}
        elif t == "prepregnancy_exam":
            pp = s.get("prepregnancy_exam", {})
            attrs = {"at_risk": bool(pp.get("at_risk")), **births.exam_infection_attrs(pp, sex)}
        else:
            abnormal = (s.get("cervical", {}).get("result") == "abnormal" if t == "cervical"
                        else int(s.get("breast", {}).get("birads", 0)) in BREAST_ABNORMAL_BIRADS)
            in_age = birth is not None and add_years(birth, SCREENING_AGE[0]) <= on < add_years(birth, SCREENING_AGE[1])
            attrs = {"abnormal": abnormal, "target_age": in_age}
        out.append(Entity(t, on, _where(person, s, on), s.get("institution_code", ""), attrs))
    return out + _couple_entities(key, fs, person)


def person_entities(key: str, fs: Facts) -> list[Entity]:
    person = fs.record(key)
    screened = screening_entities(key, fs, person)
    if person is None or not born_alive_viable(key, person, fs):
        return screened
    from indicators.domain import units_programmes  # builds Entity: imported here, not at the top

    out: list[Entity] = screened
    birth = d(person.body.get("birth_date"))
    fallback = first_residence(person)
    deaths = fs.encounters(key, "death")
    died: date | None = None
    if deaths:
        dt = deaths[0]
        det = dt.get("death", {})
        died = d(det.get("died_on")) or d(dt["occurred_on"])
        assert died is not None
        attrs: dict[str, Any] = {"maternal": bool(det.get("maternal")), "age_days": None,
                                 "neonatal": False, "infant": False, "under5": False}
        if birth is not None:
            attrs.update(age_days=(died - birth).days, neonatal=(died - birth).days < 28,
                         infant=died < add_years(birth, 1), under5=died < add_years(birth, 5))
        attrs.update(units_programmes.death_review_attrs(det))
        out.append(Entity("death", died, residence_on(person, died, fallback), dt["institution_code"], attrs))
    out += units_programmes.person_entities(person, birth, lambda *types: fs.encounters(key, *types),
                                            lambda *types: fs.screenings(key, *types),
                                            lambda on: residence_on(person, on, fallback), died)
    if birth is None:
        return out
    checks = [c for c in fs.encounters(key, "child_health_check", "newborn_visit")
              if (d(c["occurred_on"]) or birth) >= birth]
    out += latest_check_entities(person, birth, checks, fallback)
    clock = fs.clock_month()
    known_since = _known_since(person, birth, fs.encounters(key))
    if clock is not None and known_since is not None:
        out += child_population_entities(person, birth, died, checks, clock, fallback, known_since)
    return out


def _known_since(person: Fact, birth: date, encounters: Sequence[dict[str, Any]]) -> date | None:
    """From when the registry knows where a child lives: born here (to a registered mother), registered with
    POST /v1/persons (from that day on she lives at her recorded residence, checked or not — decision 49), or
    her first encounter, whichever is first. Before that her residence is unknown."""
    if person.body.get("mother_id") or person.body.get("born_in_pregnancy_id"):
        return birth
    registered = d(person.body.get("registered_on"))
    seen = [d(e["occurred_on"]) for e in encounters]
    return min((s for s in (registered, *seen) if s), default=None)


def _latest_per_period(items: Sequence[tuple[date, dict[str, Any]]]) -> dict[str, tuple[date, dict[str, Any]]]:
    best: dict[str, tuple[date, dict[str, Any]]] = {}
    for on, c in items:
        for pk in periods.keys_of(on):
            cur = best.get(pk)
            if cur is None or (on, c.get("encounter_key", "")) > (cur[0], cur[1].get("encounter_key", "")):
                best[pk] = (on, c)
    return best


def latest_check_entities(person: Fact, birth: date, checks: Sequence[dict[str, Any]],
                          fallback: str) -> list[Entity]:
    """Child-check indicators count each child once per period, by its latest qualifying check there."""
    dated = [(d(c["occurred_on"]) or birth, c) for c in checks if c["type"] == "child_health_check"]
    feeding = [(on, c) for on, c in dated
               if c.get("child_check", {}).get("feeding") and on < add_months(birth, 6)]
    measured = [(on, c) for on, c in dated
                if number(c.get("child_check", {}).get("weight_kg")) and on < add_years(birth, 5)]
    hb = [(on, c) for on, c in dated if number(c.get("child_check", {}).get("haemoglobin_g_l"))
          and add_months(birth, 6) <= on < add_months(birth, 60)]
    out: list[Entity] = []

    def emit(population: str, items: Sequence[tuple[date, dict[str, Any]]], attrs: Any) -> None:
        for pk, (on, c) in sorted(_latest_per_period(items).items()):
            out.append(Entity(population, on, residence_on(person, on, fallback), c["institution_code"],
                              attrs(c.get("child_check", {})), period=pk))

    emit("infant_feeding", feeding, lambda cc: {"exclusive": cc["feeding"] == "exclusive_breastfeeding"})
    emit("child_u5_measured", measured, lambda cc: {
        "waz": zscore(cc.get("weight_for_age_z")), "haz": zscore(cc.get("height_for_age_z")),
        "whz": zscore(cc.get("weight_for_height_z"))})
    emit("child_hb_tested", hb, lambda cc: {"haemoglobin_g_l": number(cc.get("haemoglobin_g_l"))})
    return out


@lru_cache(maxsize=8192)
def _birthdays(birth: date) -> tuple[date, ...]:
    return tuple(add_years(birth, y) for y in range(len(CHECKS_DUE_PER_YEAR) + 1))


@lru_cache(maxsize=65536)
def checks_due(birth: date, start: date, end: date) -> int:
    """Health checks due in [start, end] for a child born on `birth` under 4:2:2, pro-rated by the days of
    each year of life inside the period, rounded half up."""
    due = Decimal(0)
    life = _birthdays(birth)
    for year, per_year in enumerate(CHECKS_DUE_PER_YEAR):
        y0, y1 = life[year], life[year + 1]  # [y0, y1)
        lo, hi = max(start, y0), min(end, y1 - timedelta(days=1))
        if hi >= lo:
            due += Decimal(per_year) * Decimal((hi - lo).days + 1) / Decimal((y1 - y0).days)
    return int(due.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def child_periods(birth: date, clock: date) -> tuple[periods.Period, ...]:
    """Every period that has started by the clock month and ends on or after the birth."""
    return _periods_between(date(birth.year, birth.month, 1), clock)


@lru_cache(maxsize=4096)
def _periods_between(first_month: date, clock: date) -> tuple[periods.Period, ...]:
    keys: dict[str, None] = {}
    m = first_month
    while m <= clock:
        keys.update(dict.fromkeys(periods.keys_of(m)))
        m = add_months(m, 1)
    return tuple(periods.parse(k) for k in keys)


def month_end(day: date) -> date:
    return add_months(date(day.year, day.month, 1), 1) - timedelta(days=1)


def child_population_entities(person: Fact, birth: date, died: date | None, checks: Sequence[dict[str, Any]],
                              clock: date, fallback: str, known_since: date) -> list[Entity]:
    """Children alive and resident, under 7 at a period end (7岁以下 / 3岁以下儿童), from the period in which
    the registry first knew them (born here, or their first encounter): before that, their residence is
    unknown.

    The population at a period end is a standing one (`child_under7`): whether a child is in it depends only
    on the end date, so it is given as runs of month ends (same residence, same under-3 status) — entering at
    the first, leaving after the last — instead of once per period. What the child had during a period
    (checks, the 4:2:2 checks due) is per period (`child_under7_in_period`)."""
    seventh = add_years(birth, 7)
    if known_since >= seventh:
        return []
    third = add_years(birth, 3)

    def member(end: date) -> bool:
        return known_since <= end < seventh and (died is None or died > end)

    out: list[Entity] = []
    run: tuple[date, str, bool] | None = None
    # membership, residence and age group change only at these month ends: look at those alone
    first = month_end(max(birth, known_since))
    moves = [d(x.get("since")) for x in person.body.get("residence", [])] if not person.voided else []
    turns = {first, month_end(third), month_end(seventh), *(month_end(m) for m in moves if m)}
    if died is not None:
        turns.add(month_end(died))
    for end in sorted(t for t in turns if t >= first):
        here = (residence_on(person, end, fallback), end < third) if member(end) else None
        if run is not None and here != run[1:]:
            for anchor, weight in ((run[0], 1), (end, -1)):
                out.append(Entity("child_under7", anchor, run[1], "", {"under3": run[2]}, weight=weight,
                                  standing=True))
            run = None
        if (here is None and end >= seventh) or (died is not None and died <= end):
            break
        if here is not None and run is None:
            run = (end, *here)
    health = [(d(c["occurred_on"]) or birth, c.get("child_check", {})) for c in checks
              if c["type"] == "child_health_check"]
    checked_on = [on for on, cc in health if number(cc.get("weight_kg")) and number(cc.get("height_cm"))]
    home: dict[date, str] = {}  # residence at a period end (many periods share an end: month, quarter, 1–N月)
    for per in child_periods(birth, clock):
        if not member(per.end):
            continue
        n = sum(1 for on, _ in health if per.start <= on <= per.end) if health else 0
        under3 = per.end < third
        region = home.get(per.end)
        if region is None:
            region = home[per.end] = residence_on(person, per.end, fallback)
        out.append(Entity("child_under7_in_period", per.end, region, "", {
            "under3": under3,
            "checked": any(per.start <= on <= per.end for on in checked_on),
            "systematic": under3 and systematic(n, birth, per.start, per.end),
        }, period=per.key))
    return out


def systematic(checks: int, birth: date, start: date, end: date) -> bool:
    """`checks` ≥ the 4:2:2 checks due in [start, end] of a child under 3 at `end` (系统管理), without the exact
    pro-rating when bounds decide: each day of life in the period adds between 2/366 and 4/365 of a check due,
    so the rounded due lies between round(2L/366) and round(4L/365) for L days of life under 3 in the period."""
    life = (min(end, _birthdays(birth)[3] - timedelta(days=1)) - max(start, birth)).days + 1
    if life <= 0:
        return True
    if checks >= (8 * life + 365) // 730:
        return True
    if checks < (4 * life + 366) // 732:
        return False
    return checks >= checks_due(birth, start, end)


# --- marriages -------------------------------------------------------------------------------------------

def marriage_entities(key: str, fs: Facts) -> list[Entity]:
    m = fs.record(key)
    if m is None:
        return []
    on = d(m.body["registered_on"])
    assert on is not None
    return [Entity("marriage_person", on, m.body["region_code"], "", {"person_id": pid})
            for pid in m.body.get("person_ids", [])]


# --- follow-up cases, certificates, stock --------------------------------------------------------------

def followup_entities(key: str, fs: Facts) -> list[Entity]:
    """随访完成率: a case counts in the period of its due date; completed when closed with an outcome (not lost)
    by then. A case closed without any action because its result was corrected was never due."""
    c = fs.record(key)
    if c is None:
        return []
    b = c.body
    due = d(b.get("due_on"))
    if due is None or b.get("closed_reason"):
        return []
    closed = d(b.get("closed_on"))
    done = (b.get("status") == "closed" and closed is not None and closed <= due
            and bool(b.get("outcome")) and b.get("outcome") != "lost")
    return [Entity("followup_case", due, b.get("region_code", ""), b.get("institution_code", ""),
                   {"completed": done, "screening_type": b.get("screening_type", "")})]


def certificate_entities(key: str, fs: Facts) -> list[Entity]:
    """Actions on one birth certificate (出生医学证明), anchored on the action date, at the issuing institution:
    its issue (签发, by kind) unless it was voided — a voided certificate is 废证, counted from the certificates
    service's `voided` stock movement like a spoiled blank — and its supersession (收回/失效, not 废证)."""
    c = fs.record(key)
    if c is None:
        return []
    b = c.body
    region, inst = b.get("institution_region", ""), b.get("institution_code", "")
    out = []
    issued, voided, superseded = d(b.get("issued_on")), d(b.get("voided_on")), d(b.get("superseded_on"))
    if issued is not None and b.get("kind") in CERT_KINDS and not (voided is not None or b.get("status") == "voided"):
        out.append(Entity("certificate_action", issued, region, inst, {"action": "issued", "kind": b["kind"]}))
    if superseded is not None and b.get("status") == "superseded":
        out.append(Entity("certificate_action", superseded, region, inst,
                          {"action": "superseded", "kind": b.get("kind")}))
    return out


def stock_entities(key: str, fs: Facts) -> list[Entity]:
    """One movement of blank certificates. It is a flow on its date (a spoiled blank is 废证), and a standing
    contribution of its quantity to the stock at the end of every period ending on or after it (期末库存 =
    cumulative movements up to the period end), so that for any period closing = opening + received − issued
    − voided."""
    m = fs.record(key)
    if m is None:
        return []
    b = m.body
    on = d(b.get("on"))
    if on is None:
        return []
    region, inst, qty = b.get("institution_region", ""), b.get("institution_code", ""), int(b.get("quantity", 0))
    out = []
    if b.get("kind") == "voided" and qty:  # a spoiled blank, or a certificate voided as wrongly issued
        out.append(Entity("certificate_action", on, region, inst, {"action": "voided", "kind": ""},
                          weight=abs(qty)))
    if b.get("kind") in ("received", "allocated") and qty:  # 申领: blanks in (an allocation out is negative)
        out.append(Entity("certificate_action", on, region, inst, {"action": "received", "kind": ""}, weight=qty))
    if qty:  # 期末库存: standing from the movement's month on
        out.append(Entity("cert_stock", on, region, inst, {"kind": b.get("kind")}, weight=qty, standing=True))
    return out


# --- the unit interface the engine uses -----------------------------------------------------------------

def population_entities(key: str, fs: Facts) -> list[Entity]:
    """A bureau's population figures of one region and kind (人口基数), one standing quantity per year."""
    bodies = [f.body for f in fs.by_subject.get(key, []) if not f.voided]
    return [Entity(populations.POPULATION, on, region, "", {"kind": kind}, weight=w, standing=True)
            for kind, on, region, w in populations.population_entities(bodies)]


def quality_entities(key: str, fs: Facts) -> list[Entity]:
    """质控评分: one institution-month's quality score parts (units_quality)."""
    from indicators.domain import units_quality  # builds Entity: imported here, not at the top

    return units_quality.quality_entities(key, fs)


UNIT_KINDS = ("pregnancy", "person", "marriage", "followup", "cert", "stock", "population", "qscore")


def unit_kind(key: str) -> str | None:
    kind = key.split(":", 1)[0]
    return kind if kind in UNIT_KINDS and ":" in key else None


ENTITIES = {"pregnancy": pregnancy_entities, "person": person_entities, "marriage": marriage_entities,
            "followup": followup_entities, "cert": certificate_entities, "stock": stock_entities,
            "population": population_entities, "qscore": quality_entities}


def entities(unit_key: str, facts: Iterable[Fact], alias: Mapping[str, str] | None = None) -> list[Entity]:
    """`alias`: merged subjects (subject → the subject it is read as); a unit merged away has no entities."""
    kind = unit_kind(unit_key)
    if not kind or (alias or {}).get(unit_key, unit_key) != unit_key:
        return []
    return ENTITIES[kind](unit_key, Facts(facts, alias))


def dependencies(unit_key: str, own: Iterable[Fact], alias: Mapping[str, str] | None = None) -> list[str]:
    """The subjects whose facts the unit reads besides its own (as named in its facts: the engine maps merged-away
    subjects to the subjects they are read as)."""
    kind = unit_kind(unit_key)
    if (alias or {}).get(unit_key, unit_key) != unit_key:
        return []
    if kind == "pregnancy":
        return pregnancy_dependencies(unit_key, own, alias)
    if kind == "person":
        return person_dependencies(unit_key, own, alias)
    return []


def measured(ents: Iterable[Entity], catalogue: Catalogue) -> list[Measured]:
    """What the entities add to each distinct count (measure) of the catalogue.

    A per-period entity of a cumulative period (1–N月) is not stored under that period: with those of the
    ordinary periods that are cumulative ones (1–3月 is Q1) it makes the window's steps (`cumulative_steps`)."""
    out: list[Measured] = []
    windows: dict[str, dict[int, dict[tuple[str, str, str], int]]] = {}
    by_population = catalogue.measures_by_population
    for e in ents:
        step = periods.window_step(e.period) if e.period else None
        if e.standing:
            when, step = f"^{e.anchor.isoformat()[:7]}", None
        else:
            when = f"@{e.period}" if e.period else e.anchor.isoformat()
        own = step is None or periods.is_anchor(*step)
        for key, count in by_population.get(e.population, ()):
            if count.counts(e.attrs):
                if own:
                    out.append((key, when, e.region, e.institution, e.weight))
                if step is not None:
                    month = windows.setdefault(step[0], {}).setdefault(step[1], {})
                    k = (key, e.region, e.institution)
                    month[k] = month.get(k, 0) + e.weight
    if windows:
        out += cumulative_steps(windows)
    out.sort()
    return out


def cumulative_steps(windows: dict[str, dict[int, dict[tuple[str, str, str], int]]]) -> list[Measured]:
    """Per-period counts of cumulative periods as steps (累计: 截止N月底): {window: {month: (measure, region,
    institution) → count of 1–month}} → the change at each month (`+<window>..MM`) whose cumulative period is
    not an ordinary one, so that the count of the last ordinary one before N (its `@` key) plus the steps after
    it is the count of 1–N月 exactly (a child counted once in 1–9月, not once per month)."""
    out: list[Measured] = []
    none: dict[tuple[str, str, str], int] = {}
    for window, by_month in windows.items():
        prev = none
        for month in periods.window_months(window):
            cur = by_month.get(month, none)
            if cur != prev and not periods.is_anchor(window, month):  # an anchor is its ordinary period's `@`
                for k in cur.keys() | prev.keys():
                    change = cur.get(k, 0) - prev.get(k, 0)
                    if change:
                        out.append((k[0], periods.step_key(window, month), k[1], k[2], change))
            prev = cur
    return out


def contributions(ents: Iterable[Entity], catalogue: Catalogue) -> list[Contribution]:
    """The same, per indicator part: what each indicator's numerator and denominator count."""
    by_measure: dict[str, list[Measured]] = {}
    for m in measured(ents, catalogue):
        by_measure.setdefault(m[0], []).append(m)
    out = [(code, part, *m[1:]) for code, part, key in catalogue.parts() for m in by_measure.get(key, ())]
    out.sort()
    return out


def compute(unit_key: str, facts: Iterable[Fact], catalogue: Catalogue,
            alias: Mapping[str, str] | None = None) -> list[Contribution]:
    return contributions(entities(unit_key, facts, alias), catalogue)


def compute_measured(unit_key: str, facts: Iterable[Fact], catalogue: Catalogue,
                     alias: Mapping[str, str] | None = None) -> list[Measured]:
    return measured(entities(unit_key, facts, alias), catalogue)
