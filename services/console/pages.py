"""The console's pages: parse the form, call the services with the person's token, render.

What a person may do is decided by the services from the token (roles, region, 证章分离); a page shows a
refusal as the service worded it. The pages only arrange the clerks' work: the worklist, the form, the queue."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from kit.clock import today_cn

from console import checkcode, content, printing
from console.client import Api, ApiError
from console.web import Session, checked_form, client_address, render, session, start_session

router = APIRouter()
KINDS = {"first": "首次签发", "first_out_of_institution": "首次签发（非医疗机构内出生）", "reissue": "补发",
         "replacement": "换发"}
STATES = {"prepared": "已制证待盖章", "issued": "已签发", "voided": "已作废", "superseded": "已收回",
          "allocated": "空白（已分配）", "in_stock": "空白（库存）"}
VERIFY_STATUS = {"issued": "有效", "valid": "有效", "voided": "已作废", "superseded": "已收回（已换发或补发）",
                 "prepared": "尚未签发", "not_found": "查无此证", "mismatch": "信息不符（姓名或出生日期与证件不一致）"}


def today() -> date:
    """The office's day is China's day, whatever the server's zone (kit.clock)."""
    return today_cn()


def status_title(status: int) -> str:
    return {403: "无权操作", 404: "未找到", 409: "状态冲突", 422: "填写有误", 429: "操作过于频繁"}.get(
        status, "服务暂不可用" if status >= 500 else "请求未完成")


def explain(e: ApiError) -> str:
    """A service's refusal for the clerk: what kind of refusal in Chinese, then the service's own words."""
    fallback = "服务暂不可用" if e.status >= 500 else "操作未完成"
    lead = {403: "无权操作：您的岗位不能执行此操作", 404: "未找到", 409: "当前状态不允许此操作",
            422: "填写有误", 429: "操作过于频繁，请稍后再试"}.get(e.status, fallback)
    return f"{lead}（{e.detail}）"


def _api(request: Request) -> Api:
    return request.app.state.api  # type: ignore[no-any-return]


# ------------------------------------------------------------------ login
@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return render(request, "login.html")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await checked_form(request)
    username, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    if not username or not password:
        return render(request, "login.html", 422, error="请输入登录名和密码", username=username)
    try:
        answer = await _api(request).login(username, password)
    except ApiError as e:
        msg = "登录名或密码不正确，或账号已锁定" if e.status in (401, 422) else e.detail
        return render(request, "login.html", 401 if e.status in (401, 422) else e.status, error=msg,
                      username=username)
    start_session(request, answer)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ------------------------------------------------------------------ worklist (待签发)
@router.get("/", response_class=HTMLResponse)
async def worklist(request: Request, q: str = "", birth_date: str = "", me: Session = Depends(session)) -> Response:
    born: date | None = None
    error = ""
    if birth_date:
        try:
            born = date.fromisoformat(birth_date)
        except ValueError:
            error = "出生日期格式应为 年-月-日"
    items: list[dict[str, Any]] = []
    if not error:
        try:
            items = await _worklist(_api(request), me, q.strip(), born)
        except ApiError as e:
            if e.status == 401:
                raise
            error = explain(e)
    return render(request, "worklist.html", q=q, birth_date=birth_date, items=items, error=error)


async def _worklist(api: Api, me: Session, q: str, born: date | None) -> list[dict[str, Any]]:
    """The certificates service knows which births still need a certificate; the registry knows the mothers.
    A search asks both with the person's token and keeps the births in both (neither reads the other's
    tables); the registry masks and audits the mothers' fields as the person's role allows."""
    pending = await api.worklist(me.token, me.institution_code, born)
    if not (q or born):
        return pending
    found = {b["child_id"]: b for b in await api.births_at(me.token, me.institution_code, q, born)}
    if q:
        return [{**found[it["child_id"]], **it} for it in pending if it["child_id"] in found]
    return [{**found.get(it["child_id"], {}), **it} for it in pending]


# ------------------------------------------------------------------ prepare (制证)
@router.get("/prepare", response_class=HTMLResponse)
async def prepare_page(request: Request, child_id: str, kind: str = "first", previous_serial: str = "",
                       me: Session = Depends(session)) -> Response:
    if kind not in KINDS:
        kind = "first"
    values = await _prefill(request, me, child_id.strip(), previous_serial.strip())
    return _form(request, child_id.strip(), kind, previous_serial.strip(), values, {})


