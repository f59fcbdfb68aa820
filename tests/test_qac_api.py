"""/api/v1/quantum/qac through the real app: fit, apply and the model, sync and as jobs, and bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime

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


async def poll(client, who, job_id: str, timeout: float = 90.0) -> dict:
    """The job once it has ended (bounded generously: a job's child process starts from scratch)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/api/v1/quantum/qac/jobs/{job_id}", headers=who.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("succeeded", "failed") or asyncio.get_running_loop().time() > deadline:
            return job
        await asyncio.sleep(0.2)


def assert_job_shape(job: dict, kind: str) -> None:
    assert set(job) == {"id", "type", "status", "progress", "model_id", "result", "error", "created_at", "updated_at"}
    assert job["type"] == kind and job["status"] in ("queued", "running", "succeeded", "failed")
    for key in ("created_at", "updated_at"):
        datetime.fromisoformat(job[key])  # ISO 8601


async def test_fit_and_apply_as_jobs_answer_what_sync_answers(client, institution, pool, trace_id):
    z = embedding()
    submitted = await client.post(
        FIT,
        headers={**institution.headers, "X-Request-ID": trace_id},
        json={"embedding": z, "params": {"k_nn": 5, "weight": "gaussian", "engine": "real_qac"}},
    )
    assert submitted.status_code == 200, submitted.text
    job = submitted.json()
    assert_job_shape(job, "fit")
    assert job["status"] == "queued" and job["result"] is None and uuid.UUID(job["model_id"])
    [row] = await audit_rows(pool, trace_id)  # the submission's row, committed with the job
    assert await pool.fetchval("SELECT trace_id FROM jobs WHERE id = $1", uuid.UUID(job["id"])) == trace_id
    assert row["metadata"]["status_code"] == 200

    done = await poll(client, institution, job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == 1 and done["error"] is None and done["model_id"] == job["model_id"]
    sync = await fit_sync(client, institution, z, k_nn=5, weight="gaussian", engine="real_qac")
    without_time = lambda meta: {k: v for k, v in meta.items() if k != "runtime_ms"}  # noqa: E731
    assert done["result"]["model_id"] == job["model_id"] and done["result"]["status"] == "succeeded"
    assert without_time(done["result"]["meta"]) == without_time(sync["meta"])
    model = await client.get(f"/api/v1/quantum/qac/models/{job['model_id']}", headers=institution.headers)
    assert model.status_code == 200 and model.json()["engine"] == "real_qac"
    listed = await client.get(f"/api/v1/jobs/{job['id']}", headers=institution.headers)
    assert listed.status_code == 200 and listed.json()["type"] == "qac_fit"

    applied = await client.post(APPLY, headers=institution.headers, json={"model_id": job["model_id"], "embedding": z})
    assert applied.status_code == 200, applied.text
    assert_job_shape(applied.json(), "apply")
    done = await poll(client, institution, applied.json()["id"])
    assert done["status"] == "succeeded", done
    sync_apply = await client.post(
        APPLY, headers=institution.headers, json={"model_id": job["model_id"], "embedding": z, "sync": True}
    )
    assert done["result"] == sync_apply.json()
    assert done["result"]["fallback_reason"] == "real_qac is not available in this service"
    # /api/v1/jobs shows the answer but for Z*, which is stored apart from the job's result.
    general = (await client.get(f"/api/v1/jobs/{done['id']}", headers=institution.headers)).json()
    assert general["result"] == {k: v for k, v in done["result"].items() if k != "embedding_qac"}


async def test_another_institutions_job_is_not_found(client, institution, other_institution):
    job = (await client.post(FIT, headers=institution.headers, json={"embedding": embedding(), "sync": False})).json()
    for who, status in ((other_institution, 404), (institution, 200)):
        response = await client.get(f"/api/v1/quantum/qac/jobs/{job['id']}", headers=who.headers)
        assert response.status_code == status, response.text
    assert_problem(await client.get("/api/v1/quantum/qac/jobs/nope", headers=institution.headers), 404)
    await poll(client, institution, job["id"])  # leave no job running behind the test


async def test_a_job_is_refused_up_front_for_what_sync_would_refuse(client, institution, pool):
    fitted = await fit_sync(client, institution, embedding())
    before = await pool.fetchval("SELECT count(*) FROM jobs WHERE institution_id = $1", institution.id)
    short = await client.post(
        APPLY, headers=institution.headers, json={"model_id": fitted["model_id"], "embedding": embedding()[:-1]}
    )
    assert_problem(short, 422, "/embedding")
    unknown = await client.post(
        APPLY, headers=institution.headers, json={"model_id": str(uuid.uuid4()), "embedding": embedding()}
    )
    assert_problem(unknown, 404)
    few = await client.post(FIT, headers=institution.headers, json={"embedding": [[1.0], [2.0]]})
    assert_problem(few, 422, "/params/k_nn")
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE institution_id = $1", institution.id) == before


async def test_sync_false_has_no_cell_limit_below_the_request_bounds(client, institution, settings):
    z = embedding(n_per=settings.qac_max_sync_cells // 3 + 1, dims=2)
    job = (await client.post(FIT, headers=institution.headers, json={"embedding": z, "params": {"k_nn": 3}})).json()
    assert_job_shape(job, "fit")
    done = await poll(client, institution, job["id"])
    assert done["status"] == "succeeded" and done["result"]["meta"]["n_cells"] == len(z)


async def test_a_job_whose_maths_fails_answers_failed_with_the_reason(client, institution, pool, tmp_path, settings):
    # The API refuses such a fit up front; a job submitted by other means still fails in plain words.
    from api import qac_job_types as qac_jobs
    from db import jobs
    from genomics.qac_runs import FitParams

    path = tmp_path / "input.npy"
    qac_jobs.write_fit_input(path, np.zeros((3, 2)))
    params = qac_jobs.fit_params_json(uuid.uuid4(), FitParams(k_nn=5), None)
    async with pool.acquire() as conn, conn.transaction():
        job = await jobs.submit(
            conn, institution.id, qac_jobs.FIT, params, trace_id="test-qac-fail", max_attempts=1, input_file=path
        )
    done = await poll(client, institution, str(job["id"]))
    assert done["status"] == "failed" and done["result"] is None
    assert "k_nn must be at least 1 and less than the number of cells (3)" in done["error"]
    missing = await client.get(f"/api/v1/quantum/qac/models/{params['model_id']}", headers=institution.headers)
    assert_problem(missing, 404)
