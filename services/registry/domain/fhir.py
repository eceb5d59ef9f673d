"""HL7 FHIR R4 intake, the mapping (pure): a transaction Bundle of Patient, EpisodeOfCare, Encounter, Observation,
Condition and Procedure → the same request bodies the REST API takes (persons, pregnancies 建册, encounters), so
that one set of use cases validates and records both, with the same idempotency: a HIS's record ids travel as
FHIR identifiers `urn:mch:source:<source>|<id>`.

Resources are parsed with `fhir.resources` (R4B, wire-compatible with R4 for these resources); nothing here is a
hand-written FHIR schema. What the platform adds is named by the systems below (published in the
CapabilityStatement):

- Patient: `identifier` GB 11643 resident ID (RESIDENT_ID) or a registry person id (PERSON_ID: an existing person,
  nothing registered); `name`, `gender`, `birthDate`, `telecom` (phone), `address[0].extension` REGION (the
  12-digit GB/T 2260 residence code). A Patient that is the `subject` of a birth-weight Observation (LOINC 8339-4)
  of a delivery Encounter is a newborn of that delivery (`deceasedBoolean` true: stillborn), not a registration.
- EpisodeOfCare: a pregnancy (建册): `identifier` (source|pregnancy id), `patient` (the mother), `period.start`
  (registered on), `managingOrganization.identifier` (INSTITUTION), extension LMP (valueDate).
- Encounter: `identifier` (source|encounter id), `type` coded in ENCOUNTER_TYPE, `period.start` (occurred at),
  `serviceProvider.identifier` (INSTITUTION), `episodeOfCare` (pregnancy encounters) or `subject` (a child's);
  any type-specific field as extension FIELD + name (e.g. `.../field/quantity`).
- Observation (with `encounter`): gestational age 11884-4 (wk), body weight 29463-7 (kg), body height 8302-2 (cm),
  haemoglobin 718-7 (g/L), birth weight 8339-4 (g, subject = the newborn), feeding (FEEDING).
- Condition (with `encounter`): the pregnancy risk grade (RISK_GRADE: green … purple, 五色分级).
- Procedure (with `encounter`): the delivery mode, SNOMED CT 11466000 caesarean, 177184002 vaginal, 236974004
  instrumental (assisted).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from kit.records import DomainError, pydantic_errors
from pydantic import ValidationError

BASE = "https://mch.example.cn/fhir"
RESIDENT_ID = f"{BASE}/sid/resident-id"
PERSON_ID = f"{BASE}/sid/person-id"
INSTITUTION = f"{BASE}/sid/institution"
SOURCE = "urn:mch:source:"
ENCOUNTER_TYPE = f"{BASE}/CodeSystem/encounter-type"
RISK_GRADE = f"{BASE}/CodeSystem/risk-grade"
FEEDING = f"{BASE}/CodeSystem/feeding"
REGION = f"{BASE}/StructureDefinition/region-code"
LMP = f"{BASE}/StructureDefinition/lmp-date"
DELIVERY_PLACE = f"{BASE}/StructureDefinition/delivery-place"
FIELD = f"{BASE}/StructureDefinition/field/"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"

#: LOINC observation → (encounter field, unit the value must be in)
OBSERVATIONS = {"11884-4": ("gestational_weeks", "wk"), "29463-7": ("weight_kg", "kg"),
                "8302-2": ("height_cm", "cm"), "718-7": ("haemoglobin_g_l", "g/L")}
BIRTH_WEIGHT = "8339-4"
DELIVERY_MODES = {"11466000": "caesarean", "177184002": "vaginal", "236974004": "assisted"}
RESOURCES = ("Patient", "EpisodeOfCare", "Encounter", "Observation", "Condition", "Procedure")
PREGNANCY_TYPES = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check")


@dataclass
class Entry:
    """One request entry: where it is (`entry[i]`), its resource type and the bundle-local URL others use."""

    index: int
    kind: str
    url: str
    resource: Any

    @property
    def at(self) -> str:
        return f"entry[{self.index}].resource"


@dataclass
class Plan:
    """What a Bundle asks for, as REST bodies. References between them are bundle-local URLs resolved as the
    use case records them (a mother's person id, a newborn's child id)."""

    persons: list[tuple[Entry, dict[str, Any]]] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)          # Patient url → existing person id
    pregnancies: list[tuple[Entry, dict[str, Any], str]] = field(default_factory=list)  # (…, mother url)
    encounters: list[tuple[Entry, dict[str, Any], str]] = field(default_factory=list)   # (…, subject url or "")
    newborns: dict[str, tuple[str, int]] = field(default_factory=dict)  # Patient url → (delivery url, baby index)
    folded: dict[int, str] = field(default_factory=dict)          # Observation/… entry index → its Encounter url
    transaction: bool = True


def _err(at: str, reason: str) -> DomainError:
    return DomainError([{"field": at, "reason": reason}])


def parse(body: Any) -> Bundle:
    """The Bundle, validated by fhir.resources; its errors named by their JSON path."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise _err("resourceType", "must be a Bundle")
    try:
        return Bundle.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e


