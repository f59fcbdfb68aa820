"""QAC models: a fit's parameters and its graph (CSR arrays stored as little-endian bytea)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import numpy as np

from db import sql

INSERT_QAC_MODEL = sql.statement("insert_qac_model")
GET_QAC_MODEL = sql.statement("get_qac_model")
GET_QAC_MODEL_GRAPH = sql.statement("get_qac_model_graph")
# The stored encoding (migrations/0009.qac-models.sql): fixed widths, little-endian on every machine.
INDPTR, INDICES, WEIGHTS = np.dtype("<i8"), np.dtype("<i4"), np.dtype("<f8")


@dataclass(frozen=True, eq=False)
class Model:
    """What a fit stores: its parameters, its shape and its graph's CSR arrays."""

    id: uuid.UUID
    engine: str
    k_nn: int
    weight: str
    sigma: float | None
    reinforce_rate: float
    layers: int
    beta: float
    lambda_entropy: float
    n_cells: int
    dims: int
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray


async def insert(conn: asyncpg.Connection, institution_id: int, model: Model) -> asyncpg.Record:
    """Store a fitted model; returns its id, created_at and version."""
    return await sql.fetchrow(
        conn,
        INSERT_QAC_MODEL,
        model.id,
        institution_id,
        model.engine,
        model.k_nn,
        model.weight,
        model.sigma,
        model.reinforce_rate,
        model.layers,
        model.beta,
        model.lambda_entropy,
        model.n_cells,
        model.dims,
        int(model.weights.size),
        model.indptr.astype(INDPTR).tobytes(),
        model.indices.astype(INDICES).tobytes(),
        model.weights.astype(WEIGHTS).tobytes(),
    )


async def get(conn: asyncpg.Connection, institution_id: int, model_id: uuid.UUID) -> asyncpg.Record | None:
    """A model's parameters and shape, without its graph."""
    return await sql.fetchrow(conn, GET_QAC_MODEL, model_id, institution_id)


async def get_with_graph(conn: asyncpg.Connection, institution_id: int, model_id: uuid.UUID) -> Model | None:
    """A model with its graph arrays decoded, or None when the institution has no such model."""
    row = await sql.fetchrow(conn, GET_QAC_MODEL_GRAPH, model_id, institution_id)
    if row is None:
        return None
    return Model(
        id=row["id"],
        engine=row["engine"],
        k_nn=row["k_nn"],
        weight=row["weight"],
        sigma=row["sigma"],
        reinforce_rate=row["reinforce_rate"],
        layers=row["layers"],
        beta=row["beta"],
        lambda_entropy=row["lambda_entropy"],
        n_cells=row["n_cells"],
        dims=row["dims"],
        indptr=np.frombuffer(row["graph_indptr"], dtype=INDPTR).astype(np.int64),
        indices=np.frombuffer(row["graph_indices"], dtype=INDICES).astype(np.int32),
        weights=np.frombuffer(row["graph_weights"], dtype=WEIGHTS).astype(np.float64),
    )
