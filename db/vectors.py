"""Vectors of a collection: the bulk upsert (one statement per request), fetch one, delete one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from pgvector import Vector

from db import collections, sql

UPSERT_VECTORS = sql.statement("upsert_vectors")
GET_VECTOR = sql.statement("get_vector")
DELETE_VECTOR = sql.statement("delete_vector")


@dataclass(frozen=True)
class Upserted:
    written: int  # ids in the request
    inserted: int  # of which new to the collection
    vector_count: int  # the collection's size afterwards


async def upsert_locked(
    conn: asyncpg.Connection,
    collection_id: int,
    ids: Sequence[str],
    vectors: Sequence[Vector],
    metadata_json: Sequence[str],
) -> Upserted:
    """Inside a transaction that holds the collection's lock: upsert the parallel lists in one statement.

    Metadata goes as JSON text and is cast to jsonb in SQL (the pool's jsonb codec is text-only,
    and arrays of text are what the statement takes)."""
    row = await sql.fetchrow(conn, UPSERT_VECTORS, collection_id, list(ids), list(vectors), list(metadata_json))
    return Upserted(written=row["written"], inserted=row["inserted"], vector_count=row["vector_count"])


async def upsert(
    conn: asyncpg.Connection,
    collection_id: int,
    institution_id: int,
    ids: Sequence[str],
    vectors: Sequence[Vector],
    metadata_json: Sequence[str],
) -> Upserted | None:
    """All or nothing in one transaction; None if the collection no longer exists (nothing written)."""
    async with conn.transaction():
        if not await collections.lock(conn, collection_id, institution_id):
            return None
        return await upsert_locked(conn, collection_id, ids, vectors, metadata_json)


async def get(conn: asyncpg.Connection, collection_id: int, vector_id: str) -> asyncpg.Record | None:
    return await sql.fetchrow(conn, GET_VECTOR, collection_id, vector_id)


async def delete(conn: asyncpg.Connection, collection_id: int, institution_id: int, vector_id: str) -> bool | None:
    """True if the vector was deleted, False if it did not exist, None if the collection is gone."""
    async with conn.transaction():
        if not await collections.lock(conn, collection_id, institution_id):
            return None
        return await sql.fetchval(conn, DELETE_VECTOR, collection_id, vector_id) == 1
