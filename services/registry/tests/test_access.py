"""The registry's one place of object-level authorisation (registry.access), as pure rules."""
from __future__ import annotations

from datetime import date

import pytest
from kit.auth import Principal
from kit.errors import Problem
from kit.scope import Scope

from registry import access
from registry.domain.model import Institution, Pregnancy

A, B = "320582", "320581"


def scope(region: str) -> Scope:
    return Scope(Principal(f"his-{region}", "his", frozenset({"registry:read"}), region))


def refused(fn, *args) -> Problem:  # type: ignore[no-untyped-def]
    with pytest.raises(Problem) as e:
        fn(*args)
    return e.value


def test_an_object_outside_the_region_is_answered_like_a_missing_one() -> None:
    inst = Institution("H1", "县医院", A + "001001", "hospital", True)
    assert access.require_institution(scope(A), inst, "H1") is inst
    outside, missing = refused(access.require_institution, scope(B), inst, "H1"), \
        refused(access.require_institution, scope(B), None, "H1")
    assert (outside.status, outside.body()) == (missing.status, missing.body()) == (404, missing.body())
    assert A not in str(outside.body())


def test_residence_sees_in_full_the_care_giver_its_own_care_others_nothing() -> None:
    encs = [{"encounter_id": "E1", "institution_region": A + "001001"},
            {"encounter_id": "E2", "institution_region": B + "001001"}]
    assert access.view_of(scope(A), A + "002003", access.encounter_regions(encs), "person", "x") == "full"
    assert access.view_of(scope(B), A + "002003", access.encounter_regions(encs), "person", "x") == "care"
    assert [e["encounter_id"] for e in access.own_encounters(scope(B), encs)] == ["E2"]
    assert refused(access.view_of, scope("320583"), A + "002003", access.encounter_regions(encs), "person",
                   "x").status == 404
    assert access.view_of(scope("32"), A + "002003", [], "person", "x") == "full"  # the city covers the county


def test_only_the_recording_county_changes_an_encounter_and_residence_or_booking_a_pregnancy() -> None:
    row = {"encounter_id": "E1"}
    assert access.require_encounter_writer(scope(B), row, B + "001001", "s/E1") is row
    assert refused(access.require_encounter_writer, scope(A), row, B + "001001", "s/E1").status == 404
    preg = Pregnancy("P1", "his", "m", date(2026, 1, 1), date(2026, 3, 1), "H1", A + "002003")
    assert access.require_pregnancy_writer(scope(A), preg, B + "001001", "P1") is preg
    assert access.require_pregnancy_writer(scope(B), preg, B + "001001", "P1") is preg
    assert refused(access.require_pregnancy_writer, scope("320583"), preg, B + "001001", "P1").status == 404
