"""HL7 FHIR R4 intake: one woman's pregnancy — booking, two antenatal visits (a risk grade), a caesarean twin
delivery (one live, one stillborn), a postpartum visit and the newborn's visit — posted once through REST in
county A and once as a FHIR transaction Bundle in county B gives the same figures in both counties; the Bundle
posted again changes nothing; a Bundle with one bad entry writes nothing and names the entry."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from registry.domain import fhir

from tests.conftest import Stack, fresh_county, village, wait_for
from tests.helpers import setup_institutions, values
from tests.test_registry_persons import id_number

pytestmark = pytest.mark.stack
YEAR = date.today().year - 1
LMP = date(YEAR, 1, 10)


def _when(days: int) -> str:
    return f"{(LMP + timedelta(days=days)).isoformat()}T09:00:00+08:00"


def rest_posts(county: str, inst: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The pregnancy, its encounters and the newborn visit (subject filled in once the child is known)."""
    u = uuid.uuid4().hex[:10]
    mother = {"id_number": id_number(date(1995, 3, 4), "F"), "name": "王晓丽", "sex": "F", "birth_date": "1995-03-04",
              "residence_code": village(county, 2, 3), "phone": "13912345678"}
    preg = {"pregnancy_id": f"P-{u}", "source": "his-fhir", "mother": mother, "lmp_date": LMP.isoformat(),
            "registered_on": (LMP + timedelta(days=70)).isoformat(), "institution_code": inst}
    common = {"source": "his-fhir", "institution_code": inst, "subject_id": f"P-{u}"}
    encs = [
        {**common, "encounter_id": f"V1-{u}", "type": "prenatal_visit", "occurred_at": _when(70),
         "gestational_weeks": 10.0, "risk_grade": "yellow"},
        {**common, "encounter_id": f"V2-{u}", "type": "prenatal_visit", "occurred_at": _when(150),
         "gestational_weeks": 21.4},
        {**common, "encounter_id": f"D-{u}", "type": "delivery", "occurred_at": _when(270), "place": "hospital",
         "mode": "caesarean", "babies": [{"sex": "F", "birth_weight_g": 2450, "outcome": "live"},
                                          {"sex": "M", "birth_weight_g": 2100, "outcome": "stillbirth"}]},
        {**common, "encounter_id": f"PP-{u}", "type": "postpartum_visit", "occurred_at": _when(277)},
    ]
    newborn = {"source": "his-fhir", "institution_code": inst, "encounter_id": f"NB-{u}", "type": "newborn_visit",
               "occurred_at": _when(278), "weight_kg": 2.6, "height_cm": 47.0, "feeding": "exclusive_breastfeeding"}
    return preg, encs, newborn


def _ident(value: str) -> list[dict[str, Any]]:
    return [{"system": f"{fhir.SOURCE}his-fhir", "value": value}]


def _inst(code: str) -> dict[str, Any]:
    return {"identifier": {"system": fhir.INSTITUTION, "value": code}}


