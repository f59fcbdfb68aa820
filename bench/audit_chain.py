"""Benchmark: what the audit hash chain costs the writer, side by side with the plain insert it replaced.

    .venv/bin/python bench/audit_chain.py [--rows 6000] [--rounds 3] [--writers 4]

What it does:
  1. Database: the server behind DATABASE_URL when set (it needs CREATEDB), otherwise an embedded
     PostgreSQL in a temp dir, deleted at the end. Two scratch databases on it: `chained` (every
     migration) and `plain` (the same, with 0007 rolled back: the table as it was before the chain).
  2. Batches of 1, 11 and 500 rows, like the ones the group-commit writer sends, each row shaped like
     a real request's (about 420 bytes of metadata): in `chained` through db.audit.insert_rows
     (audit_append: lock the head, draw ids, hash, insert, move the head), in `plain` through the
     one-statement INSERT … SELECT FROM unnest that 0007 replaced. One connection, each batch its
     own transaction (a commit, flushed to disk, per batch: synchronous_commit as configured).
     --rows rows per size and round; the two databases alternate within each round, and the median
     over rounds is printed: ms per batch, µs per row, and chained/plain.
  3. Contention: --writers connections writing batches of 11 at once (several service instances):
     rows/s and batch latency p50/p99, chained (they queue on the chain head) against plain.
  4. The chained trail: bytes per row (pg_column_size) against plain, and `audit verify`'s speed.

Prints only; compare ratios across machines, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench.processes import Cleanup, start_embedded  # noqa: E402
from db import audit_chain, migrations  # noqa: E402
from db.audit import COLUMNS, AuditRow, insert_rows  # noqa: E402
from db.pool import init_connection  # noqa: E402

SIZES = (1, 11, 500)
CHAIN_MIGRATION = "0007.audit-chain"
# The statement sql/insert_audit_rows.sql ran before migration 0007: the reference.
PLAIN_INSERT = """
INSERT INTO audit_logs (occurred_at, institution, action, trace_id, resource_type, resource_id,
                        ip_address, user_agent, metadata)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::inet[], $8::text[], $9::jsonb[])
