"""Statutory tables as XLSX: one sheet per form, printable (A4 landscape, one page wide, the header rows repeated
on every page), the form's header (表号, 制定机关, 批准文号, 有效期至, 填报单位) and footer (单位负责人, 统计负责人,
填表人, 联系电话, 报出日期); and as CSV with a UTF-8 BOM (Excel on Chinese Windows)."""
from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

HEADER_KEYS = ("表号", "制定机关", "批准文号", "有效期至")
BOM = "\ufeff"
#: a cell against its target (任务/目标): met, within the margin, short
STATUS_FILL = {"green": "#C6EFCE", "amber": "#FFEB9C", "red": "#FFC7CE"}


def _sheet_name(title: str, used: set[str]) -> str:
    name = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31]
    base, i = name, 2
    while name in used:
        name = f"{base[:28]}({i})"
        i += 1
    used.add(name)
    return name


def render(tables: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    f = {
        "title": wb.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"}),
        "meta": wb.add_format({"font_size": 9}),
        "metar": wb.add_format({"font_size": 9, "align": "right"}),
        "head": wb.add_format({"bold": True, "border": 1, "align": "center", "valign": "vcenter", "text_wrap": True,
                               "bg_color": "#DDEBF7", "font_size": 9}),
        "name": wb.add_format({"border": 1, "font_size": 9}),
        "count": wb.add_format({"border": 1, "num_format": "#,##0", "font_size": 9}),
        "rate": wb.add_format({"border": 1, "num_format": "0.00", "font_size": 9}),
        "total": wb.add_format({"border": 1, "bold": True, "font_size": 9, "bg_color": "#F2F2F2"}),
        "tcount": wb.add_format({"border": 1, "bold": True, "num_format": "#,##0", "font_size": 9,
                                 "bg_color": "#F2F2F2"}),
        "trate": wb.add_format({"border": 1, "bold": True, "num_format": "0.00", "font_size": 9,
                                "bg_color": "#F2F2F2"}),
    }
    for status, colour in STATUS_FILL.items():
        f[status] = wb.add_format({"border": 1, "num_format": "0.00", "font_size": 9, "bg_color": colour})
    used: set[str] = set()
    for t in tables:
        _sheet(wb.add_worksheet(_sheet_name(t["title"], used)), t, f)
    wb.close()
    return buf.getvalue()


def _sheet(ws: Any, t: dict[str, Any], f: dict[str, Any]) -> None:
    cols = t["columns"]
    last = len(cols)  # column 0 is the unit name
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.fit_to_pages(1, 0)
    ws.set_column(0, 0, 16)
    ws.set_column(1, last, 9)
    ws.merge_range(0, 0, 0, last, t["title"], f["title"])
    ws.set_row(0, 24)
    h = t["header"]
    ws.merge_range(1, 0, 1, last // 2, f"填报单位：{h.get('填报单位', '')}    统计期间：{t['period_zh']}"
                   f"    {'终报' if t['final'] else '快报（数据未截止，' + t['final_on'] + '起为终报）'}", f["meta"])
    ws.merge_range(1, last // 2 + 1, 1, last, "    ".join(f"{k}：{h.get(k, '')}" for k in HEADER_KEYS), f["metar"])
    ws.write_string(2, 0, "单位名称", f["head"])
    for i, c in enumerate(cols, 1):
        ws.write_string(2, i, c["label"], f["head"])
        ws.write_string(3, i, c["unit"], f["head"])
    ws.write_string(3, 0, "计量单位", f["head"])
    ws.set_row(2, 42)
    ws.repeat_rows(2, 3)  # printed on every page
    ws.freeze_panes(4, 1)
    r = 4
    for row in t["rows"]:
        _row(ws, r, row, cols, f, f["name"], f["count"], f["rate"])
        r += 1
    _row(ws, r, t["total"], cols, f, f["total"], f["tcount"], f["trate"])
    r += 2
    footer = t["footer"]
    ws.merge_range(r, 0, r, last, "    ".join(f"{k}：{footer.get(k, '') or '________'}" for k in footer), f["meta"])
    ws.print_area(0, 0, r, last)


def _row(ws: Any, r: int, row: dict[str, Any], cols: list[dict[str, Any]], f: dict[str, Any], name: Any,
         count: Any, rate: Any) -> None:
    ws.write_string(r, 0, row["name"], name)
    for i, (v, c) in enumerate(zip(row["cells"], cols, strict=True), 1):
        fmt = count if c["unit"] in ("人", "例", "对", "份") else rate
        target = row.get("targets", {}).get(str(i - 1))
        if target and target.get("status"):
            fmt = f[target["status"]]
            ws.write_comment(r, i, f"目标 {target['comparison']} {target['target']}"
                             + (f"，完成 {target['completion']}%" if target.get("completion") is not None else ""))
        if v is None:
            ws.write_blank(r, i, None, fmt)
        else:
            ws.write_number(r, i, v, fmt)


def render_csv(t: dict[str, Any]) -> bytes:
    """One table as CSV, UTF-8 with a BOM so that Excel on Chinese Windows reads the names."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([t["title"], t["header"].get("填报单位", ""), t["period_zh"], "终报" if t["final"] else "快报"])
    w.writerow(["单位代码", "单位名称", *(f"{c['label']}({c['unit']})" for c in t["columns"])])
    for row in [*t["rows"], t["total"]]:
        w.writerow([row["unit"], row["name"], *("" if v is None else v for v in row["cells"])])
    return (BOM + out.getvalue()).encode("utf-8")
