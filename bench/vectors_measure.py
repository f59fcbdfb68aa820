"""Measurements for bench/vectors.py against a running service: ingest (API and db layer), the HNSW build,
the request floor, search latency and recall, throughput, and writes after the build; each printed as it goes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import httpx
import numpy as np
from pgvector import Vector

from bench.processes import BenchError
from bench.vectors_data import exact_top, ids_of, make_data, percentile
from db import collections, vector_search, vectors

INDEX_TIMEOUT = 900.0
REQUEST_TIMEOUT = 120.0


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


async def measure(args, conn, base, slug, token, data, queries, bodies, figures) -> dict:
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