def _quantity(v: float, unit: str) -> dict[str, Any]:
    return {"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def bundle(preg: dict[str, Any], encs: list[dict[str, Any]], newborn: dict[str, Any]) -> dict[str, Any]:
    """The same records as a FHIR transaction Bundle, built from the REST bodies by the FHIR rules."""
    m = preg["mother"]
    res: list[tuple[str, dict[str, Any]]] = [
        ("urn:uuid:mother", {"resourceType": "Patient", "identifier": [{"system": fhir.RESIDENT_ID,
                                                                        "value": m["id_number"]}],
                             "name": [{"text": m["name"]}], "gender": "female", "birthDate": m["birth_date"],
                             "telecom": [{"system": "phone", "value": m["phone"]}],
                             "address": [{"extension": [{"url": fhir.REGION, "valueCode": m["residence_code"]}]}]}),
        ("urn:uuid:episode", {"resourceType": "EpisodeOfCare", "status": "active",
                              "identifier": _ident(preg["pregnancy_id"]), "patient": {"reference": "urn:uuid:mother"},
                              "period": {"start": preg["registered_on"]},
                              "managingOrganization": _inst(preg["institution_code"]),
                              "extension": [{"url": fhir.LMP, "valueDate": preg["lmp_date"]}]}),
    ]
    for k, e in enumerate(encs):
        url = f"urn:uuid:enc{k}"
        res.append((url, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                          "identifier": _ident(e["encounter_id"]),
                          "type": [{"coding": [{"system": fhir.ENCOUNTER_TYPE, "code": e["type"]}]}],
                          "period": {"start": e["occurred_at"]}, "serviceProvider": _inst(e["institution_code"]),
                          "episodeOfCare": [{"reference": "urn:uuid:episode"}],
                          **({"extension": [{"url": fhir.DELIVERY_PLACE, "valueCode": e["place"]}]}
                             if e["type"] == "delivery" else {})}))
        if "gestational_weeks" in e:
            res.append((f"urn:uuid:ga{k}", _obs(url, "11884-4", _quantity(e["gestational_weeks"], "wk"))))
        if "risk_grade" in e:
            grade = {"coding": [{"system": fhir.RISK_GRADE, "code": e["risk_grade"]}]}
            res.append((f"urn:uuid:risk{k}", {"resourceType": "Condition", "subject": {"reference": "urn:uuid:mother"},
                                              "encounter": {"reference": url}, "code": grade}))
        if e["type"] == "delivery":
            snomed = {v: c for c, v in fhir.DELIVERY_MODES.items()}[e["mode"]]
            mode = {"coding": [{"system": fhir.SNOMED, "code": snomed}]}
            res.append((f"urn:uuid:mode{k}", {"resourceType": "Procedure", "status": "completed",
                                              "subject": {"reference": "urn:uuid:mother"},
                                              "encounter": {"reference": url}, "code": mode}))
            for b, baby in enumerate(e["babies"]):
                child = f"urn:uuid:baby{b}"
                res.append((child, {"resourceType": "Patient", "gender": {"F": "female", "M": "male"}[baby["sex"]],
                                    "birthDate": e["occurred_at"][:10],
                                    "deceasedBoolean": baby["outcome"] == "stillbirth"}))
                res.append((f"urn:uuid:bw{b}", {**_obs(url, fhir.BIRTH_WEIGHT, _quantity(baby["birth_weight_g"], "g")),
                                                "subject": {"reference": child}}))
    res.append(("urn:uuid:nbv", {"resourceType": "Encounter", "status": "finished", "class": {"code": "HH"},
                                 "identifier": _ident(newborn["encounter_id"]),
                                 "type": [{"coding": [{"system": fhir.ENCOUNTER_TYPE, "code": "newborn_visit"}]}],
                                 "period": {"start": newborn["occurred_at"]},
                                 "serviceProvider": _inst(newborn["institution_code"]),
                                 "subject": {"reference": "urn:uuid:baby0"}}))
    res.append(("urn:uuid:nbw", _obs("urn:uuid:nbv", "29463-7", _quantity(newborn["weight_kg"], "kg"))))
    res.append(("urn:uuid:nbh", _obs("urn:uuid:nbv", "8302-2", _quantity(newborn["height_cm"], "cm"))))
    res.append(("urn:uuid:nbf", {"resourceType": "Observation", "status": "final", "code": {"text": "喂养方式"},
                                 "encounter": {"reference": "urn:uuid:nbv"},
                                 "valueCodeableConcept": {"coding": [{"system": fhir.FEEDING,
                                                                      "code": newborn["feeding"]}]}}))
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": u, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
                      for u, r in res]}


def _obs(encounter: str, loinc: str, q: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "encounter": {"reference": encounter},
            "code": {"coding": [{"system": fhir.LOINC, "code": loinc}]}, "valueQuantity": q}


async def figures(http: httpx.AsyncClient, stack: Stack, county: str) -> dict[str, Any]:
    """The records' figures (the quality scores come from the quality service's own evaluation, on its own
    schedule, and are tested on their own: tests/test_quality_scores.py)."""
    return {c: v for c, v in (await values(http, stack, county, str(YEAR))).items() if not c.startswith("quality_")}


