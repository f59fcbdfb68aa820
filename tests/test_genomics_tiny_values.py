"""/api/v1/genomics with tiny counts: finite results or a clear 422, never 0/0 or unusable vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_genomics_api import assert_422, dataset, new_project


def _tiny_matrices(v: float) -> list[list[list[float]]]:
    genes, rows, _ = dataset(per_type=4)
    return [
        [[v, 0, v], [0, v, 0], [v, v, 0]],  # only tiny values
        [[v, v, v], [0, 0, 0], [v, 0, 0]],
        [[v, 5, 1], [0, 3, 2], [v, 1, 0]],  # tiny and normal values mixed
        [row[:3] for row in rows] + [[v, v, v]],
    ]


def _all_finite(value) -> bool:
    if isinstance(value, float):
        return np.isfinite(value)
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True


@pytest.mark.parametrize("v", [1e-200, 1e-300, 5e-324])
async def test_tiny_counts_compress_to_finite_numbers_or_a_clear_422(client, institution, v):
    for matrix in _tiny_matrices(v):
        body = {"gene_names": ["A", "B", "C"], "expression_matrix": matrix, "compression_target": 2}
        response = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
        if response.status_code == 422:  # denormals can centre to exactly nothing
            assert_422(response, "/expression_matrix")
            continue
        assert response.status_code == 200, (matrix, response.text)
        result = response.json()
        assert _all_finite(result), result
        assert 0 < result["stats"]["explained_variance_total"] <= 1


@pytest.mark.parametrize("v", [1e-200, 1e-300, 5e-324])
@pytest.mark.parametrize("mode", ["cell", "cluster"])
async def test_tiny_counts_build_finite_vectors_or_a_clear_422(client, institution, v, mode):
    for matrix in _tiny_matrices(v):
        body = {
            "project_id": new_project(),
            "gene_names": ["A", "B", "C"],
            "expression_matrix": matrix,
            "target_dimensions": 2,
            "mode": mode,
            **({"n_clusters": 2} if mode == "cluster" else {}),
        }
        response = await client.post("/api/v1/genomics/vectors/build", headers=institution.headers, json=body)
        if response.status_code == 422:  # every vector too close to zero for cosine, or no variance at all
            assert_422(response, "/expression_matrix")
            continue
        assert response.status_code == 200, (matrix, response.text)
        result = response.json()
        assert _all_finite(result), result
        assert result["vector_count"] >= 1
        assert result["vector_count"] + result["skipped_zero_vectors"] == (
            len(matrix) if mode == "cell" else result["clusters"]
        )
        search = await client.post(
            "/api/v1/genomics/vectors/search",
            headers=institution.headers,
            json={"project_id": body["project_id"], "gene_names": ["A", "B"], "top_k": 10},
        )
        assert search.status_code in (200, 422), search.text
        if search.status_code == 200:
            assert all(np.isfinite(h["distance"]) for h in search.json()["hits"])
        else:
            assert_422(search, "/gene_names")


async def test_only_tiny_counts_are_a_clear_422_on_build(client, institution):
    body = {
        "project_id": new_project(),
        "gene_names": ["A", "B", "C"],
        "target_dimensions": 2,
        "mode": "cell",
        "expression_matrix": [[1e-200, 0, 1e-200], [0, 1e-200, 0], [1e-200, 1e-200, 0]],
    }
    response = await client.post("/api/v1/genomics/vectors/build", headers=institution.headers, json=body)
    assert_422(response, "/expression_matrix")
    assert (
        await client.get(f"/api/v1/genomics/projects/{body['project_id']}", headers=institution.headers)
    ).status_code == 404


# An HTTP-layer check on pure maths: no database needed.
def test_a_marker_query_too_close_to_zero_is_422_on_gene_names():
    from api.problems import InvalidInput
    from api.routes.genomics import _encode
    from genomics.pca import Basis, encode_markers

    # Two genes; A's delta is just above the rounding floor and its loading tiny: the query vector
    # passes encode_markers' relative check but is far too short for float32 cosine in pgvector.
    basis = Basis(("A", "B"), np.zeros(2), np.array([[2e-9, 1.0]]), np.array([2e-12, 0.0]), 1)
    vector, _ = encode_markers(basis, ["A"])
    assert 0 < np.linalg.norm(vector) < 1e-15
    with pytest.raises(InvalidInput) as caught:
        _encode(json.dumps(basis.to_json()), ["A"])
    assert caught.value.pointer == "/gene_names"
