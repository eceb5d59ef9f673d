"""The demo county's year as a plan of HIS posts: bookings (建册), antenatal visits with risk grades, deliveries,
postpartum / newborn / child checks, deaths, marriages and premarital exams, every screening with follow-up
actions, and birth certificates (stock, custodians, issues). Deterministic for a seed: the same seed, county
and year give the same plan, ids included."""
from __future__ import annotations

import itertools
import math
import random
from datetime import date, timedelta
from typing import Any

from stdnum.cn import ric

from demo import programmes
from demo.county import County, Institution
from demo.plan import Person, Plan

SOURCE = "demo-his"
#: birthplace digits of ID numbers: city codes valid on every birth date (the demo county's code is fictional)
BIRTHPLACES = ("320100", "320200", "320400", "320500", "320600")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "婷静敏丽娟艳芳娜秀英华慧巧美雅琳欣怡佳悦晨雨涵子轩浩宇博文俊杰明伟强军磊洋勇涛斌超"

#: median weight (kg) and length/height (cm) by age in months (WHO 2006, sexes averaged): realistic measures
GROWTH = ((0, 3.3, 49.5), (1, 4.4, 54.2), (3, 6.2, 60.5), (6, 7.7, 66.5), (8, 8.4, 69.8), (12, 9.3, 74.8),
          (18, 10.6, 81.3), (24, 11.8, 86.4), (36, 13.9, 95.6), (48, 15.9, 102.8), (60, 18.0, 109.7),
          (72, 20.3, 115.6), (84, 22.6, 121.3))
CHECK_MONTHS = (1, 3, 6, 8, 12, 18, 24, 30, 36)  # 4:2:2 (the 1-month check after the newborn visit)


def growth_median(months: float) -> tuple[float, float]:
    for (m0, w0, h0), (m1, w1, h1) in itertools.pairwise(GROWTH):
        if months <= m1:
            f = (months - m0) / (m1 - m0)
            return w0 + f * (w1 - w0), h0 + f * (h1 - h0)
    return GROWTH[-1][1], GROWTH[-1][2]


def at(d: date, rng: random.Random) -> str:
    return f"{d.isoformat()}T{rng.randint(8, 17):02d}:{rng.choice((0, 15, 30, 45)):02d}:00+08:00"