def _identifier(ids: list[Any] | None, at: str) -> tuple[str, str]:
    """(source, id) of the record identifier `urn:mch:source:<source>|<id>`."""
    for i in ids or []:
        if i.system and i.system.startswith(SOURCE) and i.value:
            return i.system[len(SOURCE):], i.value
    raise _err(f"{at}.identifier", f"needs the record's identifier: system {SOURCE}<source>, value its id")


def _ref(ref: Any, at: str) -> str:
    if ref is None or not ref.reference:
        raise _err(at, "needs a reference to an entry of this Bundle (its fullUrl)")
    return str(ref.reference)


def _logical(ref: Any, system: str, at: str) -> str:
    """An institution named by its code: `{"identifier": {"system": INSTITUTION, "value": ...}}`."""
    ident = getattr(ref, "identifier", None)
    if ident is None or ident.system != system or not ident.value:
        raise _err(at, f"needs identifier.system {system} and its value")
    return str(ident.value)


def _code(concepts: list[Any] | Any | None, system: str) -> str | None:
    items = concepts if isinstance(concepts, list) else [concepts] if concepts else []
    for c in items:
        for coding in c.coding or []:
            if coding.system == system and coding.code:
                return str(coding.code)
    return None


def _ext(ext: list[Any] | None, url: str) -> Any:
    for e in ext or []:
        if e.url == url:
            return next((getattr(e, k) for k in type(e).model_fields if k.startswith("value")
                         and getattr(e, k) is not None), None)
    return None


def _person(e: Entry) -> dict[str, Any]:
    p = e.resource
    name = p.name[0] if p.name else None
    text = (name.text or "".join([name.family or "", *(name.given or [])])) if name else ""
    body: dict[str, Any] = {"name": text, "sex": {"female": "F", "male": "M"}.get(p.gender or "", p.gender),
                            "birth_date": p.birthDate.isoformat() if p.birthDate else None,
                            "residence_code": _ext(p.address[0].extension, REGION) if p.address else None}
    ident = next((i.value for i in p.identifier or [] if i.system == RESIDENT_ID), None)
    if ident:
        body["id_number"] = ident
    phone = next((t.value for t in p.telecom or [] if t.system == "phone"), None)
    if phone:
        body["phone"] = phone
    return body


