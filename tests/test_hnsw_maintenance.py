"""HNSW index upkeep on the real PostgreSQL: stale indexes, the exact tail, rebuilds, the maintainer."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest
from pgvector import Vector

from db import collections, hnsw, sql, vector_search, vectors
from tests.test_collections_db import DIMS, fill, new_collection
from workers import index_maintainer
from workers.index_maintainer import IndexMaintainer, build_and_adopt


async def index_state(conn, collection_id: int) -> bool | None:
    """The collection's current index: None (none), False (invalid) or True (in use)."""
    return await conn.fetchval(
        "SELECT i.indisvalid FROM collections c JOIN pg_index i"
        " ON i.indexrelid = to_regclass(format('vectors_hnsw_%s_%s', c.id, c.index_seq)) WHERE c.id = $1",
        collection_id,
    )


async def index_names(conn, collection_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relname LIKE $1 ORDER BY relname", f"vectors\\_hnsw\\_{collection_id}\\_%"
    )
    return [row["relname"] for row in rows]


async def test_stale_indexes_are_dropped_replaced_deleted_and_interrupted(pool, institution):
    kept, replaced, deleted, broken = [await new_collection(pool, institution) for _ in range(4)]
    for collection in (kept, replaced, deleted, broken):
        await fill(pool, collection, np.ones((3, DIMS), np.float32), institution)
    async with pool.acquire() as conn:
        # A vector of the wrong dimension (only possible behind the API's back) makes the build fail
        # half-way, which leaves an invalid index exactly as an interrupted build would.
        await conn.execute(
            "INSERT INTO vectors (collection_id, id, embedding) VALUES ($1, 'odd', $2)",
            broken.id,
            Vector([1.0] * (DIMS + 1)),
        )
        for collection in (kept, replaced, deleted):
            await build_and_adopt(conn, collection.id)
        first = await index_names(conn, replaced.id)
        await vectors.upsert(conn, replaced.id, institution.id, ["more"], [Vector([2.0] * DIMS)], ["{}"])
        await build_and_adopt(conn, replaced.id)
        with pytest.raises(asyncpg.DataError):
            await build_and_adopt(conn, broken.id)
        assert len(await index_names(conn, broken.id)) == 1 and await index_state(conn, broken.id) is None
        await collections.delete(conn, institution.id, deleted.name)
        dropped = {collection_id for collection_id, _ in await hnsw.drop_stale(conn)}
        assert {replaced.id, deleted.id, broken.id} <= dropped and kept.id not in dropped
        assert [len(await index_names(conn, c.id)) for c in (kept, replaced, deleted, broken)] == [1, 1, 0, 0]
        assert await index_names(conn, replaced.id) != first
        assert await index_state(conn, replaced.id) is True


async def test_rows_written_after_the_build_are_found_through_the_exact_tail(pool, institution):
    collection = await new_collection(pool, institution)
    data = np.random.default_rng(8).standard_normal((10_000, DIMS)).astype(np.float32)
    await fill(pool, collection, data, institution)
    async with pool.acquire() as conn:
        await build_and_adopt(conn, collection.id)
        target = np.full(DIMS, 9.0, np.float32)
        # A new row, and an indexed row overwritten: both now live only in the tail.
        await vectors.upsert(
            conn,
            collection.id,
            institution.id,
            ["new", "v000007"],
            [Vector(target), Vector(target + 0.01)],
            ['{"t": 1}', '{"t": 2}'],
        )
        collection = await collections.get(conn, institution.id, collection.name)
        assert collection.writes_since_index == 2 and hnsw.uses_index(collection) and not hnsw.wants_index(collection)
        result = await vector_search.search(conn, collection, target, 5)
    assert result.strategy == "hnsw"
    assert [hit["id"] for hit in result.hits[:2]] == ["new", "v000007"]
    assert [hit["metadata"] for hit in result.hits[:2]] == [{"t": 1}, {"t": 2}]
    assert len({hit["id"] for hit in result.hits}) == 5  # the overwritten row's old version is not returned


async def test_many_writes_after_the_build_ask_for_a_new_one(pool, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.ones((10_000, DIMS), np.float32), institution)
    async with pool.acquire() as conn:
        await build_and_adopt(conn, collection.id)
        assert not hnsw.wants_index(await collections.get(conn, institution.id, collection.name))
        await fill(pool, collection, np.ones((10_001, DIMS), np.float32) * 2, institution)  # overwrites them all
        assert hnsw.wants_index(await collections.get(conn, institution.id, collection.name))


async def test_the_maintainer_builds_wanted_indexes_and_drops_forgotten_ones(pool, settings, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.ones((10_000, DIMS), np.float32), institution)
    maintainer = IndexMaintainer(pool, settings.acquire_timeout)
    maintainer.want_index(collection.id)
    assert maintainer.is_building(collection.id)
    await idle()
    async with pool.acquire() as conn:
        assert await index_state(conn, collection.id) is True
        await collections.delete(conn, institution.id, collection.name)
    maintainer.forget(collection.id)
    await idle()
    async with pool.acquire() as conn:
        assert await index_names(conn, collection.id) == []
    assert maintainer.failures == 0


async def test_the_maintainer_skips_collections_that_do_not_need_an_index(pool, settings, institution):
    small = await new_collection(pool, institution)
    await fill(pool, small, np.ones((3, DIMS), np.float32), institution)
    maintainer = IndexMaintainer(pool, settings.acquire_timeout)
    maintainer.want_index(small.id)
    await idle()
    async with pool.acquire() as conn:
        assert await index_names(conn, small.id) == []


async def test_the_maintainer_steps_aside_while_another_session_holds_the_lock(pool, settings, institution):
    collection = await new_collection(pool, institution)
    await fill(pool, collection, np.ones((10_000, DIMS), np.float32), institution)
    maintainer = IndexMaintainer(pool, settings.acquire_timeout)
    async with pool.acquire() as holder:
        assert await sql.fetchval(holder, index_maintainer.TRY_LOCK, index_maintainer.MAINTENANCE_LOCK_KEY)
        try:
            maintainer.want_index(collection.id)
            await idle()
        finally:
            await sql.fetchval(holder, index_maintainer.RELEASE_LOCK, index_maintainer.MAINTENANCE_LOCK_KEY)
        assert await index_names(holder, collection.id) == []
    maintainer.want_index(collection.id)  # within RETRY_SECONDS: not retried yet
    assert not maintainer.is_building(collection.id)


async def idle() -> None:
    """Wait until the index maintainers have no work running (their task exists only while they do)."""
    while tasks := [t for t in asyncio.all_tasks() if t.get_name() == index_maintainer.TASK_NAME and not t.done()]:
        await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
