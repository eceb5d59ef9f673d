"""Certificates endpoints: parse, authorise (scope, and for every write a person logged in), call one use case.

Object-level checks (the region of the child, certificate, serial, institution) are the use cases' (`Unit.see`),
in one place, before anything is written or returned."""
from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.downloads import attachment
from kit.logs import request_id

from certificates import service
from certificates.api import register as reg
from certificates.api.schemas import AllocationIn, BatchIn, CertificateIn, CustodianIn, PrintIn, SealIn, VoidIn
from certificates.service import Unit

router = APIRouter(prefix="/v1", tags=["certificates"])
#: query parameters naming an institution or a region (a NUL byte or a header-breaking character is a 422)
INSTITUTION = Query(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")
REGION = r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"


def person(scope: str):  # type: ignore[no-untyped-def]
    """A token with `scope` that belongs to a person (人员) logged in. Preparing, sealing, voiding, receiving and
    allocating stock and assigning custodians are done by someone (终身责任追究): a system token never does them."""
    return require(scope, person=True)


def unit(request: Request, p: Principal) -> Unit:
    """The use case's unit of work: the service's pool, the caller's scope, the credential database."""
    return Unit(request.app.state.pg, p, request.app.state.auth_db)


# ------------------------------------------------------------------ stock (证件库存)
@router.post("/stock/batches", summary="Receive a numbered batch of blanks into the region's stock (申领入库)",
             status_code=201)
async def post_batch(body: BatchIn, request: Request,
                     p: Principal = Depends(person("certificates:stock"))) -> ORJSONResponse:
    """申领入库: receive a numbered range of blank birth certificates into the region's stock (a person logged in). A
    range overlapping any serial already received is refused: every serial exists once."""
    status, out = await service.receive_batch(unit(request, p), body.batch_no, body.serial_from, body.serial_to,
                                              body.received_on)
    return ORJSONResponse(out, status_code=status)


@router.post("/stock/batches/{batch_no}/confirmation", summary="Confirm a recorded batch as a certificate "
             "custodian, another person than its recorder (双人验收); only then is it stock")
async def post_batch_confirmation(request: Request, batch_no: str = Path(pattern=r"^[A-Za-z0-9._:\-]{1,64}$"),
                                  p: Principal = Depends(person("certificates:prepare"))) -> dict[str, Any]:
    return await service.confirm_batch(unit(request, p), batch_no)


@router.get("/stock/batches", summary="The batches of the caller's region, newest first (awaiting=true: those "
            "awaiting a custodian's confirmation)")
async def get_batches(request: Request, awaiting: bool = False,
                      p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    return await service.batches(unit(request, p), awaiting)


@router.post("/stock/allocations", summary="Allocate a range of the region's blanks to an institution",
             status_code=201)
async def post_allocation(body: AllocationIn, request: Request,
                          p: Principal = Depends(person("certificates:stock"))) -> dict[str, Any]:
    """Allocate a range of the region's blanks to one of its institutions (a person logged in)."""
    return await service.allocate(unit(request, p), body.institution_code, body.serial_from, body.serial_to,
                                  body.allocated_on)


@router.post("/stock/serials/{serial}/void", summary="Void a spoiled blank (废证); it is kept, never reused")
async def void_blank(serial: str, body: VoidIn, request: Request,
                     p: Principal = Depends(person("certificates:void"))) -> dict[str, Any]:
    """Void a spoiled blank (废证) with a reason: it stays in the ledger as voided, never reused."""
    return _masked(await service.void_blank(unit(request, p), serial, body.reason), p)


@router.get("/stock/serials/{serial}", summary="One serial: its state and its whole history")
async def get_serial(serial: str, request: Request,
                     p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """One serial of the caller's region: its state (in stock, allocated, prepared, issued, voided) and every step of
    its history with who did it."""
    row, history = await service.serial(unit(request, p), serial, request_id.get())
    return {**_masked(row, p), "history": history}


@router.get("/stock/report", summary="Stock per institution or region and period: opening + received − issued − "
            "voided = closing")
async def stock_report(request: Request, start: date = Query(alias="from"), end: date = Query(alias="to"),
                       institution_code: str | None = Query(None, pattern=r"^[A-Za-z0-9._:\-]{1,64}$"),
                       region: str | None = Query(None, pattern=REGION),
                       p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """The stock ledger of an institution or region for a period: opening + received − issued − voided = closing, per
    holder."""
    return await service.stock_report(unit(request, p), start, end, institution_code, region)


# ------------------------------------------------------------------ custodians (专人管理)
@router.post("/custodians", summary="Assign a person account to keep an institution's blanks or seal (history "
             "kept)", status_code=201)
async def post_custodian(body: CustodianIn, request: Request,
                         p: Principal = Depends(person("certificates:stock"))) -> ORJSONResponse:
    """Name the person account that keeps an institution's blanks or its seal (history kept; a new custodian ends the
    previous one's term)."""
    status, out = await service.assign_custodian(unit(request, p), body.institution_code, body.account_id,
                                                 body.role)
    return ORJSONResponse(out, status_code=status)


@router.get("/custodians", summary="An institution's custodians, current and past")
async def get_custodians(request: Request, institution_code: str = INSTITUTION,
                         p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """The custodians of an institution of the caller's region, current and past."""
    return await service.custodians(unit(request, p), institution_code)


# ------------------------------------------------------------------ certificates
@router.post("/certificates", summary="Prepare a certificate (the certificate custodian logged in): draws the "
             "institution's next serial (prepared)", status_code=201)
async def post_certificate(body: CertificateIn, request: Request, response: Response,
                           p: Principal = Depends(person("certificates:prepare"))) -> dict[str, Any]:
    """Prepare a birth certificate (出生医学证明) for a live-born child the registry knows: the certificate
    custodian, logged in, draws the institution's next serial. Idempotent on the child: preparing again answers
    the same certificate."""
    response.status_code, out = await service.prepare(unit(request, p), body.kind, body.child_id, body.child_name,
                                                      body.institution_code, body.previous_serial,
                                                      body.evidence_ref, body.content)
    return _masked(out, p)


@router.post("/certificates/{serial}/seal", summary="Seal a prepared certificate (签发): the seal custodian "
             "logged in, never its preparer")
async def seal(serial: str, request: Request, body: SealIn | None = None,
               p: Principal = Depends(person("certificates:seal"))) -> dict[str, Any]:
    """签发: seal a prepared certificate. The seal custodian, logged in, and never the person who prepared it."""
    return _masked(await service.seal(unit(request, p), serial), p)


@router.post("/certificates/{serial}/void", summary="Void a certificate (废证); kept and reported, never reused")
async def void_certificate(serial: str, body: VoidIn, request: Request,
                           p: Principal = Depends(person("certificates:void"))) -> dict[str, Any]:
    """Void a certificate (废证) with a reason: kept and reported, its serial never reused."""
    return _masked(await service.void_certificate(unit(request, p), serial, body.reason), p)


@router.get("/certificates/verify", summary="For public security: is this a valid certificate of this child?")
async def verify(request: Request, response: Response, birth_date: date,
                 serial: str = Query(max_length=32, pattern=r"^[^\x00]*$"),
                 child_name: str = Query(max_length=100, pattern=r"^[^\x00]*$"),
                 p: Principal = Depends(require("certificates:verify"))) -> dict[str, Any]:
    """For public security (户籍登记): whether `serial` is a valid, issued certificate of the child with this name
    and birth date — an answer about that certificate only. Rate-limited per client; never cached."""
    request.app.state.verify_limit.check(p.client_id, "verifications")
    response.headers["Cache-Control"] = "no-store"
    return await service.verify(unit(request, p), serial, child_name, birth_date)


@router.get("/certificates/register", summary="The issuance register (出生医学证明发放登记表)")
async def get_register(request: Request, institution_code: str = INSTITUTION, start: date = Query(alias="from"),
                       end: date = Query(alias="to"), format: Literal["json", "csv", "xlsx"] = "json",
                       p: Principal = Depends(require("certificates:read"))) -> Response:
    """The issuance register (出生医学证明发放登记表) of an institution for a period: JSON, CSV or XLSX (`format`);
    names masked unless pii:read."""
    records = await service.register(unit(request, p), institution_code, start, end, request_id.get())
    data = reg.rows(records, p.has("pii:read"))
    name = f"register-{institution_code}-{start}-{end}"
    if format == "csv":
        return Response(reg.to_csv(data), media_type="text/csv; charset=utf-8",
                        headers=attachment(f"{name}.{format}"))
    if format == "xlsx":
        title = f"出生医学证明发放登记表 {institution_code} {start}—{end}"
        return Response(reg.to_xlsx(data, title),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers=attachment(f"{name}.{format}"))
    return ORJSONResponse({"institution_code": institution_code, "from": start.isoformat(), "to": end.isoformat(),
                           "columns": [{"key": k, "heading": h} for k, h in reg.COLUMNS], "rows": data})


@router.get("/certificates/{serial}", summary="One certificate (the child's name masked unless pii:read)")
async def get_certificate(serial: str, request: Request,
                          p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """One certificate of the caller's region with its history; the child's name masked unless pii:read."""
    return _masked(await service.certificate(unit(request, p), serial, request_id.get()), p)


@router.get("/children/{child_id}", summary="What the service knows of a child: birth and certificates")
async def get_child(child_id: str, request: Request,
                    p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """What the certificates service knows of a child (from the registry's events): the birth and every certificate
    prepared for it."""
    return await service.child(unit(request, p), child_id, request_id.get())


def _masked(out: dict[str, Any], p: Principal) -> dict[str, Any]:
    if "child_name" in out and not p.has("pii:read"):
        out["child_name"] = reg.mask(out["child_name"])
    return out


@router.post("/certificates/{serial}/prints", summary="Count one printed sheet (a reprint needs a reason)",
             status_code=201)
async def post_print(serial: str, request: Request, body: PrintIn | None = None,
                     p: Principal = Depends(person("certificates:read"))) -> dict[str, Any]:
    """Count one printed sheet of an issued certificate; a reprint needs a reason (every print is kept)."""
    return await service.record_print(unit(request, p), serial, body.reason if body else None)


@router.get("/worklist", summary="Live births of an institution without a certificate (待签发), oldest first")
async def get_worklist(request: Request, institution_code: str = Query(pattern=r"^[A-Za-z0-9._:\-]{1,64}$"),
                       birth_date: date | None = None,
                       p: Principal = Depends(require("certificates:read"))) -> dict[str, Any]:
    """The live births of an institution without an issued certificate (待签发), oldest first: the office's to-do
    list."""
    return await service.worklist(unit(request, p), institution_code, birth_date)