async def _prefill(request: Request, me: Session, child_id: str, previous_serial: str) -> dict[str, str]:
    """From the certificate being replaced (补发/换发) or else from the registry's delivery record."""
    api = _api(request)
    if previous_serial:
        old = await api.certificate(me.token, previous_serial)
        return {k: str(v) for k, v in (old.get("content") or {}).items()}
    child = await api.person(me.token, child_id)

    async def optional(call: Awaitable[dict[str, Any]] | None) -> dict[str, Any] | None:
        """A partial pre-fill on a refusal: the clerk types the rest from the documents."""
        try:
            return await call if call is not None else None
        except ApiError:
            return None

    preg_id, mother_id = child.get("born_in_pregnancy_id"), child.get("mother_id")
    preg, mother, inst = await asyncio.gather(  # the three reads at once: the page waits for the slowest only
        optional(api.pregnancy(me.token, str(preg_id)) if preg_id else None),
        optional(api.person(me.token, str(mother_id)) if mother_id else None),
        optional(api.institution(me.token, me.institution_code) if me.institution_code else None))
    return content.prefill(child, preg, mother, inst)


def _form(request: Request, child_id: str, kind: str, previous_serial: str, values: dict[str, Any],
          errors: dict[str, str], status: int = 200, preview: bool = False, evidence_ref: str = "") -> Response:
    return render(request, "prepare.html", status, child_id=child_id, kind=kind, kinds=KINDS,
                  previous_serial=previous_serial, values=values, errors=errors, groups=content.groups(),
                  preview=preview, shown=content.display(values) if preview else {},
                  layout=printing.edition(request.app.state.settings.form_edition), evidence_ref=evidence_ref)


@router.post("/prepare", response_class=HTMLResponse)
async def prepare(request: Request, me: Session = Depends(session)) -> Response:
    form = await checked_form(request)
    raw = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    child_id, kind = raw.get("child_id", "").strip(), raw.get("kind", "first")
    previous, evidence = raw.get("previous_serial", "").strip(), raw.get("evidence_ref", "").strip()
    if kind not in KINDS or not child_id:
        return render(request, "error.html", 422, title="填写有误", message="缺少新生儿编号或签发类型")
    values, errors = content.validate(raw, today())
    if errors or raw.get("action") != "prepare":
        return _form(request, child_id, kind, previous, raw if errors else values, errors,
                     422 if errors else 200, preview=not errors, evidence_ref=evidence)
    body: dict[str, Any] = {"kind": kind, "child_id": child_id, "child_name": values["child_name"],
                            "content": values}
    if previous:
        body["previous_serial"] = previous
    if evidence:
        body["evidence_ref"] = evidence
    try:
        out = await _api(request).prepare(me.token, body)
    except ApiError as e:
        if e.status in (401,):
            raise
        return _form(request, child_id, kind, previous, values, _field_errors(e), e.status, evidence_ref=evidence)
    return RedirectResponse(f"/certificates/{out['serial']}", status_code=303)


def _field_errors(e: ApiError) -> dict[str, str]:
    """A service's refusal on the form: per field where it named one (content.x → x), else at the top."""
    out = {k.removeprefix("body.").removeprefix("content."): v for k, v in e.fields.items()}
    out["_"] = explain(e)
    return out


# ------------------------------------------------------------------ one certificate: view, seal, print, void
@router.get("/certificates/{serial}", response_class=HTMLResponse)
async def certificate(request: Request, serial: str, me: Session = Depends(session)) -> Response:
    cert = await _api(request).certificate(me.token, serial)
    return _certificate_page(request, cert)


def _certificate_page(request: Request, cert: dict[str, Any], status: int = 200, error: str = "") -> Response:
    values = dict(cert.get("content") or {})
    return render(request, "certificate.html", status, cert=cert, kinds=KINDS, states=STATES,
                  shown=content.display(values), groups=content.groups(), error=error,
                  layout=printing.edition(request.app.state.settings.form_edition),
                  prints=int(cert.get("print_count") or 0))


