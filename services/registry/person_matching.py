"""Probabilistic person matching in the registry's use cases (概率匹配与人工审核, issue 19).

A person registered without an exact document match is scored against the registry's candidates (the blocking
keys, one indexed query) with the stored Splink-trained model (registry.domain.matching):

- at or above the upper threshold she *is* the candidate: the caller is answered the existing person_id and her
  record is not changed, exactly as an ID number already registered is (the link is audited in person_match).
  Not so for an inline person of a clinical record (a pregnancy's mother, a spouse): a silent link would attach
  the record to another woman's history with no one having looked, so she is registered and the pair queued —
  an HIS that wants the automatic link registers her first (POST /v1/persons) and refers to her person_id;
- between the thresholds she is registered as new and the pair goes to the review queue of her county of
  residence, where a reviewer (岗位 reviewer) confirms — the two records are merged — or rejects;
- below the lower threshold she is new.

`graded_candidates` answers the same scores graded for IHE PDQm (FHIR `Patient/$match`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.auth import mask
from kit.db import Database
from kit.records import fail
from kit.scope import Scope, UnitOfWork
from sqlalchemy.ext.asyncio import AsyncConnection

from registry import access, merging
from registry.domain import matching
from registry.domain.matching import Features, Grade
from registry.store import matching as store
from registry.store import sql

#: at most this many pairs of one new record go to the queue (the likeliest)
QUEUE_PER_PERSON = 3


@dataclass(frozen=True)
class Candidate:
    person_id: str
    weight: float
    grade: Grade
    levels: dict[str, str]

    @property
    def probability(self) -> float:
        return matching.probability(self.weight)


async def scored(conn: AsyncConnection, f: Features) -> list[Candidate]:
    """The registry's candidates for `f`, likeliest first."""
    model = matching.stored_model()
    out = []
    for pid, other in await store.candidates(conn, f):
        w = model.weight(f, other)
        out.append(Candidate(pid, w, model.grade(w), model.gammas(f, other)))
    return sorted(out, key=lambda c: -c.weight)


async def graded_candidates(conn: AsyncConnection, f: Features) -> list[tuple[str, float, Grade]]:
    """(person_id, probability, grade) of every candidate, likeliest first — for `Patient/$match` (IHE PDQm:
    certain / probable / possible / certainly-not). The caller checks what it may show of each."""
    return [(c.person_id, c.probability, c.grade) for c in await scored(conn, f)]


async def graded_candidates_of(db: Database, scope: Scope, person: dict[str, Any]) -> list[tuple[str, float, Grade]]:
    """`graded_candidates` for a person given as a POST /v1/persons body (name, sex, birth_date, residence_code,
    phone, id_number) — what `Patient/$match` will call. Only candidates whose current residence the caller
    sees are answered (the others as if they did not exist); every candidate answered is an audited read."""
    f = matching.features(person["name"], person["sex"], person["birth_date"], person["residence_code"],
                          person.get("phone"), person.get("mother_id"), person.get("id_number"))
    async with UnitOfWork(db, scope) as uow:
        out = []
        for pid, p, grade in await graded_candidates(uow.conn, f):
            hist = await sql.residence_history(uow.conn, pid)
            if hist and scope.sees(hist[-1][1]):
                await sql.audit_pii(uow.conn, scope.actor, scope.request_id, "person", pid, [], False)
                out.append((pid, p, grade))
        return out


async def certain_match(conn: AsyncConnection, f: Features, actor: str,
                        auto_link: bool = True) -> tuple[str | None, list[Candidate]]:
    """The person `f` certainly is (the link audited), or None and the candidates scored. Without `auto_link`
    (an inline person of a clinical record) a certain match is queued like a probable one (`remember`)."""
    cands = await scored(conn, f)
    model = matching.stored_model()
    if auto_link and cands and model.decide(cands[0].weight) == "link":
        best = cands[0]
        await store.record_match(conn, person_id=None, candidate_id=best.person_id, region_code=f.residence,
                                 weight=best.weight, probability=best.probability, levels=best.levels,
                                 model_version=model.version, status="linked", actor=actor)
        return best.person_id, cands
    return None, cands


