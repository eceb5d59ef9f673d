"""Backup check: a physical base backup of the local cluster plus its WAL, restored into a scratch cluster as
production restores one (deploy/README.md, "Backups"), and `reconcile` run there: 0 differences.

    python scripts/backup_restore.py [dev|test] [--keep] [--json]      # `make backup-check`

1. Base backup of the running cluster. `pg_basebackup` when the cluster allows a replication connection (what
   production runs); otherwise the same backup through SQL: a non-exclusive `pg_backup_start()` /
   `pg_backup_stop()` in one session, the data directory copied in between, a temporary physical replication slot
   holding back the WAL from the start (released when the session ends, even if this script dies).
2. The WAL from the backup's start to its end is put in a WAL archive directory (production: `archive_command`).
3. Restore into a scratch cluster (a temp dir, another port, run as the postgres user): the base backup,
   `recovery.signal` and `restore_command` reading the archive; Postgres replays the WAL and promotes.
4. `python -m indicators.admin reconcile` against the stack's indicators database in the scratch cluster: the
   counters recomputed from the restored facts must equal the restored counters. The stack's databases must all
   be there, with their rows (counted per table, printed).
5. The scratch cluster is stopped and removed (`--keep` leaves it running and says where).

Needs: run as root or as the postgres user on the machine of the cluster (it reads the data directory), the
PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devstack

PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"
#: what a base backup leaves out of the data directory (PostgreSQL docs, "Making a Base Backup Using the Low
#: Level API"): runtime state rebuilt at start, and pg_wal, which the restore fetches from the archive
SKIP_FILES = {"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "postgresql.auto.conf.tmp"}
EMPTY_DIRS = {"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp",
              "pg_subtrans"}


@dataclass
class Scratch:
    """The scratch cluster's places."""

    root: Path
    port: int
    data: Path = field(init=False)
    archive: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.archive = self.root / "wal-archive"


def as_postgres(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the postgres user (the server refuses to run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=check, capture_output=True, text=True)


def free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port for the scratch cluster")


async def admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, database="postgres")


