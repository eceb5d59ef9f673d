"""The audit chain command (终身责任追究).

    python -m certificates.audit verify    # exit 0 if every link holds, 1 and the first broken link if not
    python -m certificates.audit tail [N]  # the last N actions

Every row's hash is sha256(prev_hash || canonical row), computed by the insert trigger; the canonical row is
recomputed here from the stored columns, so changing any column of any row, deleting a row or reordering
rows breaks the chain at that row.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from dataclasses import dataclass

import asyncpg
from kit.settings import Settings, get_settings

GENESIS = "0" * 64


@dataclass(frozen=True)
class Broken:
    seq: int
    reason: str


async def verify(conn: asyncpg.Connection) -> tuple[int, Broken | None]:
    """Walk the chain in order; returns (rows checked, the first broken link or None)."""
    prev, expected_seq, n = GENESIS, 1, 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("select seq, hash from audit_head where id = 1")
        assert head is not None, "audit_head is missing: the migration c0001 did not run"
        async for r in conn.cursor("select seq, prev_hash, hash, audit_canonical(a) as canon from audit_log a "
                                   "order by seq", prefetch=5000):
            n += 1
            if r["seq"] != expected_seq:
                return n, Broken(expected_seq, f"row {expected_seq} is missing (next is {r['seq']})")
            if r["prev_hash"] != prev:
                return n, Broken(r["seq"], "prev_hash is not the previous row's hash")
            digest = hashlib.sha256((r["prev_hash"] + r["canon"]).encode()).hexdigest()
            if digest != r["hash"]:
                return n, Broken(r["seq"], "the row's content does not match its hash (changed after writing)")
            prev, expected_seq = r["hash"], expected_seq + 1
        if head["seq"] != expected_seq - 1 or head["hash"] != prev:
            return n, Broken(expected_seq, f"the chain's head is at {head['seq']}: rows after "
                                           f"{expected_seq - 1} were removed")
    return n, None


async def _connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.role("certificates"),
                                 database=settings.database("certificates"))


async def main_async(args: argparse.Namespace) -> int:
    conn = await _connect(get_settings())
    try:
        if args.command == "verify":
            n, broken = await verify(conn)
            if broken is None:
                print(f"audit chain intact: {n} rows")
                return 0
            print(f"audit chain BROKEN at row {broken.seq}: {broken.reason} ({n} rows read)")
            return 1
        rows = await conn.fetch("select seq, at, actor, client_id, action, subject, details from audit_log "
                                "order by seq desc limit $1", args.n)
        for r in reversed(rows):
            print(r["seq"], r["at"].isoformat(), r["actor"], r["action"], r["subject"], r["details"])
        return 0
    finally:
        await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="verify the whole chain")
    t = sub.add_parser("tail", help="the last actions")
    t.add_argument("n", nargs="?", type=int, default=20)
    sys.exit(asyncio.run(main_async(p.parse_args())))


if __name__ == "__main__":
    main()
