"""mchctl: the operators' command line (运维工具) for a running platform.

    mchctl clients create --name county-hospital-his --scopes registry:write --region 320582
    mchctl clients list | token CLIENT_ID | revoke TOKEN
    mchctl regions load regions.csv              # code,name rows (GB/T 2260 + township/village codes)
    mchctl regions count
    mchctl targets set premarital_exam_couples 320582 2025 500
    mchctl targets set caesarean_rate 320582 2025 40 --at-most
    mchctl targets load targets.csv              # code,region,year,target[,comparison] rows
    mchctl targets list 2025 --region 320582 | delete CODE REGION YEAR | decompose CODE REGION YEAR
    mchctl populations set 320582 2025 total 54991  # 人口基数; load populations.csv (region,year,kind,value)
    mchctl report table all 2025-01..09 --region 320582 -o tables.xlsx
    mchctl report submit 2025 320582 | approve 2025 320582 | unapprove 2025 320582 --reason 补报 | status 2025
    mchctl reconcile                             # recompute every counter from stored facts; report differences
    mchctl rebuild                               # disaster recovery: recompute and replace the counters
    mchctl export annual --region 320582 --year 2025 -o annual.xlsx
    mchctl export values --region 320582 --from 2025-01 --to 2025-12 -o values.csv
    mchctl demo load | stream                    # the demo county (python -m demo)

URLs and the token come from the stack's run dir (`.run/urls.env`, `.run/dev-token`, as `make run` writes them),
or from MCH_TOKEN and MCH_REGISTRY_URL / MCH_INDICATORS_URL / …; long work shows progress bars (tqdm).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("registry", "screening", "certificates", "indicators")
REGION_RE = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?$")
MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    slot = os.environ.get("MCH_STACK_SLOT", "0")
    return ROOT / (".run" + (slot if slot not in ("", "0") else ""))


def env_file(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in (run_dir(args) / "urls.env", run_dir(args) / "stack.env"):
        if path.exists():
            for line in path.read_text().splitlines():
                k, _, v = line.partition("=")
                out[k.strip()] = v.strip()
    return out


def url(args: argparse.Namespace, service: str) -> str:
    key = f"{service.upper()}_URL"
    found = os.environ.get(f"MCH_{key}") or env_file(args).get(key)
    if not found:
        sys.exit(f"no URL for {service}: run `make run`, or set MCH_{key}")
    return found


def token(args: argparse.Namespace) -> str:
    tok = args.token or os.environ.get("MCH_TOKEN")
    path = run_dir(args) / "dev-token"
    if not tok and path.exists():
        tok = path.read_text().strip()
    if not tok:
        sys.exit("no token: pass --token, set MCH_TOKEN, or run `make run`")
    return tok


def client(args: argparse.Namespace) -> httpx.Client:
    return httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token(args)}"})


def problem(r: httpx.Response) -> str:
    try:
        doc = r.json()
    except ValueError:
        return f"{r.status_code} {r.text[:200]}"
    errs = "; ".join(f"{e.get('field')}: {e.get('reason')}" for e in doc.get("errors") or [])
    return f"{r.status_code} {doc.get('detail') or doc.get('title', '')} {errs}".strip()


def db_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    prefix = env_file(args).get("DB_PREFIX")
    if prefix and "MCH_DB_PREFIX" not in env:
        env["MCH_DB_PREFIX"] = prefix
    return env


# ---------------------------------------------------------------- clients and tokens
def cmd_clients(args: argparse.Namespace) -> int:
    """Clients live in the credential database: run the kit's command with the stack's database prefix."""
    argv = [sys.executable, "-m", "kit.clients", args.action, *args.rest]
    return subprocess.run(argv, env=db_env(args), check=False).returncode


# ---------------------------------------------------------------- regions
def read_csv(path: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing:
        sys.exit(f"{path}: missing columns {missing}; expected a header row {','.join(columns)}")
    return rows


def cmd_regions(args: argparse.Namespace) -> int:
    """The registry's region table (GB/T 2260 + townships / villages): check the file, then let the registry's own
    loader replace the table in one transaction (`python -m registry.regions load`)."""
    if args.action == "count":
        argv = [sys.executable, "-m", "registry.regions", "count"]
        return subprocess.run(argv, env={**db_env(args), "MCH_SERVICE": "registry"}, check=False).returncode
    if not args.file:
        sys.exit("usage: mchctl regions load FILE.csv")
    lines = [ln for ln in Path(args.file).read_text(encoding="utf-8-sig").splitlines()
             if ln.strip() and not ln.startswith("#") and not ln.startswith("code,")]
    bad = []
    for line in tqdm(lines, desc="checking", unit="code", disable=len(lines) < 5000):
        code = line.split(",", 1)[0].strip()
        if not REGION_RE.match(code) or "," not in line:
            bad.append(line)
    if bad:
        for line in bad[:20]:
            print(f"{args.file}: {line!r} is not `code,name` with a 2/4/6/9/12-digit code", file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "registry.regions", "load", args.file]
    return subprocess.run(argv, env={**db_env(args), "MCH_SERVICE": "registry"}, check=False).returncode


# ---------------------------------------------------------------- targets (任务数 / 目标值)
def put_targets(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    base = url(args, "indicators")
    failed = 0
    with client(args) as c:
        for r in tqdm(rows, desc="targets", unit="target", disable=len(rows) < 2):
            body: dict[str, Any] = {"code": r["code"], "region": r["region"], "year": int(r["year"]),
                                    "target": float(r["target"])}
            if r.get("comparison"):
                body["comparison"] = r["comparison"]
            resp = c.put(f"{base}/v1/targets", json=body)
            if resp.status_code >= 300:
                failed += 1
                tqdm.write(f"{body}: {problem(resp)}")
    print(f"{len(rows) - failed} targets set, {failed} refused")
    return 0 if not failed else 1


def _show(r: httpx.Response) -> int:
    if r.status_code >= 300:
        print(problem(r), file=sys.stderr)
        return 1
    print(json.dumps(r.json(), ensure_ascii=False, indent=1))
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    base = f"{url(args, 'indicators')}/v1/targets"
    if args.action == "set":
        return put_targets(args, [{"code": args.code, "region": args.region, "year": args.year,
                                   "target": args.target, "comparison": "<=" if args.at_most else None}])
    if args.action == "load":
        return put_targets(args, read_csv(args.file, ("code", "region", "year", "target")))
    with client(args) as c:
        if args.action == "list":
            params: dict[str, Any] = {"year": args.year, **({"region": args.region} if args.region else {}),
                                      **({"code": args.code} if args.code else {})}
            return _show(c.get(base, params=params))
        if args.action == "delete":
            return _show(c.delete(f"{base}/{args.year}/{args.region}/{args.code}"))
        body = {"code": args.code, "region": args.region, "year": args.year,
                **({"basis_year": args.basis_year} if args.basis_year else {})}
        return _show(c.post(f"{base}/decompose", json=body))


def targets_parser(sub: Any) -> None:
    p = sub.add_parser("targets", help="targets: count tasks (任务数) and rate targets (目标值), 任务分解")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser("set", help="set a region's target of a year")
    s.add_argument("code", help="indicator code, e.g. premarital_exam_couples or systematic_management_rate")
    s.add_argument("region")
    s.add_argument("year", type=int)
    s.add_argument("target", type=float, help="a count, or a rate in the indicator's unit (85 = 85 %%)")
    s.add_argument("--at-most", action="store_true", help="a rate not to exceed (剖宫产率 ≤ 40 %%)")
    s = acts.add_parser("load", help="set targets from a CSV: code,region,year,target[,comparison]")
    s.add_argument("file")
    s = acts.add_parser("list", help="a region's targets and those below it, with what is decomposed")
    s.add_argument("year", type=int)
    s.add_argument("--region", default=None)
    s.add_argument("--code", default=None)
    s = acts.add_parser("delete", help="delete a target")
    s.add_argument("code")
    s.add_argument("region")
    s.add_argument("year", type=int)
    s = acts.add_parser("decompose", help="任务分解: split a region's target among the regions below it")
    s.add_argument("code")
    s.add_argument("region")
    s.add_argument("year", type=int)
    s.add_argument("--basis-year", type=int, default=None, help="split in proportion to this year (default: year-1)")
    p.set_defaults(func=cmd_targets)


# ---------------------------------------------------------------- populations (人口基数)
def put_populations(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    base = f"{url(args, 'indicators')}/v1/populations"
    failed = 0
    with client(args) as c:
        for r in tqdm(rows, desc="populations", unit="figure", disable=len(rows) < 2):
            body = {"region": r["region"], "year": int(r["year"]), "kind": r["kind"], "value": int(r["value"])}
            resp = c.put(base, json=body)
            if resp.status_code >= 300:
                failed += 1
                tqdm.write(f"{body}: {problem(resp)}")
    print(f"{len(rows) - failed} population figures posted, {failed} refused")
    return 0 if not failed else 1


def cmd_populations(args: argparse.Namespace) -> int:
    base = f"{url(args, 'indicators')}/v1/populations"
    if args.action == "set":
        return put_populations(args, [{"region": args.region, "year": args.year, "kind": args.kind,
                                       "value": args.value}])
    if args.action == "load":
        return put_populations(args, read_csv(args.file, ("region", "year", "kind", "value")))
    with client(args) as c:
        if args.action == "list":
            return _show(c.get(base, params={"year": args.year, **({"region": args.region} if args.region else {})}))
        return _show(c.delete(f"{base}/{args.year}/{args.region}/{args.kind}"))


def populations_parser(sub: Any) -> None:
    p = sub.add_parser("populations", help="population denominators (人口基数): 总人口, 育龄妇女, 儿童 … by region")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser("set", help="post a region's figure of a year")
    s.add_argument("region")
    s.add_argument("year", type=int)
    s.add_argument("kind", help="total | women_15_49 | married_women_15_49 | women_35_64 | children_under1 | "
                                "children_under3 | children_under5 | children_under7")
    s.add_argument("value", type=int)
    s = acts.add_parser("load", help="post figures from a CSV: region,year,kind,value")
    s.add_argument("file")
    s = acts.add_parser("list", help="a region's figures of a year and those below it")
    s.add_argument("year", type=int)
    s.add_argument("--region", default=None)
    s = acts.add_parser("delete", help="delete a figure")
    s.add_argument("region")
    s.add_argument("year", type=int)
    s.add_argument("kind")
    p.set_defaults(func=cmd_populations)


# ---------------------------------------------------------------- report (上报 / 审核 / 报表)
def cmd_report(args: argparse.Namespace) -> int:
    base = f"{url(args, 'indicators')}/v1/reports"
    with client(args) as c:
        if args.action in ("submit", "approve", "unapprove"):
            body = {"reason": args.reason or ""} if args.action == "unapprove" else None
            return _show(c.post(f"{base}/{args.report}/filings/{args.period}/{args.unit}/{args.action}", json=body))
        if args.action == "status":
            if args.unit:
                return _show(c.get(f"{base}/{args.report}/filings/{args.period}/{args.unit}"))
            return _show(c.get(f"{base}/{args.report}/filings", params={"period": args.period}))
        if args.action == "region":
            return _show(c.put(f"{url(args, 'indicators')}/v1/regions/{args.code}",
                               json={"name": args.name, "kind": "functional" if args.functional else "local"}))
        fmt = (args.output or "").rsplit(".", 1)[-1] if args.output and "." in args.output else "json"
        path = f"{base}/forms/{args.form}" if args.form != "all" else f"{base}/statutory"
        r = c.get(path, params={"period": args.period, "format": fmt,
                                **({"region": args.region} if args.region else {})})
        if r.status_code >= 300 or not args.output:
            return _show(r)
        Path(args.output).write_bytes(r.content)
        print(f"wrote {args.output}")
        return 0


def report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="statutory tables, and filing: submit (上报), approve (审核), unapprove (退回)")
    acts = p.add_subparsers(dest="action", required=True)
    for action, text in (("submit", "上报: file the unit's figures (a statistician's token)"),
                         ("approve", "审核: approve and lock (an approver's token; every unit below approved)"),
                         ("unapprove", "退回: unlock a filing, with --reason"),
                         ("status", "a filing (filed vs current, adjustments, steps), or the period's filings")):
        s = acts.add_parser(action, help=text)
        s.add_argument("period", help="e.g. 2026, 2026-01..09 (1–9月), 2026SY")
        s.add_argument("unit", nargs="?" if action == "status" else None, help="a township, county or city code")
        s.add_argument("--report", default="annual")
        if action == "unapprove":
            s.add_argument("--reason", required=True)
    s = acts.add_parser("table", help="a statutory table (or all): JSON, or -o FILE.xlsx / FILE.csv")
    s.add_argument("form", help="maternal, child, premarital, cancers, certificates, programmes, or all")
    s.add_argument("period")
    s.add_argument("--region", default=None)
    s.add_argument("-o", "--output", default=None)
    s = acts.add_parser("region", help="name a township or a functional area (经济开发区) for the tables")
    s.add_argument("code")
    s.add_argument("name")
    s.add_argument("--functional", action="store_true", help="a functional area, not in GB/T 2260")
    p.set_defaults(func=cmd_report)


# ---------------------------------------------------------------- reconcile / rebuild
def cmd_reconcile(args: argparse.Namespace) -> int:
    with client(args) as c:
        r = c.post(f"{url(args, 'indicators')}/v1/admin/reconcile")
    if r.status_code >= 300:
        print(problem(r), file=sys.stderr)
        return 1
    doc = r.json()
    print(json.dumps({k: doc[k] for k in ("consistent", "difference_count")}, ensure_ascii=False))
    for d in doc.get("differences", [])[:20]:
        print(" ", json.dumps(d, ensure_ascii=False))
    return 0 if doc["consistent"] else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "indicators.admin", "rebuild"]
    return subprocess.run(argv, env={**db_env(args), "MCH_SERVICE": "indicators"}, check=False).returncode


# ---------------------------------------------------------------- export
def months(first: str, last: str) -> list[str]:
    y, m = map(int, first.split("-"))
    out = []
    while f"{y}-{m:02d}" <= last:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    base = url(args, "indicators")
    with client(args) as c:
        if args.what == "annual":
            if not args.year:
                sys.exit("export annual needs --year")
            fmt = "xlsx" if (args.output or "").endswith(".xlsx") else "json"
            params: dict[str, Any] = {"year": args.year, "format": fmt, "statistical": args.statistical}
            if args.region is not None:
                params["region"] = args.region
            r = c.get(f"{base}/v1/reports/annual", params=params)
            if r.status_code >= 300:
                print(problem(r), file=sys.stderr)
                return 1
            if args.output:
                Path(args.output).write_bytes(r.content)
                print(f"wrote {args.output}")
            else:
                print(json.dumps(r.json(), ensure_ascii=False, indent=1))
            return 0
        if not (args.start and args.end and MONTH_RE.match(args.start) and MONTH_RE.match(args.end)):
            sys.exit("export values needs --from YYYY-MM --to YYYY-MM")
        # a BOM (utf-8-sig): Excel on Chinese Windows reads the file as UTF-8
        out = open(args.output, "w", newline="", encoding="utf-8-sig") if args.output else sys.stdout
        try:
            w = csv.writer(out)
            w.writerow(["period", "region", "code", "numerator", "denominator", "value", "unit"])
            for period in tqdm(months(args.start, args.end), desc="months", unit="month"):
                params = {"period": period, **({"region": args.region} if args.region is not None else {})}
                if args.breakdown:
                    params["breakdown"] = args.breakdown
                r = c.get(f"{base}/v1/indicators/values", params=params)
                if r.status_code >= 300:
                    print(problem(r), file=sys.stderr)
                    return 1
                for row in r.json()["rows"]:
                    w.writerow([row["period"], row["region"], row["code"], row["numerator"], row["denominator"],
                                row["value"], row["unit"]])
        finally:
            if out is not sys.stdout:
                out.close()
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "demo", args.action, "--run-dir", str(run_dir(args)), *args.rest]
    return subprocess.run(argv, cwd=ROOT, check=False).returncode


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mchctl", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=None, help="the stack's run dir (default .run, or .runN for a slot)")
    ap.add_argument("--token", default=None)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("clients", help="API clients and tokens")
    p.add_argument("action", choices=("create", "list", "token", "revoke"))
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_clients)
    p = sub.add_parser("regions", help="load region codes and names from a CSV (replaces the registry's table)")
    p.add_argument("action", choices=("load", "count"))
    p.add_argument("file", nargs="?")
    p.set_defaults(func=cmd_regions)
    targets_parser(sub)
    populations_parser(sub)
    report_parser(sub)
    sub.add_parser("reconcile", help="check the counters against the stored facts").set_defaults(
        func=cmd_reconcile)
    sub.add_parser("rebuild", help="recompute the counters from the stored facts").set_defaults(func=cmd_rebuild)
    p = sub.add_parser("export", help="the annual report, or values month by month as CSV")
    p.add_argument("what", choices=("annual", "values"))
    p.add_argument("--region", default=None)
    p.add_argument("--year", type=int, default=None)
    p.add_argument("--statistical", action="store_true", help="the MCH statistical year")
    p.add_argument("--from", dest="start", default=None)
    p.add_argument("--to", dest="end", default=None)
    p.add_argument("--breakdown", choices=("region", "institution"), default=None)
    p.add_argument("-o", "--output", default=None)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("demo", help="the demo county: load a year, or stream")
    p.add_argument("action", choices=("load", "stream", "plan"))
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
