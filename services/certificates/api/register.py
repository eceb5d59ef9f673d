"""The issuance register (出生医学证明发放登记表) as JSON rows, CSV or XLSX, with the bureau's headings."""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import xlsxwriter
from kit.auth import mask

from certificates.domain.rules import KIND_ZH, STATUS_ZH

#: (key in a JSON row, heading of the bureau's register)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("no", "序号"), ("serial", "出生医学证明编号"), ("kind", "签发类型"), ("child_name", "新生儿姓名"),
    ("birth_date", "出生日期"), ("institution_code", "签发机构"), ("prepared_by", "制证人（证件管理员）"),
    ("sealed_by", "盖章人（印章管理员）"), ("prepared_on", "制证日期"), ("issued_on", "签发日期"),
    ("status", "状态"), ("previous_serial", "原证编号"), ("superseded_by", "收回/失效于（新证编号）"),
    ("ended_on", "作废/收回日期"), ("void_reason", "作废原因"),
)


def rows(records: list[Any], unmask: bool) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(records, 1):
        def person(account: str | None, named: list[str | None] | None) -> str:
            """名字（工号） of the custodian's account, else the account id the row records."""
            name, staff = (named or [None, None])
            return f"{name}（{staff or account}）" if name else account or ""

        out.append({
            "no": i, "serial": r["serial"], "kind": KIND_ZH.get(r["kind"], r["kind"]), "kind_code": r["kind"],
            "child_name": r["child_name"] if unmask else mask(r["child_name"]),
            "birth_date": _d(r["birth_date"]), "institution_code": r["institution_code"],
            "prepared_by": person(r["prepared_by"], r["preparer"]),
            "sealed_by": person(r["sealed_by"], r["sealer"]), "prepared_on": _d(r["prepared_on"]),
            "issued_on": _d(r["issued_on"]), "status": STATUS_ZH.get(r["state"], r["state"]),
            "status_code": r["state"], "previous_serial": r["previous_serial"] or "",
            "superseded_by": r["superseded_by"] or "", "ended_on": _d(r["voided_on"] or r["superseded_on"]),
            "void_reason": r["void_reason"] or "",
        })
    return out


def _d(v: date | None) -> str:
    return v.isoformat() if v else ""


def to_csv(data: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for _, h in COLUMNS])
    for r in data:
        w.writerow([r[k] for k, _ in COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode()  # BOM: Excel opens UTF-8 Chinese correctly


def to_xlsx(data: list[dict[str, Any]], title: str) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("发放登记表")
    bold = wb.add_format({"bold": True, "align": "center"})
    ws.merge_range(0, 0, 0, len(COLUMNS) - 1, title, bold)
    for j, (_, h) in enumerate(COLUMNS):
        ws.write(1, j, h, bold)
        ws.set_column(j, j, max(10, len(h) * 2))
    for i, r in enumerate(data, 2):
        for j, (k, _) in enumerate(COLUMNS):
            ws.write(i, j, r[k])
    wb.close()
    return buf.getvalue()