def copy_data_dir(src: Path, dst: Path) -> None:
    """Copy a live data directory: files may vanish while we copy (temporary files, dropped relations); the WAL
    replay of the restore makes the copy consistent, which is what the backup start/stop bracket is for."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        if rel.parts and rel.parts[0] in EMPTY_DIRS:
            dirnames[:] = [d for d in dirnames if d == "archive_status"] if rel.parts[0] == "pg_wal" else []
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith("pgsql_tmp")]
        for name in filenames:
            if name in SKIP_FILES or name.startswith("pgsql_tmp"):
                continue
            try:
                shutil.copy2(Path(dirpath) / name, dst / rel / name)
            except FileNotFoundError:
                pass


def wal_names_between(wal_dir: Path, first: str, last: str) -> list[str]:
    """The WAL segment files from `first` to `last` (same timeline: names sort in WAL order) and history files."""
    names = sorted(p.name for p in wal_dir.iterdir() if p.is_file())
    segs = [n for n in names if len(n) == 24 and first[:8] == n[:8] and first <= n <= last]
    return segs + [n for n in names if n.endswith(".history")]


async def low_level_backup(sc: Scratch) -> dict[str, str]:
    """Base backup through SQL (no replication connection needed), and its WAL into the archive."""
    conn = await admin()
    try:
        src = Path(await conn.fetchval("show data_directory"))
        if await conn.fetchval("select count(*) from pg_tablespace where spcname not in ('pg_default', 'pg_global')"):
            raise RuntimeError("tablespaces outside the data directory: use pg_basebackup")
        slot = f"backup_check_{uuid.uuid4().hex[:8]}"
        # temporary: dropped with this session; reserves WAL from now, so nothing the restore needs is recycled
        await conn.execute("select pg_create_physical_replication_slot($1, true, true)", slot)
        start = await conn.fetchval("select pg_backup_start($1, true)", f"mch backup-check {time.time():.0f}")
        await asyncio.to_thread(copy_data_dir, src, sc.data)
        stop = await conn.fetchrow("select lsn, labelfile, spcmapfile from pg_backup_stop(false)")
        assert stop is not None
        first = await conn.fetchval("select pg_walfile_name($1)", start)
        last = await conn.fetchval("select pg_walfile_name($1)", stop["lsn"])
        (sc.data / "backup_label").write_text(stop["labelfile"])
        if stop["spcmapfile"]:
            (sc.data / "tablespace_map").write_text(stop["spcmapfile"])
        sc.archive.mkdir(parents=True, exist_ok=True)
        names = wal_names_between(src / "pg_wal", first, last)
        for name in names:
            shutil.copy2(src / "pg_wal" / name, sc.archive / name)
        if not any(n == last for n in names):
            raise RuntimeError(f"WAL segment {last} (the backup's end) was not found in {src / 'pg_wal'}")
        return {"method": "pg_backup_start/stop", "start_lsn": str(start), "stop_lsn": str(stop["lsn"]),
                "wal_segments": str(sum(1 for n in names if len(n) == 24))}
    finally:
        await conn.close()


def basebackup(sc: Scratch) -> dict[str, str] | None:
    """pg_basebackup (tar-free plain format, WAL fetched at the end into the archive); None when the cluster
    refuses a replication connection."""
    tmp = sc.root / "basebackup"
    r = as_postgres("pg_basebackup", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_ADMIN, "-D", str(tmp),
                    "-X", "fetch", "-c", "fast", "--no-sync", check=False)
    if r.returncode != 0:
        if "replication connection" in r.stderr:
            return None
        raise RuntimeError(f"pg_basebackup failed: {r.stderr.strip()}")
    # its WAL goes to the archive, as archive_command would have put it; the data directory starts without it
    sc.archive.mkdir(parents=True, exist_ok=True)
    for seg in (tmp / "pg_wal").iterdir():
        if seg.is_file():
            shutil.move(str(seg), sc.archive / seg.name)
    tmp.rename(sc.data)
    return {"method": "pg_basebackup"}


def start_scratch(sc: Scratch, bindir: Path) -> None:
    """Start the restored data directory as a cluster of its own: archive recovery from the WAL archive, then
    promotion. Settings on the command line win over the copied postgresql.auto.conf."""
    (sc.data / "recovery.signal").touch()
    (sc.data / "postgresql.conf").write_text("# scratch cluster of backup-check\n")
    (sc.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (sc.data / "pg_ident.conf").write_text("")
    pg = pwd.getpwnam("postgres")
    for p in (sc.root, *sc.root.rglob("*")):
        os.chown(p, pg.pw_uid, pg.pw_gid)
    sc.data.chmod(0o700)
    opts = " ".join([
        f"-c port={sc.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={sc.root}",
        # a throwaway cluster: no fsync (nor the data directory's sync at start, a minute on a busy disk)
        # no hot standby: its check that max_connections & co. are at least the primary's does not apply
        "-c hot_standby=off", "-c max_connections=20", "-c shared_buffers=32MB", "-c fsync=off",
        "-c archive_mode=off", "-c max_wal_senders=0",
        "-c wal_level=replica", f"-c hba_file={sc.data / 'pg_hba.conf'}", f"-c ident_file={sc.data / 'pg_ident.conf'}",
        f"-c restore_command='cp {sc.archive}/%f %p'", "-c recovery_target_timeline=latest",
    ])
    r = as_postgres(str(bindir / "pg_ctl"), "-D", str(sc.data), "-l", str(sc.root / "server.log"), "-w", "-t", "300",
                    "-o", opts, "start", check=False)
    if r.returncode != 0:
        log = (sc.root / "server.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the scratch cluster did not start: {r.stdout}{r.stderr}\n{log}")


async def wait_promoted(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(host=PG_HOST, port=port, user=PG_ADMIN, database="postgres")
            try:
                if not await conn.fetchval("select pg_is_in_recovery()"):
                    return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the scratch cluster did not finish recovery")
        await asyncio.sleep(0.5)


async def table_counts(port: int, prefix: str) -> dict[str, dict[str, int]]:
    """Rows per table of every database of the stack in the scratch cluster."""
    conn = await asyncpg.connect(host=PG_HOST, port=port, user=PG_ADMIN, database="postgres")
    try:
        dbs = [r["datname"] for r in await conn.fetch(
            "select datname from pg_database where starts_with(datname, $1) order by 1", prefix)]
    finally:
        await conn.close()
    out: dict[str, dict[str, int]] = {}
    for db in dbs:
        c = await asyncpg.connect(host=PG_HOST, port=port, user=PG_ADMIN, database=db)
        try:
            tables = [r["t"] for r in await c.fetch(
                "select quote_ident(schemaname) || '.' || quote_ident(relname) as t from pg_stat_user_tables "
                "where schemaname = 'public' order by 1")]
            out[db] = {t.split(".", 1)[1]: await c.fetchval(f"select count(*) from {t}") for t in tables}
        finally:
            await c.close()
    return out


def reconcile(port: int, prefix: str) -> dict[str, object]:
    env = {**os.environ, "MCH_PG_PORT": str(port), "MCH_DB_PREFIX": prefix, "MCH_SERVICE": "indicators",
           "MCH_PROCESS_NAME": "backup-check"}
    r = subprocess.run([str(devstack.VENV_BIN / "python"), "-m", "indicators.admin", "reconcile"], env=env,
                       capture_output=True, text=True, cwd=devstack.ROOT)
    try:
        doc: dict[str, object] = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"reconcile did not answer: {r.stdout}{r.stderr}") from e
    return doc


def stop_scratch(sc: Scratch, bindir: Path) -> None:
    as_postgres(str(bindir / "pg_ctl"), "-D", str(sc.data), "-m", "fast", "-w", "stop", check=False)


def server_bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
    candidates = [Path(out)] if out else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "pg_ctl").exists():
            return c
    raise RuntimeError("no PostgreSQL server binaries (pg_ctl) found")


async def check(stack: devstack.Stack, keep: bool) -> dict[str, object]:
    bindir = server_bindir()
    sc = Scratch(Path(tempfile.mkdtemp(prefix=f"mch-backup-check-{stack.name}-")),
                 free_port(55432 + 10 * devstack.SLOT))
    t0 = time.monotonic()
    report: dict[str, object] = {"scratch": str(sc.root), "port": sc.port}
    pg = pwd.getpwnam("postgres")
    os.chown(sc.root, pg.pw_uid, pg.pw_gid)  # the server binaries run as postgres and write here
    started = False
    try:
        how = await asyncio.to_thread(basebackup, sc)
        report.update(how if how is not None else await low_level_backup(sc))
        report["backup_s"] = round(time.monotonic() - t0, 1)
        start_scratch(sc, bindir)
        started = True
        await wait_promoted(sc.port)
        report["restore_s"] = round(time.monotonic() - t0, 1)
        tables = await table_counts(sc.port, stack.db_prefix)
        report["tables"] = tables
        expected = {f"{stack.db_prefix}{s}" for s in (*devstack.SERVICES, "auth")}
        report["missing_databases"] = sorted(expected - set(tables))
        rec = reconcile(sc.port, stack.db_prefix)
        report["reconcile"] = {k: rec.get(k) for k in ("consistent", "difference_count")}
        report["differences"] = rec.get("differences", [])
        report["ok"] = bool(rec.get("consistent")) and not report["missing_databases"]
        return report
    finally:
        if started and not keep:
            stop_scratch(sc, bindir)
        if not keep:
            shutil.rmtree(sc.root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("stack", nargs="?", default="dev", choices=sorted(devstack.STACKS),
                    help="whose databases are checked (its indicators database is reconciled)")
    ap.add_argument("--keep", action="store_true", help="leave the scratch cluster running (prints where)")
    ap.add_argument("--json", action="store_true", help="the whole report as JSON on stdout")
    args = ap.parse_args()
    report = asyncio.run(check(devstack.STACKS[args.stack], args.keep))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        tables: dict[str, dict[str, int]] = report.get("tables", {})  # type: ignore[assignment]
        print(f"base backup ({report['method']}) in {report['backup_s']} s, restored and recovered in "
              f"{report['restore_s']} s into a scratch cluster on port {report['port']}")
        for db, counts in tables.items():
            print(f"  {db}: {sum(counts.values())} rows in {len(counts)} tables")
        print(f"reconcile in the restored {args.stack} stack: {json.dumps(report['reconcile'])}")
        if report["missing_databases"]:
            print(f"MISSING databases: {report['missing_databases']}")
        if args.keep:
            print(f"scratch cluster left running: {report['scratch']} "
                  f"(psql -h 127.0.0.1 -p {report['port']} -U postgres)")
    sys.exit(0 if report.get("ok") else 1)


if __name__ == "__main__":
    main()
