"""The original service's Python client, replayed: each call it makes, with the body it sends, and
every answer validated against models mirroring the ones that client validates with."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import pytest
from pydantic import AfterValidator, BaseModel, StrictInt, StrictStr

from tests.test_genomics_api import dataset


def _iso_8601(value: str) -> str:
    datetime.fromisoformat(value)  # raises ValueError (a validation error) unless it is ISO 8601
    return value


IsoTime = Annotated[StrictStr, AfterValidator(_iso_8601)]


# The client's own shapes: what it reads from each answer, and nothing else (unknown keys it ignores).
class ClientHealth(BaseModel):
    status: StrictStr


class ClientUsage(BaseModel):
    requests_made: StrictInt
    reset_time: IsoTime


class ClientCompressed(BaseModel):
    compressed_matrix: list[list[float]]
    metadata: list[dict[str, Any]] | None = None


class ClientError(BaseModel):
    detail: StrictStr


def original_compress_body(cells: int = 30) -> dict[str, Any]:
    """What the client's genomics.compress sends: no compression_target, and one metadata object per cell."""
    genes, rows, metadata = dataset(per_type=cells // 3)
    return {"gene_names": genes, "expression_matrix": rows, "cell_metadata": metadata}


async def test_health_answers_the_clients_shape(client):
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert ClientHealth.model_validate_json(response.content).status == "healthy"


async def test_usage_answers_the_clients_names_with_the_same_values(client, institution):
    for expected_count in (1, 2):
        response = await client.get("/api/v1/usage", headers=institution.headers)
        assert response.status_code == 200
        usage = ClientUsage.model_validate_json(response.content)
        body = response.json()
        # The old names are the new values under another name, not a second count.
        assert usage.requests_made == body["used"] == expected_count
        assert usage.reset_time == body["reset_at"]
        assert datetime.fromisoformat(usage.reset_time).utcoffset().total_seconds() == 0  # UTC


async def test_compress_takes_the_clients_body_and_keeps_its_metadata(client, institution):
    body = original_compress_body()
    response = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
    assert response.status_code == 200, response.text
    answer = ClientCompressed.model_validate_json(response.content)
    assert len(answer.compressed_matrix) == len(body["expression_matrix"])
    assert answer.metadata == body["cell_metadata"]  # row for row, as sent
    # compression_target absent: 32, the original's default (the 0.9 EVR target may stop earlier).
    stats = response.json()["stats"]
    assert stats["requested_dimensions"] == 32 and 1 <= stats["achieved_dimensions"] <= 32


async def test_compress_without_cell_metadata_answers_no_metadata(client, institution):
    body = original_compress_body()
    del body["cell_metadata"]
    response = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
    assert response.status_code == 200, response.text
    assert "metadata" not in response.json()
    assert ClientCompressed.model_validate_json(response.content).metadata is None


async def test_null_cell_metadata_items_come_back_as_empty_objects(client, institution):
    body = original_compress_body(cells=6)
    body["cell_metadata"][2] = None
    response = await client.post("/api/v1/genomics/compress", headers=institution.headers, json=body)
    assert response.status_code == 200, response.text
    assert ClientCompressed.model_validate_json(response.content).metadata[2] == {}


@pytest.mark.parametrize(
    "method, path, auth, content_type, content, status",
    [
        ("GET", "/api/v1/usage", "Bearer donr_not-a-real-token", None, None, 401),
        ("GET", "/api/v1/usage", None, None, None, 401),
        ("GET", "/api/v1/usage", "Bearer 3f9a1c0e-an-old-format-token", None, None, 401),
        ("GET", "/api/v1/genomics/projects/no-such-project", "token", None, None, 404),
        ("POST", "/api/v1/genomics/compress", "token", None, b'{"gene_names": ["A"', 400),
        (
            "POST",
            "/api/v1/genomics/compress",
            "token",
            None,
            b'{"gene_names": ["A"], "expression_matrix": [[-1]]}',
            422,
        ),
        ("POST", "/api/v1/genomics/compress", "token", "text/plain", b"{}", 415),
    ],
)
async def test_errors_carry_a_string_detail_the_client_can_show(
    client, institution, method, path, auth, content_type, content, status
):
    # The client raises with the answer's `detail`; a list or object there (FastAPI's 422) would break it.
    headers = dict(institution.headers) if auth == "token" else {"Authorization": auth} if auth else {}
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.request(method, path, headers=headers, content=content)
    assert response.status_code == status, response.text
    assert ClientError.model_validate_json(response.content).detail


# QAC: the client's fit (sync, and async polled to succeeded), get_model and apply (sync and async).
class ClientFitDone(BaseModel):
    status: StrictStr
    model_id: StrictStr
    meta: dict[str, Any]


class ClientJob(BaseModel):
    id: StrictStr
    type: StrictStr
    status: StrictStr
    progress: float
    model_id: StrictStr | None = None
    result: dict[str, Any] | None = None
    error: StrictStr | dict[str, Any] | None = None
    created_at: IsoTime
    updated_at: IsoTime


class ClientQacMetrics(BaseModel):
    psi_fidelity: float
    coherence_gain: float


class ClientApplied(BaseModel):
    status: StrictStr
    model_id: StrictStr
    embedding_qac: list[list[float]]
    metrics: ClientQacMetrics
    n_cells: StrictInt
    engine_used: StrictStr
    fallback_reason: StrictStr | None = None


class ClientModel(BaseModel):
    model_id: StrictStr
    n_cells: StrictInt
    k_nn: StrictInt
    weight: StrictStr
    reinforce_rate: float
    layers: StrictInt
    beta: float
    lambda_entropy: float
    created_at: IsoTime
    version: StrictStr | StrictInt
    engine: StrictStr


def noisy_clusters(per: int = 10, dims: int = 4) -> list[list[float]]:
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 5, size=(3, dims))
    return [(centre + rng.normal(0, 1, dims)).tolist() for centre in centres for _ in range(per)]


