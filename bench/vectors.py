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
import dataclasses
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
from pgvector import Vector  # noqa: E402

from bench.processes import BenchError, Cleanup, free_port, start_embedded, stop_process  # noqa: E402
from db import collections, vector_search, vectors  # noqa: E402
from db.pool import init_connection  # noqa: E402

START_TIMEOUT = 90.0
INDEX_TIMEOUT = 900.0
REQUEST_TIMEOUT = 120.0
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


# ---------------------------------------------------------------- data


def make_data(kind: str, n: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    if kind == "spectrum":
        x *= np.arange(1, dims + 1) ** -0.75
    return np.round(x, 6)


def exact_top(data: np.ndarray, query: np.ndarray, k: int, subset: np.ndarray | None = None) -> set[int]:
    """Cosine top-k by NumPy (the ground truth for recall)."""
    pool = np.arange(len(data)) if subset is None else subset
    scores = data[pool] @ (query / np.linalg.norm(query))
    best = np.argpartition(-scores, k)[:k]
    return {int(i) for i in pool[best]}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ---------------------------------------------------------------- runs


async def ingest_http(http: httpx.AsyncClient, name: str, bodies: list[bytes], concurrency: int = 2) -> float:
    queue = list(bodies)

    async def worker():
        while queue:
            body = queue.pop()
            response = await http.post(
                f"/api/v1/collections/{name}/vectors", content=body, headers={"content-type": "application/json"}
            )
            if response.status_code != 200:
                raise BenchError(f"ingest failed: {response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def ingest_direct(conn, collection, institution_id: int, data32: np.ndarray, batch: int) -> float:
    """Reference: the service's SQL alone, same batches, one at a time."""
    started = time.perf_counter()
    for start in range(0, len(data32), batch):
        rows = data32[start : start + batch]
        ids = [f"v{i}" for i in range(start, start + len(rows))]
        meta = [json.dumps({"group": i % 10, "i": i}) for i in range(start, start + len(rows))]
        await vectors.upsert(conn, collection.id, institution_id, ids, [Vector(r) for r in rows], meta)
    return time.perf_counter() - started


async def search_http(http, name, query, top_k, search_filter=None) -> tuple[float, dict]:
    body = {"vector": query.tolist(), "top_k": top_k, **({"filter": search_filter} if search_filter else {})}
    started = time.perf_counter()
    response = await http.post(f"/api/v1/collections/{name}/search", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise BenchError(f"search failed: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def ids_of(hits: list[dict]) -> set[int]:
    return {int(hit["id"][1:]) for hit in hits}


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
        return await _measure(args, conn, base, slug, token, data, queries, bodies, figures)
    finally:
        await conn.close()


async def _measure(args, conn, base, slug, token, data, queries, bodies, figures) -> dict:
    data32 = data.astype(np.float32)
    unit = data32 / np.linalg.norm(data32, axis=1, keepdims=True)
    group3 = np.flatnonzero(np.arange(args.vectors) % 10 == 3)
    institution_id = await conn.fetchval("SELECT id FROM institutions WHERE slug = $1", slug)
    name = "bench-vectors"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as http:
        created = await http.post(
            "/api/v1/collections", json={"name": name, "dimensions": args.dims, "metric": "cosine"}
        )
        if created.status_code != 201:
            raise BenchError(f"could not create the collection: {created.status_code} {created.text[:300]}")

        # -- ingest: reference (db layer only), then the API
        scratch = await collections.create(conn, institution_id, "bench-reference", args.dims, "cosine")
        direct_s = await ingest_direct(conn, scratch, institution_id, data32, args.batch)
        await collections.delete(conn, institution_id, scratch.name)
        http_s = await ingest_http(http, name, bodies)
        figures["ingest_http_vps"] = round(args.vectors / http_s)
        figures["ingest_db_only_vps"] = round(args.vectors / direct_s)
        print(
            f"ingest: API {figures['ingest_http_vps']:,} vectors/s ({http_s:.1f} s), db layer alone "
            f"{figures['ingest_db_only_vps']:,} vectors/s; ratio API/db {direct_s / http_s:.2f}",
            flush=True,
        )

        # -- index: the first search asks for it; wait until it is ready
        started = time.perf_counter()
        _, first = await search_http(http, name, queries[0], 10)
        while True:
            described = (await http.get(f"/api/v1/collections/{name}")).json()
            state = described["index"]
            if state == "ready":
                break
            if time.perf_counter() - started > INDEX_TIMEOUT:
                raise BenchError(f"the HNSW index was not ready within {INDEX_TIMEOUT:g}s (state {state})")
            await asyncio.sleep(1.0)
        figures["index_build_s"] = round(time.perf_counter() - started, 1)
        figures["index_ef_search"] = described["index_ef_search"]
        figures["index_calibrated_recall"] = described["index_recall_at_10"]
        print(
            f"index: first search answered by {first['strategy']}; HNSW built and calibrated after "
            f"{figures['index_build_s']} s: ef_search {described['index_ef_search']} for recall@10 "
            f"{described['index_recall_at_10']} on its own sample; searches use {described['search']}",
            flush=True,
        )

        # -- the floor: an authenticated request that does no work (auth, quota, audit row)
        latencies = []
        for _ in range(len(queries)):
            started = time.perf_counter()
            if (await http.get("/api/v1/usage")).status_code != 200:
                raise BenchError("GET /api/v1/usage failed")
            latencies.append((time.perf_counter() - started) * 1000)
        figures["floor_usage"] = {
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
        }
        print(
            f"floor: GET /api/v1/usage p50 {figures['floor_usage']['p50_ms']} ms, "
            f"p99 {figures['floor_usage']['p99_ms']} ms "
            f"(authentication, quota and audit row, no search)",
            flush=True,
        )

        # -- search through the API, one request at a time, after one unmeasured pass (index pages, plans)
        for query in queries:
            await search_http(http, name, query, 10, {"group": 3})
        cases = [
            ("top10", 10, None, None),
            ("top10_filter10pct", 10, {"group": 3}, group3),
            ("top100_filter10pct", 100, {"group": 3}, group3),
        ]
        for label, k, search_filter, subset in cases:
            latencies, server_ms, recalls, full, strategies = [], [], [], 0, {}
            for query in queries:
                elapsed, answer = await search_http(http, name, query, k, search_filter)
                latencies.append(elapsed)
                server_ms.append(answer["search_ms"])
                hits = answer["hits"]
                full += len(hits) == k
                strategies[answer["strategy"]] = strategies.get(answer["strategy"], 0) + 1
                truth = exact_top(unit, query, 10, subset)
                recalls.append(len(ids_of(hits[:10]) & truth) / 10)
            figures[label] = {
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "server_p50_ms": round(percentile(server_ms, 50), 2),
                "recall_at_10": round(float(np.mean(recalls)), 4),
                "full_top_k": f"{full}/{len(queries)}",
                "strategies": strategies,
            }
            print(
                f"search {label:>19}: p50 {figures[label]['p50_ms']} ms, p99 {figures[label]['p99_ms']} ms "
                f"(in the database {figures[label]['server_p50_ms']} ms), recall@10 {figures[label]['recall_at_10']}, "
                f"full top_k {figures[label]['full_top_k']}, {strategies}",
                flush=True,
            )

        # -- reference: the same queries through the db layer, index and exact
        collection = await collections.get(conn, institution_id, name)
        exact_only = dataclasses.replace(collection, index_valid=None)
        with_index = dataclasses.replace(collection, index_ef_search=collection.index_ef_search or 1000)
        for label, target in (("db_hnsw_top10", with_index), ("db_exact_top10", exact_only)):
            latencies = []
            for query in queries:
                started = time.perf_counter()
                await vector_search.search(conn, target, query, 10)
                latencies.append((time.perf_counter() - started) * 1000)
            figures[label] = {
                "p50_ms": round(percentile(latencies, 50), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
            }
        print(
            f"reference: db layer HNSW p50 {figures['db_hnsw_top10']['p50_ms']} ms, exact p50 "
            f"{figures['db_exact_top10']['p50_ms']} ms; API top10 / db exact p50 ratio "
            f"{figures['top10']['p50_ms'] / figures['db_exact_top10']['p50_ms']:.2f}",
            flush=True,
        )

        # -- throughput with concurrent clients
        work = list(range(len(queries) * 2))

        async def client():
            while work:
                await search_http(http, name, queries[work.pop() % len(queries)], 10)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        figures["throughput_qps"] = round(len(queries) * 2 / (time.perf_counter() - started), 1)
        print(
            f"throughput: {figures['throughput_qps']} searches/s with {args.concurrency} concurrent clients", flush=True
        )

        # -- writes after the build go to the exact tail (no HNSW insertion): ingest and search with it
        extra = make_data(args.data, args.batch, args.dims, seed=1)
        body = json.dumps(
            {
                "items": [
                    {"id": f"v{args.vectors + i}", "vector": row.tolist(), "metadata": {"group": i % 10}}
                    for i, row in enumerate(extra)
                ]
            }
        ).encode()
        tail_s = await ingest_http(http, name, [body], concurrency=1)
        figures["ingest_after_index_vps"] = round(args.batch / tail_s)
        both = np.vstack(
            [unit, extra.astype(np.float32) / np.linalg.norm(extra.astype(np.float32), axis=1, keepdims=True)]
        )
        latencies, recalls, strategies = [], [], {}
        for query in queries[:100]:
            elapsed, answer = await search_http(http, name, query, 10)
            latencies.append(elapsed)
            strategies[answer["strategy"]] = strategies.get(answer["strategy"], 0) + 1
            recalls.append(len(ids_of(answer["hits"]) & exact_top(both, query, 10)) / 10)
        figures["top10_with_tail"] = {
            "tail": args.batch,
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "recall_at_10": round(float(np.mean(recalls)), 4),
            "strategies": strategies,
        }
        print(
            f"after the index: {args.batch:,} more vectors at {figures['ingest_after_index_vps']:,} vectors/s (tail, "
            f"no HNSW insertion); top10 with that tail p50 {figures['top10_with_tail']['p50_ms']} ms, "
            f"recall@10 {figures['top10_with_tail']['recall_at_10']}, {strategies}",
            flush=True,
        )

        await http.delete(f"/api/v1/collections/{name}")
    return figures


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
