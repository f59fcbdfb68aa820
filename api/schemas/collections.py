"""Collections, vectors and search: request and response models, and the checks that need the collection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import Field, SkipValidation

from api.body import validated
from api.problems import InvalidInput
from api.schemas.arrays import float32_rows
from api.schemas.common import (
    GENOMICS_PREFIX,
    MAX_DIMENSIONS,
    MAX_ID_LENGTH,
    NAME_PATTERN,
    Answer,
    Body,
    CollectionName,
    Metadata,
    MetadataFilter,
    Metric,
    TopK,
    VectorId,
    Whole,
    checked_filter,
    metadata_json,
)
from core.vector_bounds import first_incomparable

MAX_ITEMS = 10_000
Vector = SkipValidation[list[float]]  # checked by the NumPy fast path (api/schemas/arrays.py)
_NAME = re.compile(NAME_PATTERN)


class CollectionCreate(Body):
    name: CollectionName
    dimensions: Whole = Field(ge=1, le=MAX_DIMENSIONS, description="Length of every vector (1-2000)")
    metric: Metric


class VectorItem(Body):
    id: VectorId
    vector: Vector = Field(description="`dimensions` finite numbers within the 32-bit float range")
    metadata: Metadata | None = Field(None, description="Kept with the vector and returned with hits")


class UpsertRequest(Body):
    items: list[VectorItem] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description=("1-10,000 vectors, written all or nothing; an id already stored is overwritten"),
    )


class SearchRequest(Body):
    vector: Vector = Field(description="The query: `dimensions` finite numbers")
    top_k: TopK
    max_distance: float | None = Field(None, description="Drop hits farther than this")
    filter: MetadataFilter | None = Field(
        None,
        description=("Equality on top-level metadata keys: keeps hits whose metadata has every key with that value"),
    )
    ef_search: Whole | None = Field(None, ge=1, le=1000, description="HNSW search breadth (default: calibrated)")


class CollectionInfo(Answer):
    name: str = Field(description="The collection's name")
    dimensions: int = Field(description="Length of its vectors")
    metric: Metric
    vector_count: int = Field(description="Vectors stored")
    index: Literal["none", "building", "ready", "rebuilding"] = Field(description="State of its HNSW index")
    search: Literal["exact", "hnsw"] = Field(description="How searches run now")
    index_recall_at_10: float | None = Field(description="Recall@10 the index reached when calibrated")
    index_ef_search: int | None = Field(description="The calibrated hnsw.ef_search")
    created_at: datetime = Field(description="When it was created (UTC)")
    updated_at: datetime = Field(description="When it last changed (UTC)")


class CollectionList(Answer):
    collections: list[CollectionInfo] = Field(description="The caller's collections, by name")


class UpsertResult(Answer):
    collection: str = Field(description="The collection written to")
    upserted: int = Field(description="Items written")
    inserted: int = Field(description="Of which new ids")
    updated: int = Field(description="Of which overwritten ids")
    vector_count: int = Field(description="Vectors in the collection now")


class StoredVector(Answer):
    id: str = Field(description="The vector's id")
    vector: list[float] = Field(description="Its elements, as stored (32-bit floats)")
    metadata: dict[str, Any] = Field(description="Its metadata ({} when none was given)")
    updated_at: datetime = Field(description="When it was last written (UTC)")


class Hit(Answer):
    id: str = Field(description="The vector's id")
    distance: float = Field(description="Smaller is nearer; for inner_product it is the negative dot product")
    metadata: dict[str, Any] = Field(description="The vector's metadata")


class SearchResult(Answer):
    hits: list[Hit] = Field(description="Nearest first, ties by id")
    collection: str = Field(description="The collection searched")
    metric: Metric
    search_ms: float = Field(description="Time spent searching, in milliseconds")
    strategy: Literal["exact", "hnsw", "hnsw+exact"] = Field(description="How the search ran")


def is_collection_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def is_vector_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def parse_collection_spec(body: Any) -> CollectionCreate:
    spec = validated(CollectionCreate, body)
    if spec.name.startswith(GENOMICS_PREFIX):
        raise InvalidInput("/name", f"names starting with {GENOMICS_PREFIX!r} are reserved for genomics projects")
    return spec


@dataclass(frozen=True, eq=False)
class Items:
    ids: list[str]
    vectors: np.ndarray  # float32, items × dimensions
    metadata_json: list[str]


def parse_items(body: Any, dimensions: int, metric: str) -> Items:
    """The body of POST /collections/{name}/vectors, checked against the collection."""
    request = validated(UpsertRequest, body)
    first_index: dict[str, int] = {}
    rows, metadata = [], []
    for i, item in enumerate(request.items):
        if item.id in first_index:
            raise InvalidInput(f"/items/{i}/id", f"duplicate id {item.id!r} (also at /items/{first_index[item.id]}/id)")
        first_index[item.id] = i
        if type(item.vector) is not list or len(item.vector) != dimensions:
            raise InvalidInput(f"/items/{i}/vector", dimension_problem(item.vector, dimensions))
        rows.append(item.vector)
        metadata.append(metadata_json(item.metadata, f"/items/{i}/metadata"))
    vectors = float32_rows(rows, lambda r, c: f"/items/{r}/vector/{c}")
    check_comparable(vectors, metric, lambda r: f"/items/{r}/vector")
    return Items(list(first_index), vectors, metadata)


def query_vector(value: Any, pointer: str, dimensions: int, metric: str) -> np.ndarray:
    """One query vector: `dimensions` numbers that pgvector can compare (core/vector_bounds.py)."""
    if type(value) is not list or len(value) != dimensions:
        raise InvalidInput(pointer, dimension_problem(value, dimensions))
    vectors = float32_rows([value], lambda r, c: f"{pointer}/{c}")
    check_comparable(vectors, metric, lambda r: pointer)
    return vectors[0]


def check_comparable(vectors: np.ndarray, metric: str, pointer_of) -> None:
    """Raise at the first vector whose distances pgvector cannot compute (an element too large, or
    for cosine a vector too close to zero); `pointer_of(row)` names the vector."""
    problem = first_incomparable(vectors, metric)
    if problem is not None:
        row, column, message = problem
        raise InvalidInput(pointer_of(row) if column is None else f"{pointer_of(row)}/{column}", message)


def dimension_problem(value: Any, dimensions: int) -> str:
    if not isinstance(value, list):
        return f"must be a list of {dimensions} numbers"
    return f"wrong dimension: the collection has {dimensions} dimensions, this vector has {len(value)}"


@dataclass(frozen=True, eq=False)
class SearchQuery:
    vector: np.ndarray
    top_k: int
    max_distance: float | None
    metadata_filter: dict | None
    ef_search: int | None


def parse_search(body: Any, dimensions: int, metric: str) -> SearchQuery:
    """The body of POST /collections/{name}/search, checked against the collection."""
    request = validated(SearchRequest, body)
    return SearchQuery(
        query_vector(request.vector, "/vector", dimensions, metric),
        request.top_k,
        request.max_distance,
        checked_filter(request.filter, "/filter"),
        request.ef_search,
    )
