"""Certificates endpoints: parse, authorise, call one use case."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.downloads import attachment
from kit.errors import invalid, not_found
from kit.logs import request_id

from certificates import service
from certificates.api import register as reg
from certificates.api.schemas import AllocationIn, BatchIn, CertificateIn, CustodianIn, SealIn, VoidIn
from certificates.domain.rules import Custodian
from certificates.service import Actor
from certificates.store import sql
from certificates.store.sql import Conn

router = APIRouter(prefix="/v1", tags=["certificates"])


class _Units:
    """Units of work on the service's asyncpg pool (see main.startup): `begin()` is one transaction, `connect()`
    reads without one. Clerks beyond the pool's size queue for a connection in arrival order."""

    def __init__(self, request: Request) -> None:
        self.pool: asyncpg.Pool = request.app.state.pg

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as db, db.transaction():
            yield db

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as db:
            yield db


def _db(request: Request) -> _Units:
    return _Units(request)


# ------------------------------------------------------------------ stock (证件库存)
@router.post("/stock/batches", summary="Receive a numbered batch of blanks into the bureau's stock (申领入库)",
             status_code=201)
async def post_batch(body: BatchIn, request: Request,
                     p: Principal = Depends(require("certificates:stock"))) -> ORJSONResponse:
    async with _db(request).begin() as conn:
        status, out = await service.receive_batch(conn, Actor(p), body.batch_no, body.serial_from, body.serial_to,
                                                  body.received_on, body.by)
    return ORJSONResponse(out, status_code=status)


@router.post("/stock/allocations", summary="Allocate a range of the bureau's blanks to an institution",
             status_code=201)
async def post_allocation(body: AllocationIn, request: Request,
                          p: Principal = Depends(require("certificates:stock"))) -> dict[str, Any]:
    async with _db(request).begin() as conn:
        return await service.allocate(conn, Actor(p), body.institution_code, body.serial_from, body.serial_to,
                                      body.allocated_on, body.by)


@router.post("/stock/serials/{serial}/void", summary="Void a spoiled blank (废证); it is kept, never reused")
async def void_blank(serial: str, body: VoidIn, request: Request,
                     p: Principal = Depends(require("certificates:stock"))) -> dict[str, Any]:
    async with _db(request).begin() as conn:
        return _masked(await service.void_blank(conn, Actor(p), serial, body.reason, body.by), p)


