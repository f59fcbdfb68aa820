"""Validation of collection and vector requests: pure functions that return clean values or raise
InvalidInput with a JSON pointer to the first offending field. No IO.

Speed matters: an upsert carries up to 10,000 × 2,000 numbers. Element types are checked in one
C-level pass and the numbers converted by NumPy in one call; Python loops run per item, not per
number, except to locate an error.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.validation import InvalidInput, int_in, pointer_escape, require_object

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RESERVED_PREFIX = "genomics."  # collections of genomics projects are named genomics.<project_id>
METRICS = ("cosine", "l2", "inner_product")
MAX_DIMENSIONS = 2000
MAX_ITEMS = 10_000
MAX_ID_LENGTH = 200
MAX_METADATA_BYTES = 65_536
MAX_FILTER_KEYS = 32
MAX_TOP_K = 1000
ITEM_KEYS = frozenset({"id", "vector", "metadata"})
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    dimensions: int
    metric: str


def parse_collection_spec(body: Any) -> CollectionSpec:
    require_object(body, "", allowed={"name", "dimensions", "metric"}, required={"name", "dimensions", "metric"})
    name = collection_name(body["name"], "/name")
    if name.startswith(RESERVED_PREFIX):
        raise InvalidInput("/name", f"names starting with {RESERVED_PREFIX!r} are reserved for genomics projects")
    dimensions = int_in(body["dimensions"], "/dimensions", 1, MAX_DIMENSIONS)
    metric = body["metric"]
    if not isinstance(metric, str) or metric not in METRICS:
        raise InvalidInput("/metric", f"must be one of {', '.join(METRICS)}")
    return CollectionSpec(name, dimensions, metric)


def collection_name(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(pointer, "must be 1-128 characters: letters, digits, '.', '_' or '-', "
                                    "starting with a letter or digit")
    return value


def is_collection_name(value: str) -> bool:
    return NAME_PATTERN.fullmatch(value) is not None


def is_vector_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def vector_id(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(pointer, "must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(pointer, f"must be at most {MAX_ID_LENGTH} characters")
    if not value.isprintable():  # control characters (NUL included) and lone surrogates
        raise InvalidInput(pointer, "must not contain control characters or unpaired surrogates")
    return value


@dataclass(frozen=True, eq=False)
class Items:
    ids: list[str]
    vectors: np.ndarray  # float32, items × dimensions
    metadata_json: list[str]


def parse_items(body: Any, dimensions: int, metric: str) -> Items:
    """The body of POST /collections/{name}/vectors, checked against the collection."""
    require_object(body, "", allowed={"items"}, required={"items"})
    items = body["items"]
    if not isinstance(items, list) or not items:
        raise InvalidInput("/items", "must be a non-empty list of {id, vector, metadata} objects")
    if len(items) > MAX_ITEMS:
        raise InvalidInput("/items", f"has {len(items)} items; at most {MAX_ITEMS} are allowed per request")
    ids: list[str] = []
    rows: list[list] = []
    metadata: list[str] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(items):
        # The common case is checked inline; anything unusual goes through the checks that name the field.
        if type(item) is not dict or not item.keys() <= ITEM_KEYS or "id" not in item or "vector" not in item:
            require_object(item, f"/items/{i}", allowed=ITEM_KEYS, required={"id", "vector"})
        item_id = item["id"]
        if type(item_id) is not str or not 0 < len(item_id) <= MAX_ID_LENGTH or not item_id.isprintable():
            vector_id(item_id, f"/items/{i}/id")
        if item_id in first_index:
            raise InvalidInput(f"/items/{i}/id", f"duplicate id {item_id!r} (also at /items/{first_index[item_id]}/id)")
        first_index[item_id] = i
        row = item["vector"]
        if type(row) is not list or len(row) != dimensions:
            raise InvalidInput(f"/items/{i}/vector", _dimension_problem(row, dimensions))
        ids.append(item_id)
        rows.append(row)
        metadata.append(metadata_json(item.get("metadata"), f"/items/{i}/metadata"))
    vectors = _float32_rows(rows, lambda r, c: f"/items/{r}/vector/{c}")
    if metric == "cosine":
        zero = np.flatnonzero(~vectors.any(axis=1))
        if zero.size:
            raise InvalidInput(f"/items/{int(zero[0])}/vector", "a zero vector has no cosine distance to anything")
    return Items(ids, vectors, metadata)


def query_vector(value: Any, pointer: str, dimensions: int, metric: str) -> np.ndarray:
    """One query vector: `dimensions` finite numbers (float32 range), not all zero for cosine."""
    if not isinstance(value, list) or len(value) != dimensions:
        raise InvalidInput(pointer, _dimension_problem(value, dimensions))
    vector = _float32_rows([value], lambda r, c: f"{pointer}/{c}")[0]
    if metric == "cosine" and not vector.any():
        raise InvalidInput(pointer, "a zero vector has no cosine distance to anything")
    return vector


def _dimension_problem(value: Any, dimensions: int) -> str:
    if not isinstance(value, list):
        return f"must be a list of {dimensions} numbers"
    return f"wrong dimension: the collection has {dimensions} dimensions, this vector has {len(value)}"


def _float32_rows(rows: list[list], pointer_of) -> np.ndarray:
    """Equal-length rows of JSON numbers as float32; the first bad element is named."""
    types: set[type] = set()
    for row in rows:
        types.update(map(type, row))
    values = None
    if types <= {float, int}:
        try:
            values = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            values = None
    if values is None:
        _raise_first_bad(rows, pointer_of)
    bad = ~(np.abs(values) <= FLOAT32_MAX)  # also catches NaN, which compares false
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise InvalidInput(pointer_of(r, c), _number_problem(rows[r][c]) or "is out of range")
    return values.astype(np.float32)


def _raise_first_bad(rows: list[list], pointer_of) -> None:
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            problem = _number_problem(value)
            if problem:
                raise InvalidInput(pointer_of(r, c), problem)
    raise AssertionError("a row held an unexpected type but no element was found at fault")  # pragma: no cover


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, not {_json_kind(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "is too large (vectors hold 32-bit floats)"
    if not math.isfinite(number):
        return "must be a finite number (NaN and Infinity are not allowed)"
    if abs(number) > FLOAT32_MAX:
        return f"is outside the 32-bit float range (±{FLOAT32_MAX:.4g})"
    return None


def _json_kind(value: Any) -> str:
    kinds = {type(None): "null", bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


def metadata_json(value: Any, pointer: str) -> str:
    """An object (missing/null means {}) that jsonb can store, serialised for the database."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise InvalidInput(pointer, "must be a JSON object")
    # Fast path: serialising already refuses NaN/Infinity; NUL shows up escaped and a lone surrogate
    # fails to encode. Only then walk the value to name the field (the walk has the last word: a
    # string holding a backslash and "u0000" is not a NUL).
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        check_storable(value, pointer)
        raise AssertionError("metadata failed to serialise but no field was found at fault") from None  # pragma: no cover
    if "\\u0000" in text:
        check_storable(value, pointer)
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(pointer, f"is larger than {MAX_METADATA_BYTES} bytes as JSON")
    return text


