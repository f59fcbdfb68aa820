"""Benchmark: vectors through the HTTP API, side by side with the database path alone and NumPy.

    .venv/bin/python bench/vectors.py [--vectors 100000] [--dims 128] [--batch 10000] [--queries 200]
                                      [--data spectrum|gaussian] [--concurrency 8]

What it does:
  1. Database: DATABASE_URL when set (already migrated), otherwise an embedded PostgreSQL in a temp
     dir, migrated here and deleted at the end.
  2. Starts `python app.py serve` on 127.0.0.1 (a free port), adds an institution and a token with
     the admin CLI, and talks to the service over HTTP only, with bounded loops and timeouts.
  3. Data (seeded): --vectors + --queries vectors of --dims dimensions, values rounded to 6 decimals as
     a JSON client would send them. `spectrum` (default): independent Gaussian coordinates whose
     variance falls off as j^-1.5, like the leading components of a PCA of expression data;
     `gaussian`: i.i.d. N(0, 1), the worst case for any graph index (neighbours are barely nearer
     than anything else). Metadata {"group": i % 10}, so the filter {"group": 3} matches 10 %.
  4. Ingest: the request bodies are serialised first (not timed), then POSTed in batches of --batch
     items, two at a time. Reference, same run: the same rows written straight through db.vectors
     (the service's own SQL, no HTTP/JSON/validation) into a scratch collection. Prints vectors/s
     for both and the ratio.
  5. Index: the first search on the collection asks for its HNSW index (built in the background
     with CREATE INDEX CONCURRENTLY, then calibrated: the smallest ef_search reaching recall@10
     0.99 on a sample, or exact search if none does); the bench polls GET /collections/{name}
     until it is ready.
  6. Floor: GET /api/v1/usage, an authenticated request doing no work (auth, quota, audit row), so
     the search latencies can be read against what every request costs.
     Search, one request at a time, after one unmeasured pass: top_k=10 without and with the 10 %
     filter, and top_k=100 with the filter. Prints client-side p50/p99, recall@10 against exact
     search in NumPy on the same float32 data, how many filtered searches came back with a full
     top_k, and the strategy the service used. Reference, same run: the same queries through
     db.vector_search directly (index and exact). Then a throughput run with --concurrency clients.
     Finally one more batch written after the build (it goes to the exact "tail", not into the
     HNSW graph): its ingest rate, and search latency and recall with that tail merged in.
  7. Stops everything it started (also on Ctrl-C and errors) and exits 0.

Figures depend on the machine (cores are shared by the bench, uvicorn and PostgreSQL): compare the
ratios, not the absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench.processes import BenchError, Cleanup, free_port, start_embedded, stop_process  # noqa: E402
from bench.vectors_data import make_data  # noqa: E402
from bench.vectors_measure import measure  # noqa: E402
from db.pool import init_connection  # noqa: E402

START_TIMEOUT = 90.0
RESULTS = ROOT / "bench" / "results"


def cli(env: dict, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "app.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"python app.py {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def wait_live(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the service exited ({process.returncode}) while starting:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/v1/health/live", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"the service did not come up within {START_TIMEOUT:g}s:\n{log.read_text()[-2000:]}")


async def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="don-bench-vectors-"))
    cleanup = Cleanup()
    try:
        return await _run(args, workdir, cleanup)
    finally:
        cleanup.run()
        shutil.rmtree(workdir, ignore_errors=True)


async def _run(args, workdir: Path, cleanup: Cleanup) -> dict:
    dsn = os.environ.get("DATABASE_URL") or start_embedded(workdir, cleanup)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DB_COMMAND_TIMEOUT": "60",
    }
    log = workdir / "service.log"
    with open(log, "wb") as out:
        service = subprocess.Popen(
            [sys.executable, "app.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cleanup.push(f"service (pid {service.pid})", lambda: stop_process(service))
    base = f"http://127.0.0.1:{port}"
    wait_live(service, base, log)
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    cli(env, "institution", "add", slug, "--name", "Vector benchmark", "--hourly-limit", "10000000")
    token = cli(env, "token", "issue", slug, "--label", "bench/vectors.py").splitlines()[-1].strip()

    print(f"data: {args.vectors:,} + {args.queries} queries × {args.dims} dims ({args.data})", flush=True)
    everything = make_data(args.data, args.vectors + args.queries, args.dims)
    data, queries = everything[: args.vectors], everything[args.vectors :].astype(np.float32)
    bodies = [
        json.dumps(
            {
                "items": [
                    {"id": f"v{i}", "vector": data[i].tolist(), "metadata": {"group": i % 10, "i": i}}
                    for i in range(s, min(s + args.batch, args.vectors))
                ]
            }
        ).encode()
        for s in range(0, args.vectors, args.batch)
    ]
    figures: dict = {
        "vectors": args.vectors,
        "dims": args.dims,
        "data": args.data,
        "batch": args.batch,
        "body_mb_per_batch": round(len(bodies[0]) / 1e6, 2),
    }

    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        return await measure(args, conn, base, slug, token, data, queries, bodies, figures)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=("spectrum", "gaussian"), default="spectrum")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    try:
        figures = asyncio.run(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"vectors-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