@router.get("/stock/serials/{serial}", summary="One serial: its state and its whole history")
async def get_serial(serial: str, request: Request,
                     p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    async with _db(request).begin() as db:
        row = await sql.serial_row(db, serial)
        if row is None:
            raise not_found("serial", serial)
        if row["institution_region"]:
            p.require_region(row["institution_region"], "serial")
        history = await sql.serial_history(db, serial)
        if row["child_id"] is not None:
            await sql.pii_read(db, p.client_id, request_id.get(), "certificate", serial, ["child_name"],
                               p.has("pii:read"))
    out = _masked(service.view(row), p)
    out["history"] = [dict(h) for h in history]
    return out


@router.get("/stock/report", summary="Stock per institution or region and period: opening + received − issued − "
            "voided = closing")
async def stock_report(request: Request, start: date = Query(alias="from"), end: date = Query(alias="to"),
                       institution_code: str | None = None, region: str | None = None,
                       p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    if (institution_code is None) == (region is None):
        raise invalid("institution_code", "name either institution_code or region")
    async with _db(request).connect() as conn:
        if institution_code is not None:
            p.require_region(await sql.stock_institution_region(conn, institution_code) or "",
                             "institution_code")
        else:
            p.require_region(region or "", "region")
        return await service.stock_report(conn, start, end, institution_code, region)


# ------------------------------------------------------------------ custodians (专人管理)
@router.post("/custodians", summary="Name an institution's certificate or seal custodian (history kept)",
             status_code=201)
async def post_custodian(body: CustodianIn, request: Request,
                         p: Principal = Depends(require("certificates:stock"))) -> ORJSONResponse:
    async with _db(request).begin() as conn:
        status, out = await service.assign_custodian(
            conn, Actor(p), Custodian(body.institution_code, body.staff_id, body.name, body.role))
    return ORJSONResponse(out, status_code=status)


@router.get("/custodians", summary="An institution's custodians, current and past")
async def get_custodians(institution_code: str, request: Request,
                         p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    async with _db(request).connect() as db:
        p.require_region(await sql.institution_region(db, institution_code) or "", "institution_code")
        rows = await sql.custodian_history(db, institution_code)
    return {"institution_code": institution_code, "custodians": [dict(r) for r in rows]}


# ------------------------------------------------------------------ certificates
@router.post("/certificates", summary="Prepare a certificate: draws the institution's next serial (prepared)",
             status_code=201)
async def post_certificate(body: CertificateIn, request: Request, response: Response,
                           p: Principal = Depends(require("certificates:issue"))) -> dict[str, Any]:
    async with _db(request).begin() as conn:
        response.status_code, out = await service.prepare(conn, Actor(p), body.kind, body.child_id,
                                                          body.child_name, body.prepared_by, body.institution_code,
                                                          body.previous_serial, body.evidence_ref)
    return _masked(out, p)


@router.post("/certificates/{serial}/seal", summary="Seal a prepared certificate (签发) by the seal custodian")
async def seal(serial: str, body: SealIn, request: Request,
               p: Principal = Depends(require("certificates:issue"))) -> dict[str, Any]:
    async with _db(request).begin() as conn:
        return _masked(await service.seal(conn, Actor(p), serial, body.sealed_by), p)


@router.post("/certificates/{serial}/void", summary="Void a certificate (废证); kept and reported, never reused")
async def void_certificate(serial: str, body: VoidIn, request: Request,
                           p: Principal = Depends(require("certificates:issue"))) -> dict[str, Any]:
    async with _db(request).begin() as conn:
        return _masked(await service.void_certificate(conn, Actor(p), serial, body.reason, body.by), p)


@router.get("/certificates/verify", summary="For public security: is this a valid certificate of this child?")
async def verify(request: Request, response: Response, serial: str, child_name: str, birth_date: date,
                 p: Principal = Depends(require("certificates:verify"))) -> dict[str, Any]:
    request.app.state.verify_limit.check(p.client_id, "verifications")
    response.headers["Cache-Control"] = "no-store"
    async with _db(request).begin() as conn:
        return await service.verify(conn, Actor(p), serial, child_name, birth_date)


@router.get("/certificates/register", summary="The issuance register (出生医学证明发放登记表)")
async def get_register(request: Request, institution_code: str, start: date = Query(alias="from"),
                       end: date = Query(alias="to"), format: Literal["json", "csv", "xlsx"] = "json",
                       p: Principal = Depends(require("certificates:read"))) -> Response:
    if end < start:
        raise invalid("to", f"{end} is before from {start}")
    unmask = p.has("pii:read")
    async with _db(request).begin() as db:
        p.require_region(await sql.stock_institution_region(db, institution_code) or "", "institution_code")
        records = await sql.register(db, institution_code, start, end)
        await sql.pii_read(db, p.client_id, request_id.get(), "register", f"{institution_code}:{start}:{end}",
                           ["child_name"], unmask)
    data = reg.rows(records, unmask)
    name = f"register-{institution_code}-{start}-{end}"
    if format == "csv":
        return Response(reg.to_csv(data), media_type="text/csv; charset=utf-8",
                        headers=attachment(f"{name}.csv"))
    if format == "xlsx":
        title = f"出生医学证明发放登记表 {institution_code} {start}—{end}"
        return Response(reg.to_xlsx(data, title),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers=attachment(f"{name}.xlsx"))
    return ORJSONResponse({"institution_code": institution_code, "from": start.isoformat(), "to": end.isoformat(),
                           "columns": [{"key": k, "heading": h} for k, h in reg.COLUMNS], "rows": data})


@router.get("/certificates/{serial}", summary="One certificate (the child's name masked unless pii:read)")
async def get_certificate(serial: str, request: Request,
                          p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    async with _db(request).begin() as db:
        row = await sql.serial_row(db, serial)
        if row is None or row["child_id"] is None:
            raise not_found("certificate", serial)
        p.require_region(row["institution_region"] or "", "serial")
        await sql.pii_read(db, p.client_id, request_id.get(), "certificate", serial, ["child_name"],
                           p.has("pii:read"))
    return _masked(service.view(row), p)


@router.get("/children/{child_id}", summary="What the service knows of a child: birth and certificates")
async def get_child(child_id: str, request: Request,
                    p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    async with _db(request).connect() as db:
        child = await sql.child_facts(db, child_id)
        if child.birth_date is None and child.born_at is None:
            raise not_found("child", child_id)
        certs = await sql.certificates_of_child(db, child_id)
    return {"child_id": child_id, "birth_date": child.birth_date, "born_at": child.born_at,
            "birth_place": child.birth_place, "known": child.birth_date is not None and child.born_at is not None,
            "certificates": [{"serial": c.serial, "kind": c.kind, "state": c.state} for c in certs]}


def _masked(out: dict[str, Any], p: Principal) -> dict[str, Any]:
    if "child_name" in out and not p.has("pii:read"):
        out["child_name"] = reg.mask(out["child_name"])
    return out
