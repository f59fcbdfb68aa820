"""Shared rules of the contract: base models, names, ids, metadata and filters, each with one home."""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.body import HugeNumber, pointer_escape
from api.problems import InvalidInput
from db.genomics_projects import COLLECTION_PREFIX as GENOMICS_PREFIX  # noqa: F401 (one home: db)
from db.hnsw import METRICS  # the metrics the SQL files implement: one home, in db

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
MAX_DIMENSIONS = 2000  # pgvector's HNSW indexes vectors of at most 2,000 dimensions
MAX_TOP_K = 1000
MAX_ID_LENGTH = 200
MAX_METADATA_BYTES = 65_536
MAX_METADATA_DEPTH = 32  # objects and lists inside metadata, filters and cell metadata
MAX_FILTER_KEYS = 32
MAX_GENE_NAME = 200
MAX_SEED = 2**63 - 1  # fits a PostgreSQL bigint


class Body(BaseModel):
    """A request body or query: strict JSON types, no unknown fields, finite numbers only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class Answer(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


def _fail(kind: str, message: str):
    raise PydanticCustomError(kind, message)


def printable(value: str) -> str:
    """No control characters (NUL included) and no unpaired surrogates: text every store and log accepts."""
    if not value.isprintable():
        _fail("text_not_printable", "must not contain control characters or unpaired surrogates")
    return value


Metric = Annotated[Literal[METRICS], Field(description="Distance: cosine, l2 or inner_product")]
CollectionName = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN, description=("1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    ),
]
ProjectId = Annotated[
    str,
    Field(
        pattern=PROJECT_ID_PATTERN,
        description=("1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    ),
]
VectorId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH, description=("1-200 printable characters")),
    AfterValidator(printable),
]
GeneName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_GENE_NAME, description=("A gene name: 1-200 printable characters")),
    AfterValidator(printable),
]


def _whole(value: Any) -> Any:
    """2.0 is the integer 2 in JSON (and in JSON Schema); 2.5 and "2" are still refused."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Whole = Annotated[int, BeforeValidator(_whole)]  # every integer field of a request
TopK = Annotated[Whole, Field(ge=1, le=MAX_TOP_K, description="How many nearest hits to return (1-1000)")]
Seed = Annotated[Whole, Field(ge=0, le=MAX_SEED, description="Seed for the randomised steps (k-means)")]


def check_storable(value: Any, pointer: str, depth: int = 0) -> None:
    """Raise at the first value jsonb would refuse or that could not be read back: NaN/Infinity,
    NUL characters, unpaired surrogates, over-long integers, nesting deeper than MAX_METADATA_DEPTH."""
    if isinstance(value, str):
        _check_text(value, pointer)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(pointer, "must be a finite number (NaN and Infinity are not allowed)")
    elif isinstance(value, HugeNumber):
        raise InvalidInput(pointer, "is a number with too many digits")
    elif isinstance(value, (dict, list)):
        if depth >= MAX_METADATA_DEPTH:
            raise InvalidInput(pointer, f"nests objects and lists more than {MAX_METADATA_DEPTH} levels deep")
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            where = f"{pointer}/{pointer_escape(key)}"
            if isinstance(key, str):
                _check_text(key, where)
            check_storable(item, where, depth + 1)


def _check_text(value: str, pointer: str) -> None:
    if "\x00" in value:
        raise InvalidInput(pointer, "must not contain NUL (\\u0000) characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(pointer, "must not contain unpaired surrogates") from None


def metadata_json(value: Any, pointer: str, max_bytes: int = MAX_METADATA_BYTES) -> str:
    """An object (missing/null means {}) that jsonb can store and give back, serialised for the database."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise InvalidInput(pointer, "must be a JSON object")
    # Fast path: serialising refuses NaN/Infinity and over-long integers, a NUL shows up escaped and
    # a lone surrogate fails to encode; only then walk the value to name the field (the walk has the
    # last word: a string holding a backslash and "u0000" is not a NUL). Nesting can only be too
    # deep if there are that many brackets at all, a cheap count.
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        check_storable(value, pointer)
        raise InvalidInput(pointer, "cannot be stored as JSON") from None
    if "\\u0000" in text or text.count("{") + text.count("[") > MAX_METADATA_DEPTH:
        check_storable(value, pointer)
    if size > max_bytes:
        raise InvalidInput(pointer, f"is larger than {max_bytes} bytes as JSON")
    return text


Metadata = Annotated[
    dict[str, Any],
    Field(
        description=(
            f"A JSON object of at most {MAX_METADATA_BYTES} bytes as JSON, nested at most {MAX_METADATA_DEPTH} levels"
        )
    ),
]
FilterValue = Annotated[Any, WithJsonSchema({"type": ["string", "number", "boolean", "null"]})]
MetadataFilter = Annotated[
    dict[str, FilterValue],
    Field(
        max_length=MAX_FILTER_KEYS,
        description=("Equality on top-level metadata keys: keeps hits whose metadata has every key with that value"),
    ),
]


def checked_filter(value: dict | None, pointer: str) -> dict | None:
    """A filter's values must be scalars: strings, numbers, booleans or null."""
    if value is None:
        return None
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            raise InvalidInput(f"{pointer}/{pointer_escape(key)}", "must be a string, number, boolean or null")
    check_storable(value, pointer)
    return value or None


class ProblemItem(Answer):
    pointer: str | None = Field(None, description="JSON pointer to the offending body field")
    parameter: str | None = Field(None, description="The offending query parameter")
    detail: str = Field(description="What is wrong with it")


class ProblemDetails(Answer):
    """RFC 9457 problem details: the one shape of every error."""

    model_config = ConfigDict(extra="forbid", title="Problem")
    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong, for a person")
    trace_id: str | None = Field(description="Quote it when reporting a problem; also in X-Trace-ID")
    errors: list[ProblemItem] | None = Field(None, description="For bad input: each offending field or parameter")


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def path_uuid(text: str) -> uuid.UUID | None:
    """A job's or model's id from a path, or None when it cannot name one (answered 404)."""
    return uuid.UUID(text) if _UUID.fullmatch(text) else None