def check_storable(value: Any, pointer: str) -> None:
    """Raise at the first value jsonb would refuse: NaN/Infinity, NUL characters, unpaired surrogates."""
    if isinstance(value, str):
        _check_text(value, pointer)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(pointer, "must be a finite number (NaN and Infinity are not allowed)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{pointer}/{pointer_escape(key)}")
            check_storable(item, f"{pointer}/{pointer_escape(key)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_storable(item, f"{pointer}/{i}")


def _check_text(value: str, pointer: str) -> None:
    if "\x00" in value:
        raise InvalidInput(pointer, "must not contain NUL (\\u0000) characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(pointer, "must not contain unpaired surrogates") from None


@dataclass(frozen=True, eq=False)
class SearchRequest:
    vector: np.ndarray
    top_k: int
    max_distance: float | None
    metadata_filter: dict | None
    ef_search: int | None


def parse_search(body: Any, dimensions: int, metric: str) -> SearchRequest:
    """The body of POST /collections/{name}/search, checked against the collection."""
    require_object(body, "", allowed={"vector", "top_k", "max_distance", "filter", "ef_search"},
                   required={"vector", "top_k"})
    return SearchRequest(
        vector=query_vector(body["vector"], "/vector", dimensions, metric),
        top_k=top_k(body["top_k"], "/top_k"),
        max_distance=optional_distance(body.get("max_distance"), "/max_distance"),
        metadata_filter=metadata_filter(body.get("filter"), "/filter"),
        ef_search=None if body.get("ef_search") is None else int_in(body["ef_search"], "/ef_search", 1, 1000),
    )


def top_k(value: Any, pointer: str) -> int:
    return int_in(value, pointer, 1, MAX_TOP_K)


def optional_distance(value: Any, pointer: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(pointer, "must be a finite number")
    return float(value)


def metadata_filter(value: Any, pointer: str) -> dict | None:
    """Equality on top-level metadata keys: an object of scalars (string, number, boolean, null)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(pointer, "must be an object of metadata keys and the values they must equal")
    if len(value) > MAX_FILTER_KEYS:
        raise InvalidInput(pointer, f"has {len(value)} keys; at most {MAX_FILTER_KEYS} are allowed")
    check_storable(value, pointer)
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise InvalidInput(f"{pointer}/{pointer_escape(key)}", "must be a string, number, boolean or null")
    return value or None
