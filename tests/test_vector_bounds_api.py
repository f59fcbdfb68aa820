"""Vectors at the edges of what pgvector can compare, through the collections API."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_collections_api import assert_problem, create, upsert

# --- Vectors pgvector can compare (core.vector_bounds): pgvector sums distances in float32 ---

BOUND = float(np.float32(1e15))  # the largest allowed element, as stored
MAX_DIMS = 2000


def _smallest_at_least(x: float) -> float:
    """The smallest float32 ≥ x."""
    f = np.float32(x)
    return float(f if f >= x else np.nextafter(f, np.float32(np.inf)))


def _reference(metric: str, a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if metric == "l2":
        return float(np.linalg.norm(a - b))
    if metric == "inner_product":
        return float(-(a @ b))
    return float(1 - (a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _tolerance(metric: str, a: np.ndarray, b: np.ndarray) -> float:
    """float32 accumulation error, relative to the size of the summed terms."""
    a, b = np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))
    if metric == "l2":
        return 1e-4 * float(np.linalg.norm(a + b))
    if metric == "inner_product":
        return 1e-4 * float(a @ b) + 1e-30
    return 1e-4


def _extreme_vectors(metric: str) -> dict[str, list[float]]:
    alternating = [BOUND if i % 2 == 0 else -BOUND for i in range(MAX_DIMS)]
    vectors = {
        "plus": [BOUND] * MAX_DIMS,
        "minus": [-BOUND] * MAX_DIMS,
        "alternating": alternating,
        "one-big": [BOUND] + [0.0] * (MAX_DIMS - 1),
    }
    if metric == "cosine":
        tiny = _smallest_at_least(1e-15)
        spread = _smallest_at_least(1e-15 / np.sqrt(MAX_DIMS))
        while np.linalg.norm(np.full(MAX_DIMS, spread, dtype=np.float64)) < 1e-15:
            spread = float(np.nextafter(np.float32(spread), np.float32(np.inf)))
        vectors |= {
            "tiny-axis": [tiny] + [0.0] * (MAX_DIMS - 1),
            "tiny-diagonal": [0.0, tiny] + [0.0] * (MAX_DIMS - 2),
            "tiny-spread": [spread if i % 3 else -spread for i in range(MAX_DIMS)],
            "tiny-and-big-mixed": [tiny, BOUND] + [0.0] * (MAX_DIMS - 2),
        }
    else:
        vectors["zero"] = [0.0] * MAX_DIMS
    return vectors


@pytest.mark.parametrize("metric", ["l2", "inner_product", "cosine"])
async def test_extreme_but_allowed_vectors_give_finite_correct_distances(client, institution, metric):
    name = await create(client, institution, dimensions=MAX_DIMS, metric=metric)
    vectors = _extreme_vectors(metric)
    response = await upsert(client, institution, name, [{"id": k, "vector": v} for k, v in vectors.items()])
    assert response.status_code == 200, response.text
    stored = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}
    for query_id, query in stored.items():
        response = await client.post(
            f"/api/v1/collections/{name}/search",
            headers=institution.headers,
            json={"vector": query.tolist(), "top_k": len(stored)},
        )
        assert response.status_code == 200, (query_id, response.text)
        hits = response.json()["hits"]
        assert len(hits) == len(stored)
        for hit in hits:
            expected = _reference(metric, query, stored[hit["id"]])
            assert np.isfinite(hit["distance"]), (query_id, hit)
            assert abs(hit["distance"] - expected) <= _tolerance(metric, query, stored[hit["id"]]), (
                query_id,
                hit["id"],
                hit["distance"],
                expected,
            )
    # What was stored comes back exactly (as float32 values).
    for vector_id in ("plus", "alternating"):
        got = await client.get(f"/api/v1/collections/{name}/vectors/{vector_id}", headers=institution.headers)
        assert got.status_code == 200
        assert np.array_equal(np.asarray(got.json()["vector"], dtype=np.float32), stored[vector_id])


@pytest.mark.parametrize(
    "metric, vector, where",
    [
        ("l2", [1e20] * 4, "/0"),
        ("l2", [1, 2, 3, 1.0001e15], "/3"),
        ("inner_product", [3e38, 3e38, 0, 0], "/0"),
        ("cosine", [3.4e38] * 3 + [1], "/0"),
        ("cosine", [1, 1e20, 0, 0], "/1"),
        ("cosine", [1e-23, 0, 0, 0], ""),
        ("cosine", [1e-16, 1e-16, 1e-16, 1e-16], ""),
        ("cosine", [1e-46, 0, 0, 0], ""),  # rounds to 0 as float32
    ],
)
async def test_vectors_whose_distances_pgvector_cannot_compute_are_422(client, institution, metric, vector, where):
    name = await create(client, institution, metric=metric)
    assert (await upsert(client, institution, name, [{"id": "ok", "vector": [1, 2, 3, 4]}])).status_code == 200
    refused = await upsert(
        client, institution, name, [{"id": "ok2", "vector": [1, 0, 0, 0]}, {"id": "bad", "vector": vector}]
    )
    detail = assert_problem(refused, 422, "/items/1/vector" + where)["errors"][0]["detail"]
    assert "float32" not in detail and "ndarray" not in detail  # plain English, no Python or NumPy names
    search = await client.post(
        f"/api/v1/collections/{name}/search", headers=institution.headers, json={"vector": vector, "top_k": 5}
    )
    assert_problem(search, 422, "/vector" + where)
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["vector_count"] == 1


@pytest.mark.parametrize("metric", ["l2", "inner_product", "cosine"])
async def test_max_distance_at_the_ends_of_the_float_range(client, institution, metric):
    name = await create(client, institution, metric=metric)
    items = [{"id": "a", "vector": [1, 0, 0, 0]}, {"id": "b", "vector": [0, BOUND, 0, 0]}]
    assert (await upsert(client, institution, name, items)).status_code == 200
    found = {}
    for max_distance in (1.7976931348623157e308, 1e300, 5e-324, 0.0, -5e-324, -1e300, -1.7976931348623157e308):
        response = await client.post(
            f"/api/v1/collections/{name}/search",
            headers=institution.headers,
            json={"vector": [1, 0, 0, 0], "top_k": 5, "max_distance": max_distance},
        )
        assert response.status_code == 200, (max_distance, response.text)
        found[max_distance] = [h["id"] for h in response.json()["hits"]]
    assert sorted(found[1.7976931348623157e308]) == ["a", "b"] and found[-1.7976931348623157e308] == []
    if metric != "inner_product":
        assert found[5e-324] == ["a"] and found[-5e-324] == []  # distance to itself is 0
