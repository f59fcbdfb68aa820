"""Benchmark: the service's hot paths against a bare Starlette + asyncpg app, side by side in one run.

    .venv/bin/python bench/hot_path.py [--duration 8] [--rounds 5] [--connections 64] [--no-pin]

Pairs, each round running the service side then the bare side:
  read: GET /api/v1/collections/{c}/vectors/{id} with a Bearer token (auth, quota counted, audit row
        committed before the response) against bench/reference_app.py running the same two
        statements (sql/get_collection.sql, sql/get_vector.sql) with the same pool; target >= 0.8.
  live: GET /api/v1/health/live (audited, no database) against a bare /plain; target >= 0.6.
Prints rps, p50/p99, each app's CPU per request, every core's busy share during the run, the median
of the per-round ratios, and audit rows against the requests sent (0 lost). Then, with a 2 ms delay
on every commit (commit_delay with fsync and synchronous_commit on; the embedded database only),
one institution's GET /api/v1/usage (batched quota) against /count-each (one upsert committed per
request on the same kind of counter row): the second is capped near 1 / 2 ms, the first is not.
By default each app runs on core 0 and PostgreSQL + wrk on core 1 (--no-pin: no pinning).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hot_path_report import busy_shares, core_busy, print_audit_totals, print_pairs, print_run  # noqa: E402
from bench.processes import (  # noqa: E402
    REFERENCE_ARGV,
    BenchError,
    Cleanup,
    Server,
    start_embedded,
    start_server,
    stop_process,
    wait_ready,
)
from bench.service_report import settle_audit  # noqa: E402
from bench.wrk_load import WRK_SCRIPT, Run, run_wrk  # noqa: E402

COLLECTION, VECTOR_ID, DIMENSIONS = "bench", "v1", 32
COMMIT_DELAY_US = 2000


async def _seed(dsn: str) -> tuple[int, str]:
    """An institution with a quota no run reaches, a token, and one collection holding one vector."""
    import asyncpg
    from pgvector import Vector

    from core import tokens
    from db import collections, vectors
    from db.pool import init_connection

    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        institution_id = await conn.fetchval(
            "INSERT INTO institutions (slug, display_name, tier, hourly_limit) VALUES ($1, $1, 'academic', $2) "
            "RETURNING id",
            slug,
            2**31 - 1,
        )
        issued = tokens.issue()
        await conn.execute(
            "INSERT INTO api_tokens (institution_id, label, prefix, token_sha256) VALUES ($1, 'bench', $2, $3)",
            institution_id,
            issued.public_prefix,
            issued.sha256,
        )
        collection = await collections.create(conn, institution_id, COLLECTION, DIMENSIONS, "cosine")
        embedding = Vector([float(i % 7) / 7 for i in range(DIMENSIONS)])
        await vectors.upsert(conn, collection.id, institution_id, [VECTOR_ID], [embedding], ['{"kind": "bench"}'])
    finally:
        await conn.close()
    return institution_id, issued.plaintext


async def _sql(dsn: str, *statements: str) -> list:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return [await conn.fetchval(s) for s in statements]
    finally:
        await conn.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/hot_path.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every pair (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (default 64)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per app and path (default 2)")
    parser.add_argument("--commit-duration", type=float, default=5.0, help="seconds per commit-delay run (0: skip)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin apps to core 0 and the rest to core 1")
    parser.add_argument("--pause", type=float, default=0.5, help="idle seconds between runs (default 0.5)")
    args = parser.parse_args(argv)
    args.threads, args.verbose = 1, False  # what bench/wrk_load.run_wrk reads
    if args.duration <= 0 or args.rounds < 1 or args.connections < 1:
        parser.error("durations must be positive, counts at least 1")
    return args


def bench(args: argparse.Namespace, cleanup: Cleanup, state: dict) -> int:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    if os.environ.get("DATABASE_URL"):
        raise BenchError("bench/hot_path.py changes commit settings: it runs on its own embedded database only")
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    if pin:  # PostgreSQL (started next) and wrk inherit this process's core; the apps get the other
        os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="don-hot-path-"))
    cleanup.push(f"temp dir {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    dsn = start_embedded(workdir, cleanup)
    institution_id, token = asyncio.run(_seed(dsn))
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "REFERENCE_INSTITUTION_ID": str(institution_id),
    }
    cpus = {0} if pin else None
    service = start_server("service", [sys.executable, "app.py", "serve"], env, workdir, cleanup, cpus)
    reference = start_server("reference", REFERENCE_ARGV, env, workdir, cleanup, cpus)
    wait_ready(service)
    wait_ready(reference)
    tag = f"hot{uuid.uuid4().hex[:8]}"
    bearer = f"Bearer {token}"
    vector_path = f"/api/v1/collections/{COLLECTION}/vectors/{VECTOR_ID}"
    pairs = {
        "read": ((service, vector_path, bearer), (reference, vector_path, None), 0.8),
        "live": ((service, "/api/v1/health/live", None), (reference, "/plain", None), 0.6),
    }
    print(
        f"wrk -t1 -c{args.connections}, {args.rounds} rounds x {args.duration:g}s per side and path; "
        f"{'apps on core 0, PostgreSQL and wrk on core 1' if pin else 'no pinning'}; "
        "load average %.2f %.2f %.2f before" % os.getloadavg(),
        flush=True,
    )

    def one(server: Server, path: str, auth: str | None, label: str, run_id: str, duration: float) -> Run:
        run = Run(app=server.name, label=label, run_id=run_id, duration_s=duration)
        before = core_busy()
        run_wrk(server, run, args, script, tag, state, url=f"http://127.0.0.1:{server.port}{path}", authorization=auth)
        run.cores_busy = busy_shares(before, core_busy())
        if server is service:
            settle_audit(dsn, run, tag)
        print_run(run, path)
        time.sleep(args.pause)
        return run

    runs: dict[str, list[tuple[Run, Run]]] = {name: [] for name in pairs}
    for name, ((s, s_path, s_auth), (r, r_path, r_auth), _) in pairs.items():
        if args.warmup > 0:
            one(s, s_path, s_auth, "warm-up", f"w{name}s", args.warmup)
            one(r, r_path, r_auth, "warm-up", f"w{name}r", args.warmup)
    for i in range(1, args.rounds + 1):
        for name, ((s, s_path, s_auth), (r, r_path, r_auth), _) in pairs.items():
            ours = one(s, s_path, s_auth, f"{name} {i}", f"{name}{i}s", args.duration)
            bare = one(r, r_path, r_auth, f"{name} {i}", f"{name}{i}r", args.duration)
            runs[name].append((ours, bare))
    for name, (_, _, target) in pairs.items():
        print_pairs(name, runs[name], target)
    print_audit_totals([ours for pair_runs in runs.values() for ours, _ in pair_runs])

    if args.commit_duration > 0:
        commit_latency_demo(args, dsn, service, reference, bearer, one)
    for server in (service, reference):
        stop_process(server.process)
    return 0


def commit_latency_demo(args, dsn: str, service: Server, reference: Server, bearer: str, one) -> None:
    """Every commit delayed 2 ms: the batched quota against one upsert committed per request."""
    fsync, sync = asyncio.run(_sql(dsn, "SHOW fsync", "SHOW synchronous_commit"))
    asyncio.run(
        _sql(
            dsn,
            "ALTER SYSTEM SET fsync = on",  # commit_delay only applies when commits flush WAL
            "ALTER SYSTEM SET synchronous_commit = on",
            f"ALTER SYSTEM SET commit_delay = {COMMIT_DELAY_US}",
            "ALTER SYSTEM SET commit_siblings = 0",  # delay every commit, however few are concurrent
            "SELECT pg_reload_conf()",
        )
    )
    time.sleep(0.5)
    print(
        f"\ncommit latency: commit_delay {COMMIT_DELAY_US} us on every commit "
        f"(was fsync={fsync}, synchronous_commit={sync})"
    )
    updates = "SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables WHERE relname = 'rate_limit_windows'"
    results = []
    for server, path, auth in ((service, "/api/v1/usage", bearer), (reference, "/count-each", None)):
        time.sleep(1.0)  # statistics reach pg_stat_* within a second of each transaction
        [written_before] = asyncio.run(_sql(dsn, updates))
        run = one(server, path, auth, "commit 2ms", f"c{server.name[0]}", args.commit_duration)
        time.sleep(1.0)
        [written_after] = asyncio.run(_sql(dsn, updates))
        results.append((run, written_after - written_before))
    ceiling = 1e6 / COMMIT_DELAY_US
    for run, statements in results:
        per = run.issued / statements if statements else float("nan")
        print(
            f"  {run.app:<9} {run.rps:8.0f} req/s on one institution's counter row; "
            f"{statements} counter writes for {run.issued} requests ({per:.1f} requests per commit)"
        )
    print(f"  one commit at a time on one row: at most {ceiling:.0f} counter commits/s")
    asyncio.run(
        _sql(
            dsn,
            *(f"ALTER SYSTEM RESET {g}" for g in ("fsync", "synchronous_commit", "commit_delay", "commit_siblings")),
            "SELECT pg_reload_conf()",
        )
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cleanup = Cleanup()
    state: dict = {"wrk": None}
    started = time.monotonic()
    try:
        return bench(args, cleanup, state)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        wrk = state.get("wrk")
        if wrk is not None and wrk.poll() is None:
            wrk.kill()
            wrk.wait()
        cleanup.run()
        print(f"done in {time.monotonic() - started:.0f}s; servers stopped, temp files removed", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
