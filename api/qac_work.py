"""QAC fit and apply from parsed input to the model to store and the answer's content: pure (no IO),
shared by the sync requests and the jobs, so both answer exactly the same."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from api.problems import InvalidInput
from api.schemas.qac import FALLBACK_REASON, QacParams
from db.qac_models import Model
from genomics import qac


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def fallback_reason(engine: str) -> str | None:
    """The original's honest fallback: real_qac is accepted, and laplace answers it."""
    return FALLBACK_REASON if engine == "real_qac" else None


def fit_model(model_id: uuid.UUID, z0: np.ndarray, params: QacParams) -> tuple[Model, dict[str, Any]]:
    """The model a fit stores and its FitResult content."""
    started = time.perf_counter()
    try:
        graph = qac.fit(z0, params.k_nn, params.weight, params.sigma)
    except qac.EmbeddingError as exc:
        raise InvalidInput("/embedding", str(exc)) from None
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
    """The ApplyResult content of smoothing Z₀ over the model's stored graph."""
    graph = graph_of(model)
    try:
        smoothed = qac.smooth(graph, z0, model.beta, model.lambda_entropy)
    except qac.RowCountMismatch as exc:
        raise InvalidInput("/embedding", str(exc)) from None
    return {
        "status": "succeeded",
        "model_id": str(model.id),
        "embedding_qac": smoothed.tolist(),
        "metrics": qac.metrics(graph, z0, smoothed),
        "n_cells": graph.n_cells,
        "engine_used": "laplace",
        "fallback_reason": fallback_reason(model.engine),
    }