async def remember(conn: AsyncConnection, person_id: str, f: Features, cands: list[Candidate], actor: str) -> None:
    """A new person: her match keys, and the pairs at or above the lower threshold (above the upper one only if
    she was not linked: an inline person) queued for her county's reviewers."""
    await store.insert_match_key(conn, person_id, f)
    model = matching.stored_model()
    for c in [c for c in cands if model.decide(c.weight) != "new"][:QUEUE_PER_PERSON]:
        await store.record_match(conn, person_id=person_id, candidate_id=c.person_id, region_code=f.residence,
                                 weight=c.weight, probability=c.probability, levels=c.levels,
                                 model_version=model.version, status="pending", actor=actor)


# ------------------------------------------------------------------ the review queue (reviewers)
async def review_queue(db: Database, scope: Scope, limit: int, after: int) -> list[dict[str, Any]]:
    """GET /v1/persons/review: the pending pairs of the caller's region, oldest first; every person shown is an
    audited read."""
    async with UnitOfWork(db, scope) as uow:
        rows = [r for r in await store.pending(uow.conn, access.review_region(scope), limit, after)
                if access.sees_review(scope, r)]
        return [await _pair_view(uow, r) for r in rows]


async def decide(db: Database, scope: Scope, match_id: int, confirm: bool, reason: str | None) -> dict[str, Any]:
    """Confirm (the two records are one woman: merged) or reject (two persons) a pending pair, once."""
    async with UnitOfWork(db, scope) as uow:
        row = access.require_review(scope, await store.get_match(uow.conn, match_id, for_update=True), match_id)
        if row["status"] != "pending":
            raise fail("match_id", f"the pair was already decided ({row['status']})", 409)
        status = "confirmed" if confirm else "rejected"
        await store.decide(uow.conn, match_id, status, scope.actor, reason)
        if confirm:
            await _merge_confirmed_pair(uow, survivor=str(row["candidate_id"]), duplicate=str(row["person_id"]),
                                        reason=reason or f"person match {match_id} confirmed")
    return {"match_id": match_id, "status": status, "decided_by": scope.actor,
            "survivor": str(row["candidate_id"]) if confirm else None}


async def _merge_confirmed_pair(uow: UnitOfWork, *, survivor: str, duplicate: str, reason: str) -> None:
    """A confirmed pair is one person: the later record is merged into the earlier one by the registry's merge
    use case, in this same unit of work, so the decision and the merge commit together (or not at all)."""
    await merging.merge_persons(uow, survivor, duplicate, reason)


async def _pair_view(uow: UnitOfWork, r: Any) -> dict[str, Any]:
    scope = uow.scope
    unmasked = scope.principal.has("pii:read")
    out: dict[str, Any] = {
        "match_id": r["match_id"], "status": r["status"], "probability": round(r["probability"], 6),
        "match_weight": round(r["match_weight"], 3), "levels": _json(r["levels"]),
        "model_version": r["model_version"], "created_at": r["created_at"].isoformat()}
    for side, key in (("person", "person_id"), ("candidate", "candidate_id")):
        pid = str(r[key])
        if not scope.sees(r[f"{side}_residence"]):
            # a candidate living in another county: the levels say how alike they are, nothing of her record
            out[side] = {"person_id": pid, "visibility": "levels-only"}
            continue
        fields = {"person_id": pid, "visibility": "full", "name": r[f"{side}_name"], "sex": r[f"{side}_sex"],
                  "birth_date": str(r[f"{side}_birth_date"]), "phone": r[f"{side}_phone"],
                  "id_number": r[f"{side}_id_number"], "residence_code": r[f"{side}_residence"]}
        await sql.audit_pii(uow.conn, scope.actor, scope.request_id, "person", pid,
                            [f for f in ("name", "phone", "id_number") if fields.get(f)], unmasked)
        if not unmasked:
            fields.update(name=mask(fields["name"], 1, 0), phone=mask(fields["phone"], 0, 0),
                          id_number=mask(fields["id_number"], 1, 0))
        out[side] = fields
    return out


def _json(v: Any) -> Any:
    from kit.db import from_json

    return from_json(v) if isinstance(v, str | bytes) else v
