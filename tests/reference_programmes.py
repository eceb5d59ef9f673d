"""An independent reference calculation of the programme indicators that tests/reference.py does not cover —
growth z-scores, high-risk management, 婚检 / 孕前优生 / 两癌 / 地贫, follow-up completion and birth
certificates — written straight from `shared/spec/indicators.md` and docs/decisions.md (entries 15, 20–22,
25–26, 35–38) over the records a test posted, sharing no code with the indicators service.

Deliberately plain: a loop over the stories for every question, no caching, no cleverness. The inputs are what
the test posted: the weights and heights of a check (the WHO z-scores are computed here, tests/who_reference.py),
the screening results and follow-up actions (the cases' due dates and regions are derived here from the
programme rules, `FOLLOWUP_DUE_DAYS`), certificates and stock.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from tests import who_reference as who
from tests.reference import add_years, where

#: issue 21, programmes (docs/indicators-programmes.md): 叶酸, 营养包, 终止妊娠, 危重孕产妇, 死亡评审, 出生缺陷,
#: 新生儿破伤风, 体弱儿, 托幼体检
PROGRAMME_CODES = (
    "folic_acid_persons", "folic_acid_bottles", "nutrition_pack_children", "nutrition_pack_packs",
    "pregnancy_terminations", "induced_abortions", "mid_term_inductions", "terminations_for_birth_defect",
    "maternal_near_miss_cases", "maternal_near_miss_ratio", "maternal_deaths", "maternal_death_review_rate",
    "maternal_death_avoidable_share", "under5_deaths", "under5_death_review_rate", "under5_death_avoidable_share",
    "birth_defects", "birth_defect_rate", "birth_defects_chd", "birth_defects_ntd", "birth_defects_cleft",
    "birth_defects_polydactyly", "birth_defects_down_syndrome", "neonatal_tetanus_cases", "neonatal_tetanus_rate",
    "at_risk_children_enrolled", "at_risk_children_managed", "at_risk_recovery_rate", "nursery_children_checked",
    "nursery_staff_checked", "nursery_staff_abnormal_rate", "syphilis_positive_terminations",
    "hiv_positive_terminations")
PROGRAMME_RATES = ("maternal_near_miss_ratio", "maternal_death_review_rate", "maternal_death_avoidable_share",
                   "under5_death_review_rate", "under5_death_avoidable_share", "birth_defect_rate",
                   "neonatal_tetanus_rate", "at_risk_recovery_rate", "nursery_staff_abnormal_rate")
CODES = ("under5_underweight_rate", "under5_stunting_rate", "under5_wasting_rate", "under5_overweight_rate",
         "marriage_registrations_persons", "high_risk_management_rate", "premarital_exam_persons",
         "premarital_exam_couples", "premarital_exam_rate", "premarital_disease_rate", "premarital_hiv_test_rate",
         "prepregnancy_exam_count", "prepregnancy_risk_rate", "cervical_screening_count", "cervical_abnormal_rate",
         "breast_screening_count", "breast_abnormal_rate", "thalassaemia_screening_count",
         "followup_completion_rate", "certs_issued", "certs_first", "certs_first_out_of_institution",
         "certs_reissued", "certs_replaced", "certs_voided", "certs_superseded", "cert_void_rate",
         "cert_stock_received", "cert_stock_closing", "cert_first_issue_rate", *PROGRAMME_CODES)
COUNTS = ("marriage_registrations_persons", "premarital_exam_persons", "premarital_exam_couples",
          "prepregnancy_exam_count", "cervical_screening_count", "breast_screening_count",
          "thalassaemia_screening_count", "certs_issued", "certs_first", "certs_first_out_of_institution",
          "certs_reissued", "certs_replaced", "certs_voided", "certs_superseded", "cert_stock_received",
          "cert_stock_closing", *(c for c in PROGRAMME_CODES if c not in PROGRAMME_RATES))
CERT_CODES = tuple(c for c in CODES if c.startswith("cert"))
KIND_CODE = {"first": "certs_first", "first_out_of_institution": "certs_first_out_of_institution",
             "reissue": "certs_reissued", "replacement": "certs_replaced"}


@dataclass
class Person:
    person_id: str
    sex: str
    birth: date
    residence: str
    moves: list[tuple[date, str]] = field(default_factory=list)
    #: the record this one is finally merged into (合并: the same woman registered twice), if any
    merged_into: Person | None = None

    def lives_on(self, on: date) -> str:
        return where(self.residence, self.moves, on)

    def who(self) -> Person:
        """The person as finally identified: a merged record is the survivor (her residence, her birth date)."""
        return self.merged_into or self


@dataclass
class Exam:
    """One screening result as finally recorded (voided ones are dropped by the test)."""

    type: str            # premarital_exam | prepregnancy_exam | thalassaemia | cervical | breast
    person: Person
    on: date
    partner_id: str = ""
    affects: bool = False       # premarital: ≥ 1 finding affecting marriage or childbearing
    hiv_tested: bool = False    # premarital: HIV negative or positive (not "not_done")
    at_risk: bool = False       # pre-pregnancy
    #: premarital / pre-pregnancy: the syphilis, hiv, hbsag results as finally recorded (reference_births)
    results: dict[str, str] = field(default_factory=dict)
    abnormal: bool = False      # cervical result abnormal; breast BI-RADS 0, 4, 5, 6


@dataclass
class Marriage:
    registered_on: date
    region: str
    person_ids: tuple[str, str]


@dataclass
class Check:
    on: date
    weight_kg: float | None
    height_cm: float | None


@dataclass
class Child:
    person_id: str
    sex: str
    birth: date
    home: str                    # the mother's residence on the birth date
    viable: bool                 # live birth at ≥ 28 weeks (else in no child indicator, decision 39)
    moves: list[tuple[date, str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass
class Delivered:
    """A woman delivered (≥ 28 weeks) — for 高危产妇管理率."""

    delivered: date
    region: str                  # residence on the delivery date
    high_risk: bool              # highest final risk grade orange, red or purple
    managed: bool                # a follow-up case of the pregnancy with ≥ 1 action
    pregnancy_id: str = ""


@dataclass
class Case:
    """A follow-up case as decisions 20–22 describe it, kept by the test from what it posted: opened by a result
    that needs follow-up (or a pregnancy's first orange+ grade), due by the programme rules, in the region the
    subject lived in on the result's date, closed by actions or — not due then — by a correction or void."""

    due: date
    region: str
    status: str = "open"
    closed_on: date | None = None
    outcome: str | None = None
    closed_reason: str | None = None
    opened_on: date | None = None

    def act(self, action: str, on: date, outcome: str | None = None) -> None:
        if action in ("closed", "lost"):
            self.status, self.closed_on, self.outcome = "closed", on, outcome if action == "closed" else "lost"
            self.closed_reason = None   # closed by its own action (also one posted late, before the pregnancy end)

    def pregnancy_ended(self, on: date) -> None:
        """高危专案 ends with the pregnancy (decision 50): an open case closes on the delivery date, not due."""
        if self.status == "open":
            assert self.opened_on is not None
            self.status, self.closed_on, self.closed_reason = "closed", max(on, self.opened_on), "pregnancy ended"

    @property
    def ended_with_pregnancy(self) -> bool:
        return self.closed_reason == "pregnancy ended"

    def no_longer_needed(self, on: date, reason: str) -> None:
        """The result was corrected to a class without follow-up, or voided: an open case closes, not due."""
        if self.status == "open":
            self.status, self.closed_on, self.closed_reason = "closed", on, reason

    def needed_again(self, due: date) -> None:
        """Corrected back to a class that needs follow-up: a case closed by a correction opens again (one closed
        by its own actions stays closed — the follow-up happened)."""
        if self.status == "open":
            self.due = due
        elif self.closed_reason:
            self.status, self.closed_on, self.closed_reason, self.outcome, self.due = "open", None, None, None, due


#: 高危孕产妇专案管理: first specialist management due 14 days after the first orange / red / purple grade
HIGH_RISK_GRADES = ("orange", "red", "purple")
HIGH_RISK_DUE_DAYS = 14


def followup_due_days(type_: str, r: dict[str, Any]) -> int | None:
    """Days from the result's date to its follow-up's due date, or None when the result needs none — the
    programme rules (shared/spec domain.md; the cut-offs and due days of the screening programmes' technical
    specifications), written here from those documents, not read from the service's rule file."""
    if type_ == "premarital_exam":
        if "positive" in (r.get("hiv"), r.get("syphilis"), r.get("hbsag")):
            return 14     # a positive infection: medical advice and referral within two weeks
        return 30 if any(f["affects_marriage"] for f in r.get("findings", [])) else None
    if type_ == "prepregnancy_exam":
        return 30 if r.get("at_risk") else None
    if type_ == "prenatal_serum":
        def n(ratio: str) -> int:
            return int(ratio.split("/")[1])
        high = n(r["t21_risk"]) <= 270 or n(r["t18_risk"]) <= 350 or r.get("ntd_risk") == "high"
        return 14 if high else None   # counselling and prenatal diagnosis within two weeks
    if type_ == "cfdna":
        return 14 if r["result"] in ("high_risk", "no_call") else None
    if type_ in ("maternal_infection_test", "newborn_metabolic"):
        positive = r.get("result") == "positive" or "positive" in (r.get("conditions") or {}).values()
        return 7 if positive else None
    if type_ == "cervical":
        return 30 if r["result"] == "abnormal" else None
    if type_ == "breast":
        return 30 if r["birads"] in (0, 4, 5, 6) else None
    if type_ == "thalassaemia":
        return 30 if r["result"] == "carrier" else None
    return None


@dataclass
class Cert:
    region: str                  # the issuing institution's region
    kind: str
    issued_on: date | None = None      # sealed
    voided_on: date | None = None
    superseded_on: date | None = None


@dataclass
class Birth:
    """A live birth (≥ 28 weeks) at a delivering institution, for 首次签发率."""

    born: date
    region: str                  # the delivering institution's region
    child_id: str


@dataclass
class World:
    persons: list[Person] = field(default_factory=list)
    exams: list[Exam] = field(default_factory=list)
    marriages: list[Marriage] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    certs: dict[str, tuple[str, Cert]] = field(default_factory=dict)   # serial → (child_id, certificate)
    births: list[Birth] = field(default_factory=list)
    #: blank-certificate stock of the institutions, by region: (date, quantity) — allocated +, drawn −, spoiled −
    stock: list[tuple[str, date, int]] = field(default_factory=list)
    spoiled: list[tuple[str, date]] = field(default_factory=list)     # blanks voided in stock (region, date)
    #: blanks that came into the institutions' stock (申领): (region, date, quantity)
    received: list[tuple[str, date, int]] = field(default_factory=list)
    #: follow-up cases as the test derived them, by screening key (source/id) or "pregnancy:<id>"
    followups: dict[str, Case] = field(default_factory=dict)
    #: pregnancies that ended with a delivery (any gestation): pregnancy id → the delivery date
    ended: dict[str, date] = field(default_factory=dict)
    case_keys: dict[str, str] = field(default_factory=dict)           # the service's case id → key
    regions: dict[str, str] = field(default_factory=dict)             # screening key → subject's region then
    programmes: Programmes = field(default_factory=lambda: Programmes())


#: 出生缺陷 groups, from the surveillance categories (神经管缺陷, 唇腭裂, 先心病, 多指, 唐氏综合征)
DEFECT_GROUP = {"anencephaly": "ntd", "spina_bifida": "ntd", "encephalocele": "ntd", "cleft_lip": "cleft",
                "cleft_palate": "cleft", "cleft_lip_palate": "cleft", "congenital_heart_disease": "chd",
                "polydactyly": "polydactyly", "down_syndrome": "down_syndrome"}


@dataclass
class Programmes:
    """What the programme stories posted, as finally recorded (voided records dropped, corrections applied)."""

    #: 叶酸 / 营养包: (kind "folic_acid" | "nutrition_pack", who, date, bottles or packs)
    dispensed: list[tuple[str, Any, date, int]] = field(default_factory=list)
    #: 终止妊娠: (date, region, method, reason, the infections she tested positive for in that pregnancy)
    terminations: list[tuple[date, str, str, str, frozenset[str]]] = field(default_factory=list)
    #: 危重孕产妇 by pregnancy: every near-miss date, and the mother
    near_misses: dict[str, tuple[Person, list[date]]] = field(default_factory=dict)
    #: deaths: (who, date, "maternal" | "child", review preventability or None when not reviewed)
    deaths: list[tuple[Any, date, str, str | None]] = field(default_factory=list)
    #: 出生缺陷 diagnoses: (child, date, categories)
    defects: list[tuple[Child, date, list[str]]] = field(default_factory=list)
    #: 新生儿破伤风 onsets: (child, date)
    tetanus: list[tuple[Child, date]] = field(default_factory=list)
    #: 体弱儿 enrolments: (child, enrolled, closed or None, outcome)
    at_risk: list[tuple[Child, date, date | None, str]] = field(default_factory=list)
    #: 托幼体检: (who, date, role, abnormal)
    nursery: list[tuple[Any, date, str, bool]] = field(default_factory=list)


def lives(subject: Any, on: date) -> str:
    return subject.lives_on(on) if isinstance(subject, Person) else where(subject.home, subject.moves, on)


def programme_values(w: World, region: str, start: date, end: date, today: date,
                     add: Callable[..., None]) -> None:
    """The programme figures (docs/indicators-programmes.md), straight from what was posted."""
    g = w.programmes

    def inside(d: date | None) -> bool:
        return d is not None and start <= d <= end

    def here(subject: Any, on: date) -> bool:
        return lives(subject, on).startswith(region)

    births = [c for c in w.children if c.viable and inside(c.birth) and c.home.startswith(region)]
    for code in ("maternal_near_miss_ratio", "birth_defect_rate", "neonatal_tetanus_rate"):
        add(code, 0, len(births))
    # 叶酸 / 营养包: persons once per period where they lived at their latest dispensing in it; quantities summed
    for kind, persons, qty in (("folic_acid", "folic_acid_persons", "folic_acid_bottles"),
                               ("nutrition_pack", "nutrition_pack_children", "nutrition_pack_packs")):
        latest: dict[int, tuple[date, Any]] = {}
        for k, subject, on, n in g.dispensed:
            if k == kind and inside(on):
                if here(subject, on):
                    add(qty, n)
                if id(subject) not in latest or on >= latest[id(subject)][0]:
                    latest[id(subject)] = (on, subject)
        for on, subject in latest.values():
            add(persons, here(subject, on))
    for on, r, method, reason, infected in g.terminations:
        if inside(on) and r.startswith(region):
            add("syphilis_positive_terminations", "syphilis" in infected)
            add("hiv_positive_terminations", "hiv" in infected)
            add("pregnancy_terminations", 1)
            add("induced_abortions", method != "induced_labour")
            add("mid_term_inductions", method == "induced_labour")
            add("terminations_for_birth_defect", reason == "birth_defect")
    for mother, days in g.near_misses.values():
        first = min(days)
        if inside(first) and here(mother, first):
            add("maternal_near_miss_cases", 1)
            add("maternal_near_miss_ratio", 1)
    for subject, died, kind, review in g.deaths:
        if not (inside(died) and here(subject, died)):
            continue
        prefix = "maternal" if kind == "maternal" else "under5"
        add(f"{prefix}_deaths", 1)
        add(f"{prefix}_death_review_rate", review is not None, 1)
        if review is not None:
            add(f"{prefix}_death_avoidable_share", review in ("avoidable", "conditionally_avoidable"), 1)
    # 出生缺陷: a live birth (≥ 28 weeks) with a defect diagnosed on days 0–6, once per child and per group, on
    # the birth date, where it lived then
    children = {id(c): c for c, _, _ in g.defects}
    for cid, c in children.items():
        cats = {x for cc, on, cs in g.defects if id(cc) == cid and 0 <= (on - c.birth).days < 7 for x in cs}
        if not cats or not c.viable or not inside(c.birth) or not c.home.startswith(region):
            continue
        add("birth_defects", 1)
        add("birth_defect_rate", 1)
        for grp in {DEFECT_GROUP.get(x, x) for x in cats}:
            if f"birth_defects_{grp}" in PROGRAMME_CODES:
                add(f"birth_defects_{grp}", 1)
    onsets: dict[int, tuple[Child, date]] = {}
    for c, on in g.tetanus:
        if id(c) not in onsets or on < onsets[id(c)][1]:
            onsets[id(c)] = (c, on)
    for c, on in onsets.values():
        if inside(on) and here(c, on):
            add("neonatal_tetanus_cases", 1)
            add("neonatal_tetanus_rate", 1)
    # 体弱儿: enrolments (flow); closings (flow, region of enrolment); open at the period end — neither closed
    # nor the child dead by then (standing, counted for periods that have started by today)
    for c, enrolled, closed, outcome in g.at_risk:
        r = lives(c, enrolled)
        if not r.startswith(region):
            continue
        add("at_risk_children_enrolled", inside(enrolled))
        if inside(closed):
            add("at_risk_recovery_rate", outcome == "recovered", 1)
        died = [on for subject, on, _, _ in g.deaths if subject is c]   # a death ends the management too
        ended = min([x for x in (closed, *died) if x is not None], default=None)
        if start <= today:
            add("at_risk_children_managed", enrolled <= end and not (ended is not None and ended <= end))
    # 托幼: persons once per period and role, by their latest check, where they lived then
    last: dict[tuple[int, str], tuple[date, Any, bool]] = {}
    for subject, on, role, abnormal in g.nursery:
        if inside(on) and ((id(subject), role) not in last or on >= last[(id(subject), role)][0]):
            last[(id(subject), role)] = (on, subject, abnormal)
    for (_, role), (on, subject, abnormal) in last.items():
        if here(subject, on):
            add(f"nursery_{'children' if role == 'child' else 'staff'}_checked", 1)
            if role == "staff":
                add("nursery_staff_abnormal_rate", abnormal, 1)


def values(w: World, region: str, start: date, end: date, today: date) -> dict[str, tuple[int, int | None]]:
    """(numerator, denominator) of each covered indicator for `region` in [start, end]."""

    def inside(d: date | None) -> bool:
        return d is not None and start <= d <= end

    out: dict[str, list[int]] = {c: [0, 0] for c in CODES}

    def add(code: str, n: bool | int, d: bool | int = 0) -> None:
        out[code][0] += int(n)
        out[code][1] += int(d)

    # --- growth: children < 5, by their latest check in the period that weighed them, where they lived then
    for c in w.children:
        if not c.viable:
            continue
        weighed = [k for k in c.checks if k.weight_kg and inside(k.on) and k.on < add_years(c.birth, 5)]
        if not weighed:
            continue
        latest = max(weighed, key=lambda k: k.on)
        if not where(c.home, c.moves, latest.on).startswith(region):
            continue
        z = who.zscores(c.sex, (latest.on - c.birth).days, latest.weight_kg, latest.height_cm)
        waz, haz, whz = (who.rounded(x) for x in (z.weight_for_age, z.height_for_age, z.weight_for_height))
        for code, zv, low in (("under5_underweight_rate", waz, True), ("under5_stunting_rate", haz, True),
                              ("under5_wasting_rate", whz, True), ("under5_overweight_rate", whz, False)):
            if zv is not None:
                add(code, zv < -2 if low else zv > 2, 1)

    # --- high-risk women delivered, and those managed
    for dl in w.delivered:
        if inside(dl.delivered) and dl.region.startswith(region) and dl.high_risk:
            add("high_risk_management_rate", dl.managed, 1)

    # --- marriages: both spouses, on the registration date, in the registration's region
    for m in w.marriages:
        if inside(m.registered_on) and m.region.startswith(region):
            add("marriage_registrations_persons", 2)
            add("premarital_exam_rate", 0, 2)

    # --- persons examined (exam records), where the person lived on the exam date
    for e in w.exams:
        e = replace(e, person=e.person.who())
        if not (inside(e.on) and e.person.lives_on(e.on).startswith(region)):
            continue
        if e.type == "premarital_exam":
            add("premarital_exam_persons", 1)
            add("premarital_exam_rate", 1)
            add("premarital_disease_rate", e.affects, 1)
            add("premarital_hiv_test_rate", e.hiv_tested, 1)
        elif e.type == "prepregnancy_exam":
            add("prepregnancy_risk_rate", e.at_risk, 1)
        elif e.type in ("cervical", "breast"):
            # women 35–64 on the screening date: 35th birthday to the day before the 65th
            if add_years(e.person.birth, 35) <= e.on < add_years(e.person.birth, 65):
                add(f"{e.type}_screening_count", 1)
                add(f"{e.type}_abnormal_rate", e.abnormal, 1)

    # --- couples (decision 35): each pair once; 婚检 needs both examined and counts at the second exam,
    # pre-pregnancy and thalassaemia count at the first screen, a screen naming no partner is a couple alone
    for kind, code in (("premarital_exam", "premarital_exam_couples"), ("prepregnancy_exam", "prepregnancy_exam_count"),
                       ("thalassaemia", "thalassaemia_screening_count")):
        exams = [e for e in w.exams if e.type == kind]
        pairs: dict[frozenset[str], list[Exam]] = {}
        for e in exams:
            if e.partner_id:
                pairs.setdefault(frozenset((e.person.person_id, e.partner_id)), [])
        for e in exams:
            if not e.partner_id:
                if kind != "premarital_exam":   # a couple on its own (its partner was not recorded)
                    if inside(e.on) and e.person.lives_on(e.on).startswith(region):
                        add(code, 1)
                    continue
                # a 婚检 naming nobody examines the partner of whoever names this person
                for pair in pairs:
                    if e.person.person_id in pair:
                        pairs[pair].append(e)
            else:
                pairs[frozenset((e.person.person_id, e.partner_id))].append(e)
        for pair, pe in pairs.items():
            examined = {e.person.person_id for e in pe}
            if kind == "premarital_exam":
                if examined != set(pair):
                    continue
                first_each = [min(e.on for e in pe if e.person.person_id == p) for p in pair]
                on = max(first_each)
            else:
                on = min(e.on for e in pe)
            person = next(e.person for e in pe)   # couples in these stories live together
            if inside(on) and person.lives_on(on).startswith(region):
                add(code, 1)

    # --- follow-up cases: due in the period, where they were opened; completed when closed with an outcome
    # other than "lost" on or before the due date; closed with a reason (result corrected / voided): never due
    for k in w.cases:
        if k.closed_reason or not (inside(k.due) and k.region.startswith(region)):
            continue
        done = (k.status == "closed" and k.closed_on is not None and k.closed_on <= k.due and bool(k.outcome)
                and k.outcome != "lost")
        add("followup_completion_rate", done, 1)

    # --- certificates, at the issuing institution's region, on the action date
    for _, c in w.certs.values():
        if not c.region.startswith(region):
            continue
        if c.issued_on and not c.voided_on and inside(c.issued_on):
            add("certs_issued", 1)
            add(KIND_CODE[c.kind], 1)
            add("cert_void_rate", 0, 1)
        if c.voided_on and inside(c.voided_on):      # 废证: a certificate voided (prepared or issued)
            add("certs_voided", 1)
            add("cert_void_rate", 1, 1)
        if c.superseded_on and inside(c.superseded_on):
            add("certs_superseded", 1)
    for r, on in w.spoiled:
        if r.startswith(region) and inside(on):
            add("certs_voided", 1)
            add("cert_void_rate", 1, 1)
    for r, on, q in w.received:
        if r.startswith(region) and inside(on):
            add("cert_stock_received", q)
    # 期末库存: every movement up to the period end, for periods that have started by today
    if start <= today:
        add("cert_stock_closing", sum(q for r, on, q in w.stock if r.startswith(region) and on <= end))
    # 首次签发率: live births of the institution with a first certificate issued (first or out of institution)
    for b in w.births:
        if inside(b.born) and b.region.startswith(region):
            first = any(cid == b.child_id and c.kind in ("first", "first_out_of_institution") and c.issued_on
                        and not c.voided_on for cid, c in w.certs.values())
            add("cert_first_issue_rate", first, 1)

    programme_values(w, region, start, end, today, add)
    return {code: (n, None) if code in COUNTS else (n, d) for code, (n, d) in out.items()}
