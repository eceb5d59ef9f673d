"""Screening, follow-up and certificate events through the real consumer into the live values.

Until the screening and certificates services emit them, the test publishes the events those services will
emit (proto/mch/events/v1/screening.proto, certificates.proto) on their topics itself, as their relays do
(key = subject, value = envelope); pregnancies and deliveries go through the real registry API."""
from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from google.protobuf.message import Message
from indicators.domain import catalogue
from indicators.engine import Engine
from kafka import KafkaProducer
from kit.db import Database
from kit.events import NewEvent, envelope
from mch.events.v1 import certificates_pb2 as cert
from mch.events.v1 import screening_pb2 as scr

from tests.conftest import Stack, fresh_county, village
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values, wait_values


def publish(stack: Stack, service: str, events: list[tuple[str, Message, str]]) -> None:
    """(type, payload, subject) → the service's topic, in order."""
    producer = KafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all")
    try:
        for type_, msg, subject in events:
            env = envelope(NewEvent(type_, msg, subject), service)
            producer.send(stack.settings.topic(service), key=subject.encode(), value=env.SerializeToString(),
                          headers=[("event_type", type_.encode())])
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=2)


def screening(key: str, type_: str, on: date, region: str, inst: str, version: int = 1, voided: bool = False,
              **fields: Any) -> tuple[str, Message, str]:
    msg = scr.ScreeningRecorded(screening_key=key, source="lab", screening_id=key.split("/")[-1], version=version,
                                voided=voided, type=type_, performed_on=on.isoformat(), institution_code=inst,
                                institution_region=region, residence_code=region, **fields)
    return "screening.result.recorded", msg, f"screening:{key}"


async def test_screening_followup_and_certificate_events_move_the_counts(http: httpx.AsyncClient,
                                                                        stack: Stack) -> None:
    county = fresh_county()
    home = village(county, 1, 1)
    insts = await setup_institutions(http, stack, county)
    inst = sorted(insts)[0]
    lmp = date(2025, 1, 10)
    case = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", home, inst, lmp,
                        lmp + timedelta(days=270), "hospital", "vaginal", [Baby("F", 3300, "live")])
    await post_case(http, stack, case)
    delivered = case.delivered
    k = uuid.uuid4().hex[:8]
    a, b = f"A{k}", f"B{k}"
    events = [
        # prenatal: an HIV test at labour, a high-risk serum screen, then the same screen voided → 0
        screening(f"lab/hiv{k}", "maternal_infection_test", delivered, home, inst, pregnancy_id=case.pregnancy_id,
                  maternal_infection_test=scr.MaternalInfectionTest(infection="hiv", timing="labour",
                                                                    result="negative")),
        screening(f"lab/s{k}", "prenatal_serum", lmp + timedelta(days=110), home, inst,
                  pregnancy_id=case.pregnancy_id, classification="high_risk",
                  prenatal_serum=scr.PrenatalSerum(t21_risk_n=120)),
        # premarital couple: both named, B's exam corrected (version 2: finding added)
        screening(f"lab/pa{k}", "premarital_exam", date(2025, 3, 1), home, inst, person_id=a, partner_id=b,
                  premarital_exam=scr.PremaritalExam(hiv="negative")),
        screening(f"lab/pb{k}", "premarital_exam", date(2025, 3, 4), home, inst, person_id=b, partner_id=a,
                  premarital_exam=scr.PremaritalExam(hiv="not_done")),
        screening(f"lab/pb{k}", "premarital_exam", date(2025, 3, 4), home, inst, version=2, person_id=b,
                  partner_id=a, premarital_exam=scr.PremaritalExam(
                      hiv="negative", findings=[scr.Finding(code="x", affects_marriage=True)])),
    ]
    followups = [
        ("screening.followup.changed", scr.FollowupCaseChanged(
            case_id=f"K{k}", screening_key=f"lab/s{k}", pregnancy_id=case.pregnancy_id, region_code=home,
            institution_code=inst, opened_on="2025-05-01", due_on="2025-05-31", status=status, version=v,
            closed_on=closed, outcome=outcome,
            actions=[scr.FollowupAction(action=x, on="2025-05-02") for x in acts]), f"followup:K{k}")
        for v, status, closed, outcome, acts in [(2, "closed", "2025-05-20", "treated", ["contacted", "treated"]),
                                                 (1, "open", "", "", [])]   # out of order: v1 after v2
    ]
    certs = [
        ("certificates.certificate.changed", cert.CertificateChanged(
            serial=f"Z{k[:1]}{n:08d}", kind=kind, status=status, institution_code=inst, institution_region=home,
            issued_on=on, voided_on=voided, version=1), f"cert:{n}")
        for n, kind, status, on, voided in [(1, "first", "issued", "2025-10-05", ""),
                                            (2, "reissue", "issued", "2025-10-06", ""),
                                            (3, "first", "voided", "2025-10-06", "2025-10-07")]]
    stock = [("certificates.stock.moved", cert.StockMoved(
        movement_id=f"m{k}{i}", institution_code=inst, institution_region=home, kind=kind, on=on, quantity=q),
        f"stock:{inst}")
        # as the certificates service emits them: 3 drawn for certificates, certificate 3 voided (back out of
        # "issued", into "voided"), one spoiled blank
        for i, (kind, on, q) in enumerate([("allocated", "2025-02-01", 500), ("issued", "2025-10-05", -3),
                                           ("issued", "2025-10-07", 1), ("voided", "2025-10-07", -1),
                                           ("voided", "2025-10-08", -1)])]
    await asyncio.to_thread(publish, stack, "screening", events + followups)
    await asyncio.to_thread(publish, stack, "certificates", certs + stock)

    await wait_values(http, stack, county, "2025", {
        "hiv_test_rate": (1, 1), "prenatal_high_risk_followup_rate": (1, 1),
        "premarital_exam_persons": (2, None), "premarital_exam_couples": (1, None),
        "premarital_disease_rate": (1, 2), "premarital_hiv_test_rate": (2, 2),
        "followup_completion_rate": (1, 1),
        "certs_issued": (2, None), "certs_voided": (2, None), "cert_void_rate": (2, 4),
        # stock: 500 − 3 + 1 − 1 − 1
        "cert_stock_closing": (496, None),
    })
    got = await values(http, stack, county, "2025Q3")
    assert got["cert_stock_closing"] == (500, None) and got["certs_issued"] == (0, None)

    # void the serum screen: the high-risk screen leaves both parts
    await asyncio.to_thread(publish, stack, "screening", [
        screening(f"lab/s{k}", "prenatal_serum", lmp + timedelta(days=110), home, inst, version=2, voided=True,
                  pregnancy_id=case.pregnancy_id, classification="high_risk",
                  prenatal_serum=scr.PrenatalSerum(t21_risk_n=120))])
    await wait_values(http, stack, county, "2025", {"prenatal_high_risk_followup_rate": (0, 0),
                                                    "hiv_test_rate": (1, 1)})

    # reconciliation from stored facts agrees with the incremental counts
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
