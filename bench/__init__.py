"""Benchmarks (`make bench`): each module `bench/<name>.py` exposes `async def run(ctx: BenchContext) -> dict`.

They run against a fresh copy of the test stack (real Postgres, real broker, the four services) and report
figures; they never assert timings. Results go to `bench/results/latest.json` and `bench/results/latest.md`.
"""
