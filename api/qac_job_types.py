"""The qac_fit and qac_apply job types: each a pure child function (run in its own process) and a
parent-side finish that stores its output in the runner's transaction.

Inputs travel in job_inputs as NumPy files, never in params: a fit's is the embedding (.npy,
float64, at most 5,000,000 values = 40 MB); an apply's is an .npz holding the embedding and the
model's graph arrays, copied from the model when the job was submitted (the child touches no
database). params hold only the model id and the fit's parameters. An apply's smoothed embedding
is stored apart from the job's result, in qac_apply_outputs.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from db import qac_jobs, qac_models
from db.jobs import ClaimedJob
from db.qac_models import Model
from genomics import qac
from genomics.qac_runs import FitParams, apply_model, fit_model
from workers.job_types import JobFailed, JobOutput, JobType

FIT, APPLY = "qac_fit", "qac_apply"
GRAPH_ARRAYS = ("indptr", "indices", "weights")
SMOOTHED_FILE = "embedding_qac.npy"


def write_fit_input(path: Path, embedding: np.ndarray) -> None:
    with open(path, "wb") as file:
        np.save(file, np.ascontiguousarray(embedding, dtype=np.float64), allow_pickle=False)


def write_apply_input(path: Path, embedding: np.ndarray, model: Model) -> None:
    with open(path, "wb") as file:
        np.savez(file, embedding=embedding, indptr=model.indptr, indices=model.indices, weights=model.weights)


def fit_params_json(model_id: uuid.UUID, params: FitParams, seed: int | None) -> dict[str, Any]:
    return {"model_id": str(model_id), "params": params.to_json(), "seed": seed}


def apply_params_json(model: Model, seed: int | None) -> dict[str, Any]:
    """The stored model's parameters: the child rebuilds the Model from them and the input's arrays."""
    fields = ("engine", "k_nn", "weight", "sigma", "reinforce_rate", "layers", "beta", "lambda_entropy")
    return {
        "model_id": str(model.id),
        "model": {**{f: getattr(model, f) for f in fields}, "n_cells": model.n_cells, "dims": model.dims},
        "seed": seed,
    }


def fit_child(input_path: Path | None, params: dict, output_dir: Path, progress) -> dict:
    """Fit the graph; its arrays go to output_dir, the answer's content back to the parent."""
    z0 = np.load(input_path, allow_pickle=False)
    progress(0.05)
    try:
        model, result = fit_model(uuid.UUID(params["model_id"]), z0, FitParams(**params["params"]))
    except qac.EmbeddingError as exc:
        raise JobFailed(str(exc)) from None
    for name in GRAPH_ARRAYS:
        np.save(output_dir / f"{name}.npy", getattr(model, name), allow_pickle=False)
    progress(0.95)
    return {"result": result, "sigma": model.sigma, "n_cells": model.n_cells, "dims": model.dims}


async def store_fit(conn: asyncpg.Connection, job: ClaimedJob, output: JobOutput) -> dict:
    """Insert the fitted model (its id chosen at submission); the job's result is the sync answer."""
    params, value = FitParams(**job.params["params"]), output.value
    arrays = await asyncio.to_thread(
        lambda: {name: np.load(output.directory / f"{name}.npy", allow_pickle=False) for name in GRAPH_ARRAYS}
    )
    model = Model(
        id=uuid.UUID(job.params["model_id"]),
        engine=params.engine,
        k_nn=params.k_nn,
        weight=params.weight,
        sigma=value["sigma"],
        reinforce_rate=params.reinforce_rate,
        layers=params.layers,
        beta=params.beta,
        lambda_entropy=params.lambda_entropy,
        n_cells=value["n_cells"],
        dims=value["dims"],
        **arrays,
    )
    await qac_models.insert(conn, job.institution_id, model)
    return value["result"]


def apply_child(input_path: Path | None, params: dict, output_dir: Path, progress) -> dict:
    """Smooth over the graph copied at submission; Z* goes to a file, the rest of the answer back."""
    with np.load(input_path, allow_pickle=False) as data:
        embedding = data["embedding"]
        model = Model(id=uuid.UUID(params["model_id"]), **params["model"], **{n: data[n] for n in GRAPH_ARRAYS})
    progress(0.1)
    try:
        result = apply_model(model, embedding)
    except qac.RowCountMismatch as exc:  # checked at submission; kept for a job submitted by other means
        raise JobFailed(str(exc)) from None
    progress(0.9)
    np.save(output_dir / SMOOTHED_FILE, result.pop("embedding_qac"), allow_pickle=False)
    return result


async def store_apply(conn: asyncpg.Connection, job: ClaimedJob, output: JobOutput) -> dict:
    """Z* goes to qac_apply_outputs as bytes, the rest of the answer into the job's result: no 30 MB
    of JSON is encoded here, nor parsed by every read (api/schemas/qac.py job_answer joins them)."""
    smoothed = await asyncio.to_thread(np.load, output.directory / SMOOTHED_FILE, allow_pickle=False)
    await qac_jobs.insert_output(conn, job.id, smoothed)
    return output.value


def job_types() -> dict[str, JobType]:
    return {
        FIT: JobType(FIT, "api.qac_job_types:fit_child", store_fit),
        APPLY: JobType(APPLY, "api.qac_job_types:apply_child", store_apply),
    }