def plan(bundle: Bundle) -> Plan:
    """The bodies a Bundle stands for. Raises DomainError naming `entry[i]...` for what cannot be mapped."""
    if bundle.type not in ("transaction", "batch"):
        raise _err("type", "must be transaction or batch")
    out = Plan(transaction=bundle.type == "transaction")
    entries: list[Entry] = []
    for i, en in enumerate(bundle.entry or []):
        r = en.resource
        kind = r.get_resource_type() if r is not None else ""
        if r is None or kind not in RESOURCES:
            raise _err(f"entry[{i}].resource", f"must be one of {', '.join(RESOURCES)}")
        if en.request is not None and en.request.method not in ("POST", "PUT"):
            raise _err(f"entry[{i}].request.method", "only POST or PUT (create or update) is taken")
        entries.append(Entry(i, kind, en.fullUrl or f"{kind}/{r.id or i}", r))
    by_url = {e.url: e for e in entries}
    encounters = {e.url: e for e in entries if e.kind == "Encounter"}
    bodies = {url: _encounter(e, by_url) for url, e in encounters.items()}
    for e in entries:                       # fold observations, conditions and procedures into their encounter
        if e.kind in ("Observation", "Condition", "Procedure"):
            enc = _ref(e.resource.encounter, f"{e.at}.encounter")
            if enc not in bodies:
                raise _err(f"{e.at}.encounter", f"{enc} is not an Encounter of this Bundle")
            _fold(e, bodies[enc][0], out, enc, by_url)
            out.folded[e.index] = enc
    for e in entries:
        if e.kind == "Patient" and e.url not in out.newborns:
            known = next((i.value for i in e.resource.identifier or [] if i.system == PERSON_ID), None)
            if known:
                out.known[e.url] = str(known)
            else:
                out.persons.append((e, _person(e)))
        elif e.kind == "EpisodeOfCare":
            out.pregnancies.append(_pregnancy(e, by_url))
    out.encounters = [(encounters[url], body, subject) for url, (body, subject) in bodies.items()]
    return out


def _pregnancy(e: Entry, by_url: dict[str, Entry]) -> tuple[Entry, dict[str, Any], str]:
    r = e.resource
    source, pid = _identifier(r.identifier, e.at)
    mother = _ref(r.patient, f"{e.at}.patient")
    if by_url.get(mother) is None or by_url[mother].kind != "Patient":
        raise _err(f"{e.at}.patient", f"{mother} is not a Patient of this Bundle")
    lmp = _ext(r.extension, LMP)
    body = {"pregnancy_id": pid, "source": source,
            "lmp_date": lmp.isoformat() if hasattr(lmp, "isoformat") else lmp,
            "registered_on": r.period.start.date().isoformat() if r.period and hasattr(r.period.start, "date")
            else (str(r.period.start) if r.period and r.period.start else None),
            "institution_code": _logical(r.managingOrganization, INSTITUTION, f"{e.at}.managingOrganization")}
    return e, body, mother


def _encounter(e: Entry, by_url: dict[str, Entry]) -> tuple[dict[str, Any], str]:
    r = e.resource
    source, eid = _identifier(r.identifier, e.at)
    typ = _code(r.type, ENCOUNTER_TYPE)
    if typ is None:
        raise _err(f"{e.at}.type", f"needs a coding of {ENCOUNTER_TYPE}")
    if r.period is None or r.period.start is None:
        raise _err(f"{e.at}.period.start", "is when it happened")
    body: dict[str, Any] = {"encounter_id": eid, "source": source, "type": typ,
                            "occurred_at": r.period.start.isoformat(),
                            "institution_code": _logical(r.serviceProvider, INSTITUTION, f"{e.at}.serviceProvider")}
    for x in r.extension or []:
        if x.url.startswith(FIELD):
            body[x.url[len(FIELD):]] = _ext([x], x.url)
    subject = ""
    if typ in PREGNANCY_TYPES:
        episode = _ref(r.episodeOfCare[0] if r.episodeOfCare else None, f"{e.at}.episodeOfCare")
        target = by_url.get(episode)
        if target is None or target.kind != "EpisodeOfCare":
            raise _err(f"{e.at}.episodeOfCare", f"{episode} is not an EpisodeOfCare of this Bundle")
        body["subject_id"] = _identifier(target.resource.identifier, target.at)[1]
    else:
        subject = _ref(r.subject, f"{e.at}.subject")
        if by_url.get(subject) is None or by_url[subject].kind != "Patient":
            raise _err(f"{e.at}.subject", f"{subject} is not a Patient of this Bundle")
    if typ == "delivery":
        body["place"] = _ext(r.extension, DELIVERY_PLACE) or "hospital"
        body["babies"] = []
    return body, subject


