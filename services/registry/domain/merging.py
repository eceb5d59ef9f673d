"""Merging person records (合并重复档案): pure rules. Two registrations are one woman (or one child) when a reviewer
says so; the duplicate is then read as the survivor, and so are the duplicate's registrations of pregnancies that
are the survivor's pregnancies (one episode registered twice, e.g. booked at two hospitals under two records).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from registry.domain.model import Pregnancy, fail

#: two registrations of one woman's pregnancies are one episode when their LMPs are at most this far apart: LMP
#: dating by recall or ultrasound differs by days to weeks, while two real pregnancies of one woman are months apart
SAME_EPISODE_LMP_DAYS = 42


@dataclass(frozen=True)
class PersonRecord:
    """What the rules need of a person row."""

    person_id: str
    sex: str
    birth_date: date


def check_mergeable(survivor: PersonRecord, duplicate: PersonRecord, survivor_is_duplicate: bool,
                    duplicate_is_merged: bool, duplicate_has_duplicates: bool) -> None:
    """Refuse merges that cannot be one person, or that would chain merges (a merge is one level deep, so
    unmerging one restores exactly what was before it)."""
    if survivor.person_id == duplicate.person_id:
        raise fail("duplicate", "a person cannot be merged with herself")
    if survivor.sex != duplicate.sex:
        raise fail("duplicate", f"the records differ in sex ({survivor.sex} / {duplicate.sex}): not one person")
    if duplicate_is_merged:
        raise fail("duplicate", "the duplicate is already merged into another record; unmerge it first", 409)
    if survivor_is_duplicate:
        raise fail("survivor", "the survivor is itself merged into another record: merge into that one", 409)
    if duplicate_has_duplicates:
        raise fail("duplicate", "other records are merged into the duplicate: merge them into the survivor "
                                "first (merges are one level deep)", 409)


def same_episodes(survivor: Sequence[Pregnancy], duplicate: Sequence[Pregnancy]) -> list[tuple[str, str]]:
    """(duplicate pregnancy, survivor pregnancy) pairs that are one episode: the duplicate's registration whose
    LMP is nearest (within SAME_EPISODE_LMP_DAYS) to a survivor's registration; each matched at most once.
    Voided registrations match nothing."""
    free = [p for p in survivor if not p.voided]
    out = []
    for d in sorted((p for p in duplicate if not p.voided), key=lambda p: (p.lmp_date, p.pregnancy_id)):
        near = [(abs((s.lmp_date - d.lmp_date).days), s.pregnancy_id, s) for s in free]
        near = [x for x in near if x[0] <= SAME_EPISODE_LMP_DAYS]
        if near:
            best = min(near, key=lambda x: (x[0], x[1]))[2]
            free.remove(best)
            out.append((d.pregnancy_id, best.pregnancy_id))
    return out


