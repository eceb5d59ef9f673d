"""Merged subjects (合并, issue 19): what a registry merge fact says about how subjects are read. Pure.

A merge says the duplicate person record is the survivor, and that some of the duplicate's pregnancy
registrations are the survivor's pregnancies (one episode registered twice). The engine reads every fact of an
aliased subject as its canonical subject's, so the units of the duplicate contribute nothing and the survivor's
units count the woman (and each pregnancy) once; an unmerge (a newer version, voided) removes the aliases and
every unit is computed as before.
"""
from __future__ import annotations

from indicators.domain.facts import Fact

PREFIX = "merge:"


def is_merge(record_key: str) -> bool:
    return record_key.startswith(PREFIX)


def aliases(fact: Fact) -> list[tuple[str, str]]:
    """(subject, canonical subject) pairs of one merge fact, none once it is unmerged."""
    if fact.voided:
        return []
    b = fact.body
    out = [(f"person:{b['duplicate_id']}", f"person:{b['survivor_id']}")]
    out += [(f"pregnancy:{p['duplicate_id']}", f"pregnancy:{p['survivor_id']}") for p in b.get("pregnancies", [])]
    return out
