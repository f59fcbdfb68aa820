"""Nearest-neighbour search in one collection: HNSW when it has a calibrated index and is large,
exact otherwise, and exact again whenever the index returns fewer hits than asked for; and the
calibration that measures a new index's recall before searches use it.

The guarantee: a search returns min(top_k, number of vectors matching the filter and the
distance cut-off) hits. HNSW alone cannot promise that (ef_search caps its candidates, and a
metadata filter is applied after the index scan), so its result is only accepted when the index
part alone found top_k hits; otherwise the same transaction runs the exact query. Rows written
since the index was built (the tail) are always searched exactly and merged in.

Recall: HNSW's recall depends on the data (clustered or low-rank data is easy; i.i.d. noise in
many dimensions is hard). After each build, `calibrate` measures recall@10 on a sample of the
collection's own vectors and picks the smallest ef_search that reaches RECALL_TARGET; if none
does, the collection is searched exactly (correct, slower) until its next build.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from db import hnsw, sql
from db.collections import Collection

SEARCH_EXACT = {metric: sql.statement(f"search_exact_{metric}") for metric in hnsw.METRICS}
SET_SEARCH_PARAMS = sql.statement("set_search_params")
CALIBRATION_SAMPLE = sql.statement("calibration_sample")

MAX_SCAN_TUPLES = 50_000  # bound on an iterative scan's work before falling back to exact
CALIBRATION_QUERIES = 100
CALIBRATION_K = 10
RECALL_TARGET = 0.99  # on stored vectors as queries, which flatter it: held-out queries measured ~0.02 lower
EF_LADDER = (40, 64, 100, 160, 250, 400, 640, 1000)


@dataclass(frozen=True)
class SearchResult:
    hits: list[dict[str, Any]]
    strategy: str  # "exact", "hnsw", or "hnsw+exact" (the index came back short; exact answered)


def effective_ef_search(top_k: int, ef_search: int | None, calibrated: int | None) -> int:
    """The client's ef_search, else the calibrated one, never below top_k (max 1000)."""
    return min(1000, max(top_k, ef_search or calibrated or EF_LADDER[0]))


async def search(
    conn: asyncpg.Connection,
    collection: Collection,
    query: np.ndarray,
    top_k: int,
    *,
    metadata_filter: dict | None = None,
    max_distance: float | None = None,
    ef_search: int | None = None,
) -> SearchResult:
    """Nearest first (ties by id). Per-query settings are transaction-local: they cannot leak to the
    connection's next user."""
    if hnsw.uses_index(collection):
        async with conn.transaction(readonly=True):
            ef = effective_ef_search(top_k, ef_search, collection.index_ef_search)
            rows = await _hnsw(conn, collection, query, top_k, metadata_filter, max_distance, ef)
            if rows and rows[0]["from_index"] >= top_k:
                return SearchResult(_hits(rows), "hnsw")
            rows = await _exact(conn, collection, query, top_k, metadata_filter, max_distance)
        return SearchResult(_hits(rows), "hnsw+exact")
    # One statement needs no transaction, and an exact scan no settings.
    return SearchResult(_hits(await _exact(conn, collection, query, top_k, metadata_filter, max_distance)), "exact")


async def _hnsw(conn, collection, query, top_k, metadata_filter, max_distance, ef: int) -> list[asyncpg.Record]:
    """Inside a transaction: the index (plus exact tail) query with its settings set locally."""
    await sql.fetchrow(conn, SET_SEARCH_PARAMS, str(ef), str(MAX_SCAN_TUPLES))
    return await sql.fetch(conn, hnsw.search_statement(collection), query, metadata_filter, top_k, max_distance)


async def _exact(conn, collection, query, top_k, metadata_filter, max_distance) -> list[asyncpg.Record]:
    return await sql.fetch(
        conn, SEARCH_EXACT[collection.metric], collection.id, query, metadata_filter, top_k, max_distance
    )


def _hits(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{"id": row["id"], "distance": row["distance"], "metadata": row["metadata"]} for row in rows]


def choose_ef_search(recall_by_ef: dict[int, float], target: float = RECALL_TARGET) -> int | None:
    """The smallest ef_search whose measured recall reaches the target, or None."""
    return next((ef for ef in sorted(recall_by_ef) if recall_by_ef[ef] >= target), None)


async def calibrate(conn: asyncpg.Connection, collection: Collection, seq: int) -> tuple[int | None, float]:
    """Recall@10 of the index just built up to `seq`, on up to 100 of the collection's own vectors
    as queries (each query's own id left out of both answers): returns (chosen ef_search or None,
    the recall measured at it, or the best one measured)."""
    sample = await sql.fetch(conn, CALIBRATION_SAMPLE, collection.id, seq, CALIBRATION_QUERIES)
    if not sample:
        return None, 0.0
    k = CALIBRATION_K
    queries = [(row["id"], row["embedding"].to_numpy()) for row in sample]
    truths = []
    for query_id, vector in queries:
        rows = await _exact(conn, collection, vector, k + 1, None, None)
        truths.append([row["id"] for row in rows if row["id"] != query_id][:k])
    indexed = dataclasses.replace(collection, index_seq=seq, index_valid=True)
    recall_by_ef: dict[int, float] = {}
    for ef in EF_LADDER:
        found = 0
        for (query_id, vector), truth in zip(queries, truths, strict=True):
            async with conn.transaction(readonly=True):
                rows = await _hnsw(conn, indexed, vector, k + 1, None, None, ef)
            answer = {row["id"] for row in rows if row["id"] != query_id}
            found += len(answer & set(truth))
        recall_by_ef[ef] = found / max(1, sum(len(t) for t in truths))
        if choose_ef_search(recall_by_ef) is not None:
            break
    chosen = choose_ef_search(recall_by_ef)
    return chosen, recall_by_ef[chosen] if chosen is not None else max(recall_by_ef.values())
