"""QAC requests and answers, in the original service's shapes: fit, apply, the model and the job."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, RootModel, SkipValidation

from api.body import validated
from api.problems import InvalidInput
from api.schemas.arrays import float64_rows, number_problem
from api.schemas.common import UUID_PATTERN, Answer, Body, Seed, Whole
from genomics.qac_runs import FitParams, rows_json

MAX_CELLS = 50_000
MAX_DIMENSIONS = 2000
MAX_VALUES = 5_000_000  # cells × dimensions: 50,000 × 100
Embedding = Annotated[
    SkipValidation[list[list[float]]],  # checked by the NumPy fast path (api/schemas/arrays.py)
    Field(description=f"Cells × dimensions, finite numbers; at most {MAX_CELLS} cells and {MAX_VALUES} values"),
]
ModelId = Annotated[str, Field(pattern=UUID_PATTERN, description="A model's id (a UUID)")]
Engine = Literal["real_qac", "laplace"]


class QacParams(Body):
    k_nn: Whole = Field(15, ge=1, le=128, description="Neighbours per cell in the graph; fewer than the cells")
    weight: Literal["binary", "gaussian"] = Field("binary", description="Edge weights: 1, or exp(−dist²/2σ²)")
    sigma: float | None = Field(None, gt=0, description="σ of gaussian weights; default the median k-th distance")
    reinforce_rate: float = Field(0.05, ge=0, le=1, description="Kept for compatibility; the laplace engine ignores it")
    layers: Whole = Field(50, ge=1, le=100_000, description="Kept for compatibility; the laplace engine ignores it")
    beta: float = Field(0.7, ge=0, le=10, description="β: the weight of the graph smoothness term")
    lambda_entropy: float = Field(0.05, ge=0, le=10, description="λ: the weight of the shrinkage term λ‖Z‖²")
    engine: Engine = Field("laplace", description="real_qac is accepted and answered by laplace")

    def as_params(self) -> FitParams:
        return FitParams(**self.model_dump())


Sync = Annotated[bool, Field(description="true: compute in the request (few cells); false: run as a job")]


class FitRequest(Body):
    embedding: Embedding
    params: QacParams | None = Field(None, description="Defaults as listed for each field")
    seed: Seed | None = Field(None, description="Accepted for compatibility; the laplace engine is deterministic")
    sync: Sync = False


class ApplyRequest(Body):
    model_id: ModelId
    embedding: Embedding
    seed: Seed | None = Field(None, description="Accepted for compatibility; the laplace engine is deterministic")
    sync: Sync = False


class FitMeta(Answer):
    n_cells: int = Field(description="Cells in the fitted embedding")
    dims: int = Field(description="Its dimensions")
    k_nn: int = Field(description="Neighbours per cell")
    weight: Literal["binary", "gaussian"] = Field(description="Edge weights")
    sigma: float | None = Field(description="σ the gaussian weights used; null for binary")
    edges: int = Field(description="Stored entries of the symmetrised weight matrix")
    engine: Engine = Field(description="The engine asked for")
    engine_used: Literal["laplace"] = Field(description="The engine that ran: always laplace")
    fallback_reason: str | None = Field(None, description="Why engine_used differs from engine")
    runtime_ms: float = Field(description="Time the fit took, in milliseconds")


class FitResult(Answer):
    status: Literal["succeeded"] = Field(description="Always succeeded (failures are problems)")
    model_id: str = Field(description="The model's id, for apply and GET …/models/{id}")
    meta: FitMeta = Field(description="What was fitted")


class QacMetrics(Answer):
    psi_fidelity: float = Field(description="1 − ‖Z* − Z₀‖ / ‖Z₀‖: how close the smoothed embedding stays")
    coherence_gain: float = Field(description="(E₀ − E₁) / E₀, E = tr(ZᵀLZ): the share of graph energy removed")


class ApplyResult(Answer):
    status: Literal["succeeded"] = Field(description="Always succeeded (failures are problems)")
    model_id: str = Field(description="The model applied")
    embedding_qac: list[list[float]] = Field(description="Z*, the smoothed embedding, one row per cell")
    metrics: QacMetrics = Field(description="How far the result moved and how much graph energy it lost")
    n_cells: int = Field(description="Cells smoothed")
    engine_used: Literal["laplace"] = Field(description="The engine that ran: always laplace")
    fallback_reason: str | None = Field(None, description="Why engine_used differs from the model's engine")


class QacModel(Answer):
    model_id: str = Field(description="The model's id")
    n_cells: int = Field(description="Cells it was fitted on; an apply must have as many")
    k_nn: int = Field(description="Neighbours per cell in its graph")
    weight: Literal["binary", "gaussian"] = Field(description="Its edge weights")
    reinforce_rate: float = Field(description="As given at fit; the laplace engine ignores it")
    layers: int = Field(description="As given at fit; the laplace engine ignores it")
    beta: float = Field(description="β of the smoothing")
    lambda_entropy: float = Field(description="λ of the smoothing")
    created_at: datetime = Field(description="When it was fitted (UTC)")
    version: str = Field(description="The stored model format's version")
    engine: Engine = Field(description="The engine asked for at fit")


class QacJob(Answer):
    id: str = Field(description="The job's id; poll GET /api/v1/quantum/qac/jobs/{id}")
    type: Literal["fit", "apply"] = Field(description="What the job does")
    status: Literal["queued", "running", "succeeded", "failed"] = Field(
        description="queued → running → succeeded | failed"
    )
    progress: float = Field(description="0 to 1")
    model_id: str | None = Field(description="The model fitted (chosen at submission) or applied")
    result: FitResult | ApplyResult | None = Field(description="What sync: true would have answered, once succeeded")
    error: str | None = Field(description="Why the job failed")
    created_at: datetime = Field(description="When it was submitted (UTC)")
    updated_at: datetime = Field(description="When it last changed (UTC)")


def embedding_array(rows: Any, pointer: str = "/embedding") -> np.ndarray:
    """A cells × dimensions float64 array of finite numbers, or a 422 naming the first bad element."""
    if type(rows) is not list or not rows:
        raise InvalidInput(pointer, "must be a non-empty list of rows (one per cell)")
    if len(rows) > MAX_CELLS:
        raise InvalidInput(pointer, f"has {len(rows)} cells; at most {MAX_CELLS} are allowed")
    for r, row in enumerate(rows):
        if type(row) is not list or not row:
            raise InvalidInput(f"{pointer}/{r}", "must be a non-empty list of numbers (one per dimension)")
        if len(row) != len(rows[0]):
            raise InvalidInput(
                f"{pointer}/{r}", f"ragged embedding: row 0 has {len(rows[0])} values but row {r} has {len(row)}"
            )
    dims = len(rows[0])
    if dims > MAX_DIMENSIONS or len(rows) * dims > MAX_VALUES:
        raise InvalidInput(
            pointer,
            f"has {len(rows)} × {dims} values; at most {MAX_DIMENSIONS} dimensions and {MAX_VALUES} values are allowed",
        )
    values = float64_rows(rows, lambda r, c: f"{pointer}/{r}/{c}", number_problem)
    bad = ~(np.abs(values) <= np.finfo(np.float32).max)  # NaN compares false
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise InvalidInput(f"{pointer}/{r}/{c}", number_problem(rows[r][c]) or "is out of range")
    return values


@dataclass(frozen=True, eq=False)
class Fit:
    embedding: np.ndarray
    params: FitParams
    seed: int | None
    sync: bool


@dataclass(frozen=True, eq=False)
class Apply:
    model_id: uuid.UUID
    embedding: np.ndarray
    seed: int | None
    sync: bool


def parse_fit(body: Any) -> Fit:
    request = validated(FitRequest, body)
    z = embedding_array(request.embedding)
    params = request.params or QacParams()
    if params.k_nn >= z.shape[0]:
        raise InvalidInput("/params/k_nn", f"k_nn ({params.k_nn}) must be less than the number of cells ({z.shape[0]})")
    return Fit(z, params.as_params(), request.seed, request.sync)


def parse_apply(body: Any) -> Apply:
    request = validated(ApplyRequest, body)
    return Apply(uuid.UUID(request.model_id), embedding_array(request.embedding), request.seed, request.sync)


class FitAnswer(RootModel[FitResult | QacJob]):
    """sync: true answers the fit; sync: false the job computing it."""


class ApplyAnswer(RootModel[ApplyResult | QacJob]):
    """sync: true answers the smoothed embedding; sync: false the job computing it."""


JOB_TYPES = {"qac_fit": "fit", "qac_apply": "apply"}


def job_json(row) -> dict[str, Any]:
    """A jobs row (sql/get_qac_job.sql) in the original's job shape; the original had no cancelled
    status, so a job cancelled through DELETE /api/v1/jobs/{id} shows as failed."""
    status, error = row["status"], row["error"]
    if status == "cancelled":
        status, error = "failed", error or "cancelled"
    return {
        "id": str(row["id"]),
        "type": JOB_TYPES[row["type"]],
        "status": status,
        "progress": row["progress"],
        "model_id": row["model_id"],
        "result": None,  # job_answer reads it
        "error": error,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def job_answer(row, smoothed: np.ndarray | None = None) -> bytes:
    """The job as JSON. A succeeded apply's smoothed embedding is stored apart (db/qac_jobs.py) and
    written in here a few hundred rows at a time (rows_json): at 50,000 × 32 it is 30 MB, which as
    one parse or dump would hold the GIL, and with it the event loop, for most of a second."""
    result = json.loads(row["result_json"]) if row["result_json"] is not None else None
    apply_result = result is not None and row["type"] == "qac_apply"
    if apply_result:
        if smoothed is None:
            raise RuntimeError(f"job {row['id']} succeeded but its smoothed embedding is missing")
        result = {**result, "embedding_qac": []}
    text = QacJob.model_validate({**job_json(row), "result": result}).model_dump_json()
    if apply_result:
        text = text.replace('"embedding_qac":[]', '"embedding_qac":' + rows_json(smoothed), 1)
    return text.encode()
