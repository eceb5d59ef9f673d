"""Posting a plan through the platform's real HTTP APIs, the way HIS systems would: `:batch` where the contract has
one, single posts (a few at a time) where an answer's ids are needed later. An op naming an actor (a certificate
office's custodian or head) is posted with that person's own token: the poster ensures the plan's person accounts
(kit.clients.create_person: an upsert, a fresh opaque token; passwords for logging in are set elsewhere).
Tolerant of endpoints a deployment
does not have yet: a step whose endpoint answers 404/405 is reported and skipped, and so is everything that
depends on its answers; the rest goes on."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from kit.clients import create_person
from kit.settings import Settings, get_settings

from demo.plan import Op, Plan, Step, refs_in, resolve

BATCH = 500
CONCURRENCY = 8
RETRIES = 3  # a 503 (database restarting) or a dropped connection is tried again after a pause


@dataclass
class StepResult:
    name: str
    planned: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0  # depends on a record that was not created
    unavailable: str | None = None  # the endpoint is not there
    reasons: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        if self.unavailable:
            return f"{self.name:<26} {self.planned:>7} planned, endpoint not available ({self.unavailable})"
        out = f"{self.name:<26} {self.planned:>7} planned {self.accepted:>7} accepted"
        if self.rejected:
            out += f" {self.rejected:>6} rejected"
        if self.skipped:
            out += f" {self.skipped:>6} skipped (depend on rejected records)"
        if self.reasons:
            out += "\n" + "\n".join(f"{'':<28}{n:>6} × {why[:150]}" for why, n in self.reasons.most_common(3))
        return out


@dataclass
class Poster:
    urls: dict[str, str]  # service → base URL
    token: str
    ids: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # keys of the ops that were accepted
    echo: bool = False  # print each step's line when it is done
    progress: Callable[[str, int], Any] | None = None  # (step, total) → an object with update(n) / close()
    settings: Settings | None = None  # the stack's (credential database of the person accounts); None: from env
    tokens: dict[str, str] = field(default_factory=dict)  # person account id → its token (kept across runs)

    async def ensure_people(self, plan: Plan) -> None:
        """The plan's person accounts exist with their roles, region and institution; each gets a token once per
        poster (the trickle reuses them)."""
        settings = self.settings or get_settings()
        for aid, who in plan.people.items():
            if aid not in self.tokens:
                _, self.tokens[aid] = await create_person(settings, who.name, list(who.roles), who.region,
                                                          institution_code=who.institution_code,
                                                          staff_id=who.staff_id, account_id=aid)

    def _headers(self, op: Op) -> dict[str, str] | None:
        """The person's token for an op naming an actor; None: the client's (the system token)."""
        return {"Authorization": f"Bearer {self.tokens[op.actor]}"} if op.actor else None

    def _capture(self, op: Op, answer: dict[str, Any]) -> None:
        if not op.key or not op.capture:
            return
        if op.capture == "person" and answer.get("person_id"):
            self.ids[op.key] = str(answer["person_id"])
        elif op.capture == "mother" and answer.get("mother_id"):
            self.ids[op.key] = str(answer["mother_id"])
        elif op.capture == "children":
            babies = answer.get("babies") or []
            kids = [b.get("child_id") or b.get("person_id") for b in babies if b.get("outcome", "live") == "live"]
            if not any(kids):
                kids = list(answer.get("children") or answer.get("child_ids") or [])
            for i, kid in enumerate(k for k in kids if k):
                self.ids[f"{op.key}:{i}"] = str(kid)
        elif op.capture == "case":
            case = answer.get("followup") or answer.get("followup_case") or {}
            cid = (case.get("case_id") if isinstance(case, dict) else case) or answer.get("case_id")
            if cid:
                self.ids[op.key] = str(cid)
        elif op.capture == "serial" and answer.get("serial"):
            self.ids[op.key] = str(answer["serial"])

    @staticmethod
    def _why(r: httpx.Response) -> str:
        try:
            doc = r.json()
        except ValueError:
            return f"{r.status_code} {r.text[:100]}"
        errs = doc.get("errors") or []
        if errs:
            return f"{r.status_code} " + "; ".join(f"{e.get('field')}: {e.get('reason')}" for e in errs[:2])
        return f"{r.status_code} {doc.get('detail') or doc.get('title') or ''}"

    @staticmethod
    async def _send(client: httpx.AsyncClient, method: str, url: str, body: Any,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        for attempt in range(RETRIES):
            try:
                r = await client.request(method, url, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == RETRIES - 1:
                    raise
            else:
                if r.status_code != 503 or attempt == RETRIES - 1:
                    return r
            await asyncio.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _ready(self, op: Op) -> dict[str, Any] | None:
        try:
            return {"path": resolve(op.path, self.ids), "body": resolve(op.body, self.ids)}
        except KeyError:
            return None

    async def run(self, plan: Plan, only: set[str] | None = None) -> list[StepResult]:
        results = []
        headers = {"Authorization": f"Bearer {self.token}"}
        limits = httpx.Limits(max_connections=CONCURRENCY * 2)
        if plan.people:
            await self.ensure_people(plan)
        async with httpx.AsyncClient(timeout=120, headers=headers, limits=limits) as client:
            for step in plan.ordered():
                if only and step.name not in only:
                    continue
                results.append(await self.step(client, step))
                if self.echo:
                    print(results[-1].line(), flush=True)
        return results

    async def step(self, client: httpx.AsyncClient, step: Step) -> StepResult:
        res = StepResult(step.name, planned=len(step.ops))
        bar = self.progress(step.name, len(step.ops)) if self.progress else None
        base = self.urls[step.service]
        try:
            if step.batch_path:
                await self._batches(client, base, step, res, bar)
            else:
                await self._singles(client, base, step, res, bar)
        finally:
            if bar is not None:
                bar.close()
        return res

    async def _batches(self, client: httpx.AsyncClient, base: str, step: Step, res: StepResult, bar: Any) -> None:
        assert step.batch_path
        ready: list[tuple[Op, dict[str, Any]]] = []
        for op in step.ops:
            got = self._ready(op)
            if got is None:
                res.skipped += 1
            else:
                ready.append((op, got["body"]))
        if bar is not None and res.skipped:
            bar.update(res.skipped)
        for i in range(0, len(ready), BATCH):
            chunk = ready[i:i + BATCH]
            try:
                r = await self._send(client, "POST", base + step.batch_path, [body for _, body in chunk])
            except httpx.TransportError as e:
                res.rejected += len(chunk)
                res.reasons[f"transport: {e!r}"] += len(chunk)
                continue
            if r.status_code in (404, 405) and i == 0 and not _is_domain_404(r):
                # no `:batch` for this collection here: post the items one by one
                single = Step(step.name, step.service, step.method, step.ops)
                res.skipped = 0
                if bar is not None:
                    bar.reset()
                await self._singles(client, base, single, res, bar)
                return
            if r.status_code >= 300:
                res.rejected += len(chunk)
                res.reasons[self._why(r)] += len(chunk)
            else:
                for item in r.json().get("items", []):
                    src = chunk[item["index"]][0] if 0 <= item.get("index", -1) < len(chunk) else None
                    if item.get("status", 500) < 300:
                        res.accepted += 1
                        if src is not None and src.key:
                            self.done.add(src.key)
                            if src.capture == "person" and item.get("id"):
                                self.ids[src.key] = str(item["id"])
                    else:
                        res.rejected += 1
                        errs = item.get("errors") or []
                        res.reasons[f"{item.get('status')} " + "; ".join(
                            f"{e.get('field')}: {e.get('reason')}" for e in errs[:2])] += 1
            if bar is not None:
                bar.update(len(chunk))

    async def _singles(self, client: httpx.AsyncClient, base: str, step: Step, res: StepResult, bar: Any) -> None:
        sem = asyncio.Semaphore(CONCURRENCY)
        gone = asyncio.Event()

        async def one(op: Op) -> None:
            async with sem:
                if gone.is_set():
                    return
                ready = self._ready(op)
                if ready is None:
                    res.skipped += 1
                else:
                    try:
                        r = await self._send(client, step.method, base + ready["path"], ready["body"],
                                             self._headers(op))
                    except httpx.TransportError as e:
                        res.rejected += 1
                        res.reasons[f"transport: {e!r}"] += 1
                        if bar is not None:
                            bar.update(1)
                        return
                    if r.status_code == 405 or (r.status_code == 404 and not _is_domain_404(r)):
                        res.unavailable = f"{r.status_code} {step.method} {op.path.split('@')[0]}…"
                        gone.set()
                        return
                    if r.status_code < 300:
                        res.accepted += 1
                        if op.key:
                            self.done.add(op.key)
                        try:
                            self._capture(op, r.json())
                        except ValueError:
                            pass
                    else:
                        res.rejected += 1
                        res.reasons[self._why(r)] += 1
                if bar is not None:
                    bar.update(1)

        async def in_order(ops: list[Op]) -> None:
            for op in ops:
                await one(op)

        # references always point to an earlier step, so ops of one step may go concurrently, except those of
        # one group (the actions of one follow-up case, a stock batch before its allocations)
        groups: dict[str, list[Op]] = {}
        for i, op in enumerate(step.ops):
            groups.setdefault(op.group or f"#{i}", []).append(op)
        await asyncio.gather(*(in_order(ops) for ops in groups.values()))


async def manage_high_risk(urls: dict[str, str], token: str, region: str, share: float, seed: int,
                           today: date) -> StepResult:
    """高危孕产妇专案管理: the screening service opens a case when a pregnancy's risk grade first reaches orange or
    above (from the registry's visits); the township doctor then contacts the woman. The cases are only known
    once opened, so this step reads them (GET /v1/followups) and records a contact on most of them."""
    res = StepResult("high_risk_case_contacts")
    rng = random.Random(f"{seed}:{region}:high-risk")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as c:
        cursor: str | None = None
        cases: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"region": region, "type": "pregnancy_high_risk", "limit": 1000}
            if cursor:
                params["after"] = cursor
            r = await c.get(f"{urls['screening']}/v1/followups", params=params)
            if r.status_code >= 300:
                res.unavailable = f"{r.status_code} GET /v1/followups"
                return res
            doc = r.json()
            # open, or ended with the pregnancy (decision 50: the contacts of before the end are still recorded)
            cases += [x for x in doc["items"] if not x["actions"] and (
                x["status"] == "open" or (x["closed_reason"] or "").startswith("pregnancy ended"))]
            cursor = doc.get("next")
            if not cursor:
                break
        sem = asyncio.Semaphore(CONCURRENCY)

        async def contact(case: dict[str, Any]) -> None:
            on = date.fromisoformat(case["opened_on"]) + timedelta(days=rng.randint(0, 5))
            ended = date.fromisoformat(case["closed_on"]) if case["closed_on"] else today
            if on > min(today, ended) or rng.random() >= share:
                return
            res.planned += 1
            async with sem:
                r = await c.post(f"{urls['screening']}/v1/followups/{case['case_id']}/actions",
                                 json={"action": "contacted", "on": on.isoformat()})
            if r.status_code < 300:
                res.accepted += 1
            else:
                res.rejected += 1
                res.reasons[Poster._why(r)] += 1

        await asyncio.gather(*(contact(x) for x in cases))
    return res


def _is_domain_404(r: httpx.Response) -> bool:
    """A 404 problem about a record (unknown case, serial) is an answer; FastAPI's bare 'Not Found' is a missing
    route."""
    try:
        doc = r.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("detail") != "Not Found"


def summary(results: list[StepResult]) -> str:
    return "\n".join(r.line() for r in results)


__all__ = ["Poster", "StepResult", "refs_in", "summary"]
