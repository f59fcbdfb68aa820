"""/api/v1/collections/{name}/vectors and /search: bulk upsert, get and delete vectors, and similarity search.

Everything is scoped by the caller's institution through the collection's look-up (collections.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from pgvector import Vector
from starlette.requests import Request
from starlette.responses import Response

from api.audited_write import audited_write
from api.body import check_json_request, parse_json
from api.caller import caller_of
from api.endpoint import Endpoint, answer, json_body
from api.problems import Problem
from api.routes.collections import borrow, find, index_maintainer, not_found
from api.schemas.collections import (
    Items,
    SearchRequest,
    SearchResult,
    StoredVector,
    UpsertRequest,
    UpsertResult,
    is_vector_id,
    parse_items,
    parse_search,
)
from db import hnsw, vector_search
from db import vectors as db_vectors
from db.collections import Collection


def _items_for_database(body: bytes, dimensions: int, metric: str) -> tuple[Items, list[Vector]]:
    """Runs in a worker thread: parse, validate, and wrap rows for pgvector's binary codec."""
    items = parse_items(parse_json(body), dimensions, metric)
    return items, [Vector(row) for row in items.vectors]


async def upsert_vectors(request: Request) -> Response:
    caller = caller_of(request)
    check_json_request(request.headers)
    async with borrow(request) as conn:
        collection = await find(request, conn, request.path_params["name"])
    body = await request.body()
    items, vectors = await asyncio.to_thread(_items_for_database, body, collection.dimensions, collection.metric)
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        result = await db_vectors.upsert(
            conn, collection.id, caller.institution_id, items.ids, vectors, items.metadata_json
        )
        if result is None:  # deleted between the look-up and the write: nothing was written
            raise not_found(collection.name)
        response = answer(
            UpsertResult,
            {
                "collection": collection.name,
                "upserted": result.written,
                "inserted": result.inserted,
                "updated": result.written - result.inserted,
                "vector_count": result.vector_count,
            },
        )
        audit.answer_with(response)
    return response


def path_vector_id(request: Request, collection: Collection) -> str:
    """The {vector_id} of the path; one no upsert could have stored (e.g. %00) is simply not there."""
    vector_id = request.path_params["vector_id"]
    if not is_vector_id(vector_id):
        raise Problem(404, f"no vector with id {vector_id!r} in collection {collection.name!r}")
    return vector_id


async def get_vector(request: Request) -> Response:
    caller_of(request)
    async with borrow(request) as conn:
        collection = await find(request, conn, request.path_params["name"])
        vector_id = path_vector_id(request, collection)
        row = await db_vectors.get(conn, collection.id, vector_id)
    if row is None:
        raise Problem(404, f"no vector with id {vector_id!r} in collection {collection.name!r}")
    return answer(
        StoredVector,
        {
            "id": row["id"],
            "vector": row["embedding"].to_list(),
            "metadata": row["metadata"],
            "updated_at": row["updated_at"],
        },
    )


async def delete_vector(request: Request) -> Response:
    caller = caller_of(request)
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        collection = await find(request, conn, request.path_params["name"])
        vector_id = path_vector_id(request, collection)
        deleted = await db_vectors.delete(conn, collection.id, caller.institution_id, vector_id)
        if deleted is None:
            raise not_found(collection.name)
        if not deleted:
            raise Problem(404, f"no vector with id {vector_id!r} in collection {collection.name!r}")
        audit.answer_with(response := Response(status_code=204))
    return response


async def run_search(request: Request, conn: asyncpg.Connection, collection: Collection, **query) -> dict[str, Any]:
    """Search and, when the collection has outgrown exact search, ask for its index in the background."""
    started = time.perf_counter()
    result = await vector_search.search(conn, collection, **query)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if hnsw.wants_index(collection):
        index_maintainer(request).want_index(collection.id)
    return {
        "hits": result.hits,
        "collection": collection.name,
        "metric": collection.metric,
        "search_ms": round(elapsed_ms, 3),
        "strategy": result.strategy,
    }


async def search(request: Request) -> Response:
    caller_of(request)
    body = await json_body(request)
    async with borrow(request) as conn:
        collection = await find(request, conn, request.path_params["name"])
        query = parse_search(body, collection.dimensions, collection.metric)
        result = await run_search(
            request,
            conn,
            collection,
            query=query.vector,
            top_k=query.top_k,
            metadata_filter=query.metadata_filter,
            max_distance=query.max_distance,
            ef_search=query.ef_search,
        )
    return answer(SearchResult, result)


endpoints = [
    Endpoint(
        "POST",
        "/api/v1/collections/{name}/vectors",
        upsert_vectors,
        "Insert or overwrite vectors, all or nothing",
        "collections",
        UpsertResult,
        body=UpsertRequest,
    ),
    Endpoint(
        "POST",
        "/api/v1/collections/{name}/search",
        search,
        "Nearest vectors to a query",
        "collections",
        SearchResult,
        body=SearchRequest,
    ),
    Endpoint(
        "GET",
        "/api/v1/collections/{name}/vectors/{vector_id}",
        get_vector,
        "One stored vector",
        "collections",
        StoredVector,
        path_params_with_slash=("vector_id",),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/collections/{name}/vectors/{vector_id}",
        delete_vector,
        "Delete one vector",
        "collections",
        None,
        status=204,
        path_params_with_slash=("vector_id",),
    ),
]
