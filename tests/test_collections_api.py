"""/api/v1/collections through the real app: the contract, isolation between institutions (errors: *_errors.py)."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from workers import index_maintainer

DIMS = 4


def unique_name() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


async def create(client, who, name=None, dimensions=DIMS, metric="cosine"):
    name = name or unique_name()
    response = await client.post(
        "/api/v1/collections", headers=who.headers, json={"name": name, "dimensions": dimensions, "metric": metric}
    )
    assert response.status_code == 201, response.text
    return name


async def upsert(client, who, name, items):
    return await client.post(f"/api/v1/collections/{name}/vectors", headers=who.headers, json={"items": items})


def assert_problem(response, status, pointer=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["trace_id"]
    if pointer is not None:
        assert body["errors"][0]["pointer"] == pointer
    return body


async def test_a_collection_is_created_listed_fetched_and_deleted(client, institution):
    name = unique_name()
    created = await client.post(
        "/api/v1/collections", headers=institution.headers, json={"name": name, "dimensions": 3, "metric": "l2"}
    )
    assert created.status_code == 201
    assert created.headers["location"] == f"/api/v1/collections/{name}"
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "name": name,
        "dimensions": 3,
        "metric": "l2",
        "vector_count": 0,
        "index": "none",
        "search": "exact",
        "index_recall_at_10": None,
        "index_ef_search": None,
        "created_at": None,
        "updated_at": None,
    }
    listed = await client.get("/api/v1/collections", headers=institution.headers)
    assert [c["name"] for c in listed.json()["collections"]] == [name]
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["dimensions"] == 3
    assert (await client.delete(f"/api/v1/collections/{name}", headers=institution.headers)).status_code == 204
    assert_problem(await client.get(f"/api/v1/collections/{name}", headers=institution.headers), 404)
    assert_problem(await client.delete(f"/api/v1/collections/{name}", headers=institution.headers), 404)


async def test_a_duplicate_name_is_409_and_leaves_the_first(client, institution):
    name = await create(client, institution, metric="l2")
    again = await client.post(
        "/api/v1/collections", headers=institution.headers, json={"name": name, "dimensions": 7, "metric": "cosine"}
    )
    assert name in assert_problem(again, 409)["detail"]
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["dimensions"] == DIMS


async def test_vectors_are_upserted_fetched_searched_and_deleted(client, institution):
    name = await create(client, institution)
    items = [
        {"id": "a", "vector": [1, 0, 0, 0], "metadata": {"cell_type": "T"}},
        {"id": "b", "vector": [0.9, 0.1, 0, 0], "metadata": {"cell_type": "B"}},
        {"id": "c/d", "vector": [0, 0, 1, 0]},
    ]
    response = await upsert(client, institution, name, items)
    assert response.json() == {"collection": name, "upserted": 3, "inserted": 3, "updated": 0, "vector_count": 3}
    response = await upsert(client, institution, name, [{"id": "a", "vector": [1, 0, 0, 0.5], "metadata": {"v": 2}}])
    assert response.json()["updated"] == 1 and response.json()["vector_count"] == 3

    got = (await client.get(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers)).json()
    assert got["vector"] == [1, 0, 0, 0.5] and got["metadata"] == {"v": 2}
    assert (await client.get(f"/api/v1/collections/{name}/vectors/c/d", headers=institution.headers)).json()[
        "id"
    ] == "c/d"

    found = await client.post(
        f"/api/v1/collections/{name}/search", headers=institution.headers, json={"vector": [1, 0, 0, 0], "top_k": 2}
    )
    body = found.json()
    assert [hit["id"] for hit in body["hits"]] == ["b", "a"]
    assert body["collection"] == name and body["metric"] == "cosine" and body["search_ms"] >= 0
    assert body["hits"][0]["metadata"] == {"cell_type": "B"}
    assert body["hits"][0]["distance"] <= body["hits"][1]["distance"]

    filtered = await client.post(
        f"/api/v1/collections/{name}/search",
        headers=institution.headers,
        json={"vector": [1, 0, 0, 0], "top_k": 10, "filter": {"v": 2}},
    )
    assert [hit["id"] for hit in filtered.json()["hits"]] == ["a"]

    assert (
        await client.delete(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers)
    ).status_code == 204
    assert_problem(await client.get(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers), 404)
    assert_problem(await client.delete(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers), 404)
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["vector_count"] == 2


@pytest.mark.parametrize(
    "metric, query, expected",
    [
        ("l2", [3, 4, 0, 0], [("x", pytest.approx(20**0.5)), ("origin", 5.0)]),
        ("inner_product", [1, 2, 0, 0], [("x", -1.0), ("origin", 0.0)]),
        ("cosine", [2, 0, 0, 0], [("x", 0.0)]),
    ],
)
async def test_distances_are_reported_per_metric_nearest_first(client, institution, metric, query, expected):
    name = await create(client, institution, metric=metric)
    items = [{"id": "x", "vector": [1, 0, 0, 0]}]
    if metric != "cosine":
        items.append({"id": "origin", "vector": [0, 0, 0, 0]})
    await upsert(client, institution, name, items)
    found = await client.post(
        f"/api/v1/collections/{name}/search", headers=institution.headers, json={"vector": query, "top_k": 10}
    )
    assert [(hit["id"], hit["distance"]) for hit in found.json()["hits"]] == expected


async def test_max_distance_cuts_off_far_hits(client, institution):
    name = await create(client, institution, metric="l2")
    await upsert(client, institution, name, [{"id": str(i), "vector": [i, 0, 0, 0]} for i in range(10)])
    found = await client.post(
        f"/api/v1/collections/{name}/search",
        headers=institution.headers,
        json={"vector": [0, 0, 0, 0], "top_k": 10, "max_distance": 3},
    )
    assert [hit["id"] for hit in found.json()["hits"]] == ["0", "1", "2", "3"]


async def test_one_institution_never_sees_searches_or_overwrites_anothers_collection(
    client, institution, other_institution
):
    name = await create(client, institution)
    await upsert(client, institution, name, [{"id": "secret", "vector": [1, 2, 3, 4], "metadata": {"owner": "A"}}])
    other = other_institution
    assert (await client.get("/api/v1/collections", headers=other.headers)).json() == {"collections": []}
    assert_problem(await client.get(f"/api/v1/collections/{name}", headers=other.headers), 404)
    assert_problem(await client.get(f"/api/v1/collections/{name}/vectors/secret", headers=other.headers), 404)
    assert_problem(
        await client.post(
            f"/api/v1/collections/{name}/search", headers=other.headers, json={"vector": [1, 2, 3, 4], "top_k": 5}
        ),
        404,
    )
    assert_problem(await upsert(client, other, name, [{"id": "secret", "vector": [4, 3, 2, 1]}]), 404)
    assert_problem(await client.delete(f"/api/v1/collections/{name}/vectors/secret", headers=other.headers), 404)
    assert_problem(await client.delete(f"/api/v1/collections/{name}", headers=other.headers), 404)

    # The same name is free for the other institution, and the two never mix.
    await create(client, other, name=name)
    await upsert(client, other, name, [{"id": "secret", "vector": [4, 3, 2, 1], "metadata": {"owner": "B"}}])
    for who, owner in ((institution, "A"), (other, "B")):
        found = await client.post(
            f"/api/v1/collections/{name}/search", headers=who.headers, json={"vector": [1, 1, 1, 1], "top_k": 10}
        )
        assert [hit["metadata"]["owner"] for hit in found.json()["hits"]] == [owner]


async def test_a_large_collection_gets_its_index_in_the_background_and_filtered_search_stays_full(client, institution):
    name = await create(client, institution, dimensions=8, metric="l2")
    data = np.random.default_rng(11).standard_normal((10_000, 8)).astype(np.float32)
    items = [
        {"id": f"v{i}", "vector": row.tolist(), "metadata": {"tenth": i % 10 == 0, "i": i}}
        for i, row in enumerate(data)
    ]
    response = await upsert(client, institution, name, items)
    assert response.json()["vector_count"] == 10_000

    query = {"vector": data[0].tolist(), "top_k": 50, "filter": {"tenth": True}}
    first = (await client.post(f"/api/v1/collections/{name}/search", headers=institution.headers, json=query)).json()
    assert first["strategy"] == "exact" and len(first["hits"]) == 50
    # Asked for by that search, built in the background ("ready" only if the build has already won the race).
    assert (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()["index"] in {
        "building",
        "ready",
    }
    await index_work_done()
    described = (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()
    assert (described["index"], described["search"]) == ("ready", "hnsw")
    assert described["index_recall_at_10"] >= 0.99 and described["index_ef_search"] >= 40

    second = (await client.post(f"/api/v1/collections/{name}/search", headers=institution.headers, json=query)).json()
    assert second["strategy"] == "hnsw" and len(second["hits"]) == 50
    assert all(hit["metadata"]["tenth"] for hit in second["hits"])
    exact_ids = [hit["id"] for hit in first["hits"]]
    assert len(set(exact_ids[:10]) & {hit["id"] for hit in second["hits"][:10]}) >= 9

    assert (await client.delete(f"/api/v1/collections/{name}", headers=institution.headers)).status_code == 204
    await index_work_done()


async def index_work_done() -> None:
    """Wait for the app's background index maintenance (its task is named) to finish."""
    await asyncio.gather(*(task for task in asyncio.all_tasks() if task.get_name() == index_maintainer.TASK_NAME))