@router.post("/certificates/{serial}/seal")
async def seal(request: Request, serial: str, me: Session = Depends(session)) -> Response:
    await checked_form(request)
    api = _api(request)
    try:
        await api.seal(me.token, serial)
    except ApiError as e:
        if e.status == 401:
            raise
        return _certificate_page(request, await api.certificate(me.token, serial), e.status, explain(e))
    return RedirectResponse(f"/certificates/{serial}", status_code=303)


@router.post("/certificates/{serial}/void")
async def void(request: Request, serial: str, me: Session = Depends(session)) -> Response:
    form = await checked_form(request)
    reason = str(form.get("reason") or "").strip()
    api = _api(request)
    if not reason:
        return _certificate_page(request, await api.certificate(me.token, serial), 422, "作废须填写原因")
    try:
        await api.void(me.token, serial, reason)
    except ApiError as e:
        if e.status == 401:
            raise
        return _certificate_page(request, await api.certificate(me.token, serial), e.status, explain(e))
    return RedirectResponse(f"/certificates/{serial}", status_code=303)


@router.post("/certificates/{serial}/print")
async def print_pdf(request: Request, serial: str, me: Session = Depends(session)) -> Response:
    """Counts the sheet at the certificates service first (a reprint needs a reason there), then the PDF."""
    form = await checked_form(request)
    reason = str(form.get("reason") or "").strip() or None
    api = _api(request)
    try:
        counted = await api.record_print(me.token, serial, reason)
    except ApiError as e:
        if e.status == 401:
            raise
        return _certificate_page(request, await api.certificate(me.token, serial), e.status, explain(e))
    cert = await api.certificate(me.token, serial)
    s = request.app.state.settings
    n = int(counted.get("print_no") or 1)
    pdf = printing.certificate_pdf(
        serial, dict(cert.get("content") or {"child_name": cert.get("child_name", "")}),
        issuer=str(cert.get("institution_name") or cert.get("institution_code") or ""),
        issued_on=str(cert.get("issued_on") or ""), qr_url=checkcode.verification_url(s.public_url, s.check_key(),
                                                                                      serial),
        edition_name=s.form_edition, copy_note=f"第{n}次打印" if n > 1 else "")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="certificate-{serial}.pdf"'})


# ------------------------------------------------------------------ the seal custodian's queue (待盖章)
@router.get("/seal", response_class=HTMLResponse)
async def seal_queue(request: Request, me: Session = Depends(session)) -> Response:
    """Prepared certificates of my institution (from the issuance register of the last 90 days)."""
    end = today()
    r = await _api(request).register(me.token, me.institution_code, end - timedelta(days=90), end)
    rows = [row for row in r.json().get("rows", []) if row.get("status_code") == "prepared"]
    return render(request, "seal.html", rows=rows)


# ------------------------------------------------------------------ stock (证件库存)
@router.get("/stock", response_class=HTMLResponse)
async def stock(request: Request, start: str = "", end: str = "", institution: str = "",
                me: Session = Depends(session)) -> Response:
    """My institution's stock, or a named one, or (at the bureau) every institution's of my region."""
    d_end = _date(end) or today()
    d_start = _date(start) or d_end.replace(day=1)
    code = institution.strip() or me.institution_code
    report: dict[str, Any] = {}
    error = ""
    try:
        report = await _api(request).stock_report(me.token, d_start, d_end, code,
                                                  str(me.account.get("region") or ""))
    except ApiError as e:
        if e.status == 401:
            raise
        error = explain(e)
    return render(request, "stock.html", report=report, start=d_start.isoformat(), end=d_end.isoformat(),
                  institution=code, error=error, message=request.query_params.get("ok", ""),
                  awaiting=await _awaiting(request, me))


async def _awaiting(request: Request, me: Session) -> list[dict[str, Any]]:
    """Batches of my region recorded by the office head and awaiting a custodian's confirmation (双人验收)."""
    try:
        return await _api(request).awaiting_batches(me.token)
    except ApiError as e:
        if e.status == 401:
            raise
        return []


def _date(v: str) -> date | None:
    try:
        return date.fromisoformat(v) if v else None
    except ValueError:
        return None


