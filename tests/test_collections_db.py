"""The collections and vectors db layer against the real PostgreSQL: upserts, counts, exact and
HNSW search, per-query settings that do not leak, and the runtime index DDL."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import numpy as np
import pytest
from pgvector import Vector

from db import collections, hnsw, vector_search, vectors
from db.collections import Collection
from workers.index_maintainer import build_and_adopt

DIMS = 8


def unique_name() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


async def new_collection(pool, institution, metric="l2", dims=DIMS) -> Collection:
    async with pool.acquire() as conn:
        return await collections.create(conn, institution.id, unique_name(), dims, metric)


async def fill(pool, collection: Collection, data: np.ndarray, institution, metadata=None) -> vectors.Upserted:
    ids = [f"v{i:06d}" for i in range(len(data))]
    metadata = metadata or ["{}"] * len(data)
    async with pool.acquire() as conn:
        return await vectors.upsert(conn, collection.id, institution.id, ids, [Vector(r) for r in data], metadata)


async def refreshed(pool, institution, collection: Collection) -> Collection:
    async with pool.acquire() as conn:
        return await collections.get(conn, institution.id, collection.name)


@pytest.fixture(scope="module")
async def indexed(pool):
    """One 12,000-vector l2 collection with a valid HNSW index; one vector in ten has group "a"."""
    from tests.conftest import make_institution

    owner = await make_institution(pool)
    collection = await new_collection(pool, owner)
    data = np.random.default_rng(7).standard_normal((12_000, DIMS)).astype(np.float32)
    groups = ['{"group": "a"}' if i % 10 == 0 else '{"group": "b"}' for i in range(len(data))]
    await fill(pool, collection, data, owner, groups)
    async with pool.acquire() as conn:
        await build_and_adopt(conn, collection.id)
    return owner, await refreshed(pool, owner, collection), data


def test_templates_render_only_integers_and_every_placeholder():
    template = hnsw.CREATE_HNSW_INDEX["cosine"]
    text = hnsw.render(template, collection_id=42, dimensions=128, seq=7).text
    assert "vector(128)" in text and "vectors_hnsw_42_7" in text and "collection_id = 42 AND seq <= 7" in text
    for bad in ("1; DROP TABLE vectors", True, -1, 1.0, None):
        with pytest.raises(TypeError):
            hnsw.render(template, collection_id=bad, dimensions=128, seq=7)
        with pytest.raises(TypeError):
            hnsw.render(template, collection_id=1, dimensions=bad, seq=7)
    with pytest.raises(TypeError, match="seq"):
        hnsw.render(template, collection_id=1, dimensions=3)


@pytest.mark.parametrize("name", sorted(hnsw.TEMPLATES))
async def test_every_template_renders_and_prepares(pool, name):
    # tests/test_sql_and_migrations.py prepares sql/*.sql; the templates need their integers first.
    async with pool.acquire() as conn:
        await conn.prepare(hnsw.render(hnsw.TEMPLATES[name], collection_id=1, dimensions=3, seq=1).text)


async def test_upsert_counts_new_and_overwritten_ids(pool, institution):
    collection = await new_collection(pool, institution)
    first = await fill(pool, collection, np.ones((3, DIMS), np.float32), institution)
    assert (first.written, first.inserted, first.vector_count) == (3, 3, 3)
    async with pool.acquire() as conn:
        again = await vectors.upsert(
            conn, collection.id, institution.id, ["v000001", "new"], [Vector([2.0] * DIMS)] * 2, ['{"x": 1}', "{}"]
        )
        row = await vectors.get(conn, collection.id, "v000001")
    assert (again.written, again.inserted, again.vector_count) == (2, 1, 4)
    assert row["embedding"].to_list() == [2.0] * DIMS and row["metadata"] == {"x": 1}


async def test_a_failing_upsert_writes_nothing(pool, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.ones((2, DIMS), np.float32), institution)
    ids = ["ok-1", "x" * 201]  # the second breaks the table's CHECK: the whole statement must roll back
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await vectors.upsert(conn, collection.id, institution.id, ids, [Vector([1.0] * DIMS)] * 2, ["{}"] * 2)
        assert await vectors.get(conn, collection.id, "ok-1") is None
    assert (await refreshed(pool, institution, collection)).vector_count == 2


async def test_writes_to_a_deleted_or_foreign_collection_do_nothing(pool, institution, other_institution):
    collection = await new_collection(pool, institution)
    async with pool.acquire() as conn:
        assert (
            await vectors.upsert(conn, collection.id, other_institution.id, ["a"], [Vector([1.0] * DIMS)], ["{}"])
            is None
        )
        assert await vectors.delete(conn, collection.id, other_institution.id, "a") is None
        assert await collections.delete(conn, institution.id, collection.name) == collection.id
        assert await vectors.upsert(conn, collection.id, institution.id, ["a"], [Vector([1.0] * DIMS)], ["{}"]) is None
        assert await conn.fetchval("SELECT count(*) FROM vectors WHERE collection_id = $1", collection.id) == 0


async def test_delete_vector_keeps_the_count(pool, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.ones((3, DIMS), np.float32), institution)
    async with pool.acquire() as conn:
        assert await vectors.delete(conn, collection.id, institution.id, "v000000") is True
        assert await vectors.delete(conn, collection.id, institution.id, "v000000") is False
    assert (await refreshed(pool, institution, collection)).vector_count == 2


@pytest.mark.parametrize(
    "metric, expected",
    [
        ("l2", lambda d, q: np.linalg.norm(d - q, axis=1)),
        ("cosine", lambda d, q: 1 - (d @ q) / (np.linalg.norm(d, axis=1) * np.linalg.norm(q))),
        ("inner_product", lambda d, q: -(d @ q)),
    ],
)
async def test_exact_search_matches_numpy(pool, institution, metric, expected):
    data = np.random.default_rng(1).standard_normal((300, DIMS)).astype(np.float32)
    collection = await refreshed(pool, institution, await new_collection(pool, institution, metric))
    await fill(pool, collection, data, institution)
    collection = await refreshed(pool, institution, collection)
    query = data[5] + 0.1
    async with pool.acquire() as conn:
        result = await vector_search.search(conn, collection, query, 10)
    distances = expected(data.astype(np.float64), query.astype(np.float64))
    assert result.strategy == "exact"
    assert [hit["id"] for hit in result.hits] == [f"v{i:06d}" for i in np.argsort(distances, kind="stable")[:10]]
    assert [hit["distance"] for hit in result.hits] == pytest.approx(np.sort(distances)[:10], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize(
    "recall_by_ef, chosen",
    [
        ({40: 0.99, 64: 0.995}, 40),
        ({40: 0.80, 64: 0.98, 100: 0.992}, 100),
        ({40: 0.50, 1000: 0.989}, None),
        ({}, None),
    ],
)
def test_calibration_picks_the_smallest_ef_search_reaching_the_target(recall_by_ef, chosen):
    assert vector_search.choose_ef_search(recall_by_ef) == chosen


async def test_a_build_is_calibrated_before_searches_use_it(indexed):
    _, collection, _ = indexed
    assert collection.index_ef_search in vector_search.EF_LADDER
    assert collection.index_recall >= vector_search.RECALL_TARGET
    assert hnsw.uses_index(collection)


async def test_an_index_below_the_recall_target_is_not_used_nor_rebuilt(pool, indexed):
    owner, collection, data = indexed
    # What calibration records when no ef_search reaches the target (e.g. i.i.d. noise in many dimensions).
    below = dataclasses.replace(collection, index_ef_search=None, index_recall=0.4)
    assert not hnsw.uses_index(below) and not hnsw.wants_index(below)
    async with pool.acquire() as conn:
        result = await vector_search.search(conn, below, data[0], 10)
    assert result.strategy == "exact" and result.hits[0]["id"] == "v000000"


async def test_the_hnsw_query_uses_the_collections_partial_index(pool, indexed):
    _, collection, data = indexed
    assert collection.index_valid is True
    async with pool.acquire() as conn:
        plan = await conn.fetch("EXPLAIN " + hnsw.search_statement(collection).text, data[0], None, 10, None)
    assert f"vectors_hnsw_{collection.id}" in "\n".join(row[0] for row in plan)


async def test_hnsw_search_agrees_with_exact_search(pool, indexed):
    _, collection, data = indexed
    recalls = []
    async with pool.acquire() as conn:
        for query in np.random.default_rng(3).standard_normal((20, DIMS)).astype(np.float32):
            result = await vector_search.search(conn, collection, query, 10)
            assert result.strategy == "hnsw"
            exact = np.argsort(np.linalg.norm(data - query, axis=1))[:10]
            recalls.append(len({hit["id"] for hit in result.hits} & {f"v{i:06d}" for i in exact}) / 10)
    assert np.mean(recalls) >= 0.95


@pytest.mark.parametrize("top_k", [10, 100, 1000])
async def test_a_filter_matching_a_tenth_still_fills_top_k_through_the_index(pool, indexed, top_k):
    _, collection, data = indexed
    async with pool.acquire() as conn:
        result = await vector_search.search(conn, collection, data[1], top_k, metadata_filter={"group": "a"})
    assert len(result.hits) == top_k
    assert {hit["metadata"]["group"] for hit in result.hits} == {"a"}
    assert result.strategy == "hnsw"  # iterative scan: no fallback needed at 10 %


async def test_top_k_beyond_ef_search_is_not_cut_short(pool, indexed):
    _, collection, data = indexed
    async with pool.acquire() as conn:
        result = await vector_search.search(conn, collection, data[2], 1000, ef_search=10)
    assert len(result.hits) == 1000 and len({hit["id"] for hit in result.hits}) == 1000
    distances = [hit["distance"] for hit in result.hits]
    assert distances == sorted(distances)


@pytest.mark.parametrize(
    "search_filter, max_distance, expected",
    [
        ({"group": "none"}, None, 0),
        ({"group": "a"}, 0.0, 0),
        (None, 1e9, 12_000),
    ],
)
async def test_when_the_index_comes_back_short_exact_search_answers(
    pool, indexed, search_filter, max_distance, expected
):
    _, collection, data = indexed
    async with pool.acquire() as conn:
        result = await vector_search.search(
            conn,
            collection,
            data[3] + 0.5,
            1000 if expected else 10,
            metadata_filter=search_filter,
            max_distance=max_distance,
        )
    assert len(result.hits) == min(expected, 1000)


async def test_a_rare_filter_returns_every_match_via_the_exact_fallback(pool, institution):
    collection = await new_collection(pool, institution)
    data = np.random.default_rng(5).standard_normal((12_000, DIMS)).astype(np.float32)
    tags = ['{"rare": true}' if i % 4000 == 0 else "{}" for i in range(len(data))]
    await fill(pool, collection, data, institution, tags)
    async with pool.acquire() as conn:
        await build_and_adopt(conn, collection.id)
    collection = await refreshed(pool, institution, collection)
    async with pool.acquire() as conn:
        result = await vector_search.search(conn, collection, data[0], 10, metadata_filter={"rare": True})
    assert sorted(hit["id"] for hit in result.hits) == ["v000000", "v004000", "v008000"]
    assert result.strategy == "hnsw+exact"


async def test_search_settings_do_not_outlive_the_search_on_that_connection(pool, indexed):
    _, collection, data = indexed
    async with pool.acquire() as conn:
        result = await vector_search.search(
            conn, collection, data[4], 500, ef_search=700, metadata_filter={"group": "a"}
        )
        assert result.strategy == "hnsw"
        assert await conn.fetchval("SHOW hnsw.ef_search") == "40"
        assert await conn.fetchval("SHOW hnsw.iterative_scan") == "off"
        assert await conn.fetchval("SHOW hnsw.max_scan_tuples") == "20000"
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"


async def test_a_collection_below_the_threshold_is_searched_exactly_even_with_an_index(pool, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.random.default_rng(2).standard_normal((50, DIMS)).astype(np.float32), institution)
    async with pool.acquire() as conn:
        await build_and_adopt(conn, collection.id)
    collection = await refreshed(pool, institution, collection)
    assert collection.index_valid is True and not hnsw.uses_index(collection) and not hnsw.wants_index(collection)
    async with pool.acquire() as conn:
        assert (await vector_search.search(conn, collection, np.ones(DIMS, np.float32), 5)).strategy == "exact"
