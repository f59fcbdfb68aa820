"""Benchmark: what a minted trace id's order costs the audit INSERT (api/trace.py), random against time-ordered.

    .venv/bin/python bench/trace_id_order.py [--fill 1000000] [--batches 300] [--rounds 6]

On an embedded PostgreSQL in a temp dir (deleted at the end; DATABASE_URL is never touched),
migrated. audit_logs is first filled with --fill rows whose trace ids are random, as every id the
service minted before was (a trail some months old). Then, each round, after a CHECKPOINT (a
server checkpoints every few minutes; the first change to each page after one logs the whole
page), --batches batches of 32 rows shaped like a real request's (bench/audit_chain.py) go
through db.audit.insert_rows, each its own transaction, once with random trace ids and once with
ids from api.trace.mint (the time in milliseconds first), in alternating order. Printed per
kind: µs per batch and WAL written per batch (pg_current_wal_lsn before and after), median over
rounds, and ordered/random.

Prints only; compare the ratio, not figures across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from api.trace import mint  # noqa: E402
from bench.audit_chain import request_row  # noqa: E402
from bench.processes import run_on_embedded  # noqa: E402
from db.audit import insert_rows  # noqa: E402

BATCH = 32  # rows: the live path's batch at 64 connections
KINDS = {"random": lambda: uuid.uuid4().hex, "time-ordered": mint}


def batch(trace_id) -> list:
    return [dataclasses.replace(request_row(n), trace_id=trace_id()) for n in range(BATCH)]


async def fill(conn: asyncpg.Connection, rows: int) -> None:
    started = time.perf_counter()
    for done in range(0, rows, 1000):
        await insert_rows(conn, [dataclasses.replace(request_row(n), trace_id=uuid.uuid4().hex) for n in range(1000)])
        if done and done % 200_000 == 0:
            print(f"  {done:,} rows", flush=True)
    size = await conn.fetchval("SELECT pg_size_pretty(pg_relation_size('audit_logs_trace_id'))")
    took = time.perf_counter() - started
    print(f"filled audit_logs with {rows:,} random-id rows in {took:.0f}s; trace id index {size}")


async def one_round(conn: asyncpg.Connection, kind: str, batches: int) -> tuple[float, float]:
    await conn.execute("CHECKPOINT")
    make = KINDS[kind]
    payloads = [batch(make) for _ in range(batches)]
    start_lsn = await conn.fetchval("SELECT pg_current_wal_lsn()")
    started = time.perf_counter()
    for rows in payloads:
        await insert_rows(conn, rows)
    elapsed = time.perf_counter() - started
    wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", start_lsn)
    return elapsed / batches * 1e6, float(wal) / batches / 1024


async def main(args: argparse.Namespace, url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await fill(conn, args.fill)
        figures: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
        for n in range(args.rounds):
            for kind in KINDS if n % 2 == 0 else reversed(KINDS):
                figures[kind].append(await one_round(conn, kind, args.batches))
        print(f"\n{args.rounds} rounds of {args.batches} batches of {BATCH} rows, a CHECKPOINT before each; median")
        medians = {}
        for kind, values in figures.items():
            us, wal = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
            medians[kind] = (us, wal)
            rounds = ", ".join(f"{v[0]:.0f}" for v in values)
            print(f"  {kind:13} {us:7.0f} µs per batch  {wal:7.1f} KiB WAL per batch   (rounds: {rounds})")
        (us_r, wal_r), (us_o, wal_o) = medians["random"], medians["time-ordered"]
        print(f"  time-ordered/random: {us_o / us_r:.2f} of the time, {wal_o / wal_r:.2f} of the WAL")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=int, default=1_000_000, help="random-id rows written first (default 1000000)")
    parser.add_argument("--batches", type=int, default=300, help="batches per kind and round (default 300)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, the kinds alternating (default 6)")
    arguments = parser.parse_args()
    run_on_embedded(lambda url: main(arguments, url), "don-bench-trace-")