@router.post("/stock/{action}")
async def stock_action(request: Request, action: str, me: Session = Depends(session)) -> Response:
    form = {k: str(v).strip() for k, v in (await checked_form(request)).items() if isinstance(v, str)}
    api = _api(request)
    try:
        if action == "batches":
            await api.receive_batch(me.token, {k: form.get(k, "") for k in
                                               ("batch_no", "serial_from", "serial_to", "received_on")})
        elif action == "allocations":
            await api.allocate(me.token, {k: form.get(k, "") for k in
                                          ("institution_code", "serial_from", "serial_to", "allocated_on")})
        elif action == "confirm":
            await api.confirm_batch(me.token, form.get("batch_no", ""))
        elif action == "spoil":
            await api.void_blank(me.token, form.get("serial", ""), form.get("reason", ""))
        else:
            return render(request, "error.html", 404, title="未找到", message="没有这个操作")
    except ApiError as e:
        if e.status == 401:
            raise
        return render(request, "stock.html", e.status, report={}, start="", end="", error=explain(e),
                      fields=e.fields, form=form, message="", institution=me.institution_code,
                      awaiting=await _awaiting(request, me))
    return RedirectResponse("/stock?ok=" + action, status_code=303)


@router.get("/stock/register")
async def register_download(request: Request, start: str, end: str, format: str = "xlsx", institution: str = "",
                            me: Session = Depends(session)) -> Response:
    """The issuance register (发放登记表) as the service renders it, passed through for download."""
    d_start, d_end = _date(start), _date(end)
    code = institution.strip() or me.institution_code
    if d_start is None or d_end is None or format not in ("csv", "xlsx") or not code:
        return render(request, "error.html", 422, title="填写有误", message="请填写机构代码和起止日期（年-月-日）")
    r = await _api(request).register(me.token, code, d_start, d_end, format)
    name = f"register-{quote(code, safe='')}-{d_start}-{d_end}.{format}"
    return Response(r.content, media_type=r.headers.get("content-type", "application/octet-stream"),
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ------------------------------------------------------------------ public verification (核验)
@router.get("/verify", response_class=HTMLResponse)
async def verify_page(request: Request, serial: str = "", c: str = "") -> Response:
    return render(request, "verify.html", serial=serial, c=c, result=None, **_code_state(request, serial, c))


def _code_state(request: Request, serial: str, c: str) -> dict[str, Any]:
    """Whether the QR's check code matches the serial (None when no code was given)."""
    if not (serial and c):
        return {"code_ok": None}
    return {"code_ok": checkcode.matches(request.app.state.settings.check_key(), serial, c)}


@router.post("/verify", response_class=HTMLResponse)
async def verify(request: Request) -> Response:
    form = {k: str(v).strip() for k, v in (await checked_form(request)).items() if isinstance(v, str)}
    serial, name, c = form.get("serial", "").upper(), form.get("child_name", ""), form.get("c", "")
    born = _date(form.get("birth_date", ""))
    ctx = {"serial": serial, "c": c, "child_name": name, "birth_date": form.get("birth_date", ""),
           **_code_state(request, serial, c)}
    if not serial or not name or born is None:
        return render(request, "verify.html", 422, result=None, error="请填写证件编号、新生儿姓名和出生日期", **ctx)
    wait = request.app.state.verify_limit.wait_s(client_address(request))
    if wait:
        return render(request, "verify.html", 429, result=None, error=f"查询过于频繁，请 {int(wait) + 1} 秒后再试",
                      **ctx)
    result = await _api(request).verify(serial, name, born)
    label = "有效" if result.get("valid") else VERIFY_STATUS.get(str(result.get("status")), "无效")
    return render(request, "verify.html", result=result, label=label, **ctx)


# ------------------------------------------------------------------ the form edition's layout for the preview
@router.get("/layout.css")
async def layout_css(request: Request) -> Response:
    """Where each field sits on the sheet, from the same data the PDF is drawn with (a stylesheet, so the page
    needs no inline style and the CSP stays strict)."""
    ed = printing.edition(request.app.state.settings.form_edition)
    height = ed["page_mm"][1]
    rules = [f".f-{k} {{ left: {p['x']}mm; top: {height - p['y'] - 4}mm; }}" for k, p in ed["fields"].items()]
    return Response("\n".join(rules) + "\n", media_type="text/css",
                    headers={"Cache-Control": "public, max-age=300"})
