"""QAC jobs as the original service showed them, read through the jobs table (db/jobs.py owns it),
and the smoothed embeddings of apply jobs (float64 little-endian bytea)."""

from __future__ import annotations

import uuid

import asyncpg
import numpy as np

from db import sql

GET_QAC_JOB = sql.statement("get_qac_job")
INSERT_QAC_APPLY_OUTPUT = sql.statement("insert_qac_apply_output")
GET_QAC_APPLY_OUTPUT = sql.statement("get_qac_apply_output")
FLOAT64 = np.dtype("<f8")


async def get(conn: asyncpg.Connection, institution_id: int, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await sql.fetchrow(conn, GET_QAC_JOB, job_id, institution_id)


async def insert_output(conn: asyncpg.Connection, job_id: uuid.UUID, embedding: np.ndarray) -> None:
    n_cells, dims = embedding.shape
    await sql.execute(conn, INSERT_QAC_APPLY_OUTPUT, job_id, n_cells, dims, embedding.astype(FLOAT64).tobytes())


async def output(conn: asyncpg.Connection, job_id: uuid.UUID) -> np.ndarray | None:
    row = await sql.fetchrow(conn, GET_QAC_APPLY_OUTPUT, job_id)
    if row is None:
        return None
    return np.frombuffer(row["embedding"], dtype=FLOAT64).reshape(row["n_cells"], row["dims"])
