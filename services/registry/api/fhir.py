"""HL7 FHIR R4 endpoints of the registry: the intake of transaction Bundles, and the CapabilityStatement that says
what it takes (built and checked with fhir.resources)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from kit.auth import Principal, require
from kit.scope import Scope

from registry import fhir_intake, person_matching
from registry.domain import fhir

router = APIRouter(prefix="/fhir/r4", tags=["fhir"])
FHIR_JSON = "application/fhir+json"


@router.post("", summary="FHIR R4 intake: a transaction (all or nothing) or batch Bundle of Patient, "
             "EpisodeOfCare, Encounter, Observation, Condition and Procedure",
             description="Mapped onto the same use cases as POST /v1/persons, /v1/pregnancies and /v1/encounters "
             "(same validation, same idempotency through the records' identifiers `urn:mch:source:<source>`); "
             "GET /fhir/r4/metadata lists the systems and codes it maps. A refused transaction writes nothing "
             "and answers 422 naming `entry[i]`.")
async def post_bundle(request: Request, body: dict[str, Any] = Body(...),
                      p: Principal = Depends(require("registry:write"))) -> JSONResponse:
    db = request.app.state.db
    return JSONResponse(await fhir_intake.intake(db, Scope(p), body), media_type=FHIR_JSON)


@router.post("/Patient/$match", summary="IHE PDQm Patient/$match: the registry's candidates for a Patient, graded",
             description="A Parameters resource with `resource` (a Patient: name, gender, birthDate, telecom, "
             "address region extension, resident ID) and optional `count`, `onlyCertainMatches`. Answers a "
             "searchset Bundle of the candidates living in the caller's region, likeliest first: each a Patient "
             "by its registry id only (no personal data), with `search.score` (the match probability) and the "
             "match-grade extension (certain / probable / possible / certainly-not). Every candidate answered is "
             "an audited read.")
async def match_patient(request: Request, body: dict[str, Any] = Body(...),
                        p: Principal = Depends(require("registry:read"))) -> JSONResponse:
    person, count, only_certain = fhir.match_request(body)
    found = await person_matching.graded_candidates_of(request.app.state.db, Scope(p), person)
    return JSONResponse(fhir.match_response(found, count, only_certain), media_type=FHIR_JSON)


@router.get("/metadata", summary="The CapabilityStatement of the FHIR intake",
            openapi_extra={"x-mch-auth": "none"})
async def metadata() -> JSONResponse:
    """What the intake takes: the resources, the platform's identifier and code systems, LOINC and SNOMED CT codes
    it maps (public, as FHIR servers publish it)."""
    return JSONResponse(capability(), media_type=FHIR_JSON)


def capability() -> dict[str, Any]:
    mapped = {
        "Patient": f"identifier {fhir.RESIDENT_ID} (GB 11643) or {fhir.PERSON_ID}; address.extension "
                   f"{fhir.REGION} (GB/T 2260 residence); a birth-weight Observation's subject is a newborn",
        "EpisodeOfCare": f"a pregnancy (建册): identifier {fhir.SOURCE}<source>, patient, period.start, "
                         f"managingOrganization.identifier {fhir.INSTITUTION}, extension {fhir.LMP}",
        "Encounter": f"identifier {fhir.SOURCE}<source>, type {fhir.ENCOUNTER_TYPE}, period.start, "
                     f"serviceProvider.identifier {fhir.INSTITUTION}, episodeOfCare or subject, "
                     f"extensions {fhir.FIELD}<field>",
        "Observation": f"LOINC {', '.join([*fhir.OBSERVATIONS, fhir.BIRTH_WEIGHT])}; feeding {fhir.FEEDING}",
        "Condition": f"risk grade {fhir.RISK_GRADE} (五色分级)",
        "Procedure": f"delivery mode, SNOMED CT {', '.join(fhir.DELIVERY_MODES)}",
    }
    doc = {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-12-06", "kind": "instance",
        "fhirVersion": "4.0.1", "format": ["json"],
        "software": {"name": "MCH platform registry (妇幼保健)"},
        "implementation": {"description": "FHIR R4 intake of the MCH registry", "url": "/fhir/r4"},
        "rest": [{"mode": "server",
                  "security": {"description": "OAuth2 bearer token of the platform (registry:write)"},
                  "interaction": [{"code": "transaction"}, {"code": "batch"}],
                  "resource": [{"type": t, "documentation": d, "interaction": [{"code": "create"}]}
                               for t, d in mapped.items()]}],
    }
    return CapabilityStatement.model_validate(doc).model_dump(mode="json", exclude_none=True)
