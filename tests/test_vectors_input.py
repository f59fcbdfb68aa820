"""Validation of collection, vector and search requests: pure functions, no database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.body import parse_json
from api.problems import InvalidInput
from api.schemas import collections as vi
from api.schemas.common import MAX_METADATA_BYTES


def items_body(vectors, ids=None, metadata=None) -> bytes:
    ids = ids or [f"v{i}" for i in range(len(vectors))]
    items = [{"id": i, "vector": v} for i, v in zip(ids, vectors, strict=True)]
    if metadata is not None:
        for item, m in zip(items, metadata, strict=True):
            item["metadata"] = m
    return json.dumps({"items": items}).encode()


def problem(call) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    "raw, pointer",
    [
        (b'{"items": [{"id": "a", "vector": [1, NaN, 3]}]}', "/items/0/vector/1"),
        (
            b'{"items": [{"id": "a", "vector": [1, 2, 3]}, {"id": "b", "vector": [Infinity, 2, 3]}]}',
            "/items/1/vector/0",
        ),
        (b'{"items": [{"id": "a", "vector": [1, 2, -Infinity]}]}', "/items/0/vector/2"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 1e39]}]}', "/items/0/vector/2"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 1e400]}]}', "/items/0/vector/2"),
        (b'{"items": [{"id": "a", "vector": [1, true, 3]}]}', "/items/0/vector/1"),
        (b'{"items": [{"id": "a", "vector": [1, "0.1", 3]}]}', "/items/0/vector/1"),
        (b'{"items": [{"id": "a", "vector": [null, 2, 3]}]}', "/items/0/vector/0"),
        (b'{"items": [{"id": "a", "vector": [1, 2, ' + b"9" * 400 + b"]}]}", "/items/0/vector/2"),
        (b'{"items": [{"id": "a", "vector": [1, 2]}]}', "/items/0/vector"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3]}, {"id": "b", "vector": [1, 2, 3, 4]}]}', "/items/1/vector"),
        (b'{"items": [{"id": "a", "vector": "1,2,3"}]}', "/items/0/vector"),
        (b'{"items": []}', "/items"),
        (b'{"items": {}}', "/items"),
        (b"{}", "/items"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3]}], "extra": 1}', "/extra"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "score": 1}]}', "/items/0/score"),
        (b'{"items": [{"vector": [1, 2, 3]}]}', "/items/0/id"),
        (b'{"items": [{"id": "a"}]}', "/items/0/vector"),
        (b'{"items": [{"id": "", "vector": [1, 2, 3]}]}', "/items/0/id"),
        (b'{"items": [{"id": 7, "vector": [1, 2, 3]}]}', "/items/0/id"),
        (b'{"items": [{"id": "a\\u0000b", "vector": [1, 2, 3]}]}', "/items/0/id"),
        (b'{"items": [{"id": "a\\ud800", "vector": [1, 2, 3]}]}', "/items/0/id"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3]}, {"id": "a", "vector": [1, 2, 3]}]}', "/items/1/id"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": [1]}]}', "/items/0/metadata"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": "x"}]}', "/items/0/metadata"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": {"k": "a\\u0000"}}]}', "/items/0/metadata/k"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": {"k\\u0000": 1}}]}', "/items/0/metadata/k\x00"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": {"k": ["\\udc00"]}}]}', "/items/0/metadata/k/0"),
        (b'{"items": [{"id": "a", "vector": [1, 2, 3], "metadata": {"k": {"x/y": NaN}}}]}', "/items/0/metadata/k/x~1y"),
        (b'{"items": [{"id": "a", "vector": [0, 0, 0]}]}', "/items/0/vector"),
        (b'{"items": [{"id": "a", "vector": [1e-46, 0, 0]}]}', "/items/0/vector"),
    ],
)
def test_a_bad_upsert_names_the_offending_field(raw, pointer):
    error = problem(lambda: vi.parse_items(parse_json(raw), 3, "cosine"))
    assert error.status == 422
    assert error.pointer == pointer


def test_zero_vectors_are_fine_for_l2_and_inner_product():
    body = parse_json(items_body([[0, 0, 0]]))
    for metric in ("l2", "inner_product"):
        assert vi.parse_items(body, 3, metric).vectors.tolist() == [[0, 0, 0]]


def test_too_many_items_are_refused_before_any_is_read():
    body = {"items": [{"id": str(i), "vector": [1.0]} for i in range(vi.MAX_ITEMS + 1)]}
    assert problem(lambda: vi.parse_items(body, 1, "l2")).pointer == "/items"


def test_oversized_metadata_is_refused():
    body = parse_json(items_body([[1.0]], metadata=[{"k": "x" * (MAX_METADATA_BYTES + 1)}]))
    assert problem(lambda: vi.parse_items(body, 1, "l2")).pointer == "/items/0/metadata"


def test_valid_items_come_back_as_float32_rows_and_json_text():
    body = parse_json(
        items_body(
            [[1, 2.5, -3], [0.1, 0, 7]], ids=["a", "b/c"], metadata=[{"cell": "T", "n": 1, "é": [True, None]}, None]
        )
    )
    items = vi.parse_items(body, 3, "cosine")
    assert items.ids == ["a", "b/c"]
    assert items.vectors.dtype == np.float32 and items.vectors.shape == (2, 3)
    assert json.loads(items.metadata_json[0]) == {"cell": "T", "n": 1, "é": [True, None]}
    assert items.metadata_json[1] == "{}"


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"", 400),
        (b"   ", 400),
        (b"{", 400),
        (b"[1,]", 400),
        (b"\xff\xfe", 400),
        (b"[" * 100_000, 400),
        (b'{"a": 1, "a": 2}', 422),
    ],
)
def test_malformed_json_is_400_and_duplicate_keys_422(raw, status):
    assert problem(lambda: parse_json(raw)).status == status


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "", "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "a b", "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "-x", "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "x" * 129, "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "genomics.mine", "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "ok", "dimensions": 0, "metric": "cosine"}, "/dimensions"),
        ({"name": "ok", "dimensions": 2001, "metric": "cosine"}, "/dimensions"),
        ({"name": "ok", "dimensions": 3.5, "metric": "cosine"}, "/dimensions"),  # 3.0 is 3 in JSON
        ({"name": "ok", "dimensions": True, "metric": "cosine"}, "/dimensions"),
        ({"name": "ok", "dimensions": 3, "metric": "dot"}, "/metric"),
        ({"name": "ok", "dimensions": 3}, "/metric"),
        ({"name": "ok", "dimensions": 3, "metric": "l2", "index": "hnsw"}, "/index"),
    ],
)
def test_a_bad_collection_spec_names_the_field(body, pointer):
    assert problem(lambda: vi.parse_collection_spec(body)).pointer == pointer


@pytest.mark.parametrize("dimensions", [1, 2000])
def test_dimension_limits_are_inclusive(dimensions):
    spec = vi.parse_collection_spec({"name": "a.b_c-1", "dimensions": dimensions, "metric": "inner_product"})
    assert spec.dimensions == dimensions


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"vector": [1, 2, 3]}, "/top_k"),
        ({"vector": [1, 2, 3], "top_k": 0}, "/top_k"),
        ({"vector": [1, 2, 3], "top_k": 1001}, "/top_k"),
        ({"vector": [1, 2, 3], "top_k": "5"}, "/top_k"),
        ({"vector": [1, 2, 3], "top_k": 5.5}, "/top_k"),
        ({"top_k": 5}, "/vector"),
        ({"vector": [1, 2], "top_k": 5}, "/vector"),
        ({"vector": [1, 2, float("nan")], "top_k": 5}, "/vector/2"),
        ({"vector": [0, 0, 0], "top_k": 5}, "/vector"),
        ({"vector": [1, 2, 3], "top_k": 5, "max_distance": float("inf")}, "/max_distance"),
        ({"vector": [1, 2, 3], "top_k": 5, "max_distance": "1"}, "/max_distance"),
        ({"vector": [1, 2, 3], "top_k": 5, "filter": [1]}, "/filter"),
        ({"vector": [1, 2, 3], "top_k": 5, "filter": {"a": {"b": 1}}}, "/filter/a"),
        ({"vector": [1, 2, 3], "top_k": 5, "filter": {"a": [1]}}, "/filter/a"),
        ({"vector": [1, 2, 3], "top_k": 5, "filter": {"a": float("nan")}}, "/filter/a"),
        ({"vector": [1, 2, 3], "top_k": 5, "filter": {str(i): i for i in range(33)}}, "/filter"),
        ({"vector": [1, 2, 3], "top_k": 5, "ef_search": 0}, "/ef_search"),
        ({"vector": [1, 2, 3], "top_k": 5, "ef_search": 1001}, "/ef_search"),
        ({"vector": [1, 2, 3], "top_k": 5, "k": 5}, "/k"),
    ],
)
def test_a_bad_search_names_the_field(body, pointer):
    assert problem(lambda: vi.parse_search(body, 3, "cosine")).pointer == pointer


def test_a_valid_search_is_parsed_with_defaults():
    query = vi.parse_search({"vector": [1, 2, 3], "top_k": 1000, "filter": {"cell_type": "T", "n": 2}}, 3, "cosine")
    assert query.vector.dtype == np.float32 and query.top_k == 1000
    assert query.metadata_filter == {"cell_type": "T", "n": 2}
    assert query.max_distance is None and query.ef_search is None
    assert vi.parse_search({"vector": [1, 2, 3], "top_k": 1, "filter": {}}, 3, "l2").metadata_filter is None


def test_the_comparability_rule_names_the_first_bad_vector():
    from core import vector_bounds as vb

    ok = np.array([[vb.MAX_ABS_ELEMENT, -vb.MAX_ABS_ELEMENT], [1e-15, 0], [0, 0]], dtype=np.float32)
    assert vb.first_incomparable(ok, "l2") is None and vb.first_incomparable(ok, "inner_product") is None
    assert vb.first_incomparable(ok, "cosine") == (2, None, vb.ZERO_MESSAGE)
    assert vb.first_incomparable(np.array([[1, 0], [1e-16, 1e-16], [2e15, 0]]), "cosine") == (1, None, vb.TINY_MESSAGE)
    assert vb.first_incomparable(np.array([[1, 0], [0, 2e15], [1e-16, 0]]), "cosine") == (1, 1, vb.ELEMENT_MESSAGE)
    assert vb.first_incomparable(np.array([1.0, np.nan]), "l2") == (0, 1, vb.ELEMENT_MESSAGE)
    assert vb.comparable_rows(np.array([[1, 0], [1e-20, 0], [0, 0], [0, 3e15]]), "cosine").tolist() == [
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize(
    "vector, pointer",
    [
        ([1, 2, 1.1e15], "/vector/2"),
        ([1e-16, 0, 0], "/vector"),
        ([1e-40, 1e-40, 0], "/vector"),
    ],
)
def test_a_query_vector_pgvector_cannot_compare_is_refused(vector, pointer):
    body = {"vector": vector, "top_k": 1}
    assert problem(lambda: vi.parse_search(body, 3, "cosine")).pointer == pointer
