"""Render a provisioned Grafana dashboard to PNG without Grafana: the dashboard's own panel queries run against the
indicators database, drawn with matplotlib (for the README and reports).

    python -m demo.render maternal --region 321324 --period 2025 -o docs/img/dashboard-maternal.png
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from demo.__main__ import run_dir

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
CATALOGUE = ROOT / "services" / "indicators" / "catalogue" / "v1.json"


def english_names() -> dict[str, str]:
    doc = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return {i["code"]: i["name_en"] for i in doc["indicators"]}


def code_of(sql: str) -> str:
    m = re.search(r"code = '([a-z0-9_]+)'", sql)
    return m.group(1) if m else ""


async def query_panels(dsn: dict[str, Any], dashboard: dict[str, Any], region: str,
                       period: str) -> list[tuple[dict[str, Any], list[asyncpg.Record]]]:
    conn = await asyncpg.connect(**dsn)
    try:
        out = []
        for p in dashboard["panels"]:
            t = p["targets"][0]
            if "rawSql" not in t:
                continue
            sql = t["rawSql"].replace("$region", region).replace("$period", period)
            out.append((p, list(await conn.fetch(sql))))
        return out
    finally:
        await conn.close()


def draw(dashboard: dict[str, Any], panels: list[tuple[dict[str, Any], list[Any]]], region: str, period: str,
         output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import DateFormatter

    names = english_names()
    stats = [(p, rows) for p, rows in panels if p["type"] == "stat"]
    series = [(p, rows) for p, rows in panels if p["type"] == "timeseries"]
    tables = [(p, rows) for p, rows in panels if p["type"] == "table"]
    fig = plt.figure(figsize=(16, 10), facecolor="#111217")
    title = dashboard["title"].split(" ", 1)[-1]
    fig.suptitle(f"{title} — region {region}, period {period} (demo county)", color="white", fontsize=17,
                 x=0.02, ha="left")
    grid = fig.add_gridspec(4, 4, height_ratios=[1, 1, 2.4, 2.4], hspace=0.55, wspace=0.18)
    for i, (p, rows) in enumerate(stats[:8]):
        ax = fig.add_subplot(grid[i // 4, i % 4])
        ax.set_facecolor("#181b1f")
        ax.set_xticks([])
        ax.set_yticks([])
        code = code_of(p["targets"][0]["rawSql"])
        v = rows[0][0] if rows else None
        unit = p["description"].rsplit("(", 1)[-1].rstrip(")")
        text = "No data" if v is None else (f"{int(v):,}" if unit == "count" else f"{float(v):.2f}")
        suffix = "" if unit == "count" or v is None else {"%": " %", "1/10万": " per 100k"}.get(unit, f" {unit}")
        ax.text(0.5, 0.42, text + suffix, color="#73bf69", fontsize=24, ha="center", va="center",
                fontweight="bold")
        ax.set_title(names.get(code, code), color="#ccccdc", fontsize=10.5)
        for s in ax.spines.values():
            s.set_color("#2f3136")
    for i, (p, rows) in enumerate(series[:2]):
        ax = fig.add_subplot(grid[2, i * 2:(i + 1) * 2])
        ax.set_facecolor("#181b1f")
        code = code_of(p["targets"][0]["rawSql"])
        xs = [r[0] for r in rows]
        ys = [float(r[1]) if r[1] is not None else float("nan") for r in rows]
        ax.plot(xs, ys, color="#5794f2", marker="o", linewidth=2)
        ax.fill_between(xs, [0 if y != y else y for y in ys], color="#5794f2", alpha=0.15)
        ax.set_title(f"{names.get(code, code)} by month", color="#ccccdc", fontsize=11)
        ax.tick_params(colors="#9fa7b3", labelsize=8)
        ax.grid(color="#2f3136")
        ax.xaxis.set_major_formatter(DateFormatter("%b"))
    for p, rows in tables[:1]:
        ax = fig.add_subplot(grid[3, :])
        ax.set_facecolor("#181b1f")
        if rows:
            keys = list(rows[0].keys())
            regions = [r[keys[0]][-3:] for r in rows]
            first = [float(r[keys[1]] or 0) for r in rows]
            ax.bar(regions, first, color="#73bf69")
            ax.set_ylabel("live births", color="#9fa7b3")
            if len(keys) > 2:
                ax2 = ax.twinx()
                ax2.plot(regions, [float(r[keys[-2]] or 0) for r in rows], color="#f2cc0c", marker="s")
                listed = re.search(r"code in \(([^)]*)\)", p["targets"][0]["rawSql"])
                codes = re.findall(r"'([a-z0-9_]+)'", listed.group(1)) if listed else []
                label = names.get(codes[-2], "rate") if len(codes) > 1 else "rate"
                ax2.set_ylabel(label, color="#f2cc0c")
                ax2.tick_params(colors="#9fa7b3")
        ax.set_title("By township (click through to drill down in Grafana)", color="#ccccdc", fontsize=11)
        ax.tick_params(colors="#9fa7b3", labelsize=8)
        ax.set_xlabel("township code (last 3 digits)", color="#9fa7b3")
    fig.text(0.99, 0.005, f"rendered {datetime.now():%Y-%m-%d %H:%M} from the panels' own SQL", color="#6e7079",
             ha="right", fontsize=8)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80, facecolor=fig.get_facecolor())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboard", default="maternal", nargs="?")
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
    doc = json.loads((DASHBOARDS / f"{args.dashboard}.json").read_text(encoding="utf-8"))
    panels = asyncio.run(query_panels(dsn, doc, args.region, args.period))
    out = Path(args.output or ROOT / "docs" / "img" / f"dashboard-{args.dashboard}.png")
    draw(doc, panels, args.region, args.period, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
