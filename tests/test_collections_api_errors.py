"""/api/v1/collections refusing what it cannot serve: 422 at the field, 404, 401, 413, and nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import audit_rows
from tests.test_collections_api import assert_problem, create, upsert

BAD_UPSERTS = [
    ('{"items": [{"id": "a", "vector": [1, 2, 3]}]}', "/items/0/vector"),
    ('{"items": [{"id": "a", "vector": [1, 2, 3, 4]}, {"id": "b", "vector": [1, NaN, 3, 4]}]}', "/items/1/vector/1"),
    ('{"items": [{"id": "a", "vector": [1, 2, 3, Infinity]}]}', "/items/0/vector/3"),
    ('{"items": [{"id": "a", "vector": [1, 2, 3, 4]}, {"id": "a", "vector": [1, 2, 3, 4]}]}', "/items/1/id"),
    ('{"items": [{"id": "a", "vector": [0, 0, 0, 0]}]}', "/items/0/vector"),
    ('{"items": [{"id": "a", "vector": [1, 2, 3, 4], "metadata": {"k": "\\u0000"}}]}', "/items/0/metadata/k"),
    ('{"items": [{"id": "a", "vector": [1, 2, 3, 4], "metadata": 5}]}', "/items/0/metadata"),
    ('{"items": []}', "/items"),
]


@pytest.mark.parametrize("raw, pointer", BAD_UPSERTS)
async def test_a_rejected_upsert_is_422_and_stores_nothing(client, pool, institution, raw, pointer, trace_id):
    name = await create(client, institution)
    await upsert(client, institution, name, [{"id": "keep", "vector": [1, 1, 1, 1]}])
    response = await client.post(
        f"/api/v1/collections/{name}/vectors",
        content=raw.encode(),
        headers={**institution.headers, "content-type": "application/json", "x-request-id": trace_id},
    )
    assert_problem(response, 422, pointer)
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["vector_count"] == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM vectors v JOIN collections c ON c.id = v.collection_id WHERE c.institution_id = $1",
            institution.id,
        )
        == 1
    )
    assert [row["metadata"]["status_code"] for row in await audit_rows(pool, trace_id)] == [422]


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"vector": [1, 2, 3, 4], "top_k": 0}, "/top_k"),
        ({"vector": [1, 2, 3, 4], "top_k": 1001}, "/top_k"),
        ({"vector": [1, 2, 3], "top_k": 5}, "/vector"),
        ({"vector": [0, 0, 0, 0], "top_k": 5}, "/vector"),
        ({"vector": [1, 2, 3, 4], "top_k": 5, "filter": {"a": [1]}}, "/filter/a"),
    ],
)
async def test_a_bad_search_is_422(client, institution, body, pointer):
    name = await create(client, institution)
    assert_problem(
        await client.post(f"/api/v1/collections/{name}/search", headers=institution.headers, json=body), 422, pointer
    )


async def test_a_nan_literal_in_a_search_is_422_at_its_element(client, institution):
    name = await create(client, institution)
    response = await client.post(
        f"/api/v1/collections/{name}/search",
        headers=institution.headers,
        content=b'{"vector": [1, 2, NaN, 4], "top_k": 3}',
    )
    assert_problem(response, 422, "/vector/2")


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"name": "ok-name", "dimensions": 0, "metric": "cosine"}, "/dimensions"),
        ({"name": "ok-name", "dimensions": 2001, "metric": "cosine"}, "/dimensions"),
        ({"name": "bad name", "dimensions": 3, "metric": "cosine"}, "/name"),
        ({"name": "ok-name", "dimensions": 3, "metric": "hamming"}, "/metric"),
    ],
)
async def test_a_bad_collection_is_422_and_not_created(client, institution, body, pointer):
    assert_problem(await client.post("/api/v1/collections", headers=institution.headers, json=body), 422, pointer)
    assert (await client.get("/api/v1/collections", headers=institution.headers)).json() == {"collections": []}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/v1/collections/{name}", None),
        ("DELETE", "/api/v1/collections/{name}", None),
        ("POST", "/api/v1/collections/{name}/vectors", {"items": [{"id": "a", "vector": [1, 2, 3, 4]}]}),
        ("POST", "/api/v1/collections/{name}/search", {"vector": [1, 2, 3, 4], "top_k": 1}),
        ("GET", "/api/v1/collections/{name}/vectors/a", None),
        ("DELETE", "/api/v1/collections/{name}/vectors/a", None),
    ],
)
@pytest.mark.parametrize("name", ["missing-one", "no%20such", "x" * 200])
async def test_an_unknown_collection_is_404(client, institution, method, path, body, name):
    response = await client.request(
        method,
        path.format(name=name),
        headers=institution.headers,
        content=None if body is None else json.dumps(body).encode(),
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("vector_id", ["a%0Ab", "a%09b", "x" * 201, "%ED%A0%80"])
async def test_a_vector_id_no_upsert_could_store_is_404_not_500(client, institution, method, vector_id):
    name = await create(client, institution)
    assert_problem(
        await client.request(method, f"/api/v1/collections/{name}/vectors/{vector_id}", headers=institution.headers),
        404,
    )


async def test_requests_without_a_token_are_401(client):
    assert_problem(await client.get("/api/v1/collections"), 401)


async def test_an_oversize_body_is_413_and_stores_nothing(client, institution):
    name = await create(client, institution)
    response = await client.post(
        f"/api/v1/collections/{name}/vectors",
        content=b'{"items": []}',
        headers={**institution.headers, "content-length": str(64 * 1024 * 1024 + 1)},
    )
    assert_problem(response, 413)
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["vector_count"] == 0
