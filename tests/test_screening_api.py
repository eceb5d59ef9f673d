"""Screening results through the real stack: registry events make persons and pregnancies known to
screening, results are validated, classified by the versioned rules and open their follow-up cases."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_token, village, wait_for
from tests.helpers import wait_counts  # strict: a missing row is not 0 / 0

CHINA = timezone(timedelta(hours=8))
SOURCE = "his-scr"


def today() -> date:
    return datetime.now(CHINA).date()


@dataclass
class Family:
    """A mother (registered with her pregnancy) and the child of its delivery, as the registry knows them."""

    county: str
    institution: str
    pregnancy_id: str
    mother_id: str
    child_id: str
    lmp: date
    born: date


async def institution(http: httpx.AsyncClient, stack: Stack, county: str) -> str:
    code = f"S{county}{uuid.uuid4().hex[:4]}"
    r = await http.put(f"{stack.url('registry')}/v1/institutions/{code}", json={
        "name": f"妇幼保健院{code}", "region_code": village(county), "kind": "mch_centre", "midwifery_licensed": True})
    assert r.status_code in (200, 201), r.text
    return code


async def pregnancy(http: httpx.AsyncClient, stack: Stack, county: str, inst: str, born_days_ago: int = 20,
                    township: int = 1) -> Family:
    """A mother registered with her pregnancy (建册); `born` is the day `deliver` will post."""
    born = today() - timedelta(days=born_days_ago)
    lmp = born - timedelta(days=275)
    pid = f"P-{uuid.uuid4().hex[:12]}"
    r = await http.post(f"{stack.url('registry')}/v1/pregnancies", json={
        "pregnancy_id": pid, "source": SOURCE,
        "mother": {"name": "测试孕妇", "sex": "F", "birth_date": "1994-05-06",
                   "residence_code": village(county, township)},
        "lmp_date": lmp.isoformat(), "registered_on": (lmp + timedelta(days=60)).isoformat(),
        "institution_code": inst})
    assert r.status_code == 201, r.text
    return Family(county, inst, pid, r.json()["mother_id"], "", lmp, born)


async def deliver(http: httpx.AsyncClient, stack: Stack, f: Family) -> Family:
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": SOURCE, "type": "delivery",
        "occurred_at": f"{f.born.isoformat()}T10:00:00+08:00", "institution_code": f.institution,
        "subject_id": f.pregnancy_id, "place": "hospital", "mode": "vaginal",
        "babies": [{"sex": "M", "birth_weight_g": 3300, "outcome": "live"}]})
    assert r.status_code == 201, r.text
    f.child_id = r.json()["children"][0]
    return f


async def family(http: httpx.AsyncClient, stack: Stack, county: str, inst: str, born_days_ago: int = 20,
                 township: int = 1) -> Family:
    """A mother (registered with her pregnancy) and the child of its delivery, as the registry knows them."""
    return await deliver(http, stack, await pregnancy(http, stack, county, inst, born_days_ago, township))


def body(t: str, subject: str, inst: str, on: date, **fields: Any) -> dict[str, Any]:
    return {"screening_id": f"S-{uuid.uuid4().hex[:12]}", "source": SOURCE, "type": t, "subject_id": subject,
            "performed_on": on.isoformat(), "institution_code": inst, **fields}


def _not_yet_known(r: httpx.Response) -> bool:
    return r.status_code == 422 and any("not known to screening" in e["reason"] or "unknown institution" in
                                        e["reason"] for e in r.json().get("errors", []))


async def post(http: httpx.AsyncClient, stack: Stack, b: dict[str, Any], headers: dict[str, str] | None = None,
               ) -> httpx.Response:
    """POST a result, waiting while its subject / institution is not yet known to screening (registry
    events still on their way); any other answer is returned as is."""
    url = f"{stack.url('screening')}/v1/screenings"

    async def attempt() -> httpx.Response | None:
        r = await http.post(url, json=b, headers=headers)
        return None if _not_yet_known(r) else r

    r: httpx.Response = await wait_for(attempt, 30)
    return r


async def known(http: httpx.AsyncClient, stack: Stack, f: Family) -> None:
    """Wait until screening knows the family (a harmless valid result on each subject)."""
    r = await post(http, stack, body("maternal_infection_test", f.pregnancy_id, f.institution, f.lmp + timedelta(60),
                                     infection="hbsag", timing="pregnancy", result="negative"))
    assert r.status_code == 201, r.text
    r = await post(http, stack, body("hbig", f.child_id, f.institution, f.born, hours_after_birth=2))
    assert r.status_code == 201, r.text


async def test_every_result_type_is_classified_by_the_rules_and_opens_its_case(
        http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst)
    older = await family(http, stack, county, inst, born_days_ago=200)
    await known(http, stack, f)
    await known(http, stack, older)
    d = f.lmp + timedelta(days=16 * 7)
    cases: list[tuple[dict[str, Any], str, date | None]] = [
        (body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="1/270", t18_risk="1/9000", ntd_risk="low"),
         "high_risk", d + timedelta(14)),
        (body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="1/271", t18_risk="1/9000", ntd_risk="low"),
         "intermediate_risk", None),
        (body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="1/5000", t18_risk="1/351", ntd_risk="low"),
         "normal", None),
        (body("cfdna", f.pregnancy_id, inst, d, result="high_risk"), "high_risk", d + timedelta(14)),
        (body("maternal_infection_test", f.pregnancy_id, inst, f.born, infection="syphilis", timing="labour",
              result="positive"), "positive", f.born + timedelta(7)),
        (body("hbig", f.child_id, inst, f.born + timedelta(1), hours_after_birth=30), "late", None),
        (body("newborn_metabolic", f.child_id, inst, f.born + timedelta(3),
              conditions={"pku": "negative", "ch": "positive", "g6pd": "negative"}),
         "positive", f.born + timedelta(10)),
        (body("newborn_metabolic", f.child_id, inst, f.born + timedelta(3),
              conditions={"pku": "negative", "ch": "negative"}), "normal", None),
        (body("newborn_hearing", f.child_id, inst, f.born + timedelta(2), round="initial", result="refer"),
         "refer", f.born + timedelta(42)),
        (body("newborn_hearing", f.child_id, inst, f.born + timedelta(2), round="initial", result="pass"),
         "normal", None),
        (body("premarital_exam", f.mother_id, inst, f.lmp - timedelta(100), partner_id=older.mother_id,
              findings=[{"code": "congenital_heart_disease", "affects_marriage": True}], hiv="negative",
              syphilis="negative", hbsag="not_done"), "abnormal", f.lmp - timedelta(70)),
        (body("prepregnancy_exam", f.mother_id, inst, f.lmp - timedelta(50), at_risk=True,
              risk_factors=["anaemia"]), "at_risk", f.lmp - timedelta(20)),
        (body("cervical", f.mother_id, inst, f.born + timedelta(10), method="hpv", result="abnormal",
              detail="HPV16"), "abnormal", f.born + timedelta(40)),
        (body("breast", f.mother_id, inst, f.born + timedelta(10), method="ultrasound", birads=3),
         "probably_benign", None),
        (body("breast", f.mother_id, inst, f.born + timedelta(10), method="mammography", birads=4),
         "abnormal", f.born + timedelta(40)),
        (body("thalassaemia", f.mother_id, inst, f.lmp + timedelta(70), partner_id=older.mother_id,
              result="carrier"), "carrier", f.lmp + timedelta(100)),
        (body("nutrition_pack", older.child_id, inst, older.born + timedelta(190), packs=30), "normal", None),
    ]
    for b, classification, due in cases:
        r = await post(http, stack, b)
        assert r.status_code == 201, (b["type"], r.text)
        out = r.json()
        assert (out["type"], out["classification"]) == (b["type"], classification)
        assert out["rule_version"] == "screening-rules-2026.1"
        if due is None:
            assert out["followup"] is None, b
        else:
            case = out["followup"]
            assert (case["status"], case["due_on"], case["reason"]) == ("open", due.isoformat(), classification)
            assert case["region_code"] == village(county)
    # the batch endpoint answers per item; a bad item does not reject its neighbours
    good = body("newborn_hearing", f.child_id, inst, f.born + timedelta(3), round="rescreen", result="pass")
    bad = body("newborn_hearing", f.mother_id, inst, f.born + timedelta(3), round="rescreen", result="pass")
    r = await http.post(f"{stack.url('screening')}/v1/screenings:batch", json=[good, bad, good])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["status"] for i in items] == [201, 422, 200]
    assert items[1]["errors"][0]["field"] == "subject_id"


async def test_bad_results_are_refused_naming_the_field_and_change_nothing(
        http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst)
    await known(http, stack, f)
    d = f.lmp + timedelta(days=16 * 7)
    refused: list[tuple[dict[str, Any], str, str]] = [
        # a newborn screen on an adult
        (body("newborn_metabolic", f.mother_id, inst, d, conditions={"pku": "negative", "ch": "negative"}),
         "subject_id", "infants"),
        # a pregnancy test for a person (no pregnancy named)
        (body("prenatal_serum", f.mother_id, inst, d, t21_risk="1/900", t18_risk="1/900", ntd_risk="low"),
         "subject_id", "pregnancy"),
        # a risk ratio that is not a ratio
        (body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="0.0037", t18_risk="1/900", ntd_risk="low"),
         "t21_risk", "1/N"),
        (body("prenatal_serum", f.pregnancy_id, inst, f.born, t21_risk="1/90", t18_risk="1/900", ntd_risk="low"),
         "performed_on", "weeks"),
        (body("cfdna", f"P-{uuid.uuid4().hex[:8]}", inst, d, result="low_risk"), "subject_id", "unknown pregnancy"),
        (body("cfdna", f.pregnancy_id, "NO-SUCH-INST", d, result="low_risk"), "institution_code", "unknown"),
        (body("cfdna", f.pregnancy_id, inst, today() + timedelta(1), result="low_risk"), "performed_on", "future"),
        (body("cervical", f.child_id, inst, f.born + timedelta(1), method="hpv", result="normal"), "subject_id",
         "women"),
        (body("thalassaemia", f.mother_id, inst, d, partner_id=f.mother_id, result="carrier"), "partner_id",
         "another"),
        (body("hbig", f.child_id, inst, f.born, hours_after_birth=100), "hours_after_birth", "does not fit"),
        (body("newborn_hearing", f.child_id, inst, f.born, round="third", result="pass"), "round", ""),
        (body("breast", f.mother_id, inst, d, method="ultrasound", birads=9), "birads", ""),
    ]
    for b, field, words in refused:
        r = await http.post(f"{stack.url('screening')}/v1/screenings", json=b)
        assert r.status_code == 422, (b, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        errs = r.json()["errors"]
        assert any(e["field"] == field and words in e["reason"] for e in errs), (field, errs)
        g = await http.get(f"{stack.url('screening')}/v1/screenings/{SOURCE}/{b['screening_id']}")
        assert g.status_code == 404


async def indicator_codes(http: httpx.AsyncClient, stack: Stack) -> set[str]:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators")
    assert r.status_code == 200, r.text
    rows = r.json()
    rows = rows.get("indicators", rows) if isinstance(rows, dict) else rows
    return {row["code"] for row in rows}


async def test_idempotency_correction_and_void(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst)
    await known(http, stack, f)
    d = f.lmp + timedelta(days=17 * 7)
    b = body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="1/150", t18_risk="1/9000", ntd_risk="low")
    first = (await post(http, stack, b)).json()
    case_id = first["followup"]["case_id"]
    followed = "prenatal_high_risk_followup_rate" in await indicator_codes(http, stack)
    if followed:  # one high-risk prenatal screen, not yet contacted
        await wait_counts(http, stack, county, str(d.year), {"prenatal_high_risk_followup_rate": (0, 1)})
    url = f"{stack.url('screening')}/v1/screenings"
    again = await http.post(url, json=b)  # a HIS retry
    assert again.status_code == 200 and again.json()["version"] == 1
    assert again.json()["followup"]["case_id"] == case_id
    r = await http.post(url, json={**b, "t21_risk": "1/3000"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "version"
    # corrected to normal: the case is closed with a reason, not deleted
    r = await http.post(url, json={**b, "version": 2, "t21_risk": "1/3000"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["classification"], out["version"]) == ("normal", 2)
    assert out["followup"]["case_id"] == case_id
    assert out["followup"]["status"] == "closed"
    assert out["followup"]["closed_reason"] == "result corrected to normal"
    c = await http.get(f"{stack.url('screening')}/v1/followups/{case_id}")
    assert c.status_code == 200 and c.json()["status"] == "closed" and c.json()["outcome"] is None
    if followed:  # the indicators follow: no high-risk screen any more
        await wait_counts(http, stack, county, str(d.year), {"prenatal_high_risk_followup_rate": (0, 0)})
    # corrected back to high risk: the same case opens again
    r = await http.post(url, json={**b, "version": 3, "t21_risk": "1/200"})
    assert r.json()["followup"]["case_id"] == case_id and r.json()["followup"]["status"] == "open"
    # a correction cannot move the result to another type
    r = await http.post(url, json={**b, "version": 4, "type": "cfdna", "result": "low_risk"})
    assert r.status_code in (409, 422)
    # void: history kept, its open case closed with the reason
    r = await http.request("DELETE", f"{url}/{SOURCE}/{b['screening_id']}", json={"reason": "wrong patient"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "voided" and r.json()["followup"]["closed_reason"] == "result voided: wrong patient"
    g = (await http.get(f"{url}/{SOURCE}/{b['screening_id']}")).json()
    assert [h["version"] for h in g["history"]] == [1, 2, 3, 4]
    assert [h["classification"] for h in g["history"]] == ["high_risk", "normal", "high_risk", "high_risk"]
    assert g["history"][-1]["voided"] is True
    r = await http.post(url, json={**b, "version": 5})
    assert r.status_code == 409


async def test_scopes_and_regions(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst)
    await known(http, stack, f)
    url = f"{stack.url('screening')}/v1/screenings"
    b = body("newborn_hearing", f.child_id, inst, f.born + timedelta(1), round="initial", result="pass")
    async with httpx.AsyncClient() as anonymous:
        r = await anonymous.post(url, json=b)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    reader = await make_token(stack, ["screening:read"], county)
    r = await http.post(url, json=b, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403
    elsewhere = await make_token(stack, ["screening:write", "screening:read"], "11")
    r = await http.post(url, json=b, headers={"Authorization": f"Bearer {elsewhere}"})
    # an institution outside the caller's region is answered like an unknown one
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "institution_code", r.text
    r = await http.get(f"{stack.url('screening')}/v1/followups", params={"region": county},
                       headers={"Authorization": f"Bearer {elsewhere}"})
    assert r.status_code == 403
    writer = await make_token(stack, ["screening:write", "screening:read"], county)
    r = await http.post(url, json={**b, "note": "家长王某拒绝复筛"}, headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 201, r.text
    # free-text notes are masked without pii:read
    masked = await http.get(f"{url}/{SOURCE}/{b['screening_id']}", headers={"Authorization": f"Bearer {reader}"})
    assert masked.status_code == 200 and masked.json()["note"] == "***"
    assert masked.json()["history"][0]["result"]["note"] == "***"
    full = await http.get(f"{url}/{SOURCE}/{b['screening_id']}")
    assert full.json()["note"] == "家长王某拒绝复筛"
    r = await http.get(f"{url}/{SOURCE}/{b['screening_id']}", headers={"Authorization": f"Bearer {elsewhere}"})
    assert r.status_code == 404 and county not in r.text  # as if it did not exist


async def test_rules_are_published_and_batches_are_bounded(http: httpx.AsyncClient, stack: Stack) -> None:
    r = await http.get(f"{stack.url('screening')}/v1/rules")
    assert r.status_code == 200, r.text
    rules = r.json()
    assert rules["current"] == "screening-rules-2026.1"
    serum = rules["sets"][0]["types"]["prenatal_serum"][0]
    assert serum["classification"] == "high_risk" and {"fact": "t21_risk_n", "between": [1, 270]} in \
        serum["when"]["any"]
    r = await http.post(f"{stack.url('screening')}/v1/screenings:batch", json=[{}] * 1001)
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body"
    doc = (await http.get(f"{stack.url('screening')}/openapi.json")).json()
    assert {"/v1/screenings", "/v1/screenings:batch", "/v1/followups", "/v1/followups/{case_id}/actions"} <= \
        set(doc["paths"])
