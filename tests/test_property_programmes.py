"""The property test of the programme indicators (issue 4, the rest of the catalogue): random stories posted
through the real registry, screening and certificates APIs — couples registering marriage with 婚检, 孕前优生
and 地贫 screens, women in 两癌 screening, families with risk-graded pregnancies, children measured at checks
and birth certificates (stock, first issues in and out of institution, reissues, replacements, voids, spoiled
blanks) — with retries, shuffled order across stories, corrections, voids and residence moves, flow through
Kafka into the indicators service, whose incremental numbers must equal the independent reference
(tests/reference_programmes.py) for every covered code, at county, township and village level and for every
period type."""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.tests.stack_helpers import Office, new_prefix, office, stock

from tests import reference_births as refb
from tests import reference_programmes as ref
from tests.conftest import Stack, fresh_county, village, wait_for
from tests.reference import add_months, expected_value

pytestmark = pytest.mark.stack

_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎"
_GIVEN = "秀英桂芳玉兰淑珍丽华敏静婷雪梅红霞燕萍娟春花月琴凤洁慧晶莉颖琳倩媛佳怡欣悦"


def unique_name() -> str:
    """A surname and a two-character given name from a random source of its own (the seeds' streams untouched)."""
    n = uuid.uuid4().int
    return _SURNAMES[n % len(_SURNAMES)] + _GIVEN[(n // 97) % len(_GIVEN)] + _GIVEN[(n // 9973) % len(_GIVEN)]

SOURCE = "his-progs"
CHINA = timezone(timedelta(hours=8))
TODAY = datetime.now(CHINA).date()
COUPLES, WOMEN, FAMILIES = 16, 14, 18
#: issue 21: families in the programmes (叶酸, 营养包, 终止妊娠, 危重孕产妇, 出生缺陷, 破伤风, 体弱儿, 托幼, 死亡评审)
PROGRAMME_FAMILIES = 10
DEFECTS = ("congenital_heart_disease", "spina_bifida", "cleft_lip", "cleft_palate", "polydactyly", "down_syndrome",
           "hypospadias", "microtia")


def quarter(d: date) -> tuple[str, date, date]:
    q = (d.month - 1) // 3
    end = date(d.year + (q == 3), 1 if q == 3 else 3 * q + 4, 1) - timedelta(days=1)
    return f"{d.year}Q{q + 1}", date(d.year, 3 * q + 1, 1), end


def periods() -> dict[str, tuple[date, date]]:
    """Past periods of every type, and the current ones (where the certificates, dated today, land)."""
    t = TODAY
    month_end = (date(t.year + (t.month == 12), t.month % 12 + 1, 1) - timedelta(days=1))
    sy = t.year + (t.month >= 10)
    q, qs, qe = quarter(t)
    h = 1 if t.month <= 6 else 2
    return {"2025": (date(2025, 1, 1), date(2025, 12, 31)), "2025SY": (date(2024, 10, 1), date(2025, 9, 30)),
            "2025H1": (date(2025, 1, 1), date(2025, 6, 30)), "2025Q4": (date(2025, 10, 1), date(2025, 12, 31)),
            "2025-05": (date(2025, 5, 1), date(2025, 5, 31)),
            f"{t.year}-{t.month:02d}": (date(t.year, t.month, 1), month_end), q: (qs, qe),
            f"{t.year}H{h}": (date(t.year, 6 * h - 5, 1), date(t.year + (h == 2), 1 if h == 2 else 7, 1)
                              - timedelta(days=1)),
            str(t.year): (date(t.year, 1, 1), date(t.year, 12, 31)),
            f"{sy}SY": (date(sy - 1, 10, 1), date(sy, 9, 30))}


def at(d: date) -> str:
    return f"{d.isoformat()}T10:00:00+08:00"


def day_between(rng: random.Random, lo: date, hi: date) -> date:
    return lo + timedelta(days=rng.randint(0, max(0, (hi - lo).days)))


class Poster:
    """Posts through the APIs as HIS, civil affairs and certificate offices would; retries what they retry."""

    def __init__(self, http: httpx.AsyncClient, stack: Stack, rng: random.Random, w: ref.World | None = None,
                 ) -> None:
        self.http, self.rng, self.w, self.stack = http, rng, w or ref.World(), stack
        self.reg, self.scr, self.certs = (stack.url(s) + "/v1" for s in ("registry", "screening", "certificates"))
        self.inst = ""   # the institution posting screening results

    async def call(self, method: str, url: str, body: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 201),
                   retry_422: str = "", timeout: float = 30, headers: dict[str, str] | None = None) -> Any:
        """503 (nothing changed) and a dropped connection are retried; so is a 422 containing `retry_422` (a
        record another service has not heard of yet, as its message says)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = await self.http.request(method, url, json=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.3)
                continue
            if time.monotonic() < deadline and (r.status_code == 503 or (
                    retry_422 and r.status_code == 422 and retry_422 in r.text)):
                await asyncio.sleep(0.3)
                continue
            assert r.status_code in ok, f"{method} {url} {body}: {r.status_code} {r.text}"
            return r.json()

    async def idempotent(self, url: str, body: dict[str, Any], retry_422: str = "") -> Any:
        """A posted record with its source id; now and then posted twice (a retry: the same record, 200)."""
        out = await self.call("POST", url, body, retry_422=retry_422)
        if self.rng.random() < 0.15:
            again = await self.call("POST", url, body, ok=(200,))
            assert again.get("version", 1) == out.get("version", 1)
        return out

    async def person(self, sex: str, birth: date, residence: str) -> ref.Person:
        """A person of her own: a name of her own too (the registry's probabilistic matcher would take two women
        of one placeholder name, birth date and village for one — issue 19), drawn outside the seed's stream."""
        r = await self.call("POST", f"{self.reg}/persons", {"name": unique_name(), "sex": sex,
                                                          "birth_date": birth.isoformat(), "residence_code": residence})
        return ref.Person(r["person_id"], sex, birth, residence)

    async def move(self, p: ref.Person | ref.Child, since: date, region: str) -> None:
        await self.call("POST", f"{self.reg}/persons/{p.person_id}/residence",
                        {"since": since.isoformat(), "region_code": region})
        p.moves.append((since, region))
        await self.screening_knows(p.person_id, since, region)

    async def screening_knows(self, person_id: str, since: date, region: str, timeout: float = 60) -> None:
        """Until screening has heard of the move (the registry's event): a result posted before that is
        attributed, and its case opened, in the old region — as screening knows it (decision 22), a race of the
        test's making, not a figure to check. Reads screening's own copy of the person, as an operator would."""
        s = self.stack.settings
        conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user,
                                     database=s.database("screening"))
        try:
            deadline = time.monotonic() + timeout
            while True:
                raw = await conn.fetchval("select residence::text from known_person where person_id = $1",
                                          person_id)
                if raw and [since.isoformat(), region] in json.loads(raw):
                    return
                assert time.monotonic() < deadline, f"screening never heard of the move of {person_id}: {raw}"
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    async def screen(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        """A result of a subject living in `region` on its date; the follow-up case it must open (or not) is
        derived from the programme rules (ref.followup_due_days), and the answer must agree."""
        body.setdefault("source", SOURCE)
        body.setdefault("screening_id", f"S-{uuid.uuid4().hex[:12]}")
        out = dict(await self.idempotent(f"{self.scr}/screenings", body, retry_422="not known to screening"))
        self.w.regions[self._key(body)] = region
        self._followup(body, out, None)
        return out

    def _key(self, body: dict[str, Any]) -> str:
        return f"{body['source']}/{body['screening_id']}"

    def _followup(self, body: dict[str, Any], out: dict[str, Any], case: ref.Case | None) -> None:
        key, on = self._key(body), date.fromisoformat(body["performed_on"])
        days = ref.followup_due_days(body["type"], body)
        assert bool(out.get("followup")) == (days is not None) or case is not None, (body, out)
        if days is None:
            if case:
                case.no_longer_needed(TODAY, "result corrected")
        elif case:
            case.needed_again(on + timedelta(days=days))
        else:
            self.w.followups[key] = ref.Case(on + timedelta(days=days), self.w.regions[key], opened_on=on)
            self.w.case_keys[out["followup"]["case_id"]] = key

    async def correct_screen(self, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
        body.update(changes, version=body.get("version", 1) + 1)
        out = dict(await self.call("POST", f"{self.scr}/screenings", body))
        self._followup(body, out, self.w.followups.get(self._key(body)))
        return out

    async def void_screen(self, body: dict[str, Any]) -> None:
        await self.call("DELETE", f"{self.scr}/screenings/{SOURCE}/{body['screening_id']}",
                        {"reason": "entered in error"}, ok=(200,))
        if case := self.w.followups.get(self._key(body)):
            case.no_longer_needed(TODAY, "result voided")

    async def act(self, case: dict[str, Any], action: str, on: date, outcome: str | None = None) -> None:
        body: dict[str, Any] = {"action": action, "on": on.isoformat()}
        if outcome:
            body["outcome"] = outcome if action == "closed" else None
        body = {k: v for k, v in body.items() if v is not None}
        await self.call("POST", f"{self.scr}/followups/{case['case_id']}/actions", body)
        self.w.followups[self.w.case_keys[case["case_id"]]].act(action, on, body.get("outcome"))

    async def encounter(self, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("source", SOURCE)
        body.setdefault("encounter_id", f"E-{uuid.uuid4().hex[:12]}")
        return dict(await self.idempotent(f"{self.reg}/encounters", body))

    async def correct(self, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
        body.update(changes, version=body.get("version", 1) + 1)
        return dict(await self.call("POST", f"{self.reg}/encounters", body))

    async def void(self, body: dict[str, Any]) -> None:
        await self.call("DELETE", f"{self.reg}/encounters/{SOURCE}/{body['encounter_id']}",
                        {"reason": "entered in error"}, ok=(200,))


def some_village(rng: random.Random, county: str) -> str:
    return village(county, rng.randint(1, 3), rng.randint(1, 2))


async def premarital(p: Poster, rng: random.Random, w: ref.World, me: ref.Person, partner: ref.Person,
                     names: bool, on: date) -> ref.Exam | None:
    """A 婚检 of `me` (naming the partner or not); corrected or voided now and then."""
    findings = [{"code": "x", "affects_marriage": rng.random() < 0.6} for _ in range(rng.choice([0, 0, 0, 1, 2]))]
    hiv = rng.choice(["negative", "negative", "positive", "not_done"])
    xr = random.Random(on.toordinal() * 10 + len(findings))  # the syphilis / HBsAg results: their own stream
    syphilis, hbsag = xr.choice(["negative", "negative", "positive"]), xr.choice(["negative", "positive", "not_done"])
    body: dict[str, Any] = {"type": "premarital_exam", "subject_id": me.person_id, "performed_on": on.isoformat(),
                            "institution_code": p.inst, "findings": findings, "hiv": hiv,
                            "syphilis": syphilis, "hbsag": hbsag}
    if names:
        body["partner_id"] = partner.person_id
    await p.screen(body, me.lives_on(on))
    if rng.random() < 0.2:   # the lab adds a finding affecting marriage, and the HIV result
        findings = [*findings, {"code": "y", "affects_marriage": True}]
        hiv = "negative"
        await p.correct_screen(body, findings=findings, hiv=hiv)
    if rng.random() < 0.08:
        await p.void_screen(body)
        return None
    e = ref.Exam("premarital_exam", me, on, partner.person_id if names else "",
                 affects=any(f["affects_marriage"] for f in findings), hiv_tested=hiv in ("negative", "positive"),
                 results={"hiv": hiv, "syphilis": syphilis, "hbsag": hbsag})
    w.exams.append(e)
    return e


async def couple_story(p: Poster, rng: random.Random, w: ref.World, county: str, forced: bool = False) -> None:
    """A couple: marriage, 婚检, 孕前优生 and 地贫. The `forced` couple's pre-pregnancy exams are done and positive for
    every infection (rare at random: a seed could see none, and the run must exercise those codes)."""
    home = some_village(rng, county)
    she = await p.person("F", date(1988, 1, 1) + timedelta(days=rng.randint(0, 4000)), home)
    he = await p.person("M", date(1986, 1, 1) + timedelta(days=rng.randint(0, 4000)), home)
    w.persons += [she, he]
    registered = day_between(rng, date(2024, 11, 1), TODAY - timedelta(days=3))
    if rng.random() < 0.25:  # the couple moves together (before or after the exams)
        since, to = day_between(rng, date(2024, 10, 1), TODAY), some_village(rng, county)
        await p.move(she, since, to)
        await p.move(he, since, to)
    # the marriage registration (civil affairs): retried, corrected (date), voided now and then
    m = {"registration_id": f"M-{uuid.uuid4().hex[:10]}", "source": "civil-affairs",
         "registered_on": registered.isoformat(), "region_code": some_village(rng, county),
         "persons": [{"person_id": she.person_id}, {"person_id": he.person_id}]}
    if rng.random() < 0.85:
        await p.idempotent(f"{p.reg}/marriage-registrations", m)
        if rng.random() < 0.2:
            registered = min(registered + timedelta(days=rng.randint(1, 60)), TODAY)
            await p.call("POST", f"{p.reg}/marriage-registrations",
                         {**m, "registered_on": registered.isoformat(), "version": 2})
        if rng.random() < 0.1:
            await p.call("DELETE", f"{p.reg}/marriage-registrations/civil-affairs/{m['registration_id']}",
                         {"reason": "duplicate"}, ok=(200,))
        else:
            w.marriages.append(ref.Marriage(registered, m["region_code"], (she.person_id, he.person_id)))
    # 婚检: she names him; he names her, nobody, or is not examined
    first = day_between(rng, registered - timedelta(days=60), min(registered + timedelta(days=20), TODAY))
    if rng.random() < 0.9:
        await premarital(p, rng, w, she, he, True, first)
        if rng.random() < 0.15:   # examined again (a re-exam is another exam record)
            await premarital(p, rng, w, she, he, True, day_between(rng, first, TODAY))
    if rng.random() < 0.8:
        await premarital(p, rng, w, he, she, rng.random() < 0.7, day_between(rng, first, min(first + timedelta(
            days=30), TODAY)))
    # 孕前优生 and 地贫: both name each other, one names the other (the other not screened), or nobody named
    for kind in ("prepregnancy_exam", "thalassaemia"):
        if rng.random() < 0.4 and not (forced and kind == "prepregnancy_exam"):
            continue
        shape = rng.choice(["both", "one", "alone"])
        on = day_between(rng, date(2024, 12, 1), TODAY)
        people = [(she, he), (he, she)] if shape == "both" else [(rng.choice([(she, he), (he, she)]))]
        for me, partner in people:
            when = day_between(rng, on, min(on + timedelta(days=20), TODAY))
            body: dict[str, Any] = {"type": kind, "subject_id": me.person_id, "performed_on": when.isoformat(),
                                    "institution_code": p.inst}
            if shape != "alone":
                body["partner_id"] = partner.person_id
            at_risk = rng.random() < 0.3
            results: dict[str, str] = {}
            if kind == "prepregnancy_exam":
                body.update(at_risk=at_risk, risk_factors=["x"] if at_risk else [])
                xr = random.Random(when.toordinal() * 10 + int(at_risk))  # infections: their own stream
                if xr.random() < 0.8:  # older HIS send no infection results: not done
                    results = {i: xr.choice(["negative", "negative", "positive", "not_done"])
                               for i in ("hiv", "syphilis", "hbsag")}
                if forced:
                    results = dict.fromkeys(("hiv", "syphilis", "hbsag"), "positive")
                body.update(results)
            else:
                body["result"] = rng.choice(["carrier", "non_carrier", "non_carrier"])
            await p.screen(body, me.lives_on(when))
            if kind == "prepregnancy_exam" and rng.random() < 0.15:
                at_risk = not at_risk
                await p.correct_screen(body, at_risk=at_risk, risk_factors=["x"] if at_risk else [])
            if rng.random() < 0.07 and not (forced and kind == "prepregnancy_exam"):
                await p.void_screen(body)
                continue
            w.exams.append(ref.Exam(kind, me, when, body.get("partner_id", ""), at_risk=at_risk, results=results))


async def woman_story(p: Poster, rng: random.Random, w: ref.World, county: str, forced: bool = False,
                      duplicate: str | None = None) -> None:
    """两癌 screens of a woman of 30–70, some around her 35th or 65th birthday. The `forced` one is 50 and has
    both screens abnormal, kept (every run must see an abnormal screen of each kind: left to chance, a seed
    had none). `duplicate` ("merged" / "unmerged"): she is registered twice, and the second record's fate is
    that (every run must see both)."""
    on = day_between(rng, date(2024, 11, 1), TODAY)
    age = rng.choice([35, 65, rng.randint(30, 70)])
    if forced:
        age = 50
    birth = ref.add_years(on, -age) + timedelta(days=rng.choice([-1, 0, 1, 40, -40]))
    she = await p.person("F", birth, some_village(rng, county))
    w.persons.append(she)
    if rng.random() < 0.3:
        await p.move(she, day_between(rng, date(2024, 10, 1), TODAY), some_village(rng, county))
    # 35% of the women are registered again by the breast clinic (another record: her birth year mistyped, another
    # village), merged into hers by a reviewer, 30% of the merges undone — decided by its own random stream, so
    # that the rest of the seed's stories do not change
    mr = random.Random(f"{birth}{on}{she.residence[6:]}")
    dup = None
    if (mr.random() < 0.35 and not forced) or duplicate:
        dup = await p.person("F", birth.replace(year=birth.year + mr.choice([0, 1, -1]), day=min(birth.day, 28)),
                             some_village(mr, county))
    for kind in ("cervical", "breast"):
        if rng.random() < 0.2 and not forced:
            continue
        when = day_between(rng, on, min(on + timedelta(days=30), TODAY))
        subject = dup if dup is not None and kind == "breast" else she
        body: dict[str, Any] = {"type": kind, "subject_id": subject.person_id, "performed_on": when.isoformat(),
                                "institution_code": p.inst}
        if kind == "cervical":
            result = rng.choice(["normal", "normal", "abnormal"])
            result = "abnormal" if forced else result
            body.update(method="hpv", result=result)
            abnormal = result == "abnormal"
        else:
            birads = rng.randint(0, 6)
            birads = 4 if forced else birads
            body.update(method="ultrasound", birads=birads)
            abnormal = birads in (0, 4, 5, 6)
        sent = await p.screen(body, subject.lives_on(when))
        if sent.get("followup") and (forced or rng.random() < 0.5):
            case = sent["followup"]
            await p.act(case, "contacted", min(when + timedelta(days=2), TODAY))
            if forced:   # followed up in time: every run sees a completed follow-up (seeds 21765 and 945431 saw none)
                await p.act(case, "closed", min(when + timedelta(days=5), TODAY), "treated")
            elif rng.random() < 0.7:
                await p.act(case, rng.choice(["closed", "closed", "lost"]),
                            min(when + timedelta(days=rng.choice([5, 29, 30, 31, 45])), TODAY), "treated")
        if rng.random() < 0.15 and not forced:   # a correction (the result changes)
            if kind == "cervical":
                abnormal = not abnormal
                await p.correct_screen(body, result="abnormal" if abnormal else "normal")
            else:
                birads = rng.randint(0, 6)
                abnormal = birads in (0, 4, 5, 6)
                await p.correct_screen(body, birads=birads)
        if rng.random() < 0.07 and not forced:
            await p.void_screen(body)
            continue
        w.exams.append(ref.Exam(kind, subject, when, abnormal=abnormal))
    if dup is not None:
        await p.call("POST", f"{p.reg}/persons/{she.person_id}/merge", {"duplicate": dup.person_id,
                                                                          "reason": "两癌筛查重复建档"}, ok=(201,))
        dup.merged_into = she
        if (mr.random() < 0.3 and not duplicate) or duplicate == "unmerged":
            await p.call("POST", f"{p.reg}/persons/{dup.person_id}/unmerge", {"reason": "审核有误"}, ok=(200,))
            dup.merged_into = None


def overweight_check(sex: str, day: int, low: float = 2.5, high: float = 3.5) -> tuple[int, float, float] | None:
    """(age in days, weight, height) of a check whose WHO weight-for-length/height z-score lies between `low` and
    `high` (by default +2.5 to +3.5: overweight, plausible), at the median height for the age — computed with the
    WHO reference."""
    from tests import who_reference as who

    day = day if day != 730 else 729
    height = round(who.table("lhfa", sex)[day].m, 1)
    weight = 2.0
    while weight < 40:
        z = who.zscores(sex, day, weight, height).weight_for_height
        if z is not None and low <= z <= high:
            return day, weight, height
        weight = round(weight + 0.1, 1)
    return None


async def family_story(p: Poster, rng: random.Random, w: ref.World, county: str, offices: list[Office],
                       grades_seen: dict[str, bool], certs: list[tuple[str, str, str, Office]],
                       home_birth: bool = False) -> None:
    """A pregnancy with risk-graded visits (and a serum screen), a delivery at an issuing institution, the
    children's checks (z-scores from the registry), moves; the certificates to issue are queued."""
    o = rng.choice(offices)
    born = day_between(rng, date(2020, 6, 1), TODAY - timedelta(days=5))
    gest = rng.choice([rng.randint(182, 195), *[rng.randint(255, 292)] * 8]) if not home_birth else 270
    lmp = born - timedelta(days=gest)
    booked = lmp + timedelta(days=rng.randint(40, 80))
    residence = some_village(rng, county)
    pid = f"P-{uuid.uuid4().hex[:12]}"
    r = await p.call("POST", f"{p.reg}/pregnancies", {
        "pregnancy_id": pid, "source": SOURCE, "lmp_date": lmp.isoformat(), "registered_on": booked.isoformat(),
        "institution_code": o.code,
        "mother": {"name": "测试", "sex": "F", "birth_date": "1992-02-02", "residence_code": residence}})
    mother = ref.Person(r["mother_id"], "F", date(1992, 2, 2), residence)
    if rng.random() < 0.25:  # the mother moves (before the delivery: the newborn lives where she lives)
        await p.move(mother, day_between(rng, lmp, min(born + timedelta(days=90), TODAY)), some_village(rng, county))
    visits: list[tuple[dict[str, Any], str]] = []
    ever_high = False   # a case of the pregnancy opens when a visit first carries orange / red / purple
    graded: dict[str, tuple[date, str]] = {}

    def regraded(body: dict[str, Any], grade: str | None) -> None:
        """Decision 21, event by event: the first orange+ grade opens the pregnancy's case (due 14 days after
        the earliest such visit, in the region the mother lived in then); corrections and voids move the due
        date, close the case with a reason when no such grade is left, reopen it when one comes back."""
        on = date.fromisoformat(body["occurred_at"][:10])
        if grade is None:
            graded.pop(body["encounter_id"], None)
        else:
            graded[body["encounter_id"]] = (on, grade)
        high = sorted(d for d, g in graded.values() if g in ref.HIGH_RISK_GRADES)
        case = w.followups.get(f"pregnancy:{pid}")
        if high and case is None:
            w.followups[f"pregnancy:{pid}"] = ref.Case(high[0] + timedelta(days=ref.HIGH_RISK_DUE_DAYS),
                                                       mother.lives_on(high[0]), opened_on=high[0])
        elif high and case:
            case.needed_again(high[0] + timedelta(days=ref.HIGH_RISK_DUE_DAYS))
        elif case:
            case.no_longer_needed(TODAY, "risk grade corrected below orange")
    for g in rng.sample(range((booked - lmp).days, gest - 1), k=rng.randint(0, 5)):
        grade = rng.choice(["", "green", "yellow", "orange", "red", "purple"])
        body: dict[str, Any] = {"type": "prenatal_visit", "occurred_at": at(lmp + timedelta(days=g)),
                                "institution_code": o.code, "subject_id": pid}
        if grade:
            body["risk_grade"] = grade
        await p.encounter(body)
        regraded(body, grade)
        visits.append((body, grade))
        ever_high = ever_high or grade in ("orange", "red", "purple")
    if visits and rng.random() < 0.25:
        i = rng.randrange(len(visits))
        await p.correct(visits[i][0], risk_grade=rng.choice(["green", "red"]))
        regraded(visits[i][0], visits[i][0]["risk_grade"])
        visits[i] = (visits[i][0], visits[i][0]["risk_grade"])
        ever_high = ever_high or visits[i][1] == "red"
    if visits and rng.random() < 0.25:
        gone = visits.pop(rng.randrange(len(visits)))[0]
        await p.void(gone)
        regraded(gone, None)
    grades_seen[pid] = ever_high   # decision 21
    managed = False
    if rng.random() < 0.4 and gest >= 120:   # a serum screen; high-risk ones followed up now and then
        on = lmp + timedelta(days=rng.randint(100, min(155, gest - 1)))
        body = {"type": "prenatal_serum", "subject_id": pid, "performed_on": on.isoformat(),
                "institution_code": o.code, "t21_risk": f"1/{rng.choice([100, 200, 5000])}", "t18_risk": "1/10000",
                "ntd_risk": "low"}
        sent = await p.screen(body, mother.lives_on(on))
        if sent.get("followup") and rng.random() < 0.6:
            await p.act(sent["followup"], "contacted", min(on + timedelta(days=3), TODAY))
            managed = True
        if rng.random() < 0.1:
            await p.void_screen(body)
    place = "home" if home_birth else rng.choice(["hospital"] * 5 + ["home"])
    dbody: dict[str, Any] = {"type": "delivery", "occurred_at": at(born), "institution_code": o.code,
                             "subject_id": pid, "place": place, "mode": "vaginal",
                             "babies": [{"sex": rng.choice("FM"), "birth_weight_g": 3000, "outcome": "live"}
                                        for _ in range(rng.choice([1] * 5 + [2]))]}
    res = await p.encounter(dbody)
    w.ended[pid] = born
    kids = list(zip(res.get("children") or [], [b["sex"] for b in dbody["babies"]], strict=True))
    viable = gest >= 196
    final = [g for _, g in visits]
    if viable:
        w.delivered.append(ref.Delivered(born, mother.lives_on(born), any(g in ("orange", "red", "purple")
                                                                          for g in final), managed, pid))
    for cid, sex in kids:
        child = ref.Child(cid, sex, born, mother.lives_on(born), viable)
        w.children.append(child)
        if viable:
            w.births.append(ref.Birth(born, o.region, cid))
        if rng.random() < 0.2 and born + timedelta(days=10) <= TODAY:
            await p.move(child, day_between(rng, born + timedelta(days=10), TODAY), some_village(rng, county))
        span = min((TODAY - born).days, 6 * 365)
        days = rng.sample(range(1, span), k=min(rng.randint(0, 5), span - 1))
        # the forced family's first child is, at its latest check, overweight (under5_overweight_rate counted
        # every run, whatever the draw)
        heavy = overweight_check(sex, min(span - 1, 4 * 365 + 100)) if home_birth and viable and \
            cid == kids[0][0] and span > 60 else None
        if heavy is not None:
            days = [d for d in days if d < heavy[0]] + [heavy[0]]
        # not on day 730: there the registry still differs from WHO (tests/test_who_zscores.py, DIVERGENT)
        for dd in (d for d in days if d != 730):
            on = born + timedelta(days=dd)
            age_y = dd / 365.25
            weight = rng.choice([None, round(rng.uniform(2.5, 6 + 3 * age_y), 1),
                                 round(rng.uniform(5, 9 + 3 * age_y), 1)])
            # standing heights from 24 months start at 65 cm, where WHO's weight-for-height table starts (below
            # it the registry, unlike WHO, falls back on the weight-for-length table: DIVERGENT again)
            height = rng.choice([None, round(rng.uniform(65 if dd > 730 else 48, 80 + 9 * age_y), 1)])
            if heavy is not None and dd == heavy[0]:
                weight, height = heavy[1], heavy[2]
            body = {"type": "child_health_check", "occurred_at": at(on), "institution_code": o.code,
                    "subject_id": cid}
            if weight is not None:
                body["weight_kg"] = weight
            if height is not None:
                body["height_cm"] = height
            await p.encounter(body)
            forced_check = heavy is not None and dd == heavy[0]
            if rng.random() < 0.15 and weight is not None and not forced_check:   # the HIS corrects the weight
                await p.correct(body, weight_kg=round(weight * rng.choice([0.7, 1.3]), 1))
            if rng.random() < 0.08 and not forced_check:
                await p.void(body)
                continue
            child.checks.append(ref.Check(on, body.get("weight_kg"), body.get("height_cm")))
        if home_birth or rng.random() < 0.75:
            certs.append((cid, place, pid, o))


async def certificate_story(p: Poster, rng: random.Random, w: ref.World, cid: str, place: str, o: Office,
                            forced: float | None = None) -> None:
    """First issue (in or out of institution: prepare, then seal), a spoiled preparation voided now and then,
    a reissue or a replacement, or a first certificate voided as wrongly issued and issued again."""
    kind = "first" if place == "hospital" else "first_out_of_institution"
    extra = {} if kind == "first" else {"evidence_ref": "接生人员证明-1"}

    async def prepare(kind: str, **more: Any) -> str:
        r = await p.call("POST", f"{p.certs}/certificates", {"kind": kind, "child_id": cid, "child_name": "张小明",
                                                            **extra, **more},
                         retry_422="not known to the certificates service", timeout=60, headers=o.by(o.keeper))
        serial = str(r["serial"])
        w.certs[serial] = (cid, ref.Cert(o.region, kind))
        w.stock.append((o.region, TODAY, -1))   # the blank leaves the stock when drawn
        return serial

    async def seal(serial: str) -> None:
        await p.call("POST", f"{p.certs}/certificates/{serial}/seal", ok=(200,), headers=o.by(o.sealer))
        w.certs[serial][1].issued_on = TODAY

    async def void(serial: str) -> None:
        await p.call("POST", f"{p.certs}/certificates/{serial}/void", {"reason": "印错"}, ok=(200,),
                     headers=o.by(o.head))
        w.certs[serial][1].voided_on = TODAY

    if rng.random() < 0.15:       # spoiled while printing: voided before the seal
        await void(await prepare(kind))
    serial = await prepare(kind)
    if forced is None and rng.random() < 0.1:        # left prepared (not yet issued)
        return
    await seal(serial)
    roll = rng.random() if forced is None else forced
    if roll < 0.12:               # wrongly issued: voided, then issued again
        await void(serial)
        await seal(await prepare(kind))
    elif roll < 0.3:              # lost (补发) or corrected (换发): the new one supersedes it when sealed
        extra.pop("evidence_ref", None)
        pick = rng.choice(["reissue", "replacement"])
        new = await prepare({0.2: "replacement", 0.21: "reissue", 0.25: "reissue"}.get(forced or 0, pick),
                            previous_serial=serial)
        if forced is None and rng.random() < 0.15:
            await void(new)       # a spoiled reissue: the old certificate stays valid
            return
        await seal(new)
        w.certs[serial][1].superseded_on = TODAY
        if forced == 0.25 or (forced is None and rng.random() < 0.1):
            await void(new)       # the reissue was wrong: voided; the old one stays superseded


async def programme_story(p: Poster, rng: random.Random, w: ref.World, county: str, o: Office,
                          forced: int = 0, child_dies: bool = False) -> None:
    """A family in the programmes (issue 21): folic acid for the mother, then a termination or a delivery with
    near misses; the child's nutrition packs, birth defects, tetanus, 体弱儿 enrolments (closed by a
    correction), nursery checks, a move; the mother as nursery staff; deaths, reviewed by a correction. Records
    are retried, corrected and voided now and then. `forced` 1 and 2 take every path each run must see (1: its
    child stays under management at the year end; `child_dies`: a reviewed, avoidable under-5 death)."""
    g, inst = w.programmes, o.code
    terminate = forced == 2 or (not forced and not child_dies and rng.random() < 0.25)
    born = TODAY - timedelta(days=400) if forced == 1 else day_between(rng, date(2024, 10, 1), TODAY - timedelta(
        days=10))
    gest = rng.randint(60, 190) if terminate else rng.randint(250, 290)
    lmp = born - timedelta(days=gest)
    home = some_village(rng, county)
    pid = f"P-{uuid.uuid4().hex[:12]}"
    r = await p.call("POST", f"{p.reg}/pregnancies", {
        "pregnancy_id": pid, "source": SOURCE, "lmp_date": lmp.isoformat(),
        "registered_on": min(lmp + timedelta(days=40), born).isoformat(), "institution_code": inst,
        "mother": {"name": "测试", "sex": "F", "birth_date": "1993-03-03", "residence_code": home}})
    mother = ref.Person(r["mother_id"], "F", date(1993, 3, 3), home)
    for _ in range(rng.choice([0, 1, 1, 2]) if not forced else 1):   # 叶酸, around the LMP
        on = day_between(rng, lmp - timedelta(days=60), min(lmp + timedelta(days=60), TODAY))
        body: dict[str, Any] = {"type": "folic_acid_dispensed", "occurred_at": at(on), "institution_code": inst,
                                "subject_id": mother.person_id, "quantity": rng.randint(1, 6)}
        await p.encounter(body)
        if rng.random() < 0.15:
            await p.correct(body, quantity=body["quantity"] + 2)
        if rng.random() < 0.08 and not forced:
            await p.void(body)
            continue
        g.dispensed.append(("folic_acid", mother, on, body["quantity"]))
    mother_last = born
    if terminate:
        method, reason = rng.choice([("vacuum_aspiration", "elective"), ("medical_abortion", "elective"),
                                     ("induced_labour", "birth_defect"), ("induced_labour", "maternal_disease"),
                                     ("dilation_curettage", "infection")])
        if forced == 2:
            method, reason = "induced_labour", "birth_defect"
        # an infected pregnancy (梅毒/艾滋病感染孕产妇) ended by termination: positive during pregnancy, before it
        infected = frozenset(("syphilis", "hiv") if forced == 2 else ("syphilis",) if reason == "infection" else ())
        for infection in sorted(infected):
            await p.screen({"type": "maternal_infection_test", "subject_id": pid, "institution_code": inst,
                            "performed_on": (lmp + timedelta(days=30)).isoformat(), "infection": infection,
                            "timing": "pregnancy", "result": "positive"}, home)
        body = {"type": "pregnancy_termination", "occurred_at": at(born), "institution_code": inst, "subject_id": pid,
                "method": method, "reason": reason}
        await p.encounter(body)
        if rng.random() < 0.1 and not forced:   # entered in error: the pregnancy goes on (and is not seen again)
            await p.void(body)
        else:
            g.terminations.append((born, mother.lives_on(born), method, reason, infected))
        if forced == 2:   # a second woman: an elective vacuum aspiration
            other = f"P-{uuid.uuid4().hex[:12]}"
            lmp2 = TODAY - timedelta(days=70)
            r2 = await p.call("POST", f"{p.reg}/pregnancies", {
                "pregnancy_id": other, "source": SOURCE, "lmp_date": lmp2.isoformat(),
                "registered_on": (lmp2 + timedelta(days=40)).isoformat(), "institution_code": inst,
                "mother": {"name": "测试", "sex": "F", "birth_date": "1995-05-05", "residence_code": home}})
            assert r2["mother_id"]
            on2 = lmp2 + timedelta(days=60)
            await p.encounter({"type": "pregnancy_termination", "occurred_at": at(on2), "institution_code": inst,
                               "subject_id": other, "method": "vacuum_aspiration", "reason": "elective"})
            g.terminations.append((on2, home, "vacuum_aspiration", "elective", frozenset()))
        return
    sex = rng.choice("FM")
    res = await p.encounter({"type": "delivery", "occurred_at": at(born), "institution_code": inst,
                             "subject_id": pid, "place": "hospital", "mode": "vaginal",
                             "babies": [{"sex": sex, "birth_weight_g": 3100, "outcome": "live"}]})
    child = ref.Child(res["children"][0], sex, born, mother.lives_on(born), True)
    w.children.append(child)
    if forced == 1:   # a wasted child (消瘦, weight-for-length z −3.5 to −2.5) every run, whatever the draw
        thin = overweight_check(sex, 200, -3.5, -2.5)
        assert thin is not None
        on = born + timedelta(days=thin[0])
        await p.encounter({"type": "child_health_check", "occurred_at": at(on), "institution_code": inst,
                           "subject_id": child.person_id, "weight_kg": thin[1], "height_cm": thin[2]})
        child.checks.append(ref.Check(on, thin[1], thin[2]))
    w.births.append(ref.Birth(born, o.region, child.person_id))   # a live birth of the institution (首次签发率)
    if forced == 1 or rng.random() < 0.3:   # 危重孕产妇: once or twice, around the delivery
        days = [born + timedelta(days=1)] if forced else sorted(
            day_between(rng, born - timedelta(days=20), min(born + timedelta(days=30), TODAY))
            for _ in range(rng.choice([1, 2])))
        for on in days:
            body = {"type": "maternal_near_miss", "occurred_at": at(on), "institution_code": inst, "subject_id": pid,
                    "cause_category": rng.choice(["obstetric_haemorrhage", "hypertensive_disorder"]),
                    "organ_dysfunction": rng.random() < 0.3}
            await p.encounter(body)
            if rng.random() < 0.1 and not forced:
                await p.void(body)
                continue
            g.near_misses.setdefault(pid, (mother, []))[1].append(on)
            mother_last = max(mother_last, on)
    last = born

    async def child_enc(type_: str, on: date, **fields: Any) -> dict[str, Any]:
        nonlocal last
        body = {"type": type_, "occurred_at": at(on), "institution_code": inst, "subject_id": child.person_id,
                **fields}
        await p.encounter(body)
        last = max(last, on)
        return body

    if rng.random() < 0.2 and born + timedelta(days=10) <= TODAY and not forced:
        await p.move(child, day_between(rng, born + timedelta(days=10), TODAY), some_village(rng, county))
    lo, hi = add_months(born, 6), min(add_months(born, 24), TODAY)
    if lo <= hi:   # 营养包
        for _ in range(1 if forced else rng.choice([0, 1, 2, 3])):
            on = day_between(rng, lo, hi)
            body = {"type": "nutrition_pack", "subject_id": child.person_id, "performed_on": on.isoformat(),
                    "institution_code": inst, "packs": rng.choice([30, 30, 60, 90])}
            await p.screen(body, ref.lives(child, on))   # the contract's screening record of 营养包
            last = max(last, on)
            if rng.random() < 0.15:
                await p.correct_screen(body, packs=body["packs"] + 30)
            if rng.random() < 0.08 and not forced:
                await p.void_screen(body)
                continue
            g.dispensed.append(("nutrition_pack", child, on, body["packs"]))
    if forced == 1 or rng.random() < 0.3:   # 出生缺陷, diagnosed around the 7-day limit
        day = 2 if forced else rng.choice([0, 3, 6, 7, 15])
        cats = ["congenital_heart_disease", "spina_bifida", "cleft_lip", "polydactyly", "down_syndrome"] if forced \
            else rng.sample(DEFECTS, k=rng.choice([1, 1, 2]))
        if born + timedelta(days=day) <= TODAY:
            body = await child_enc("birth_defect", born + timedelta(days=day), categories=cats)
            if rng.random() < 0.15 and not forced:
                cats = rng.sample(DEFECTS, k=1)
                await p.correct(body, categories=cats)
            if rng.random() < 0.08 and not forced:
                await p.void(body)
            else:
                g.defects.append((child, born + timedelta(days=day), cats))
    if forced == 1 or rng.random() < 0.08:   # 新生儿破伤风
        on = born + timedelta(days=5 if forced else rng.randint(3, 20))
        if on <= TODAY:
            await child_enc("neonatal_tetanus", on, died=False)
            g.tetanus.append((child, on))
    enrolments = 2 if forced else rng.choice([0, 0, 1, 1, 2])
    for k in range(enrolments):   # 体弱儿: enrolled, closed by a correction now and then
        on = born + timedelta(days=60 + 140 * k) if forced else day_between(rng, born + timedelta(days=30), TODAY)
        if on > TODAY:
            continue
        body = await child_enc("at_risk_child", on, conditions=[rng.choice(["anaemia", "malnutrition", "rickets"])])
        closed: date | None = None
        outcome = ""
        if (forced and k == 0) or (not forced and rng.random() < 0.5):
            closed = on + timedelta(days=60) if forced else day_between(rng, on, TODAY)
            outcome = "recovered" if forced else rng.choice(["recovered", "recovered", "improved", "lost"])
            await p.correct(body, closed_on=closed.isoformat(), outcome=outcome)
            last = max(last, closed)
        if rng.random() < 0.07 and not forced:
            await p.void(body)
            continue
        g.at_risk.append((child, on, closed, outcome))
    if forced == 1 or rng.random() < 0.3:   # 托幼: a child's check
        first = born + timedelta(days=380 if forced else rng.randint(300, 700))
        if first <= TODAY:
            days = [first] if forced else sorted({day_between(rng, first, TODAY) for _ in range(rng.choice([1, 2]))})
            for on in days:
                abnormal = rng.random() < 0.2
                await child_enc("nursery_health_check", on, role="child", nursery="龙城幼儿园", abnormal=abnormal)
                g.nursery.append((child, on, "child", abnormal))
    if forced == 1 or rng.random() < 0.2:   # the mother works at a nursery: staff checks
        for _ in range(1 if forced else rng.choice([1, 2])):
            on = born + timedelta(days=3) if forced else day_between(rng, date(2024, 11, 1), born)
            abnormal = forced == 1 or rng.random() < 0.3
            await p.encounter({"type": "nursery_health_check", "occurred_at": at(on), "institution_code": inst,
                               "subject_id": mother.person_id, "role": "staff", "nursery": "龙城幼儿园",
                               "abnormal": abnormal})
            g.nursery.append((mother, on, "staff", abnormal))
            mother_last = max(mother_last, on)

    async def dies(who: Any, after: date, within: date, kind: str) -> None:
        died = born + timedelta(days=10) if forced else day_between(rng, after, min(within, TODAY))
        body = {"type": "death", "occurred_at": at(died), "institution_code": inst, "subject_id": who.person_id,
                "died_on": died.isoformat()}
        await p.encounter(body)
        review = None
        if forced or child_dies or rng.random() < 0.6:   # 死亡评审, added by a correction once the review has met
            review = "avoidable" if forced or child_dies else rng.choice(
                ["avoidable", "conditionally_avoidable", "unavoidable"])
            await p.correct(body, review={"reviewed_on": day_between(rng, died, TODAY).isoformat(),
                                          "cause_category": "other", "preventability": review})
        g.deaths.append((who, died, kind, review))

    if child_dies or (not forced and rng.random() < 0.1 and last < TODAY):
        await dies(child, last, TODAY, "child")
    if (forced == 1 or rng.random() < 0.1) and mother_last <= born + timedelta(days=40) and not (
            forced and mother_last > born + timedelta(days=10)):
        await dies(mother, mother_last, born + timedelta(days=40), "maternal")


async def get(http: httpx.AsyncClient, url: str, params: dict[str, Any]) -> Any:
    """A read, retried while the service answers 503 (the shared database server refused a connection)."""
    for _ in range(100):
        try:
            r = await http.get(url, params=params)
        except httpx.TransportError:
            await asyncio.sleep(0.3)
            continue
        if r.status_code != 503:
            break
        await asyncio.sleep(0.3)
    assert r.status_code == 200, r.text
    return r.json()


async def list_cases(http: httpx.AsyncClient, stack: Stack, county: str, type_: str | None = None) -> list[Any]:
    items: list[Any] = []
    after = None
    while True:
        params: dict[str, Any] = {"region": county, "limit": 1000}
        if type_:
            params["type"] = type_
        if after:
            params["after"] = after
        page = await get(http, f"{stack.url('screening')}/v1/followups", params)
        items += page["items"]
        after = page["next"]
        if not after:
            return items


async def test_programme_counts_equal_the_reference(http: httpx.AsyncClient, stack: Stack) -> None:
    seed = int(os.environ.get("MCH_PROP_SEED") or random.randrange(10**6))   # the failure message names it
    county = fresh_county()
    reg, certs_url = stack.url("registry"), stack.url("certificates")
    offices = [await office(http, reg, certs_url, village(county, 1, 1), stack.settings),
               await office(http, reg, certs_url, village(county, 2, 1), stack.settings)]
    w = ref.World()
    for o in offices:   # 60 blanks each, received by the bureau and allocated today; two spoiled blanks
        prefix = new_prefix()
        _, last = await stock(http, certs_url, o, prefix, 1, 60, TODAY)
        w.stock.append((o.region, TODAY, 60))
        w.received.append((o.region, TODAY, 60))
        for k in range(2):
            serial = f"{last[0]}{int(last[1:]) - k:09d}"
            await Poster(http, stack, random.Random()).call(
                "POST", f"{certs_url}/v1/stock/serials/{serial}/void", {"reason": "污损"}, headers=o.by(o.head))
            w.spoiled.append((o.region, TODAY))
            w.stock.append((o.region, TODAY, -1))

    grades_seen: dict[str, bool] = {}
    queued: list[tuple[str, str, str, Office]] = []
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            rng = random.Random(seed * 1000 + i)
            p = Poster(http, stack, rng, w)
            p.inst = offices[i % 2].code
            if i < COUPLES:
                await couple_story(p, rng, w, county, forced=i == 0)
            elif i < COUPLES + WOMEN:
                # the next two women are registered twice every run: merged, and merged then unmerged
                await woman_story(p, rng, w, county, i == COUPLES,
                                  {COUPLES + 1: "merged", COUPLES + 2: "unmerged"}.get(i))
            elif i >= COUPLES + WOMEN + FAMILIES:
                k = i - COUPLES - WOMEN - FAMILIES
                await programme_story(p, rng, w, county, offices[i % 2], forced=k + 1 if k < 2 else 0,
                                      child_dies=k == 2)
            else:
                await family_story(p, rng, w, county, offices, grades_seen, queued, i == COUPLES + WOMEN)

    order = list(range(COUPLES + WOMEN + FAMILIES + PROGRAMME_FAMILIES))
    random.Random(seed).shuffle(order)   # stories interleaved in a random order
    await asyncio.gather(*(one(i) for i in order))
    crng = random.Random(seed + 1)
    crng.shuffle(queued)
    # the fourth is a birth outside an institution, issued plainly: every run must see an out-of-institution
    # first issue (left to chance, a seed whose home birth kept its certificate unsealed saw none)
    home = next((i for i, q in enumerate(queued) if q[1] == "home"), None)
    if home is not None:
        queued.insert(3, queued.pop(home))

    async def cert(i: int, item: tuple[str, str, str, Office]) -> None:
        async with sem:
            rng = random.Random(seed * 7 + i)
            # the first five take the paths every run must see: a replacement (换发) that supersedes, a void as
            # wrongly issued, a reissue voided after it superseded the first certificate, a plain issue (out of
            # institution), a reissue (补发) that stays — so certs_replaced and certs_reissued count every run
            await certificate_story(Poster(http, stack, rng), rng, w, item[0], item[1], item[3],
                                    {0: 0.2, 1: 0.05, 2: 0.25, 3: 0.5, 4: 0.21}.get(i))

    await asyncio.gather(*(cert(i, q) for i, q in enumerate(queued)))

    # 高危专案: one case per pregnancy that ever had an orange+ grade (opened by screening's consumer); some
    # are managed (an action), some closed in time, late, or lost
    want_cases = sum(k.startswith("pregnancy:") for k in w.followups)
    assert want_cases == sum(grades_seen.values())

    async def all_opened() -> Any:
        got = await list_cases(http, stack, county, "pregnancy_high_risk")
        return got if len(got) == want_cases else None

    try:
        hr = await wait_for(all_opened, timeout=60, interval=0.5) if want_cases else []
    except AssertionError as e:
        raise AssertionError(f"seed {seed}: {want_cases} high-risk cases expected: {e}") from None
    arng = random.Random(seed + 2)
    p = Poster(http, stack, arng, w)
    for case in hr:
        w.case_keys[case["case_id"]] = f"pregnancy:{case['pregnancy_id']}"
        mine = w.followups[f"pregnancy:{case['pregnancy_id']}"]   # as derived, not as listed
        end = w.ended.get(case["pregnancy_id"])
        if end is not None:
            mine.pregnancy_ended(end)   # decision 50; actions dated before the end may still be posted late
        if (mine.status != "open" and not mine.ended_with_pregnancy) or arng.random() < 0.4:
            continue
        assert mine.opened_on is not None
        opened = mine.opened_on
        last = min(end, TODAY) if end is not None else TODAY
        first = opened + timedelta(days=2)
        if first > last:
            continue
        await p.act(case, "contacted", first)
        for dl in w.delivered:
            if dl.pregnancy_id == case["pregnancy_id"]:
                dl.managed = True
        closing_on = opened + timedelta(days=arng.choice([5, 14, 15, 40]))
        if arng.random() < 0.6 and closing_on <= last:
            await p.act(case, arng.choice(["closed", "closed", "lost"]), closing_on, "managed")

    per = periods()
    regions = [county, *(county + f"{t:03d}" for t in (1, 2, 3)),
               *(village(county, t, v) for t in (1, 2, 3) for v in (1, 2))]
    url = f"{stack.url('indicators')}/v1/indicators/values"

    # the follow-up cases as derived from the rules and what was posted (never read back from screening); the
    # service's cases must agree with them (due date, region, status) — a shifted due date fails here by name
    w.cases = list(w.followups.values())

    async def cases_differ() -> list[str]:
        listed = {w.case_keys.get(c["case_id"], c["case_id"]): c for c in await list_cases(http, stack, county)}
        out = [f"{k}: listed {None if c is None else (c['due_on'], c['region_code'], c['status'])} derived "
               f"{None if d is None else (d.due.isoformat(), d.region, d.status)}"
               for k in sorted(set(listed) | set(w.followups))
               for c, d in [(listed.get(k), w.followups.get(k))]
               if c is None or d is None or (c["due_on"], c["region_code"], c["status"]) != (
                   d.due.isoformat(), d.region, d.status)]
        return out

    async def cases_agree() -> bool:
        return not await cases_differ()

    try:
        await wait_for(cases_agree, timeout=30, interval=0.5)
    except AssertionError:
        raise AssertionError(f"seed {seed}: follow-up cases differ from the rules:\n"
                             + "\n".join((await cases_differ())[:20])) from None

    async def mismatches() -> list[str]:
        bad = []
        for key, (start, end) in per.items():
            for region in regions:
                want = {**ref.values(w, region, start, end, TODAY),
                        **refb.exam_values(w.exams, region, start, end)}
                page = await get(http, url, {"region": region, "period": key, "codes": ",".join(want)})
                # numerator, denominator and the value served (the rate, with the catalogue's rounding)
                got = {row["code"]: (row["numerator"], row["denominator"], row["value"]) for row in page["rows"]}
                bad += [f"{key} {region} {c}: got {got.get(c)} want {(*v, expected_value(c, *v))}"
                        for c, v in want.items() if got.get(c) != (*v, expected_value(c, *v))]
        return bad

    # the stories exercise what they claim to: every covered indicator's numerator (and denominator) non-zero
    everything = ref.values(w, county, date(2020, 1, 1), date(TODAY.year, 12, 31), TODAY)
    exams = refb.exam_values(w.exams, county, date(2020, 1, 1), date(TODAY.year, 12, 31))
    assert not [c for c, (n, d) in exams.items() if not n or d == 0], exams
    assert not [c for c, (n, d) in everything.items() if not n or d == 0], (seed, everything)

    print("seed", seed, {k: v for k, v in everything.items()})

    async def settled() -> bool:
        return not await mismatches()

    try:
        await wait_for(settled, timeout=90, interval=0.5)
    except AssertionError:
        bad = await mismatches()
        raise AssertionError(f"seed {seed}: {len(bad)} mismatches, e.g.\n" + "\n".join(bad[:30])) from None
