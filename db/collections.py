"""Collections: create, list, look up (with the state of their HNSW index), lock for writing, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db import sql

CREATE_COLLECTION = sql.statement("create_collection")
LIST_COLLECTIONS = sql.statement("list_collections")
GET_COLLECTION = sql.statement("get_collection")
GET_COLLECTION_BY_ID = sql.statement("get_collection_by_id")
LOCK_COLLECTION = sql.statement("lock_collection")
DELETE_COLLECTION = sql.statement("delete_collection")


# Slotted rather than frozen: every vector request builds one, and a frozen dataclass sets each of its
# twelve fields through object.__setattr__. Nothing assigns to a Collection once it is built.
@dataclass(slots=True)
class Collection:
    """One collection row. Its HNSW index (if any) covers rows up to write sequence `index_seq`;
    `index_valid` is None without one; `index_ef_search` is the ef_search its calibration chose
    (None: it misses the recall target, search exactly), `index_recall` the recall@10 measured;
    `writes_since_index` counts rows written since its build."""

    id: int
    name: str
    dimensions: int
    metric: str
    vector_count: int
    index_seq: int | None
    index_ef_search: int | None
    index_recall: float | None
    writes_since_index: int
    created_at: datetime
    updated_at: datetime
    index_valid: bool | None = None


def _collection(row: asyncpg.Record) -> Collection:
    return Collection(**row)  # a Record is a mapping: no intermediate dict


async def create(conn: asyncpg.Connection, institution_id: int, name: str, dimensions: int, metric: str) -> Collection:
    """Insert a collection; a taken name raises asyncpg.UniqueViolationError (409)."""
    return _collection(await sql.fetchrow(conn, CREATE_COLLECTION, institution_id, name, dimensions, metric))


async def list_for(conn: asyncpg.Connection, institution_id: int) -> list[Collection]:
    return [_collection(row) for row in await sql.fetch(conn, LIST_COLLECTIONS, institution_id)]


async def get(conn: asyncpg.Connection, institution_id: int, name: str) -> Collection | None:
    """The institution's collection called `name`, or None (also when another institution has one)."""
    row = await sql.fetchrow(conn, GET_COLLECTION, institution_id, name)
    return None if row is None else _collection(row)


async def get_by_id(conn: asyncpg.Connection, collection_id: int) -> Collection | None:
    """Any institution's collection by id: for background work, never for a request."""
    row = await sql.fetchrow(conn, GET_COLLECTION_BY_ID, collection_id)
    return None if row is None else _collection(row)


async def lock(conn: asyncpg.Connection, collection_id: int, institution_id: int) -> bool:
    """Inside a transaction: take the collection's row lock so writes to it take turns; False if it is gone."""
    return await sql.fetchrow(conn, LOCK_COLLECTION, collection_id, institution_id) is not None


async def delete(conn: asyncpg.Connection, institution_id: int, name: str) -> int | None:
    """Delete the collection and (by cascade) its vectors; returns its id, or None if there was none."""
    return await sql.fetchval(conn, DELETE_COLLECTION, institution_id, name)
