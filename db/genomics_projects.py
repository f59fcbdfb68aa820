"""Genomics projects: the stored projection basis and the collection holding the project's vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pgvector import Vector

from db import collections, sql, vectors

LOCK_GENOMICS_PROJECT = sql.statement("lock_genomics_project")
GET_GENOMICS_PROJECT = sql.statement("get_genomics_project")
GET_GENOMICS_BASIS = sql.statement("get_genomics_basis")
INSERT_GENOMICS_PROJECT = sql.statement("insert_genomics_project")
UPSERT_SLICE = 10_000  # vectors per upsert statement of a build
PROJECT_METRIC = "cosine"  # marker queries give a direction from the mean cell, not a position


COLLECTION_PREFIX = "genomics."  # the one home of the prefix; api/schemas reserves it for projects


def collection_name(project_id: str) -> str:
    """A project's collection; the API refuses this prefix for ordinary collections."""
    return f"{COLLECTION_PREFIX}{project_id}"


@dataclass(frozen=True)
class Build:
    """What a build writes: the project's description, its basis (JSON text) and its vectors."""

    project_id: str
    mode: str
    dimensions: int
    gene_count: int
    cell_count: int
    basis_json: str
    stats: dict[str, Any]
    ids: Sequence[str]
    vectors: Sequence[Vector]
    metadata_json: Sequence[str]


@dataclass(frozen=True)
class Replaced:
    collection_id: int
    previous_collection_id: int | None  # its HNSW index (if any) is now stale
    vector_count: int


async def replace(conn: asyncpg.Connection, institution_id: int, build: Build) -> Replaced:
    """Atomically swap the project's previous build (collection, vectors, basis) for this one.

    The old collection is deleted (its vectors and the project row go with it by cascade) and a new
    one created, rather than emptied, because its dimensions may change and a collection's HNSW
    index is bound to its dimensions."""
    name = collection_name(build.project_id)
    async with conn.transaction():
        await sql.fetchval(conn, LOCK_GENOMICS_PROJECT, institution_id, build.project_id)
        previous = await sql.fetchrow(conn, GET_GENOMICS_PROJECT, institution_id, build.project_id)
        previous_collection_id = await collections.delete(conn, institution_id, name)
        collection = await collections.create(conn, institution_id, name, build.dimensions, PROJECT_METRIC)
        count = 0
        # In slices, so each statement stays well inside DB_COMMAND_TIMEOUT however many cells an upload has.
        for start in range(0, len(build.ids), UPSERT_SLICE):
            end = start + UPSERT_SLICE
            count = (
                await vectors.upsert_locked(
                    conn, collection.id, build.ids[start:end], build.vectors[start:end], build.metadata_json[start:end]
                )
            ).vector_count
        await sql.fetchrow(
            conn,
            INSERT_GENOMICS_PROJECT,
            institution_id,
            build.project_id,
            collection.id,
            build.mode,
            build.dimensions,
            build.gene_count,
            build.cell_count,
            count,
            build.basis_json,
            build.stats,
            None if previous is None else previous["created_at"],
        )
    return Replaced(collection.id, previous_collection_id, count)


async def get(conn: asyncpg.Connection, institution_id: int, project_id: str) -> asyncpg.Record | None:
    return await sql.fetchrow(conn, GET_GENOMICS_PROJECT, institution_id, project_id)


async def basis_json(conn: asyncpg.Connection, institution_id: int, project_id: str) -> str | None:
    return await sql.fetchval(conn, GET_GENOMICS_BASIS, institution_id, project_id)
