"""Screening, follow-up and certificate records posted through the real screening and certificates APIs, whose
events those services emit themselves flow through the real consumer into the live values — so a drift between
what a service emits and what the indicators read fails here (no event is made up by the test)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
from certificates.tests.stack_helpers import births, issue, new_prefix, office, prepare, stock, void, wait_known
from indicators.domain import catalogue
from indicators.engine import Engine
from kit.db import Database

from tests.conftest import Stack, fresh_county, village
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, wait_counts
from tests.test_screening_api import body, post

CHINA = timezone(timedelta(hours=8))


async def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return dict(r.json())


async def _screen(http: httpx.AsyncClient, stack: Stack, b: dict[str, Any]) -> dict[str, Any]:
    return await _ok(await post(http, stack, b))


async def test_screening_and_followup_records_move_the_counts(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    home = village(county, 1, 1)
    insts = await setup_institutions(http, stack, county)
    inst = sorted(insts)[0]
    lmp = date(2025, 1, 10)
    case = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", home, inst, lmp,
                        lmp + timedelta(days=270), "hospital", "vaginal", [Baby("F", 3300, "live")])
    await post_case(http, stack, case)
    delivered = case.delivered
    # prenatal: an HIV test at labour, a high-risk serum screen (T21 1/120) contacted and closed in time
    await _screen(http, stack, body("maternal_infection_test", case.pregnancy_id, inst, delivered, infection="hiv",
                                    timing="labour", result="negative"))
    serum_on = lmp + timedelta(days=110)
    serum = body("prenatal_serum", case.pregnancy_id, inst, serum_on, t21_risk="1/120", t18_risk="1/10000",
                 ntd_risk="low")
    followup = (await _screen(http, stack, serum))["followup"]
    assert followup is not None
    for action, on, extra in (("contacted", serum_on + timedelta(2), {}),
                              ("closed", serum_on + timedelta(10), {"outcome": "diagnosed_normal"})):
        await _ok(await http.post(f"{stack.url('screening')}/v1/followups/{followup['case_id']}/actions",
                                  json={"action": action, "on": on.isoformat(), **extra}))
    # a premarital couple: both named; B's exam corrected (version 2: a finding affecting marriage, HIV tested)
    persons = []
    for sex, born in (("F", "1996-04-04"), ("M", "1995-05-05")):
        r = await _ok(await http.post(f"{stack.url('registry')}/v1/persons", json={
            "name": "测试", "sex": sex, "birth_date": born, "residence_code": home}))
        persons.append(r["person_id"])
    a, b = persons
    exam_a = body("premarital_exam", a, inst, date(2025, 3, 1), partner_id=b, findings=[], hiv="negative",
                  syphilis="negative", hbsag="negative")
    exam_b = body("premarital_exam", b, inst, date(2025, 3, 4), partner_id=a, findings=[], hiv="not_done",
                  syphilis="negative", hbsag="negative")
    await _screen(http, stack, exam_a)
    await _screen(http, stack, exam_b)
    await _screen(http, stack, {**exam_b, "version": 2, "hiv": "negative",
                                "findings": [{"code": "x", "affects_marriage": True}]})
    # follow-up cases due in 2025, from the rules: the serum case (14 days, closed with an outcome in time) and
    # B's abnormal premarital exam (30 days, never acted on)
    await wait_counts(http, stack, county, "2025", {
        "hiv_test_rate": (1, 1), "prenatal_high_risk_followup_rate": (1, 1),
        "premarital_exam_persons": (2, None), "premarital_exam_couples": (1, None),
        "premarital_disease_rate": (1, 2), "premarital_hiv_test_rate": (2, 2),
        "followup_completion_rate": (1, 2)})

    # void the serum screen: the high-risk screen leaves both parts; its case was closed by its own actions
    # before the void, so it stays due (and completed)
    voided = await http.request("DELETE", f"{stack.url('screening')}/v1/screenings/{serum['source']}/"
                                f"{serum['screening_id']}", json={"reason": "entered in error"})
    assert voided.status_code == 200, voided.text
    await wait_counts(http, stack, county, "2025", {"prenatal_high_risk_followup_rate": (0, 0),
                                                    "hiv_test_rate": (1, 1), "followup_completion_rate": (1, 2)})
    await _reconciled(stack, county)


async def test_certificate_records_move_the_counts(http: httpx.AsyncClient, stack: Stack) -> None:
    """Certificates are dated when they are issued (no back-dating): their counts land in today's year."""
    county = fresh_county()
    reg, certs = stack.url("registry"), stack.url("certificates")
    o = await office(http, reg, certs, village(county, 1, 1), stack.settings)
    today = datetime.now(CHINA).date()
    born = today - timedelta(days=2)
    kids = await births(http, reg, o.code, village(county, 1, 1), 3, born)
    s = stack.settings
    await wait_known(f"postgresql://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/{s.database('certificates')}", kids)
    first_serial, last_serial = await stock(http, certs, o, new_prefix(), 1, 10, today)
    await issue(http, certs, o, kids[0])
    old = await issue(http, certs, o, kids[1])
    await issue(http, certs, o, kids[1], "reissue", previous_serial=old["serial"])   # 补发: the first superseded
    spoiled = await _ok(await prepare(http, certs, o, kids[2]))                       # 废证 while printing
    await _ok(await void(http, certs, o, spoiled["serial"], "印错"))
    await _ok(await void(http, certs, o, last_serial, "污损", blank=True))           # a spoiled blank
    # 10 received; 4 drawn (3 issued, 1 voided after printing), 1 spoiled in stock
    issued, voided = 3, 2
    await wait_counts(http, stack, county, str(today.year), {
        "certs_issued": (issued, None), "certs_first": (2, None), "certs_reissued": (1, None),
        "certs_superseded": (1, None), "certs_voided": (voided, None), "cert_void_rate": (voided, issued + voided),
        "cert_stock_closing": (10 - 4 - 1, None)})
    await wait_counts(http, stack, county, str(born.year), {"cert_first_issue_rate": (2, 3)})
    assert first_serial < last_serial
    await _reconciled(stack, county)


async def _reconciled(stack: Stack, county: str) -> None:
    """Reconciliation from the stored facts agrees with the incremental counts."""
    db = Database.for_service(stack.settings, "indicators", pool_size=1)
    try:
        async with db.connect() as conn:
            diffs = await Engine(catalogue.load()).reconcile(conn)
    finally:
        await db.dispose()
    assert [x for x in diffs if str(x["region"]).startswith(county)] == []


async def test_catalogue_serves_parameters_and_every_section(http: httpx.AsyncClient, stack: Stack) -> None:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators")
    assert r.status_code == 200
    doc = r.json()
    assert doc["parameters"]["hbig_hours"] == 24
    sections = {i["section"] for i in doc["indicators"]}
    assert {"maternal", "child", "women", "certificates"} <= sections
    hbig = next(i for i in doc["indicators"] if i["code"] == "hbig_rate")
    assert ["hbig_hours", "<=", 24] in hbig["numerator"]["where"] and hbig["name_zh"]
