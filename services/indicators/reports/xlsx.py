"""The annual report as one XLSX sheet laid out like the bureau's summary table (Chinese headings)."""
from __future__ import annotations

import io
from typing import Any

import xlsxwriter

from indicators.reports.layout import UNIT_ZH

HEADERS = ("序号", "指标名称", "分子", "分母", "数值", "单位", "任务数", "完成率(%)", "指标代码")
NOTE = "注：数值 = 分子 ÷ 分母 × 系数（%、‰、1/10万），四舍五入保留两位小数；完成率 = 完成数 ÷ 任务数 × 100。"
WIDTHS = (6, 30, 10, 10, 10, 9, 9, 11, 34)


def render(report: dict[str, Any], region_name: str = "") -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("年度统计表")
    title = wb.add_format({"bold": True, "font_size": 15, "align": "center", "valign": "vcenter"})
    sub = wb.add_format({"font_size": 10, "align": "left"})
    head = wb.add_format({"bold": True, "border": 1, "align": "center", "valign": "vcenter", "bg_color": "#DDEBF7",
                          "text_wrap": True})
    sec = wb.add_format({"bold": True, "border": 1, "bg_color": "#F2F2F2"})
    cell = wb.add_format({"border": 1})
    num = wb.add_format({"border": 1, "num_format": "#,##0"})
    rate = wb.add_format({"border": 1, "num_format": "0.00"})
    centre = wb.add_format({"border": 1, "align": "center"})
    for i, w in enumerate(WIDTHS):
        ws.set_column(i, i, w)
    last = len(HEADERS) - 1
    ws.merge_range(0, 0, 0, last, f"{region_name or report['region']}妇幼健康工作年度统计表", title)
    ws.set_row(0, 26)
    ws.merge_range(1, 0, 1, last, f"地区代码：{report['region'] or '全部'}    统计期间：{report['period_zh']}    "
                   f"指标目录版本：{report['catalogue_version']}", sub)
    ws.write_row(2, 0, HEADERS, head)
    ws.freeze_panes(3, 0)
    r = 3
    for s in report["sections"]:
        ws.merge_range(r, 0, r, last, s["title_zh"], sec)
        r += 1
        for n, row in enumerate(s["rows"], 1):
            ws.write_number(r, 0, n, centre)
            ws.write_string(r, 1, row["name_zh"], cell)
            ws.write_number(r, 2, row["numerator"], num)
            _maybe(ws, r, 3, row["denominator"], num, cell)
            _maybe(ws, r, 4, row["value"], num if row["unit"] == "count" else rate, cell)
            ws.write_string(r, 5, UNIT_ZH.get(row["unit"], row["unit"]), centre)
            _maybe(ws, r, 6, row["target"], num, cell)
            _maybe(ws, r, 7, row["completion"], rate, cell)
            ws.write_string(r, 8, row["code"], cell)
            r += 1
    ws.write_string(r + 1, 0, NOTE, sub)
    wb.close()
    return buf.getvalue()


def _maybe(ws: Any, r: int, c: int, v: float | int | None, fmt: Any, blank: Any) -> None:
    if v is None:
        ws.write_blank(r, c, None, blank)
    else:
        ws.write_number(r, c, v, fmt)
