"""/api/v1/genomics through the real app: compress, build, encode, search (bad input: test_genomics_api_errors.py)."""

from __future__ import annotations

import uuid

import numpy as np

TYPES = ("T cell", "B cell", "NK cell")


def dataset(per_type: int = 30, seed: int = 1) -> tuple[list[str], list[list[int]], list[dict]]:
    """Three cell types, each with 4 marker genes (G12-G15, G16-G19, G20-G23) over 12 background genes."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(24)]
    rows, cells = [], []
    for t, name in enumerate(TYPES):
        rates = np.full(24, 1.0)
        rates[12 + 4 * t : 16 + 4 * t] = 30.0
        rows.extend(rng.poisson(rates, (per_type, 24)).tolist())
        cells.extend(
            {"barcode": f"{name[0]}-{i:03d}", "cell_type": name, "sample": f"s{i % 2}"} for i in range(per_type)
        )
    return genes, rows, cells


def markers(t: int) -> list[str]:
    return [f"G{i}" for i in range(12 + 4 * t, 16 + 4 * t)]


def new_project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def build(client, who, pid, mode="cell", target=5, **extra):
    genes, rows, cells = dataset()
    body = {
        "project_id": pid,
        "gene_names": genes,
        "expression_matrix": rows,
        "cell_metadata": cells,
        "target_dimensions": target,
        "mode": mode,
        **extra,
    }
    response = await client.post("/api/v1/genomics/vectors/build", headers=who.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_422(response, pointer):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == pointer


async def test_compress_returns_the_matrix_and_its_stats_deterministically(client, institution):
    genes, rows, _ = dataset()
    body = {
        "gene_names": genes,
        "expression_matrix": rows,
        "compression_target": 6,
        "params": {"mode": "fixed_k", "max_k": 50},
        "seed": 3,
    }
    first = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
    second = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
    result = first.json()
    assert first.status_code == 200
    assert np.asarray(result["compressed_matrix"]).shape == (90, 6)
    stats = result["stats"]
    assert (stats["original_dimensions"], stats["achieved_dimensions"], stats["rank_cap_reason"]) == (
        24,
        6,
        "compression_target",
    )
    assert 0 < stats["explained_variance_total"] <= 1 and len(stats["explained_variance_ratio"]) == 6
    assert stats["runtime_ms"] >= 0 and stats["seed"] == 3 and stats["cells"] == 90
    assert result["compressed_matrix"] == second.json()["compressed_matrix"]


async def test_compress_auto_evr_stops_at_the_target(client, institution):
    genes, rows, _ = dataset()
    body = {
        "gene_names": genes,
        "expression_matrix": rows,
        "compression_target": 20,
        "params": {"mode": "auto_evr", "evr_target": 0.5},
    }
    stats = (await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)).json()["stats"]
    assert stats["rank_cap_reason"] == "evr_target" and stats["explained_variance_total"] >= 0.5


async def test_build_stores_cells_and_marker_queries_find_their_cell_type(client, institution):
    pid = new_project()
    built = await build(client, institution, pid)
    assert (built["cell_count"], built["gene_count"], built["vector_count"], built["dimensions"]) == (90, 24, 90, 5)
    assert built["collection"] == f"genomics.{pid}" and built["mode"] == "cell"
    collection = (await client.get(f"/api/v1/collections/genomics.{pid}", headers=institution.headers)).json()
    assert (collection["dimensions"], collection["vector_count"], collection["metric"]) == (5, 90, "cosine")

    for t, name in enumerate(TYPES):
        encoded = await client.post(
            "/api/v1/genomics/query/encode",
            headers=institution.headers,
            json={"project_id": pid, "gene_names": markers(t) + ["NOT_A_GENE"]},
        )
        assert encoded.status_code == 200
        assert encoded.json()["dimensions"] == 5 and len(encoded.json()["query_vector"]) == 5
        assert encoded.json()["unknown_genes"] == ["NOT_A_GENE"]

        by_genes = await client.post(
            "/api/v1/genomics/vectors/search",
            headers=institution.headers,
            json={"project_id": pid, "gene_names": markers(t), "top_k": 20},
        )
        hits = by_genes.json()["hits"]
        assert len(hits) == 20 and {hit["metadata"]["cell_type"] for hit in hits} == {name}
        assert set(hits[0]["metadata"]) >= {"barcode", "cell_type", "sample", "cell_index"}
        assert hits[0]["id"] == hits[0]["metadata"]["barcode"]

        by_vector = await client.post(
            "/api/v1/genomics/vectors/search",
            headers=institution.headers,
            json={"project_id": pid, "query_vector": encoded.json()["query_vector"], "top_k": 20},
        )
        assert [hit["id"] for hit in by_vector.json()["hits"]] == [hit["id"] for hit in hits]


async def test_search_distance_threshold_and_filter(client, institution):
    pid = new_project()
    await build(client, institution, pid)
    near = await client.post(
        "/api/v1/genomics/vectors/search",
        headers=institution.headers,
        json={"project_id": pid, "gene_names": markers(0), "top_k": 90, "distance_threshold": 0.5},
    )
    hits = near.json()["hits"]
    assert 0 < len(hits) < 90 and all(hit["distance"] <= 0.5 for hit in hits)
    filtered = await client.post(
        "/api/v1/genomics/vectors/search",
        headers=institution.headers,
        json={"project_id": pid, "gene_names": markers(0), "top_k": 90, "filter": {"sample": "s1"}},
    )
    assert len(filtered.json()["hits"]) == 45


async def test_cluster_mode_stores_centroids_with_size_and_majority_type(client, institution):
    pid = new_project()
    built = await build(client, institution, pid, mode="cluster", n_clusters=3, seed=2)
    assert built["clusters"] == 3 and built["vector_count"] == 3
    found = await client.post(
        "/api/v1/genomics/vectors/search",
        headers=institution.headers,
        json={"project_id": pid, "gene_names": markers(2), "top_k": 3},
    )
    best = found.json()["hits"][0]["metadata"]
    assert best["cell_type"] == "NK cell" and best["size"] == 30 and best["cell_type_fraction"] == 1.0


async def test_a_rebuild_replaces_the_project_and_a_failed_one_leaves_it(client, institution):
    pid = new_project()
    first = await build(client, institution, pid, target=5)
    project = (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).json()
    second = await build(client, institution, pid, mode="cluster", target=3, n_clusters=4)
    assert (second["dimensions"], second["vector_count"]) == (3, 4) and first["dimensions"] == 5
    again = (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).json()
    assert again["created_at"] == project["created_at"] and again["mode"] == "cluster"
    collection = (await client.get(f"/api/v1/collections/genomics.{pid}", headers=institution.headers)).json()
    assert (collection["dimensions"], collection["vector_count"]) == (3, 4)

    genes, rows, cells = dataset()
    rows[5][3] = -1
    failed = await client.post(
        "/api/v1/genomics/vectors/build",
        headers=institution.headers,
        json={
            "project_id": pid,
            "gene_names": genes,
            "expression_matrix": rows,
            "target_dimensions": 2,
            "mode": "cell",
        },
    )
    assert_422(failed, "/expression_matrix/5/3")
    assert (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).json()[
        "mode"
    ] == "cluster"


async def test_projects_are_private_to_their_institution(client, institution, other_institution):
    pid = new_project()
    await build(client, institution, pid)
    query = {"project_id": pid, "gene_names": markers(0), "top_k": 5}
    assert (
        await client.post("/api/v1/genomics/vectors/search", headers=other_institution.headers, json=query)
    ).status_code == 404
    assert (
        await client.post(
            "/api/v1/genomics/query/encode",
            headers=other_institution.headers,
            json={"project_id": pid, "gene_names": markers(0)},
        )
    ).status_code == 404
    # The same project id is the other institution's own, independent project.
    await build(client, other_institution, pid, mode="cluster", n_clusters=2)
    mine = await client.post("/api/v1/genomics/vectors/search", headers=institution.headers, json=query)
    assert len(mine.json()["hits"]) == 5 and mine.json()["mode"] == "cell"


async def test_deleting_the_projects_collection_deletes_the_project(client, institution):
    pid = new_project()
    await build(client, institution, pid)
    assert (await client.delete(f"/api/v1/collections/genomics.{pid}", headers=institution.headers)).status_code == 204
    assert (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).status_code == 404
