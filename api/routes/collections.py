"""/api/v1/collections: create, list, show and delete collections (their vectors: vectors.py).

Everything is scoped by the caller's institution: another institution's collection is simply
not found (404), whatever its name.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api.audited_write import audited_write
from api.caller import caller_of
from api.endpoint import Endpoint, answer, json_body
from api.problems import Problem
from api.schemas.collections import (
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    is_collection_name,
    parse_collection_spec,
)
from db import collections as db_collections
from db import hnsw
from db.collections import Collection
from db.pool import lend
from workers.index_maintainer import IndexMaintainer


def index_maintainer(request: Request) -> IndexMaintainer:
    """The process's one IndexMaintainer, owned by the lifespan (which closes it at shutdown)."""
    return request.state.index_maintainer


def borrow(request: Request):
    return lend(request.state.pool, request.state.settings.acquire_timeout)


def not_found(name: str) -> Problem:
    return Problem(404, f"no collection named {name!r}")


def collection_json(collection: Collection, maintainer: IndexMaintainer) -> dict[str, Any]:
    if maintainer.is_building(collection.id):
        index = "rebuilding" if collection.index_valid else "building"
    else:
        index = "ready" if collection.index_valid else "none"
    return {
        "name": collection.name,
        "dimensions": collection.dimensions,
        "metric": collection.metric,
        "vector_count": collection.vector_count,
        "index": index,
        "search": "hnsw" if hnsw.uses_index(collection) else "exact",
        "index_recall_at_10": None if collection.index_recall is None else round(collection.index_recall, 3),
        "index_ef_search": collection.index_ef_search,
        "created_at": collection.created_at,
        "updated_at": collection.updated_at,
    }


async def find(request: Request, conn: asyncpg.Connection, name: str) -> Collection:
    """The caller's collection called `name`, or 404."""
    if not is_collection_name(name):
        raise not_found(name)
    collection = await db_collections.get(conn, caller_of(request).institution_id, name)
    if collection is None:
        raise not_found(name)
    return collection


async def create_collection(request: Request) -> Response:
    caller = caller_of(request)
    spec = parse_collection_spec(await json_body(request))
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        try:
            collection = await db_collections.create(
                conn, caller.institution_id, spec.name, spec.dimensions, spec.metric
            )
        except asyncpg.UniqueViolationError:
            raise Problem(409, f"a collection named {spec.name!r} already exists") from None
        response = answer(
            CollectionInfo,
            collection_json(collection, index_maintainer(request)),
            status=201,
            headers={"Location": f"/api/v1/collections/{collection.name}"},
        )
        audit.answer_with(response)
    return response


async def list_collections(request: Request) -> Response:
    caller = caller_of(request)
    async with borrow(request) as conn:
        found = await db_collections.list_for(conn, caller.institution_id)
    maintainer = index_maintainer(request)
    return answer(CollectionList, {"collections": [collection_json(c, maintainer) for c in found]})


async def get_collection(request: Request) -> Response:
    caller_of(request)
    async with borrow(request) as conn:
        collection = await find(request, conn, request.path_params["name"])
    return answer(CollectionInfo, collection_json(collection, index_maintainer(request)))


async def delete_collection(request: Request) -> Response:
    caller = caller_of(request)
    name = request.path_params["name"]
    if not is_collection_name(name):
        raise not_found(name)
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        collection_id = await db_collections.delete(conn, caller.institution_id, name)
        if collection_id is None:
            raise not_found(name)
        audit.answer_with(response := Response(status_code=204))
    index_maintainer(request).forget(collection_id)
    return response


endpoints = [
    Endpoint(
        "POST",
        "/api/v1/collections",
        create_collection,
        "Create a collection",
        "collections",
        CollectionInfo,
        status=201,
        body=CollectionCreate,
        errors=(409,),
        headers=("Location",),
    ),
    Endpoint("GET", "/api/v1/collections", list_collections, "List your collections", "collections", CollectionList),
    Endpoint(
        "GET", "/api/v1/collections/{name}", get_collection, "A collection and its index", "collections", CollectionInfo
    ),
    Endpoint(
        "DELETE",
        "/api/v1/collections/{name}",
        delete_collection,
        "Delete a collection and its vectors",
        "collections",
        None,
        status=204,
    ),
]
