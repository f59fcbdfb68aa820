"""QAC fit and apply from parsed input to the model to store and the answer's content: pure (no IO),
shared by the sync requests and the jobs' child processes, so both answer exactly the same."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from db.qac_models import Model
from genomics import qac

FALLBACK_REASON = "real_qac is not available in this service"
ROWS_PER_CHUNK = 512  # ~16,000 numbers at 32 dimensions: a few ms of serialising between GIL releases


@dataclass(frozen=True)
class FitParams:
    """A fit's parameters as the API takes them (api/schemas/qac.py QacParams gives their bounds)."""

    k_nn: int = 15
    weight: str = "binary"
    sigma: float | None = None
    reinforce_rate: float = 0.05  # fed only the original's unavailable engine; stored and shown
    layers: int = 50  # likewise
    beta: float = 0.7
    lambda_entropy: float = 0.05
    engine: str = "laplace"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def fallback_reason(engine: str) -> str | None:
    """The original's honest fallback: real_qac is accepted, and laplace answers it."""
    return FALLBACK_REASON if engine == "real_qac" else None


def fit_model(model_id: uuid.UUID, z0: np.ndarray, params: FitParams) -> tuple[Model, dict[str, Any]]:
    """The model a fit stores and its FitResult content; qac.EmbeddingError when Z₀ cannot be fitted."""
    started = time.perf_counter()
    graph = qac.fit(z0, params.k_nn, params.weight, params.sigma)
    model = Model(
        id=model_id,
        engine=params.engine,
        k_nn=params.k_nn,
        weight=params.weight,
        sigma=graph.sigma,
        reinforce_rate=params.reinforce_rate,
        layers=params.layers,
        beta=params.beta,
        lambda_entropy=params.lambda_entropy,
        n_cells=graph.n_cells,
        dims=int(z0.shape[1]),
        indptr=graph.indptr,
        indices=graph.indices,
        weights=graph.weights,
    )
    meta = {
        "n_cells": graph.n_cells,
        "dims": model.dims,
        "k_nn": params.k_nn,
        "weight": params.weight,
        "sigma": graph.sigma,
        "edges": int(graph.weights.size),
        "engine": params.engine,
        "engine_used": "laplace",
        "fallback_reason": fallback_reason(params.engine),
        "runtime_ms": _ms(started),
    }
    return model, {"status": "succeeded", "model_id": str(model_id), "meta": meta}


def graph_of(model: Model) -> qac.Graph:
    return qac.Graph(model.n_cells, model.indptr, model.indices, model.weights, model.sigma)


def apply_model(model: Model, z0: np.ndarray) -> dict[str, Any]:
    """The ApplyResult content of smoothing Z₀ over the model's stored graph, embedding_qac as an array
    (apply_json writes it); qac.RowCountMismatch when Z₀ has another number of cells."""
    graph = graph_of(model)
    smoothed = qac.smooth(graph, z0, model.beta, model.lambda_entropy)
    return {
        "status": "succeeded",
        "model_id": str(model.id),
        "embedding_qac": smoothed,
        "metrics": qac.metrics(graph, z0, smoothed),
        "n_cells": graph.n_cells,
        "engine_used": "laplace",
        "fallback_reason": fallback_reason(model.engine),
    }


def rows_json(z: np.ndarray) -> str:
    """A matrix as a JSON array of rows, serialised a few hundred rows at a time: one json.dumps of
    a 30 MB answer is one C call holding the GIL, so the service's event loop, for a second."""
    chunks = (
        json.dumps(z[i : i + ROWS_PER_CHUNK].tolist(), allow_nan=False)[1:-1] for i in range(0, len(z), ROWS_PER_CHUNK)
    )
    return "[" + ",".join(chunks) + "]"


def apply_json(result: dict[str, Any]) -> str:
    """The ApplyResult content as JSON text."""
    head = json.dumps({**result, "embedding_qac": None}, allow_nan=False, separators=(",", ":"))
    return head.replace('"embedding_qac":null', '"embedding_qac":' + rows_json(result["embedding_qac"]), 1)
