"""/api/v1/quantum/qac through the real app: fit, apply and the model, sync and as jobs, and bad input."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from tests.conftest import audit_rows

FIT = "/api/v1/quantum/qac/fit"
APPLY = "/api/v1/quantum/qac/apply"


def embedding(n_per: int = 12, clusters: int = 3, dims: int = 4, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (clusters, dims))
    labels = np.repeat(np.arange(clusters), n_per)
    return (centres[labels] + rng.normal(0, 1, (labels.size, dims))).tolist()


async def fit_sync(client, who, z, **params) -> dict:
    body = {"embedding": z, "sync": True, **({"params": params} if params else {})}
    response = await client.post(FIT, headers=who.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response, status: int, pointer: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert isinstance(problem["detail"], str)
    if pointer is not None:
        assert problem["errors"][0]["pointer"] == pointer
    return problem


async def test_fit_sync_stores_a_model_that_apply_uses(client, institution, pool):
    z = embedding()
    fitted = await fit_sync(client, institution, z, k_nn=5, weight="gaussian", beta=1.5)
    assert fitted["status"] == "succeeded"
    meta = fitted["meta"]
    assert (meta["n_cells"], meta["dims"], meta["k_nn"], meta["weight"]) == (36, 4, 5, "gaussian")
    assert meta["sigma"] > 0 and meta["engine_used"] == "laplace" and meta["fallback_reason"] is None

    model = (await client.get(f"/api/v1/quantum/qac/models/{fitted['model_id']}", headers=institution.headers)).json()
    assert model["model_id"] == fitted["model_id"]
    assert (model["n_cells"], model["k_nn"], model["weight"], model["beta"]) == (36, 5, "gaussian", 1.5)
    assert (model["reinforce_rate"], model["layers"], model["lambda_entropy"]) == (0.05, 50, 0.05)
    assert model["engine"] == "laplace" and model["version"] == "1" and model["created_at"]

    applied = await client.post(
        APPLY, headers=institution.headers, json={"model_id": fitted["model_id"], "embedding": z, "sync": True}
    )
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert result["status"] == "succeeded" and result["n_cells"] == 36 and result["engine_used"] == "laplace"
    smoothed = np.array(result["embedding_qac"])
    assert smoothed.shape == (36, 4)
    assert 0 < result["metrics"]["coherence_gain"] < 1 and 0 < result["metrics"]["psi_fidelity"] < 1
    # The stored graph gives the same answer as the maths run here on the same embedding.
    from genomics import qac

    graph = qac.fit(np.array(z), 5, "gaussian")
    np.testing.assert_allclose(smoothed, qac.smooth(graph, np.array(z), 1.5, 0.05), rtol=1e-9, atol=1e-9)


async def test_apply_uses_the_fitted_graph_not_one_rebuilt_from_its_embedding(client, institution):
    z = embedding()
    fitted = await fit_sync(client, institution, z, k_nn=4)
    other = embedding(seed=9)  # same shape, other cells: a rebuilt graph would differ
    result = (
        await client.post(
            APPLY, headers=institution.headers, json={"model_id": fitted["model_id"], "embedding": other, "sync": True}
        )
    ).json()
    from genomics import qac

    fitted_graph = qac.fit(np.array(z), 4)
    expected = qac.smooth(fitted_graph, np.array(other), 0.7, 0.05)
    np.testing.assert_allclose(np.array(result["embedding_qac"]), expected, rtol=1e-9, atol=1e-9)


async def test_real_qac_is_accepted_and_answered_by_laplace_with_the_reason(client, institution):
    fitted = await fit_sync(client, institution, embedding(), engine="real_qac")
    assert fitted["meta"]["engine"] == "real_qac"
    assert fitted["meta"]["fallback_reason"] == "real_qac is not available in this service"
    result = (
        await client.post(
            APPLY,
            headers=institution.headers,
            json={"model_id": fitted["model_id"], "embedding": embedding(), "sync": True, "seed": 3},
        )
    ).json()
    assert result["engine_used"] == "laplace"
    assert result["fallback_reason"] == "real_qac is not available in this service"


async def test_the_fit_commits_its_model_with_its_audit_row(client, institution, pool, trace_id):
    response = await client.post(
        FIT, headers={**institution.headers, "X-Request-ID": trace_id}, json={"embedding": embedding(), "sync": True}
    )
    assert response.status_code == 200
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 200 and row["institution"] == institution.slug
    model_id = uuid.UUID(response.json()["model_id"])
    stored = await pool.fetchrow("SELECT institution_id, xmin::text AS tx FROM qac_models WHERE id = $1", model_id)
    audit_tx = await pool.fetchval("SELECT xmin::text FROM audit_logs WHERE id = $1", row["id"])
    assert stored["institution_id"] == institution.id
    assert stored["tx"] == audit_tx  # one transaction wrote both


async def test_another_institutions_model_is_not_found(client, institution, other_institution):
    fitted = await fit_sync(client, institution, embedding())
    got = await client.get(f"/api/v1/quantum/qac/models/{fitted['model_id']}", headers=other_institution.headers)
    assert_problem(got, 404)
    applied = await client.post(
        APPLY,
        headers=other_institution.headers,
        json={"model_id": fitted["model_id"], "embedding": embedding(), "sync": True},
    )
    assert_problem(applied, 404)


@pytest.mark.parametrize("model_id", [str(uuid.uuid4()), "not-a-uuid", "0"])
async def test_an_unknown_model_is_not_found(client, institution, model_id):
    assert_problem(await client.get(f"/api/v1/quantum/qac/models/{model_id}", headers=institution.headers), 404)


async def test_apply_with_another_row_count_is_422(client, institution, pool):
    fitted = await fit_sync(client, institution, embedding())
    response = await client.post(
        APPLY,
        headers=institution.headers,
        json={"model_id": fitted["model_id"], "embedding": embedding()[:-1], "sync": True},
    )
    problem = assert_problem(response, 422, "/embedding")
    assert "36 cells" in problem["detail"]
    unknown = await client.post(
        APPLY, headers=institution.headers, json={"model_id": str(uuid.uuid4()), "embedding": embedding(), "sync": True}
    )
    assert_problem(unknown, 404)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"embedding": [[1.0, 2.0], [3.0]]}, "/embedding/1"),
        ({"embedding": [[1.0, 2.0], [3.0, float("nan")], [1.0, 1.0]]}, "/embedding/1/1"),
        ({"embedding": [[1.0, 2.0], [3.0, "4"], [1.0, 1.0]]}, "/embedding/1/1"),
        ({"embedding": []}, "/embedding"),
        ({"embedding": [[]]}, "/embedding/0"),
        ({"embedding": [[1.0], [2.0], [3.0]], "params": {"k_nn": 3}}, "/params/k_nn"),
        ({"embedding": [[1.0]] * 15}, "/params/k_nn"),  # the default k_nn, 15, needs 16 cells
        ({"embedding": [[1.0], [2.0]], "params": {"k_nn": 0}}, "/params/k_nn"),
        ({"embedding": [[1.0], [2.0]], "params": {"k_nn": 1, "weight": "cosine"}}, "/params/weight"),
        ({"embedding": [[1.0], [2.0]], "params": {"k_nn": 1, "sigma": 0}}, "/params/sigma"),
        ({"embedding": [[1.0], [2.0]], "params": {"k_nn": 1, "beta": 11}}, "/params/beta"),
        ({"embedding": [[1.0], [2.0]], "params": {"k_nn": 1, "engine": "quantum"}}, "/params/engine"),
        ({"embedding": [[1.0], [2.0]], "cell_metadata": []}, "/cell_metadata"),
    ],
)
async def test_bad_fit_input_is_422_naming_the_field(client, institution, pool, body, pointer):
    before = await pool.fetchval("SELECT count(*) FROM qac_models WHERE institution_id = $1", institution.id)
    response = await client.post(
        FIT,
        headers={**institution.headers, "Content-Type": "application/json"},
        content=json.dumps({**body, "sync": True}),
    )
    assert_problem(response, 422, pointer)
    assert await pool.fetchval("SELECT count(*) FROM qac_models WHERE institution_id = $1", institution.id) == before


async def test_sync_is_refused_above_the_sync_limit(client, institution, settings):
    z = embedding(n_per=settings.qac_max_sync_cells // 3 + 1, dims=2)
    problem = assert_problem(
        await client.post(FIT, headers=institution.headers, json={"embedding": z, "sync": True}), 422, "/sync"
    )
    assert "sync: false" in problem["detail"]
