"""`python -m bench [name ...]`: run the benchmarks (all modules of this package, or the named ones) against a
fresh test stack and write bench/results/latest.{json,md}. Figures are reported, never asserted."""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import devstack  # noqa: E402

from bench._context import BenchContext  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]) if not m.name.startswith("_"))


def main() -> None:
    names = sys.argv[1:] or modules()
    spec = devstack.STACKS["test"]
    print(f"bench: starting a fresh stack ({spec.db_prefix}*) for {', '.join(names)}", flush=True)
    token = devstack.up(spec, fresh=True)
    ctx = BenchContext(spec, token)
    results: dict[str, object] = {}
    started = time.time()
    try:
        for name in names:
            print(f"bench: {name} ...", flush=True)
            mod = importlib.import_module(f"bench.{name}")
            t0 = time.perf_counter()
            results[name] = asyncio.run(mod.run(ctx))
            print(f"bench: {name} done in {time.perf_counter() - t0:.1f}s: {json.dumps(results[name])}", flush=True)
    finally:
        devstack.down(spec)
    RESULTS.mkdir(parents=True, exist_ok=True)
    at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    # a run of some benchmarks keeps the others' last figures (each section says when it was measured)
    previous = RESULTS / "latest.json"
    runs: dict[str, Any] = {}
    if previous.exists():
        old = json.loads(previous.read_text())
        runs = old.get("runs") or {name: {"at": old.get("at"), "env": {}, "results": res}
                                   for name, res in old.get("results", {}).items()}
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("BENCH_")}
    for name, res in results.items():
        runs[name] = {"at": at, "env": env, "results": res}
    doc: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                           "runs": dict(sorted(runs.items()))}
    previous.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    render(doc)
    print(f"bench: results in {RESULTS / 'latest.md'}")


def render(doc: dict[str, Any]) -> None:
    """latest.md from latest.json. A run may carry a `note` (markdown: a before/after comparison, the machine's
    load) written under its figures; a new run of the same benchmark replaces it."""
    lines = [f"# Benchmark results ({doc['machine']['cpus']} CPUs)", ""]
    for name, run in doc["runs"].items():
        scale = ", ".join(f"{k}={v}" for k, v in run["env"].items()) or "defaults"
        lines += [f"## {name}", "", f"Measured {run['at']} ({scale}).", "", "| figure | value |", "|---|---|"]
        res = run["results"]
        lines += [f"| {k} | {v} |" for k, v in (res.items() if isinstance(res, dict) else [])]
        lines.append("")
        if run.get("note"):
            lines += [run["note"].rstrip(), ""]
    (RESULTS / "latest.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
