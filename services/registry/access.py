"""Who may see and change what in the registry: the one place every use case asks (issue 15; decision 54).

- An institution belongs to its region; it is seen and changed by callers whose region covers it (a move needs
  both the old and the new region).
- A person (a woman, a child) is seen in full by her county of residence (her *current* residence). A county
  whose institutions cared for her (an encounter recorded there) sees the encounters it recorded and nothing
  else: no name, ID number, birth date, residence or another county's care (continuity of care, 跨区域就诊).
- A pregnancy episode is seen in full by the county of its residence (管理地); the county of its booking
  institution and the counties that recorded encounters on it see their own encounters only. It is changed
  (corrected, voided) by the county of residence or of the booking institution.
- An encounter is changed (corrected, voided) only by the county of the institution that recorded it.
- A marriage registration belongs to the civil-affairs office's region (`region_code`).
Anything else answers exactly like an object that does not exist (kit.scope.Scope.require_object: 404, no region
code, no hint that it exists elsewhere).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from kit.scope import Scope

from registry.domain.model import Institution, Pregnancy

View = Literal["full", "care"]


def require_institution(scope: Scope, inst: Institution | None, code: str) -> Institution:
    scope.require_object([inst.region_code if inst else None], "institution", code)
    assert inst is not None
    return inst


def view_of(scope: Scope, residence: str | None, care_regions: Iterable[str | None], what: str, key: str) -> View:
    """Full for the county of residence, "care" for a county that recorded care, else the 404 of a missing one."""
    if scope.sees(residence):
        return "full"
    scope.require_object(care_regions, what, key)
    return "care"


def encounter_regions(encounters: Iterable[dict[str, Any]]) -> list[str | None]:
    """The regions of the institutions that recorded these encounters (stored with each row by the query)."""
    return [e.get("institution_region") for e in encounters]


def own_encounters(scope: Scope, encounters: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The encounters the caller's region recorded (what a care-giving county sees)."""
    return [e for e in encounters if scope.sees(e.get("institution_region"))]


def require_pregnancy_writer(scope: Scope, preg: Pregnancy | None, booking_region: str | None, key: str) -> Pregnancy:
    """Corrections and voids of a registration: the county of residence or of the booking institution."""
    scope.require_object([preg.residence_code if preg else None, booking_region if preg else None], "pregnancy", key)
    assert preg is not None
    return preg


def require_encounter_writer(scope: Scope, stored: dict[str, Any] | None, institution_region: str | None,
                             key: str) -> dict[str, Any]:
    """Corrections and voids of an encounter: only the county of the institution that recorded it."""
    scope.require_object([institution_region if stored else None], "encounter", key)
    assert stored is not None
    return stored


def require_marriage(scope: Scope, stored: Any, key: str) -> Any:
    scope.require_object([stored["region_code"] if stored else None], "marriage registration", key)
    return stored


# ---------------------------------------------------------------- the person-matching review queue (issue 19)
# A pair (a new record, a likely earlier one) belongs to the county of residence of the new record — where the
# duplicate arose and whose reviewers decide it. A candidate living elsewhere is shown by her comparison levels
# only (registry.person_matching).
def review_region(scope: Scope) -> str:
    """The region prefix whose queue the caller reviews: its own."""
    return scope.principal.region_prefix


def sees_review(scope: Scope, row: Any) -> bool:
    return scope.sees(row["region_code"] if row else None)


def require_review(scope: Scope, row: Any, match_id: int) -> Any:
    scope.require_object([row["region_code"] if row else None], "person match", str(match_id))
    return row


def require_merge_pair(scope: Scope, survivor: tuple[str, str | None], duplicate: tuple[str, str | None]) -> None:
    """A merge or an unmerge (合并 / 撤销合并) changes how both records are read: the caller must see both in
    full, i.e. both women (children) live, now, in the caller's region. `survivor` / `duplicate`: (person id,
    current residence or None when there is no such record). Another county's record answers as missing."""
    for pid, residence in (survivor, duplicate):
        scope.require_object([residence], "person", pid)
