"""The person-matching review queue (疑似重复人员审核, issue 19): a reviewer of a county lists the pairs of
records the matcher found likely but not certain, and confirms (one person: merged) or rejects (two persons).

Registered before the persons router so that `/v1/persons/review` is not read as a person id."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from kit.auth import Principal, require
from kit.db import Database
from kit.scope import Scope
from pydantic import BaseModel, ConfigDict, Field

from registry import person_matching

router = APIRouter(prefix="/v1", tags=["registry"])
REVIEW = require("persons:review", person=True)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500, description="why the reviewer decided so (kept with it)")


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


@router.get("/persons/review", summary="The review queue of likely duplicate persons in the caller's region "
            "(oldest first; each person shown is an audited read)")
async def review_queue(request: Request, limit: int = Query(50, ge=1, le=500),
                       after: int = Query(0, ge=0, description="the last match_id of the previous page"),
                       p: Principal = Depends(REVIEW)) -> dict[str, Any]:
    """Pairs a new registration formed with an earlier person, scored between the matching thresholds, for the
    reviewers (身份审核员) of the new record's county; a candidate living elsewhere is shown by her comparison
    levels only. Paged by `after`."""
    items = await person_matching.review_queue(_db(request), Scope(p), limit, after)
    return {"items": items, "next_after": items[-1]["match_id"] if len(items) == limit else None}


@router.post("/persons/review/{match_id}/confirm", summary="Confirm a pair: the two records are one person "
             "(the later record is merged into the earlier one)")
async def confirm(match_id: int, request: Request, body: DecisionIn | None = None,
                  p: Principal = Depends(REVIEW)) -> dict[str, Any]:
    """The reviewer (from the token) confirms the pair once: the later record is merged into the earlier one in
    the same unit of work (undone, if wrong, by unmerge); audited with the reason."""
    return await person_matching.decide(_db(request), Scope(p), match_id, True, body.reason if body else None)


@router.post("/persons/review/{match_id}/reject", summary="Reject a pair: two different persons")
async def reject(match_id: int, request: Request, body: DecisionIn | None = None,
                 p: Principal = Depends(REVIEW)) -> dict[str, Any]:
    """The reviewer (from the token) rejects the pair once: two persons; audited with the reason."""
    return await person_matching.decide(_db(request), Scope(p), match_id, False, body.reason if body else None)
