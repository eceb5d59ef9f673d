"""The console's calls to the quality service (质控质疑), with the logged-in person's token: the contract the
quality page depends on, kept beside console.client (same errors, same plumbing)."""
from __future__ import annotations

from typing import Any

from console.client import Api, _seg


class QualityApi:
    def __init__(self, api: Api, base_url: str) -> None:
        self.api = api
        self.base = base_url + "/v1/quality"

    async def queries(self, token: str, statuses: list[str]) -> list[dict[str, Any]]:
        """The queries addressed to the person's institution (or, at the bureau, to its region's)."""
        out = await self.api._json("GET", self.base + "/queries", token, params={"status": statuses})
        return list(out.get("items", []))

    async def answer(self, token: str, query_id: str, comment: str) -> dict[str, Any]:
        return dict(await self.api._json("POST", self.base + f"/queries/{_seg(query_id)}/answer", token,
                                         json={"comment": comment}))
