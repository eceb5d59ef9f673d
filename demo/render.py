"""Render a provisioned Grafana dashboard to PNG without Grafana — for the walkthrough, a report, or a bureau
that has no Grafana yet: every panel's own query runs (SQL against the indicators database, PromQL against the
stack's Prometheus), laid out on the dashboard's own 24-column grid with its Chinese titles, stats coloured by the
thresholds the panel takes from the targets (red / amber / green), tables with the regions' names.

    python -m demo.render maternal --region 321324 --period 2026 -o docs/img/dashboard-maternal.png
    python -m demo.render all --region 321324 --period 2026      # every dashboard into docs/img/
    python -m demo.render workbook --region 321324 --period 2026-01..09   # the statutory workbook, page by page

The workbook is the indicators service's own XLSX (one A4-landscape sheet per statutory form), printed to PDF by
LibreOffice headless and cut into PNG pages by pdftoppm (Debian: libreoffice-calc-nogui, poppler-utils) — what a
statistician sees when she prints it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from demo.__main__ import run_dir

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
COLOURS = {"red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a", "green": "#73bf69", "text": "#ccccdc"}
BG, PANEL, GRID, MUTED = "#111217", "#181b1f", "#2f3136", "#9fa7b3"
Rows = list[dict[str, Any]]


def _sql(text: str, region: str, period: str) -> str:
    return text.replace("$region", region).replace("${period}", period).replace("$period", period)


async def query_panels(dsn: dict[str, Any], prometheus: str | None, dashboard: dict[str, Any], region: str,
                       period: str) -> list[tuple[dict[str, Any], list[Rows]]]:
    """Each panel with the rows of each of its queries (refId order)."""
    conn = await asyncpg.connect(**dsn)
    try:
        out = []
        async with httpx.AsyncClient(timeout=10) as http:
            for p in dashboard["panels"]:
                results: list[Rows] = []
                for t in p.get("targets", []):
                    if "rawSql" in t:
                        results.append([dict(r) for r in await conn.fetch(_sql(t["rawSql"], region, period))])
                    elif "expr" in t and prometheus:
                        results.append(await _prometheus(http, prometheus, t, region))
                out.append((p, results))
        return out
    finally:
        await conn.close()


async def _prometheus(http: httpx.AsyncClient, url: str, target: dict[str, Any], region: str) -> Rows:
    """A PromQL range query over the last 30 minutes, as rows of (series label, time, value)."""
    now = time.time()
    expr = target["expr"].replace("$region", region).replace("$__rate_interval", "1m")
    try:
        r = await http.get(f"{url}/api/v1/query_range", params={"query": expr, "start": now - 1800, "end": now,
                                                                 "step": 30})
        series = r.json()["data"]["result"] if r.status_code == 200 else []
    except (httpx.HTTPError, KeyError, ValueError):
        series = []
    legend = target.get("legendFormat", "")
    rows: Rows = []
    for s in series:
        label = legend
        for k, v in s["metric"].items():
            label = label.replace("{{" + k + "}}", v)
        label = re.sub(r"\{\{\w+\}\}", "", label).strip() or "合计 total"
        rows += [{"series": label or "value", "time": datetime.fromtimestamp(float(t)), "value": float(v)}
                 for t, v in s["values"]]
    return rows


def _font() -> None:
    import matplotlib
    from matplotlib import font_manager

    for f in CJK_FONTS:
        if Path(f).exists():
            font_manager.fontManager.addfont(f)
            matplotlib.rcParams["font.family"] = font_manager.FontProperties(fname=f).get_name()
            break
    matplotlib.rcParams["axes.unicode_minus"] = False


def stat_colour(panel: dict[str, Any], value: float | None, thresholds: Rows) -> str:
    """Grafana's threshold steps: the base colour, then each step from the targets' query (config from query
    results) at or above its value."""
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    if panel.get("options", {}).get("colorMode") == "none" or value is None:
        return COLOURS["text"]
    colour = steps[0]["color"] if steps else "green"
    mappings = [m for t in panel.get("transformations", []) for m in t.get("options", {}).get("mappings", [])]
    if not thresholds or not mappings:
        return COLOURS.get(colour, colour) if steps and len(steps) > 1 else COLOURS["green"]
    row = thresholds[0]
    for m in mappings:
        at = row.get(m["fieldName"])
        if at is not None and value >= float(at):
            colour = m["handlerArguments"]["threshold"]["color"]
    return COLOURS.get(colour, colour)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "无数据"
    if isinstance(v, (int, float, Decimal)):
        f = float(v)
        text = f"{int(f):,}" if f == int(f) and unit != "percent" else f"{f:,.2f}"
        return text + (" %" if unit == "percent" else "")
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d %H:%M}"
    return str(v)


def draw_stat(ax: Any, p: dict[str, Any], results: list[Rows]) -> None:
    rows = results[0] if results else []
    unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    values = list(rows[0].items()) if rows else []
    if len(values) <= 1:
        v = values[0][1] if values else None
        num = float(v) if isinstance(v, (int, float, Decimal)) else None
        colour = stat_colour(p, num, results[1] if len(results) > 1 else [])
        text = _fmt(v, unit)
        ax.text(0.5, 0.42, text, color=colour, fontsize=20 if len(text) < 14 else 12, ha="center", va="center",
                fontweight="bold", wrap=True)
        return
    for i, (k, v) in enumerate(values):   # several fields side by side (e.g. filed / approved)
        x = (i + 0.5) / len(values)
        ax.text(x, 0.5, _fmt(v, unit), color=COLOURS["green"], fontsize=20, ha="center", va="center",
                fontweight="bold")
        ax.text(x, 0.15, k, color=MUTED, fontsize=9, ha="center")


def draw_series(ax: Any, p: dict[str, Any], results: list[Rows]) -> None:
    from matplotlib.dates import DateFormatter

    rows = results[0] if results else []
    if not rows:
        ax.text(0.5, 0.5, "无数据", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        return
    palette = ["#5794f2", "#73bf69", "#f2cc0c", "#ff9830", "#b877d9", "#f2495c", "#8ab8ff"]
    if "series" in rows[0]:   # Prometheus: one line per label
        names = sorted({r["series"] for r in rows})
        lines = {n: ([r["time"] for r in rows if r["series"] == n], [r["value"] for r in rows if r["series"] == n])
                 for n in names}
        fmt = "%H:%M"
    else:                     # SQL time series: a time column and one column per series
        keys = [k for k in rows[0] if k != "time"]
        lines = {k: ([r["time"] for r in rows], [float(r[k]) if r[k] is not None else float("nan") for r in rows])
                 for k in keys}
        fmt = "%m月"
    for i, (name, (xs, ys)) in enumerate(list(lines.items())[:7]):
        ax.plot(xs, ys, color=palette[i % len(palette)], marker="o" if len(xs) < 20 else None, linewidth=1.8,
                label=name)
    ax.legend(fontsize=7, facecolor=PANEL, edgecolor=GRID, labelcolor=MUTED, loc="upper left")
    ax.tick_params(colors=MUTED, labelsize=7)
    ax.grid(color=GRID)
    ax.xaxis.set_major_formatter(DateFormatter(fmt))


def draw_table(ax: Any, p: dict[str, Any], results: list[Rows], max_rows: int) -> None:
    rows = results[0] if results else []
    ax.axis("off")
    if not rows:
        ax.text(0.5, 0.5, "无数据", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        return
    keys = list(rows[0].keys())[:10]
    cells = [[_fmt(r[k])[:16] for k in keys] for r in rows[:max_rows]]
    t = ax.table(cellText=cells, colLabels=keys, loc="upper center", cellLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(7.5)
    for (r, _), cell in t.get_celld().items():
        cell.set_edgecolor(GRID)
        cell.set_facecolor("#22252b" if r == 0 else PANEL)
        cell.get_text().set_color(COLOURS["text"] if r == 0 else "#d8d9da")
    if len(rows) > max_rows:
        ax.set_xlabel(f"…共 {len(rows)} 行", color=MUTED)


def draw(dashboard: dict[str, Any], panels: list[tuple[dict[str, Any], list[Rows]]], region: str, period: str,
         output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _font()
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p, _ in panels)
    fig = plt.figure(figsize=(16, 1.2 + height * 0.36), facecolor=BG)
    top = 1 - 0.9 / (1.2 + height * 0.36)
    fig.text(0.01, 1 - 0.35 / (1.2 + height * 0.36), f"{dashboard['title']}  —  地区 {region}  期间 {period}",
             color="white", fontsize=15, va="center")
    for p, results in panels:
        g = p["gridPos"]
        x0, w = g["x"] / 24, g["w"] / 24
        y1, h = top - g["y"] / height * top, g["h"] / height * top
        pad = (0.028, 0.03) if p["type"] == "timeseries" else (0.004, 0.0)   # room for the axis labels
        ax = fig.add_axes((x0 + pad[0], y1 - h + 0.012 + pad[1], w - 0.008 - pad[0], h - 0.035 - pad[1]))
        ax.set_facecolor(PANEL)
        for s in ax.spines.values():
            s.set_color(GRID)
        ax.set_title(p.get("title", ""), color=COLOURS["text"], fontsize=9.5, loc="left")
        if p["type"] == "stat":
            ax.set_xticks([])
            ax.set_yticks([])
            draw_stat(ax, p, results)
        elif p["type"] == "timeseries":
            draw_series(ax, p, results)
        else:
            draw_table(ax, p, results, max_rows=max(3, int(g["h"] * 1.5) - 2))
    fig.text(0.99, 0.004, f"由各面板自身的查询生成 rendered {datetime.now():%Y-%m-%d %H:%M} from the panels' queries",
             color="#6e7079", ha="right", fontsize=7)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80, facecolor=fig.get_facecolor())
    plt.close(fig)


def workbook(indicators: str, token: str, region: str, period: str, out_dir: Path) -> list[Path]:
    """The statutory workbook of `region` and `period` as PNG pages `workbook-<n>.png` in `out_dir`."""
    import shutil
    import subprocess
    import tempfile

    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None or shutil.which("pdftoppm") is None:
        raise SystemExit("needs LibreOffice and pdftoppm: apt-get install libreoffice-calc-nogui poppler-utils")
    r = httpx.get(f"{indicators}/v1/reports/statutory", params={"region": region, "period": period,
                                                                 "format": "xlsx"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=120)
    r.raise_for_status()
    with tempfile.TemporaryDirectory() as tmp:
        xlsx = Path(tmp) / "workbook.xlsx"
        xlsx.write_bytes(r.content)
        subprocess.run([office, "--headless", f"-env:UserInstallation=file://{tmp}/profile", "--convert-to", "pdf",
                        "--outdir", tmp, str(xlsx)], check=True, capture_output=True, timeout=300)
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("workbook-*.png"):
            old.unlink()
        subprocess.run(["pdftoppm", "-png", "-r", "70", str(Path(tmp) / "workbook.pdf"), str(out_dir / "workbook")],
                       check=True, timeout=300)
    return sorted(out_dir.glob("workbook-*.png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboard", default="maternal", nargs="?", help="a dashboard's file name, or all")
    ap.add_argument("--region", default="321324")
    ap.add_argument("--period", default=str(datetime.now().year))
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args()
    rd = Path(args.run_dir) if args.run_dir else run_dir()
    env = dict(line.split("=", 1) for f in ("urls.env", "stack.env") if (rd / f).exists()
               for line in (rd / f).read_text().splitlines() if "=" in line)
    dsn = {"host": os.environ.get("MCH_PG_HOST", "127.0.0.1"), "port": int(os.environ.get("MCH_PG_PORT", "5432")),
           "user": "postgres", "database": f"{env.get('DB_PREFIX', 'mch_')}indicators"}
    if args.dashboard == "workbook":
        urls = dict(line.split("=", 1) for line in (rd / "urls.env").read_text().splitlines() if "=" in line)
        token = os.environ.get("MCH_TOKEN") or (rd / "dev-token").read_text().strip()
        for page in workbook(urls["INDICATORS_URL"], token, args.region, args.period,
                             Path(args.output) if args.output else ROOT / "docs" / "img"):
            print(f"wrote {page}")
        return
    names = sorted(p.stem for p in DASHBOARDS.glob("*.json")) if args.dashboard == "all" else [args.dashboard]
    for name in names:
        doc = json.loads((DASHBOARDS / f"{name}.json").read_text(encoding="utf-8"))
        panels = asyncio.run(query_panels(dsn, env.get("PROMETHEUS_URL"), doc, args.region, args.period))
        out = Path(args.output) if args.output and len(names) == 1 else ROOT / "docs" / "img" / f"dashboard-{name}.png"
        draw(doc, panels, args.region, args.period, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