class Generator:
    def __init__(self, county: County, seed: int, year: int, today: date, prefix: str = "") -> None:
        self.county = county
        self.rates = county.rates
        self.rng = random.Random(f"{seed}:{county.code}:{year}:{prefix}")
        #: the draws of births, PMTCT, 户籍 and populations (issue 21): their own stream, so the other figures of a
        #: seed stay as they were
        self.xrng = random.Random(f"births:{seed}:{county.code}:{year}:{prefix}")
        #: infections a year's plan shows at least once among its deliveries (rare at real rates: 梅毒 0.4 %, HIV
        #: 0.02 % — a small county's year could miss them, and a bureau's PMTCT panels would stay empty)
        self.force_positive: list[str] = []
        #: its own stream, so planting bad records changes nothing else of the plan
        self.quality_rng = random.Random(f"quality:{seed}:{county.code}:{year}:{prefix}")
        self.year = year
        self.today = today
        self.prefix = prefix or f"D{county.code}Y{year}"
        self.plan = Plan.empty()
        self.seq = 0
        self.id_numbers: set[str] = set()
        self.serial_no = 0

    # ------------------------------------------------------------------ helpers
    def new_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.prefix}-{kind}{self.seq:06d}"

    def chance(self, rate_name: str) -> bool:
        return self.rng.random() < float(self.rates[rate_name])

    def name(self, female: bool = True) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choice(GIVEN[: 22] if female else GIVEN[18:])
                                                    for _ in range(self.rng.choice((1, 2))))

    def residence(self) -> str:
        towns = self.county.townships
        t = self.rng.choices(towns, weights=[x.weight for x in towns])[0]
        return self.county.village(t.number, self.rng.randint(1, t.villages))

    def id_number(self, birth: date, female: bool) -> str:
        """A valid 18-digit resident ID number (GB 11643): a real birthplace county, sex digit, check digit."""
        for _ in range(1000):
            seq = self.rng.randint(0, 499) * 2 + (0 if female else 1)
            body = f"{self.rng.choice(BIRTHPLACES)}{birth:%Y%m%d}{seq:03d}"
            num = body + ric.calc_check_digit(body + "0")
            try:  # the birthplace county must have existed on the birth date
                ric.validate(num)
            except ValueError:
                continue
            if num not in self.id_numbers:
                self.id_numbers.add(num)
                return num
        raise RuntimeError(f"no free ID number for {birth}")

    def person(self, birth: date, female: bool, residence: str, with_id: bool = True) -> dict[str, Any]:
        p: dict[str, Any] = {"name": self.name(female), "sex": "F" if female else "M",
                             "birth_date": birth.isoformat(), "residence_code": residence}
        if with_id:
            p["id_number"] = self.id_number(birth, female)
            p["phone"] = f"1{self.rng.choice('3589')}{self.rng.randint(0, 999999999):09d}"
        return p

    def adult_birth(self, on: date, lo: int, hi: int, mean: float) -> date:
        age = min(hi, max(lo, self.rng.gauss(mean, 4.5)))
        return on - timedelta(days=int(age * 365.25) + self.rng.randint(0, 300))

    def encounter(self, step: str, etype: str, on: date, inst: Institution, subject: str,
                  **fields: Any) -> str:
        eid = self.new_id("E")
        self.plan[step].add("/v1/encounters", {
            "encounter_id": eid, "source": SOURCE, "type": etype, "occurred_at": at(on, self.rng),
            "institution_code": inst.code, "subject_id": subject, **fields})
        return eid

    def screening(self, stype: str, subject: str, on: date, inst: Institution, followup: bool = False,
                  treat: bool = False, **fields: Any) -> str:
        sid = self.new_id("S")
        body = {"screening_id": sid, "source": SOURCE, "type": stype, "subject_id": subject,
                "performed_on": on.isoformat(), "institution_code": inst.code, **fields}
        if followup:  # posted alone so that the follow-up case it opens can be acted upon
            self.plan["screenings_with_followup"].add("/v1/screenings", body, f"@case:{sid}", "case")
            self.followup(sid, on, treat)
        else:
            self.plan["screenings"].add("/v1/screenings", body)
        return sid

    def xchance(self, rate_name: str) -> bool:
        return self.xrng.random() < float(self.rates[rate_name])

    def exam_result(self, infection: str) -> str:
        """孕前优生 infection result (梅毒 / HIV / 乙肝)."""
        return "positive" if self.xchance(f"prepregnancy_{infection}") else "negative"

    def hukou(self, residence: str) -> str:
        """户籍地 of a mother living in `residence`: mostly the county itself, some migrants (流动人口)."""
        u = self.xrng.random()
        return residence[:6] if u < self.rates["hukou_local"] else \
            residence[:4] + "99" if u < self.rates["hukou_local"] + self.rates["hukou_province"] else "650102"

    def followup(self, sid: str, opened: date, treat: bool = False) -> None:
        """Follow-up actions on the case a positive / high-risk screen opened (随访): contact, diagnosis (or, for an
        infected pregnant woman, treatment: 用药 / 规范治疗), closure."""
        path = f"/v1/followups/@case:{sid}/actions"
        when = opened + timedelta(days=self.rng.randint(1, 3))
        if when > self.today or not self.chance("followup_contacted"):
            return
        self.plan["followup_actions"].add(path, {"action": "contacted", "on": when.isoformat()}, group=sid)
        when += timedelta(days=self.rng.randint(1, 5))
        if when > self.today:
            return
        treated = treat and self.xchance("pmtct_treated")
        self.plan["followup_actions"].add(path, {"action": "treated" if treated else "diagnosed",
                                                 "on": when.isoformat()}, group=sid)
        when += timedelta(days=self.rng.choice((1, 2, 3, 4, 5, 6, 20)))
        if when <= self.today and self.chance("followup_closed"):
            self.plan["followup_actions"].add(path, {"action": "closed", "on": when.isoformat(),
                                                     "outcome": self.rng.choice(("treated", "normal", "referred"))},
                                              group=sid)

    # ------------------------------------------------------------------ the register
    def institutions(self) -> None:
        for inst in self.county.institutions:
            self.plan["institutions"].add(f"/v1/institutions/{inst.code}", inst.body())

    # ------------------------------------------------------------------ one pregnancy, booking to child checks
    def pregnancy(self, delivered: date) -> dict[str, Any] | None:
        r, rng = self.rates, self.rng
        if rng.random() < r["preterm"]:
            gest = rng.randint(196, 223) if rng.random() < r["very_preterm"] / r["preterm"] else rng.randint(224, 258)
        else:
            gest = rng.randint(259, 294)
        lmp = delivered - timedelta(days=gest)
        booking_days = rng.randint(42, 90) if self.chance("early_booking") else rng.randint(92, min(196, gest - 14))
        booked = lmp + timedelta(days=booking_days)
        if booked > self.today:
            return None
        residence = self.residence()
        town = int(residence[6:9])
        centre = self.county.health_centre(town)
        hospitals = self.county.hospitals
        hospital = rng.choices(hospitals, weights=[h.delivery_share for h in hospitals])[0]
        pid = self.new_id("P")
        mref = f"@m:{pid}"
        mother = self.person(self.adult_birth(delivered, 19, 44, 29.5), True, residence)
        mother["hukou_code"] = self.hukou(residence)
        self.plan["pregnancies"].add("/v1/pregnancies", {
            "pregnancy_id": pid, "source": SOURCE, "mother": mother, "lmp_date": lmp.isoformat(),
            "registered_on": booked.isoformat(), "institution_code": centre.code}, mref, "mother")
        case: dict[str, Any] = {"pregnancy_id": pid, "residence": residence, "lmp": lmp, "booked": booked,
                                "delivered": delivered if delivered <= self.today else None,
                                "institution": hospital.code, "babies": []}
        # antenatal checks (产前检查): the first at booking; the highest risk grade shows at a later visit
        n_visits = rng.randint(5, 11) if self.chance("antenatal_5plus") else rng.randint(1, 4)
        grades = list(r["risk_grades"])
        top = rng.choices(grades, weights=list(r["risk_grades"].values()))[0]
        case["risk"] = top
        last = min(delivered, self.today + timedelta(days=1)) - timedelta(days=1)
        span = max(1, (last - booked).days)
        days = sorted({0, *(rng.randint(1, span) for _ in range(n_visits - 1))})
        top_at = rng.choice(days)
        for d in days:
            on = booked + timedelta(days=d)
            if on > self.today or on >= delivered:
                continue
            grade = top if d >= top_at else grades[min(grades.index(top), rng.choice((0, 0, 1)))]
            self.encounter("antenatal", "prenatal_visit", on, centre if d == 0 or rng.random() < .6 else hospital,
                           pid, gestational_weeks=(on - lmp).days // 7, risk_grade=grade)
        case["antenatal_checks"] = sum(1 for d in days if booked + timedelta(days=d) < min(delivered, self.today))
        # folic acid (增补叶酸): dispensed from before conception to 12 weeks
        if self.chance("folic_acid"):
            on = min(booked, lmp + timedelta(days=rng.randint(-60, 84)))
            self.encounter("antenatal", "folic_acid_dispensed", on, centre, mref, person_id=mref,
                           quantity=rng.choice((31, 62, 93)))
        self.pregnancy_screenings(pid, lmp, booked, delivered, centre, hospital, case)
        if delivered > self.today:
            return case
        self.delivery(pid, mref, delivered, hospital, centre, gest, case)
        return case

    def pregnancy_screenings(self, pid: str, lmp: date, booked: date, delivered: date, centre: Institution,
                             hospital: Institution, case: dict[str, Any]) -> None:
        rng = self.rng
        serum_on = lmp + timedelta(days=rng.randint(105, 139))
        if serum_on < delivered and serum_on >= booked and serum_on <= self.today and self.chance("prenatal_serum"):
            high = self.chance("prenatal_serum_high_risk")
            t21 = f"1/{rng.randint(50, 269)}" if high else f"1/{rng.randint(1000, 50000)}"
            self.screening("prenatal_serum", pid, serum_on, hospital, followup=high, t21_risk=t21,
                           t18_risk=f"1/{rng.randint(1000, 90000)}", ntd_risk="low")
        cf_on = lmp + timedelta(days=rng.randint(84, 160))
        if booked <= cf_on < delivered and cf_on <= self.today and self.chance("cfdna"):
            high = self.chance("cfdna_high_risk")
            self.screening("cfdna", pid, cf_on, hospital, followup=high, result="high_risk" if high else "low_risk")
        case["hbsag_positive"] = case["hiv_positive"] = case["syphilis_positive"] = False
        case["labour_tests"] = True
        if booked <= self.today and self.chance("infection_tested"):
            case["labour_tests"] = False
            eligible = delivered.year == self.year and delivered <= self.today
            forced = self.force_positive.pop(0) if eligible and self.force_positive else None
            for infection in ("hiv", "syphilis", "hbsag"):
                pos = self.chance(f"{infection}_positive") or infection == forced
                case[f"{infection}_positive"] |= pos
                self.screening("maternal_infection_test", pid, booked, centre, followup=pos, infection=infection,
                               timing="pregnancy", result="positive" if pos else "negative",
                               treat=infection != "hbsag")
        if booked <= self.today and self.rng.random() < self.rates["thalassaemia_share_of_pregnancies"]:
            self.screening("thalassaemia", f"@m:{pid}", booked, centre,
                           result="carrier" if self.chance("thalassaemia_carrier") else "non_carrier")

    def delivery(self, pid: str, mref: str, delivered: date, hospital: Institution, centre: Institution,
                 gest: int, case: dict[str, Any]) -> None:
        rng, r = self.rng, self.rates
        place = "hospital" if self.chance("facility_delivery") else rng.choice(("home", "en_route"))
        u = rng.random()
        mode = "caesarean" if u < r["caesarean"] else "assisted" if u < r["caesarean"] + r["assisted"] else "vaginal"
        if place != "hospital":
            mode = "vaginal"
        n = 2 if self.chance("twins") else 1
        babies = []
        for _ in range(n):
            mean = 3350 if gest >= 259 else 1500 + (gest - 196) * 25
            weight = int(min(5200, max(600, rng.gauss(mean - (350 if n == 2 else 0), 430))))
            outcome = "stillbirth" if self.chance("stillbirth") else "live"
            babies.append({"sex": rng.choice("FM"), "birth_weight_g": weight if self.chance("weighed") else None,
                           "outcome": outcome})
            if self.xchance("birth_order_reported"):  # 孩次
                babies[-1]["birth_order"] = self.xrng.choices((1, 2, 3), weights=(52, 40, 8))[0]
        self.plant_bad_weight(babies, gest)
        case.update(place=place, mode=mode, babies=babies, gestation_days=gest)
        self.plan["deliveries"].add("/v1/encounters", {
            "encounter_id": self.new_id("E"), "source": SOURCE, "type": "delivery",
            "occurred_at": at(delivered, rng), "institution_code": hospital.code, "subject_id": pid,
            "place": place, "mode": mode, "babies": babies}, f"@c:{pid}", "children")
        # postpartum (产后访视 within 28 days, 42-day check)
        if self.chance("postpartum_visit"):
            for lo, hi in ((3, 7), (14, 28))[: rng.choice((1, 2, 2))]:
                on = delivered + timedelta(days=rng.randint(lo, hi))
                if on <= self.today:
                    self.encounter("after_birth", "postpartum_visit", on, centre, pid)
        on = delivered + timedelta(days=rng.randint(42, 50))
        if on <= self.today and self.chance("postpartum_42d"):
            self.encounter("after_birth", "postpartum_42d_check", on, hospital, pid)
        if rng.random() < r["maternal_death"]:
            died = delivered + timedelta(days=rng.randint(1, 30))
            if died <= self.today:
                self.encounter("deaths", "death", died, hospital, mref, person_id=mref, died_on=died.isoformat(),
                               cause="postpartum_haemorrhage", **programmes.review(self, died, "maternal"))
                case["maternal_death"] = died
        if case.get("labour_tests"):  # not tested in pregnancy: tested at labour (仅产时检测), mostly
            for infection in ("hiv", "syphilis", "hbsag"):
                if self.xchance("labour_tested"):
                    pos = self.xchance(f"{infection}_positive")
                    case[f"{infection}_positive"] |= pos
                    self.screening("maternal_infection_test", pid, delivered, hospital, followup=pos,
                                   infection=infection, timing="labour", result="positive" if pos else "negative",
                                   treat=infection != "hbsag")
        programmes.near_miss(self, pid, delivered, delivered - timedelta(days=gest), hospital)
        live = [b for b in babies if b["outcome"] == "live"]
        child_name_base = self.name(True)[0]
        for i, b in enumerate(live):
            self.child(f"@c:{pid}:{i}", delivered, centre, hospital, b, place == "hospital", case,
                       child_name_base + self.name(b["sex"] == "F")[1:])

    def plant_bad_weight(self, babies: list[dict[str, Any]], gest: int) -> None:
        """质控演示: a share (rates.bad_birth_weight, ~2 %) of deliveries carries a birth weight no baby of that
        gestation has (a typing slip: 4200 g at a preterm week, 800 g at term), so every hospital gets
        quality queries to answer or correct."""
        if self.quality_rng.random() >= self.rates.get("bad_birth_weight", 0.0):
            return
        weighed = [b for b in babies if b["birth_weight_g"]]
        if weighed:
            weighed[0]["birth_weight_g"] = 4200 if gest < 245 else 800

    def child(self, cref: str, born: date, centre: Institution, hospital: Institution, baby: dict[str, Any],
              in_hospital: bool, case: dict[str, Any], name: str) -> None:
        rng = self.rng
        death: date | None = None
        if self.chance("neonatal_death"):
            death = born + timedelta(days=rng.randint(0, 27))
        elif self.chance("infant_death_after_28d"):
            death = born + timedelta(days=rng.randint(28, 364))
        if death and death <= self.today:
            self.encounter("deaths", "death", death, hospital, cref, person_id=cref, died_on=death.isoformat(),
                           cause=rng.choice(("prematurity", "birth_asphyxia", "pneumonia", "congenital_anomaly")),
                           **programmes.review(self, death, "child"))
            case.setdefault("child_deaths", []).append(death)
        alive_until = death or date.max
        programmes.newborn(self, cref, born, alive_until, hospital, centre)
        if born + timedelta(days=3) <= min(self.today, alive_until) and self.chance("metabolic_screened"):
            pos = self.chance("metabolic_positive")
            self.screening("newborn_metabolic", cref, born + timedelta(days=3), hospital, followup=pos,
                           conditions={"pku": "negative", "ch": "positive" if pos else "negative"})
        if born + timedelta(days=2) <= min(self.today, alive_until) and self.chance("hearing_screened"):
            refer = self.chance("hearing_refer")
            self.screening("newborn_hearing", cref, born + timedelta(days=2), hospital, round="initial",
                           result="refer" if refer else "pass")
            re_on = born + timedelta(days=42)
            if refer and re_on <= min(self.today, alive_until):
                self.screening("newborn_hearing", cref, re_on, hospital, round="rescreen", result="pass")
        if case.get("hbsag_positive"):
            hours = rng.randint(1, 12) if self.chance("hbig_within_24h") else rng.randint(30, 40)
            hbig_on = born + timedelta(days=hours // 24)
            if hbig_on <= min(self.today, alive_until):
                self.screening("hbig", cref, hbig_on, hospital, hours_after_birth=hours)
        self.exposed_child(cref, born, hospital, case, alive_until)
        nv = born + timedelta(days=rng.randint(3, 10))
        bw = (baby["birth_weight_g"] or 3300) / 1000
        if nv <= min(self.today, alive_until) and self.chance("newborn_visit"):
            self.encounter("after_birth", "newborn_visit", nv, centre, cref, weight_kg=round(bw * 1.02, 2),
                           feeding="exclusive_breastfeeding" if self.chance("exclusive_breastfeeding") else "mixed")
        z_w, z_h = rng.gauss(0, 1), rng.gauss(0, 1)  # a child stays on its own growth curve
        for months in CHECK_MONTHS:
            on = born + timedelta(days=int(months * 30.44) + rng.randint(-5, 10))
            if on > min(self.today, alive_until):
                break
            if self.chance("child_checks"):
                self.child_check(cref, on, months, centre, z_w, z_h)
        if in_hospital and self.chance("certificate_first_issue"):
            self.certificate(cref, born, hospital, name, "first")
        elif not in_hospital:
            self.certificate(cref, born, hospital, name, "first_out_of_institution")
        pack_on = born + timedelta(days=183)
        if pack_on <= min(self.today, alive_until) and rng.random() < self.rates["nutrition_pack_children"]:
            self.screening("nutrition_pack", cref, pack_on, centre, packs=30)

    def exposed_child(self, cref: str, born: date, hospital: Institution, case: dict[str, Any],
                      alive_until: date) -> None:
        """首剂乙肝疫苗 for every newborn; HIV- and syphilis-exposed infants tested and given prophylaxis."""
        x = self.xrng
        hours = x.uniform(0.5, 20) if self.xchance("hepb_dose1_within_24h") else x.uniform(25, 60)
        on = born + timedelta(days=int(hours // 24))
        if on <= min(self.today, alive_until):
            self.screening("hepb_vaccine", cref, on, hospital, dose=1, hours_after_birth=round(hours, 1))
        for infection in ("hiv", "syphilis"):
            on = born + timedelta(days=x.randint(0, 3))
            if case.get(f"{infection}_positive") and on <= min(self.today, alive_until):
                self.screening("exposed_infant", cref, on, hospital, infection=infection,
                               test_result="negative" if self.xchance("exposed_infant_tested") else "not_done",
                               prophylaxis=self.xchance("exposed_infant_prophylaxis"))

    def child_check(self, cref: str, on: date, months: float, centre: Institution, z_w: float, z_h: float,
                    step: str = "after_birth") -> None:
        rng = self.rng
        mw, mh = growth_median(months)
        # height on the child's own curve; weight follows height (weight-for-length SD ~8%), so wasting and
        # overweight stay at their usual few per cent
        height = round(mh * (1 + 0.037 * (0.9 * z_h + 0.4 * rng.gauss(0, 1))), 1)
        weight = round(mw * (height / mh) ** 2.4 * (1 + 0.075 * (0.7 * z_w + 0.7 * rng.gauss(0, 1))), 2)
        fields: dict[str, Any] = {"weight_kg": weight, "height_cm": height}
        if months < 6:
            fields["feeding"] = "exclusive_breastfeeding" if self.chance("exclusive_breastfeeding") else rng.choice(
                ("mixed", "mixed", "formula"))
        else:
            fields["feeding"] = "solids"
        if months >= 6 and months in (6, 12, 18, 24, 36, 48, 60, 72):
            fields["haemoglobin_g_l"] = int(rng.gauss(121, 8.5))
        self.encounter(step, "child_health_check", on, centre, cref, **fields)

    # ------------------------------------------------------------------ children born before the year
    def prior_cohorts(self, births: int) -> None:
        """Children born in the years before (under-7 population): persons and this year's checks."""
        rng = self.rng
        start = date(self.year, 1, 1)
        for back in range(1, int(self.rates["prior_child_cohorts"]) + 1):
            for _ in range(births):
                born = date(self.year - back, 1, 1) + timedelta(days=rng.randint(0, 364))
                residence = self.residence()
                key = self.new_id("K")
                cref = f"@p:{key}"
                self.plan["persons"].add("/v1/persons", self.person(born, rng.random() < .48, residence, False),
                                         cref, "person")
                if not self.chance("prior_cohort_checked"):
                    continue
                centre = self.county.health_centre(int(residence[6:9]))
                programmes.prior_child(self, cref, born, centre)
                z_w, z_h = rng.gauss(0, 1), rng.gauss(0, 1)
                for months in (*CHECK_MONTHS, 48, 60, 72, 84):
                    on = born + timedelta(days=int(months * 30.44) + rng.randint(-5, 10))
                    if start <= on <= self.today and on.year == self.year:
                        self.child_check(cref, on, months, centre, z_w, z_h, "cohort_checks")

    # ------------------------------------------------------------------ marriages, exams, women's screenings
    def marriages(self, couples: int) -> None:
        rng = self.rng
        for _ in range(couples):
            on = date(self.year, 1, 1) + timedelta(days=rng.randint(0, 364))
            if on > self.today:
                continue
            residence = self.residence()
            centre = self.county.health_centre(int(residence[6:9]))
            rid = self.new_id("M")
            wife, husband = f"@p:{rid}W", f"@p:{rid}H"
            self.plan["persons"].add("/v1/persons", self.person(self.adult_birth(on, 20, 40, 27), True, residence),
                                     wife, "person")
            self.plan["persons"].add("/v1/persons", self.person(self.adult_birth(on, 22, 42, 29), False, residence),
                                     husband, "person")
            self.plan["marriages"].add("/v1/marriage-registrations", {
                "registration_id": rid, "source": "demo-civil-affairs", "registered_on": on.isoformat(),
                "region_code": residence, "persons": [{"person_id": wife}, {"person_id": husband}]})
            if self.chance("premarital_exam"):  # 婚前医学检查: both partners, a few days before registering
                exam_on = on - timedelta(days=rng.randint(0, 20))
                for me, partner in ((wife, husband), (husband, wife)):
                    finding = self.chance("premarital_finding")
                    syph = self.chance("premarital_syphilis")
                    self.screening(
                        "premarital_exam", me, exam_on, centre, followup=syph, partner_id=partner,
                        findings=[{"code": rng.choice(("anaemia", "hepatitis_b_carrier", "thyroid_disease",
                                                       "reproductive_tract_infection")), "affects_marriage": True}]
                        if finding else [],
                        hiv="not_done" if self.chance("premarital_hiv_not_done") else "negative",
                        syphilis="positive" if syph else "negative",
                        hbsag="positive" if self.chance("premarital_hbsag") else "negative")
            if rng.random() < self.rates["prepregnancy_exam_couples_per_birth"] / self.rates["marriages_per_birth"]:
                pre_on = on + timedelta(days=rng.randint(10, 120))
                if pre_on <= self.today:
                    at_risk = self.chance("prepregnancy_at_risk")
                    self.screening("prepregnancy_exam", wife, pre_on, centre, partner_id=husband, at_risk=at_risk,
                                   risk_factors=["rubella_non_immune"] if at_risk else [],
                                   hiv=self.exam_result("hiv"), syphilis=self.exam_result("syphilis"),
                                   hbsag=self.exam_result("hbsag"))

    def womens_screenings(self, women: int) -> None:
        """两癌筛查: cervical and breast cancer screening of women 35–64."""
        rng = self.rng
        for _ in range(women):
            on = date(self.year, 1, 1) + timedelta(days=rng.randint(0, 364))
            if on > self.today:
                continue
            residence = self.residence()
            centre = self.county.health_centre(int(residence[6:9]))
            ref = f"@p:{self.new_id('W')}"
            self.plan["persons"].add("/v1/persons", self.person(self.adult_birth(on, 35, 64, 48), True, residence),
                                     ref, "person")
            ab = self.chance("cervical_abnormal")
            self.screening("cervical", ref, on, centre, followup=ab, method=rng.choice(("hpv", "hpv", "cytology")),
                           result="abnormal" if ab else "normal")
            if rng.random() < self.rates["breast_per_birth"] / self.rates["cervical_per_birth"]:
                ab = self.chance("breast_abnormal")
                self.screening("breast", ref, on, centre, followup=ab, method="ultrasound",
                               birads=rng.choice((4, 5)) if ab else rng.choice((1, 1, 2, 3)))

    # ------------------------------------------------------------------ birth certificates (出生医学证明)
    def office_people(self, h: Institution) -> tuple[str, str, str]:
        """The hospital's certificate office: its certificate custodian, seal custodian (证章分离) and office head,
        person accounts `demo-<code>-cert|seal|head` acting for the county; returns their account ids."""
        ids = []
        for role, post, zh in (("certificate_custodian", "cert", "证件管理员"),
                               ("seal_custodian", "seal", "印章管理员"), ("office_head", "head", "办公室负责人")):
            aid = f"demo-{h.code}-{post}"
            self.plan.people[aid] = Person(f"{h.name}{zh}", (role,), self.county.code, h.code,
                                           f"{h.code}-{post.upper()}")
            ids.append(aid)
        return ids[0], ids[1], ids[2]

    def custodians(self, h: Institution) -> None:
        """The office head assigns the hospital's custodians (专人管理); the same again is a no-op (200)."""
        keeper, sealer, head = self.office_people(h)
        for role, account in (("certificate", keeper), ("seal", sealer)):
            self.plan["cert_custodians"].add("/v1/custodians", {
                "institution_code": h.code, "account_id": account, "role": role}, actor=head)

    def certificate_stock(self, births: int) -> None:
        per_hospital = max(50, int(births * 0.6))
        received = date(self.year, 1, 3)
        serial = 1
        # the county's batch is received by the first office head; each head allocates its hospital's range
        receiver = self.office_people(self.county.hospitals[0])[2]
        self.plan["cert_stock"].add("/v1/stock/batches", {
            "batch_no": f"{self.prefix}-B1", "serial_from": self.serial(serial),
            "serial_to": self.serial(serial + per_hospital * len(self.county.hospitals) - 1),
            "received_on": received.isoformat()}, group="stock", actor=receiver)
        # 双人验收: the first hospital's certificate custodian confirms the batch; only then is it stock
        self.plan["cert_stock"].add(f"/v1/stock/batches/{self.prefix}-B1/confirmation", {}, group="stock",
                                    actor=self.office_people(self.county.hospitals[0])[0])
        for h in self.county.hospitals:
            head = self.office_people(h)[2]
            self.plan["cert_stock"].add("/v1/stock/allocations", {
                "institution_code": h.code, "serial_from": self.serial(serial),
                "serial_to": self.serial(serial + per_hospital - 1), "allocated_on": received.isoformat()},
                group="stock", actor=head)
            serial += per_hospital
            self.custodians(h)
            # a blank spoiled in the printer (废证): the last of the hospital's range, never drawn before it
            self.plan["cert_spoiled"].add(f"/v1/stock/serials/{self.serial(serial - 1)}/void", {
                "reason": "打印错位"}, actor=head)

    def serial(self, n: int) -> str:
        """Blank serials: a letter and 9 digits, unique to this plan (出生医学证明 编号)."""
        return f"Q{int(self.county.code[2:]) % 10000:04d}{n:05d}"

    def certificate(self, cref: str, born: date, hospital: Institution, name: str, kind: str) -> None:
        rng = self.rng
        issued = born + timedelta(days=rng.randint(1, 5) if kind == "first" else rng.randint(10, 40))
        if issued > self.today:
            return
        key = f"@cert:{cref[1:]}"
        prep, seal, _ = self.office_people(hospital)
        # the certificate service dates an issue when it is posted (no back-dating of 出生医学证明); the certificate
        # custodian prepares, the seal custodian seals, each logged in as themselves
        body: dict[str, Any] = {"kind": kind, "child_id": cref, "child_name": name, "institution_code": hospital.code}
        if kind == "first_out_of_institution":
            body["evidence_ref"] = f"{self.prefix}-EV{self.seq}"
        self.plan["certificates"].add("/v1/certificates", body, key, "serial", actor=prep)
        self.plan["cert_seals"].add(f"/v1/certificates/{key}/seal", {}, actor=seal)
        later = issued + timedelta(days=rng.randint(30, 200))
        if later <= self.today:
            for after_kind in ("reissue", "replacement"):
                if self.chance(f"certificate_{after_kind}"):
                    after = f"@cert-{after_kind}:{cref[1:]}"
                    self.plan["cert_after"].add("/v1/certificates", {
                        "kind": after_kind, "child_id": cref, "child_name": name, "previous_serial": key,
                        "institution_code": hospital.code}, after, "serial", actor=prep)
                    # sealed by the seal custodian: only then is it issued and the old one superseded
                    self.plan["cert_after_seals"].add(f"/v1/certificates/{after}/seal", {}, actor=seal)
                    break

    # ------------------------------------------------------------------ populations (人口基数)
    def populations(self, births: int) -> None:
        """The county's population figures of the year, as its statistics would give them: from the births and
        the county's birth rate and age structure (county.json `population`)."""
        pop = self.rates["population"]
        total = round(births * 1000 / pop["birth_rate_per_mille"])
        for kind, share in pop["shares"].items():
            self.plan["populations"].add("/v1/populations", {"region": self.county.code, "year": self.year,
                                                             "kind": kind, "value": round(total * share)})

    # ------------------------------------------------------------------ targets (任务数)
    def targets(self, births: int) -> None:
        base = {"premarital_exam_couples": births * self.rates["marriages_per_birth"],
                "live_births": births, "certs_issued": births,
                "cervical_screening_count": births * self.rates["cervical_per_birth"],
                "breast_screening_count": births * self.rates["breast_per_birth"]}
        for code, share in self.rates["targets"].items():
            self.plan["targets"].add("/v1/targets", {"code": code, "region": self.county.code, "year": self.year,
                                                     "target": max(1, round(base.get(code, births) * share))})


def year_plan(county: County, seed: int, year: int, births: int | None = None,
              today: date | None = None) -> Plan:
    """A whole year of the county: everything a bureau would see posted by its HIS, civil affairs and
    certificate offices. Deliveries are spread over the year; pregnancies delivering in it were booked the year
    before. Nothing is dated after `today`."""
    today = today or date.today()
    births = births or int(county.rates["births_per_year"])
    g = Generator(county, seed, year, today)
    g.force_positive = ["syphilis", "hiv"]
    g.institutions()
    g.certificate_stock(births)
    start = date(year, 1, 1)
    days = (date(year, 12, 31) - start).days + 1
    # seasonality: a few more births in autumn, as in Chinese birth statistics
    weights = [1 + 0.12 * math.sin((d - 120) / days * 2 * math.pi) for d in range(days)]
    women = max(1, round(births / (1 + county.rates["twins"])))
    for d in sorted(g.rng.choices(range(days), weights=weights, k=women)):
        case = g.pregnancy(start + timedelta(days=d))
        if case:
            g.plan.cases.append(case)
    g.prior_cohorts(births)
    programmes.terminations(g, births)
    programmes.nursery_staff(g, births)
    g.marriages(round(births * county.rates["marriages_per_birth"]))
    g.womens_screenings(round(births * county.rates["cervical_per_birth"]))
    g.targets(births)
    g.populations(births)
    return g.plan


def live_plan(county: County, seed: int, today: date, n: int, tag: str) -> Plan:
    """`n` pregnancies delivering today (the live trickle): booking months ago, visits, screenings, delivery,
    certificate. `tag` keeps ids apart between trickle runs."""
    g = Generator(county, seed, today.year, today, prefix=f"L{county.code}{tag}")
    for _ in range(n):
        case = g.pregnancy(today)
        if case:
            g.plan.cases.append(case)
    return g.plan