"""


def request_row(n: int) -> AuditRow:
    return AuditRow(
        occurred_at=datetime.now(UTC),
        institution=f"inst-{n % 7:02d}abcdef",
        action="POST /api/v1/collections/cells/search",
        trace_id=uuid.uuid4().hex,
        resource_type="http_request",
        resource_id="/api/v1/collections/cells/search",
        ip_address=f"203.0.113.{n % 250}",
        user_agent="python-httpx/0.28.1",
        metadata={
            "method": "POST",
            "endpoint": "/api/v1/collections/cells/search",
            "query": "",
            "status_code": 200,
            "response_time_ms": 6.731,
            "request_bytes": 1893,
            "response_bytes": 412,
            "request_sha256": uuid.uuid4().hex + uuid.uuid4().hex,
            "content_type": "application/json",
            "token_id": 17,
            "token_prefix": "donr_Ab3dE9xQ",
        },
    )


async def plain_insert(conn: asyncpg.Connection, rows: list[AuditRow]) -> None:
    await conn.execute(PLAIN_INSERT, *[[getattr(r, name) for r in rows] for name in COLUMNS])


WRITERS = {"chained": insert_rows, "plain": plain_insert}


async def scratch(server: str, name: str, chained: bool) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(server)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    applied = migrations.apply(url)
    if not chained:  # back to before the chain: 0007 and every migration after it
        migrations.rollback(url, count=len(applied) - applied.index(CHAIN_MIGRATION))
    return url


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


async def time_batches(conn, write, size: int, rows: int) -> float:
    """Seconds per batch, writing `rows` rows in batches of `size`."""
    batches = max(rows // size, 3)
    prepared = [[request_row(n) for n in range(size)] for _ in range(batches)]
    await write(conn, prepared[0])  # warm: plans, the function's compiled body
    started = time.perf_counter()
    for batch in prepared:
        await write(conn, batch)
    return (time.perf_counter() - started) / batches


async def sizes(urls: dict[str, str], rows: int, rounds: int) -> None:
    conns = {name: await connect(url) for name, url in urls.items()}
    print("\nbatch size   chained ms/batch  µs/row   plain ms/batch  µs/row   chained/plain")
    for size in SIZES:
        figures = {name: [] for name in conns}
        for _ in range(rounds):
            for name, conn in conns.items():
                figures[name].append(await time_batches(conn, WRITERS[name], size, rows))
        chained, plain = statistics.median(figures["chained"]), statistics.median(figures["plain"])
        print(
            f"{size:>10}   {chained * 1e3:>16.3f}  {chained / size * 1e6:>6.1f}   {plain * 1e3:>14.3f}  "
            f"{plain / size * 1e6:>6.1f}   {chained / plain:>13.2f}"
        )
    for conn in conns.values():
        await conn.close()


async def _write_for(conn, write, batches: int, latencies: list[float]) -> None:
    for _ in range(max(batches, 5)):
        batch = [request_row(n) for n in range(11)]
        started = time.perf_counter()
        await write(conn, batch)
        latencies.append(time.perf_counter() - started)


async def contention(urls: dict[str, str], writers: int, rows: int) -> None:
    print(f"\n{writers} writers at once, batches of 11   rows/s   batch p50 ms   batch p99 ms")
    for name, url in urls.items():
        conns = [await connect(url) for _ in range(writers)]
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(_write_for(conn, WRITERS[name], rows // 11 // writers, latencies) for conn in conns))
        elapsed = time.perf_counter() - started
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"{name:>35}   {len(latencies) * 11 / elapsed:>6.0f}   {statistics.median(latencies) * 1e3:>12.2f}   "
            f"{p99 * 1e3:>12.2f}"
        )
        for conn in conns:
            await conn.close()


async def trail(urls: dict[str, str]) -> None:
    sizes_ = {}
    for name, url in urls.items():
        conn = await connect(url)
        sizes_[name] = await conn.fetchval("SELECT avg(pg_column_size(a.*)) FROM audit_logs a")
        if name == "chained":
            started = time.perf_counter()
            report = await audit_chain.verify(conn)
            elapsed = time.perf_counter() - started
            assert report.intact, report.problem
            verified = report.rows
        await conn.close()
    extra = sizes_["chained"] - sizes_["plain"]
    print(f"\nrow size: chained {sizes_['chained']:.0f} B, plain {sizes_['plain']:.0f} B (+{extra:.0f} B per row)")
    print(f"audit verify: {verified} rows in {elapsed:.2f} s ({verified / elapsed:,.0f} rows/s)")


async def main(args: argparse.Namespace, server: str) -> None:
    tag = uuid.uuid4().hex[:8]
    urls = {
        "chained": await scratch(server, f"bench_chain_{tag}", chained=True),
        "plain": await scratch(server, f"bench_plain_{tag}", chained=False),
    }
    conn = await asyncpg.connect(urls["chained"])
    settings = await conn.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'server_version')"
    )
    await conn.close()
    print("server: " + ", ".join(f"{r['name']}={r['setting']}" for r in settings))
    await sizes(urls, args.rows, args.rounds)
    await contention(urls, args.writers, args.rows)
    await trail(urls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="rows per batch size and round (default 6000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating the databases (default 3)")
    parser.add_argument("--writers", type=int, default=4, help="concurrent connections in the contention run")
    arguments = parser.parse_args()
    cleanup = Cleanup()
    try:
        if os.environ.get("DATABASE_URL"):
            server_url = os.environ["DATABASE_URL"]
        else:
            workdir = Path(tempfile.mkdtemp(prefix="don-bench-chain-"))
            cleanup.push("temp dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
            server_url = start_embedded(workdir, cleanup)
        asyncio.run(main(arguments, server_url))
    finally:
        cleanup.run()
