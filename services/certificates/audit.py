"""The audit chain command (终身责任追究).

    python -m certificates.audit verify    # exit 0 if every link holds, 1 and the first broken link if not
    python -m certificates.audit tail [N]  # the last N actions

The log is 16 hash chains (lanes, so that concurrent clerks do not queue on one head); in each, a row's hash
is sha256(prev_hash || canonical row), computed by the insert trigger. The canonical row is recomputed here
from the stored columns, so changing any column of any row, or deleting or reordering rows, breaks its lane
at that row; removing a lane's last rows is caught by the lane's head.
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
    lane: int
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"lane {self.lane} row {self.seq}: {self.reason}"


async def verify(conn: asyncpg.Connection) -> tuple[int, Broken | None]:
    """Walk every lane's chain in order; returns (rows checked, the first broken link or None)."""
    n = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        heads = {r["lane"]: (r["seq"], r["hash"]) for r in await conn.fetch("select lane, seq, hash from audit_head")}
        lane, prev, expected = -1, GENESIS, 1
        seen: set[int] = set()

        def end_of(lane: int) -> Broken | None:
            seq, hash_ = heads.get(lane, (0, GENESIS))
            if seq != expected - 1 or hash_ != prev:
                return Broken(lane, expected, f"the lane's head is at row {seq}: rows after {expected - 1} were "
                                              "removed")
            return None

        async for r in conn.cursor("select lane, seq, prev_hash, hash, audit_canonical(a) as canon from audit_log a "
                                   "order by lane, seq", prefetch=5000):
            n += 1
            if r["lane"] != lane:
                if lane >= 0 and (b := end_of(lane)):
                    return n, b
                lane, prev, expected = r["lane"], GENESIS, 1
                seen.add(lane)
            if r["seq"] != expected:
                return n, Broken(lane, expected, f"row {expected} is missing (next is {r['seq']})")
            if r["prev_hash"] != prev:
                return n, Broken(lane, r["seq"], "prev_hash is not the previous row's hash")
            digest = hashlib.sha256((r["prev_hash"] + r["canon"]).encode()).hexdigest()
            if digest != r["hash"]:
                return n, Broken(lane, r["seq"], "the row's content does not match its hash (changed after writing)")
            prev, expected = r["hash"], expected + 1
        if lane >= 0 and (b := end_of(lane)):
            return n, b
        for other, (seq, _) in sorted(heads.items()):
            if other not in seen and seq:
                return n, Broken(other, 1, f"the lane's head is at row {seq} but it has no rows")
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
            print(f"audit chain BROKEN at {broken} ({n} rows read)")
            return 1
        rows = await conn.fetch("select lane, seq, at, actor, client_id, action, subject, details from audit_log "
                                "order by id desc limit $1", args.n)
        for r in reversed(rows):
            print(f"{r['lane']}/{r['seq']}", r["at"].isoformat(), r["actor"], r["action"], r["subject"],
                  r["details"])
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