def _fold(e: Entry, body: dict[str, Any], out: Plan, enc_url: str, by_url: dict[str, Entry]) -> None:
    r = e.resource
    if e.kind == "Procedure":
        mode = _code(r.code, SNOMED)
        if mode not in DELIVERY_MODES:
            raise _err(f"{e.at}.code", f"a delivery mode: SNOMED CT {', '.join(DELIVERY_MODES)}")
        body["mode"] = DELIVERY_MODES[mode]
        return
    if e.kind == "Condition":
        grade = _code(r.code, RISK_GRADE)
        if grade is None:
            raise _err(f"{e.at}.code", f"a risk grade of {RISK_GRADE}")
        body["risk_grade"] = grade
        return
    feeding = _code(r.valueCodeableConcept, FEEDING) if r.valueCodeableConcept else None
    if feeding is not None:
        body["feeding"] = feeding
        return
    loinc = _code(r.code, LOINC)
    q = r.valueQuantity
    if loinc == BIRTH_WEIGHT:
        if "babies" not in body:
            raise _err(f"{e.at}.encounter", "a birth weight belongs to a delivery Encounter")
        child = _ref(r.subject, f"{e.at}.subject")
        newborn = by_url.get(child)
        if newborn is None or newborn.kind != "Patient":
            raise _err(f"{e.at}.subject", f"{child} is not a Patient (the newborn) of this Bundle")
        if q is None or q.value is None or (q.code or q.unit or "g") != "g":
            raise _err(f"{e.at}.valueQuantity", "the birth weight in grams (unit g)")
        out.newborns[child] = (enc_url, len(body["babies"]))
        nb = newborn.resource
        body["babies"].append({"sex": {"female": "F", "male": "M"}.get(nb.gender or "", nb.gender),
                               "birth_weight_g": int(q.value),
                               "outcome": "stillbirth" if nb.deceasedBoolean else "live"})
        return
    if loinc not in OBSERVATIONS:
        raise _err(f"{e.at}.code", f"an observation this intake maps: LOINC {', '.join([*OBSERVATIONS, BIRTH_WEIGHT])}"
                   f" or a feeding of {FEEDING}")
    name, unit = OBSERVATIONS[loinc]
    if q is None or q.value is None or (q.code or q.unit) != unit:
        raise _err(f"{e.at}.valueQuantity", f"the value in {unit}")
    body[name] = float(q.value)


# ---------------------------------------------------------------- Patient/$match (IHE PDQm)
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def match_request(body: Any) -> tuple[dict[str, Any], int, bool]:
    """The Patient of a `$match` Parameters resource as a POST /v1/persons body, `count`, `onlyCertainMatches`."""
    from fhir.resources.R4B.parameters import Parameters
    from fhir.resources.R4B.patient import Patient

    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _err("resourceType", "must be Parameters with a `resource` parameter (the Patient)")
    try:
        params = Parameters.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    by_name = {p.name: p for p in params.parameter or []}
    res = by_name.get("resource")
    if res is None or not isinstance(res.resource, Patient):
        raise _err("parameter.resource", "a Patient to match is required")
    person = _person(Entry(0, "Patient", "", res.resource))
    for key in ("name", "sex", "birth_date", "residence_code"):
        if not person.get(key):
            raise _err(f"parameter.resource.{_PATIENT_FIELD[key]}", "is needed to match")
    count = by_name["count"].valueInteger if "count" in by_name and by_name["count"].valueInteger else 10
    only = bool(by_name["onlyCertainMatches"].valueBoolean) if "onlyCertainMatches" in by_name else False
    return person, max(1, min(int(count), 100)), only


_PATIENT_FIELD = {"name": "name", "sex": "gender", "birth_date": "birthDate", "residence_code": "address"}


def match_response(found: Sequence[tuple[str, float, str]], count: int, only_certain: bool) -> dict[str, Any]:
    """A searchset Bundle: each candidate a Patient by its registry id, its probability and its grade."""
    rows = [f for f in found if f[2] != "certainly-not" and (not only_certain or f[2] == "certain")][:count]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(rows), "entry": [
        {"fullUrl": f"Patient/{pid}",
         "resource": {"resourceType": "Patient", "id": pid,
                      "identifier": [{"system": PERSON_ID, "value": pid}]},
         "search": {"mode": "match", "score": round(prob, 4),
                    "extension": [{"url": MATCH_GRADE, "valueCode": grade}]}}
        for pid, prob, grade in rows]}