async def poll_job(client, institution, job_id: str) -> ClientJob:
    """The client's wait loop on GET /api/v1/quantum/qac/jobs/{id}; bounded only to catch a hang."""
    for _ in range(600):
        response = await client.get(f"/api/v1/quantum/qac/jobs/{job_id}", headers=institution.headers)
        assert response.status_code == 200, response.text
        job = ClientJob.model_validate_json(response.content)
        if job.status in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


async def test_qac_fit_get_model_and_apply_as_the_client_calls_them(client, institution):
    z = noisy_clusters()
    params = {"k_nn": 5, "weight": "gaussian", "beta": 0.7, "lambda_entropy": 0.05, "engine": "real_qac"}
    fit = await client.post(
        "/api/v1/quantum/qac/fit", headers=institution.headers, json={"embedding": z, "params": params, "sync": True}
    )
    assert fit.status_code == 200, fit.text
    fitted = ClientFitDone.model_validate_json(fit.content)
    assert fitted.status == "succeeded"

    got = await client.get(f"/api/v1/quantum/qac/models/{fitted.model_id}", headers=institution.headers)
    assert got.status_code == 200, got.text
    model = ClientModel.model_validate_json(got.content)
    assert (model.model_id, model.n_cells, model.k_nn, model.weight) == (fitted.model_id, len(z), 5, "gaussian")

    apply = await client.post(
        "/api/v1/quantum/qac/apply",
        headers=institution.headers,
        json={"model_id": fitted.model_id, "embedding": z, "sync": True},
    )
    assert apply.status_code == 200, apply.text
    applied = ClientApplied.model_validate_json(apply.content)
    assert applied.n_cells == len(z) and len(applied.embedding_qac) == len(z)
    assert applied.engine_used == "laplace" and applied.fallback_reason == "real_qac is not available in this service"
    assert 0 < applied.metrics.psi_fidelity <= 1 and applied.metrics.coherence_gain > 0


async def test_qac_fit_and_apply_as_jobs_polled_to_succeeded(client, institution):
    z = noisy_clusters()
    submitted = await client.post(
        "/api/v1/quantum/qac/fit", headers=institution.headers, json={"embedding": z, "params": {"k_nn": 4}}
    )
    assert submitted.status_code == 200, submitted.text
    job = ClientJob.model_validate_json(submitted.content)
    assert job.type == "fit" and job.status in ("queued", "running")
    done = await poll_job(client, institution, job.id)
    assert done.status == "succeeded", done
    fitted = ClientFitDone.model_validate(done.result)
    assert fitted.model_id == job.model_id

    submitted = await client.post(
        "/api/v1/quantum/qac/apply", headers=institution.headers, json={"model_id": fitted.model_id, "embedding": z}
    )
    assert submitted.status_code == 200, submitted.text
    job = ClientJob.model_validate_json(submitted.content)
    assert job.type == "apply"
    done = await poll_job(client, institution, job.id)
    assert done.status == "succeeded", done
    applied = ClientApplied.model_validate(done.result)
    assert applied.model_id == fitted.model_id and len(applied.embedding_qac) == len(z)
