"""Benchmark: where the database's time goes in one audit batch (sql/insert_audit_rows.sql), part by part.

    .venv/bin/python bench/audit_batch_parts.py [--batches 150] [--rounds 10]

On an embedded PostgreSQL in a temp dir (deleted at the end; DATABASE_URL is never touched: this
creates functions), migrated, one connection, each batch its own transaction and commit. For batches
of 8 rows (a read path's batch at 64 connections) and 50 (the live path's), each part below is timed
--batches times per round, the parts in a new order each round (each inserting part grows the
table the others insert into); the median over rounds is printed
in µs per batch. Rows are shaped like a real request's (bench/audit_chain.py's request_row).

- `round trip`: the batch's JSON sent as the parameter of a statement that does nothing with it.
- `unpack`: the statement's unpacking of the JSON into nine arrays only (jsonb_to_recordset).
- `whole statement`: sql/insert_audit_rows.sql as the writer sends it.
- `... without the hash loop` / `... without the INSERT`: audit_append (migration 0010) copied into
  pg_temp with that part taken out, through the same statement. The difference to the whole
  statement is what the part costs.
- `... through json`, `unpack through json`: the same with json_to_recordset($1::text::json), as the
  statement was before it parsed the batch once as jsonb (json_to_recordset parses each row's
  metadata a second time, into jsonb); kept to show the difference.

Prints only; compare parts within one run, not figures across machines.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench.audit_chain import request_row  # noqa: E402
from bench.processes import run_on_embedded  # noqa: E402
from db import sql  # noqa: E402
from db.audit import batch_json  # noqa: E402

SIZES = (8, 50)
shuffle = random.Random(9).shuffle
NOW = sql.statement("insert_audit_rows").text
THROUGH_JSON = NOW.replace("jsonb_to_recordset($1::text::jsonb)", "json_to_recordset($1::text::json)")
if THROUGH_JSON == NOW:
    raise SystemExit("sql/insert_audit_rows.sql changed shape: no jsonb_to_recordset to compare against")
FUNCTION = (ROOT / "migrations" / "0010.audit-append-once.sql").read_text(encoding="utf-8")


def _copy(name: str, pattern: str, replacement: str) -> str:
    """audit_append's body as a pg_temp function `name`, with `pattern` replaced."""
    body = FUNCTION[FUNCTION.index("CREATE OR REPLACE FUNCTION") :]
    edited, count = re.subn(pattern, replacement, body, flags=re.S)
    if count != 1:
        raise SystemExit(f"migration 0010 changed shape: cannot take out {name}'s part")
    return edited.replace("FUNCTION audit_append(", f"FUNCTION pg_temp.{name}(")


def _unpack_only(statement: str) -> str:
    """The statement's unpacking into arrays, without the call that takes them."""
    inner = statement.replace("SELECT audit_append(", "SELECT ", 1).replace(")\nFROM ROWS FROM", "\nFROM ROWS FROM", 1)
    return f"SELECT 1 FROM ({inner}) AS unpacked"


PARTS = {
    "round trip": "SELECT $1::text IS NOT NULL",
    "unpack": _unpack_only(NOW),
    "unpack through json": _unpack_only(THROUGH_JSON),
    "whole statement": NOW,
    "... through json": THROUGH_JSON,
    "... without the hash loop": NOW.replace("audit_append(", "pg_temp.append_without_hashing("),
    "... without the INSERT": NOW.replace("audit_append(", "pg_temp.append_without_insert("),
}


async def time_part(statement, payload: str, batches: int) -> float:
    for _ in range(3):
        await statement.fetchval(payload)
    started = time.perf_counter()
    for _ in range(batches):
        await statement.fetchval(payload)
    return (time.perf_counter() - started) / batches * 1e6


async def main(args: argparse.Namespace, url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            _copy(
                "append_without_hashing",
                r"FOR i IN 1 \.\. n LOOP.*?END LOOP;",
                "prevs := array_fill(h, ARRAY[n]); hashes := array_fill(h, ARRAY[n]);",
            )
        )
        await conn.execute(_copy("append_without_insert", r"INSERT INTO public\.audit_logs .*?hashes\);", ""))
        version = await conn.fetchval("SHOW server_version")
        print(f"PostgreSQL {version}; {args.rounds} rounds of {args.batches} batches per part; µs per batch, median")
        for size in SIZES:
            payload = batch_json([request_row(n) for n in range(size)])
            statements = {name: await conn.prepare(text) for name, text in PARTS.items()}
            figures: dict[str, list[float]] = {name: [] for name in PARTS}
            order = list(statements)
            for _ in range(args.rounds):
                # Every inserting part grows the table its successors insert into: a new order each round.
                shuffle(order)
                for name in order:
                    statement = statements[name]
                    figures[name].append(await time_part(statement, payload, args.batches))
            print(f"\n{size} rows ({len(payload):,} bytes of JSON)")
            medians = {name: statistics.median(values) for name, values in figures.items()}
            whole = medians["whole statement"]
            for name, value in medians.items():
                share = f"  ({value / whole:.2f} of the whole)" if name != "whole statement" else ""
                print(f"  {name:34} {value:8.0f}{share}")
            print(
                f"  => hash loop {whole - medians['... without the hash loop']:.0f}, "
                f"INSERT {whole - medians['... without the INSERT']:.0f}, "
                f"unpack {medians['unpack'] - medians['round trip']:.0f}, "
                f"through json {medians['... through json'] - whole:+.0f} µs per batch"
            )
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=150, help="batches per part and round (default 150)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds, the parts in a new order each (default 10)")
    arguments = parser.parse_args()
    run_on_embedded(lambda url: main(arguments, url), "don-bench-batch-")