async def test_a_fhir_bundle_counts_as_the_same_rest_posts(http: httpx.AsyncClient, stack: Stack) -> None:
    reg = stack.url("registry")
    a, b = fresh_county(), fresh_county()
    inst_a = sorted(await setup_institutions(http, stack, a))[0]
    inst_b = sorted(await setup_institutions(http, stack, b))[0]

    preg, encs, newborn = rest_posts(a, inst_a)
    assert (await http.post(f"{reg}/v1/pregnancies", json=preg)).status_code == 201
    r = await http.post(f"{reg}/v1/encounters:batch", json=encs)
    assert r.json()["accepted"] == len(encs), r.text
    child = next(i["children"][0] for i in r.json()["items"] if i.get("children"))
    r = await http.post(f"{reg}/v1/encounters", json={**newborn, "subject_id": child})
    assert r.status_code == 201, r.text

    preg_b, encs_b, newborn_b = rest_posts(b, inst_b)
    doc = bundle(preg_b, encs_b, newborn_b)
    r = await http.post(f"{reg}/fhir/r4", json=doc, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["type"] == "transaction-response" and len(answer["entry"]) == len(doc["entry"])
    assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}, [
        (doc["entry"][i]["fullUrl"], e) for i, e in enumerate(answer["entry"]) if "outcome" in e["response"]]
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert f"EpisodeOfCare/his-fhir/{preg_b['pregnancy_id']}" in locations
    newborn_loc = locations[[e["fullUrl"] for e in doc["entry"]].index("urn:uuid:baby0")]
    r = await http.get(f"{reg}/v1/{newborn_loc.replace('Patient/', 'persons/')}")
    assert r.status_code == 200 and r.json()["sex"] == "F"

    want = await wait_for(lambda: _settled(http, stack, a), 90)
    got = await wait_for(lambda: _same(http, stack, b, want), 90)
    assert got == want and want["live_births"] == (1, None) and want["caesarean_rate"] == (1, 1)

    # the same Bundle again: recorded already, nothing changes
    r = await http.post(f"{reg}/fhir/r4", json=doc, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200 and {e["response"]["status"] for e in r.json()["entry"]} <= {"200 OK", "201 Created"}
    assert await figures(http, stack, b) == want


async def _settled(http: httpx.AsyncClient, stack: Stack, county: str) -> dict[str, Any] | None:
    f = await figures(http, stack, county)
    return f if f.get("live_births") == (1, None) and f.get("newborn_visit_rate", (0, 0))[0] == 1 else None


async def _same(http: httpx.AsyncClient, stack: Stack, county: str, want: dict[str, Any]) -> dict[str, Any] | None:
    f = await figures(http, stack, county)
    return f if f == want else None


async def test_a_refused_transaction_writes_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    reg = stack.url("registry")
    c = fresh_county()
    inst = sorted(await setup_institutions(http, stack, c))[0]
    preg, encs, newborn = rest_posts(c, inst)
    doc = bundle(preg, encs, newborn)
    bad = next(i for i, e in enumerate(doc["entry"]) if e["fullUrl"] == "urn:uuid:bw0")
    doc["entry"][bad]["resource"]["valueQuantity"] = _quantity(2.45, "kg")   # a birth weight not in grams
    r = await http.post(f"{reg}/fhir/r4", json=doc)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == f"entry[{bad}].resource.valueQuantity"
    assert (await http.get(f"{reg}/v1/pregnancies/{preg['pregnancy_id']}")).status_code == 404
    # a delivery whose institution is another county's is refused like an unknown one, and nothing is written
    doc = bundle(preg, encs, newborn)
    other = sorted(await setup_institutions(http, stack, fresh_county()))[0]
    limited = await _county_token(stack, c)
    doc["entry"][1]["resource"]["managingOrganization"] = _inst(other)
    r = await http.post(f"{reg}/fhir/r4", json=doc, headers={"Authorization": f"Bearer {limited}"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("entry[1].resource.")
    assert (await http.get(f"{reg}/v1/pregnancies/{preg['pregnancy_id']}")).status_code == 404
    r = await http.post(f"{reg}/fhir/r4", json={"resourceType": "Patient"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "resourceType"


async def _county_token(stack: Stack, county: str) -> str:
    from tests.conftest import make_token
    return await make_token(stack, ["registry:read", "registry:write"], county)


async def test_capability_statement(http: httpx.AsyncClient, stack: Stack) -> None:
    r = await httpx.AsyncClient().get(f"{stack.url('registry')}/fhir/r4/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    assert doc["resourceType"] == "CapabilityStatement" and doc["fhirVersion"] == "4.0.1"
    assert {x["type"] for x in doc["rest"][0]["resource"]} == set(fhir.RESOURCES)


def _match_params(p: dict[str, Any], **extra: Any) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "name": [{"text": p["name"]}], "gender": "female",
               "birthDate": p["birth_date"], "telecom": [{"system": "phone", "value": p["phone"]}],
               "address": [{"extension": [{"url": fhir.REGION, "valueCode": p["residence_code"]}]}]}
    return {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient},
                                                         *[{"name": k, **v} for k, v in extra.items()]]}


async def test_match_grades_a_typod_patient(http: httpx.AsyncClient, stack: Stack) -> None:
    """IHE PDQm $match: the registry's woman is found for a Patient whose name is written with another character
    (晓/小) and whose phone has two digits swapped, graded as the stored model grades the pair; another county's
    caller finds nothing of her."""
    from tests.test_person_matching import MODEL, keys, woman

    county = fresh_county()
    her = woman(county)
    r = await http.post(f"{stack.url('registry')}/v1/persons", json=her)
    assert r.status_code == 201, r.text
    pid = r.json()["person_id"]
    typo = {**her, "name": her["name"][0] + "小丽", "phone": her["phone"][:-2] + her["phone"][-1] + her["phone"][-2]}
    want = MODEL.grade(MODEL.weight(keys(her), keys(typo)))
    assert want in ("certain", "probable")
    url = f"{stack.url('registry')}/fhir/r4/Patient/$match"
    r = await http.post(url, json=_match_params(typo))
    assert r.status_code == 200, r.text
    found = {e["resource"]["id"]: e["search"] for e in r.json()["entry"]}
    assert pid in found and found[pid]["extension"][0]["valueCode"] == want
    assert 0 < found[pid]["score"] <= 1 and "name" not in r.json()["entry"][0]["resource"]   # no personal data
    other = await _county_token(stack, fresh_county())
    r = await http.post(url, json=_match_params(typo), headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200 and pid not in {e["resource"]["id"] for e in r.json()["entry"]}
    r = await http.post(url, json={"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 3}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parameter.resource"
