"""HNSW indexes per collection: the SQL templates (sql/templates/), their rendering, the rules for
when a collection wants or uses one, and the DDL (CREATE/DROP INDEX CONCURRENTLY). The background
work that runs the DDL is workers/index_maintainer.py.

Why templates: all collections share one `vectors` table whose `embedding` column has no fixed
dimension, so a collection's index is a partial expression index,
`USING hnsw ((embedding::vector(n)) <opclass>) WHERE collection_id = <id> AND seq <= <seq>`.
PostgreSQL takes no parameters in DDL, and the planner uses such an index only when a query
repeats the expression (with its literal `n`) and a predicate it can prove from the index's
(the literal id and seq). So those integers, and nothing else, are written into statement text
by `render`.

Why `seq <= <seq>`: inserting into an HNSW graph costs about a millisecond per row, which would
cut bulk ingest into an indexed collection a hundredfold. Rows written after a build get a
higher seq, stay out of the index, and are searched exactly (the "tail") until a later build
covers them; the build after enough writes is asked for by searches, like the first.
"""

from __future__ import annotations

import dataclasses

import asyncpg

from db import sql
from db.collections import Collection

TEMPLATES = sql.load_all(sql.SQL_DIR / "templates")
METRICS = ("cosine", "l2", "inner_product")
SEARCH_HNSW = {metric: TEMPLATES[f"search_hnsw_{metric}"] for metric in METRICS}
CREATE_HNSW_INDEX = {metric: TEMPLATES[f"create_hnsw_index_{metric}"] for metric in METRICS}
DROP_HNSW_INDEX = TEMPLATES["drop_hnsw_index"]
STALE_HNSW_INDEXES = sql.statement("stale_hnsw_indexes")
BEGIN_INDEX_BUILD = sql.statement("begin_index_build")
FINISH_INDEX_BUILD = sql.statement("finish_index_build")
SET_BUILD_MEMORY = sql.statement("set_index_build_memory")
ANALYZE_VECTORS = sql.statement("analyze_vectors")

BUILD_MEMORY = "256MB"  # maintenance_work_mem for a build: 100k × 128-d builds in memory
BUILD_TIMEOUT = 3600.0  # seconds; an HNSW build on a large collection takes minutes, not hours
ANN_MIN_VECTORS = 10_000  # below this an exact scan is about as fast as the index (bench/vectors.py)
REBUILD_FRACTION = 5  # rebuild once the rows written since the build exceed 1/5 of the collection


def render(template: sql.Statement, **integers: int) -> sql.Statement:
    """The one place values are written into SQL text (see the module docstring for why).

    Only Python ints ≥ 0 pass (bool excluded), so no client string can ever reach the text, and
    every {placeholder} must be filled."""
    text = template.text
    for key, value in integers.items():
        if type(value) is not int or value < 0:
            raise TypeError(f"{key} must be a non-negative int, not {value!r}")
        text = text.replace("{" + key + "}", str(value))
    for placeholder in ("{collection_id}", "{dimensions}", "{seq}"):
        if placeholder in text:
            raise TypeError(f"sql/templates/{template.name}.sql needs {placeholder} to render")
    return dataclasses.replace(template, text=text)


def uses_index(collection: Collection) -> bool:
    """Searched through its HNSW index (and the exact tail) rather than exactly: large, with a valid
    index whose calibration reached the recall target."""
    return (
        collection.index_valid is True
        and collection.index_ef_search is not None
        and collection.vector_count >= ANN_MIN_VECTORS
    )


def wants_index(collection: Collection) -> bool:
    """Large, and without a usable index or with a tail grown past a fifth of the collection."""
    if collection.vector_count < ANN_MIN_VECTORS:
        return False
    if collection.index_valid is not True:
        return True
    return collection.writes_since_index > max(ANN_MIN_VECTORS, collection.vector_count // REBUILD_FRACTION)


def search_statement(collection: Collection) -> sql.Statement:
    return render(
        SEARCH_HNSW[collection.metric],
        collection_id=collection.id,
        dimensions=collection.dimensions,
        seq=collection.index_seq,
    )


async def build(conn: asyncpg.Connection, collection_id: int) -> int | None:
    """CREATE INDEX CONCURRENTLY (outside any transaction) over the collection's rows written so
    far; returns its seq, or None if the collection is gone or empty. Searches use it only after
    `adopt`. The caller holds the maintenance lock."""
    row = await sql.fetchrow(conn, BEGIN_INDEX_BUILD, collection_id)
    if row is None or row["seq"] is None:
        return None
    await sql.fetchval(conn, SET_BUILD_MEMORY, BUILD_MEMORY)
    statement = render(
        CREATE_HNSW_INDEX[row["metric"]], collection_id=collection_id, dimensions=row["dimensions"], seq=row["seq"]
    )
    await sql.execute(conn, statement, timeout=BUILD_TIMEOUT)
    await sql.execute(conn, ANALYZE_VECTORS, timeout=BUILD_TIMEOUT)
    return row["seq"]


async def adopt(
    conn: asyncpg.Connection, collection_id: int, seq: int, ef_search: int | None, recall: float | None
) -> None:
    """Make the index built up to `seq` the collection's; the one it replaces is then stale (drop_stale)."""
    await sql.execute(conn, FINISH_INDEX_BUILD, collection_id, seq, ef_search, recall)


async def drop_stale(conn: asyncpg.Connection) -> list[tuple[int, int]]:
    """Drop replaced indexes, those of deleted collections and invalid leftovers of interrupted
    builds; returns their (collection id, seq)."""
    stale = [(row["collection_id"], row["seq"]) for row in await sql.fetch(conn, STALE_HNSW_INDEXES)]
    for collection_id, seq in stale:
        await sql.execute(conn, render(DROP_HNSW_INDEX, collection_id=collection_id, seq=seq), timeout=BUILD_TIMEOUT)
    return stale
