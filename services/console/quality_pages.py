"""The quality page (数据质控): the queries the bureau's rules sent back to the person's institution, and the
answer form ("核实无误" with a comment). Correcting the record itself is done in the HIS: the query closes by
itself when the corrected record arrives."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.client import ApiError
from console.pages import explain
from console.quality_client import QualityApi
from console.web import Session, checked_form, render, session

router = APIRouter()
STATUS = {"open": "待处理", "answered": "已答复", "accepted": "已认可", "corrected": "已更正", "withdrawn": "已撤销"}
SEVERITY = {"error": "错误", "warning": "疑问"}


def _quality(request: Request) -> QualityApi:
    return QualityApi(request.app.state.api, request.app.state.settings.quality_url)


@router.get("/quality", response_class=HTMLResponse)
async def quality_page(request: Request, show: str = "open", me: Session = Depends(session)) -> Response:
    statuses = ["open", "answered"] if show == "open" else ["accepted", "corrected", "withdrawn"]
    error, items = "", []
    try:
        items = await _quality(request).queries(me.token, statuses)
    except ApiError as e:
        if e.status == 401:
            raise
        error = explain(e)
    done = request.query_params.get("done", "")
    return render(request, "quality.html", items=items, error=error, show=show, status_names=STATUS,
                  severity_names=SEVERITY, done=done)


@router.post("/quality/{query_id}/answer", response_class=HTMLResponse)
async def answer(request: Request, query_id: str, me: Session = Depends(session)) -> Response:
    form = await checked_form(request)
    comment = str(form.get("comment") or "").strip()
    if not comment:
        return render(request, "error.html", 422, title="填写有误", message="请填写核实说明")
    try:
        await _quality(request).answer(me.token, query_id, comment)
    except ApiError as e:
        if e.status == 401:
            raise
        return render(request, "error.html", e.status if e.status < 500 else 502, title="答复未完成",
                      message=explain(e))
    return RedirectResponse("/quality?done=1", status_code=303)
