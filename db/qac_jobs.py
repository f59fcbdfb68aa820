"""QAC jobs as the original service showed them: read through the jobs table (db/jobs.py owns it)."""

from __future__ import annotations

import uuid

import asyncpg

from db import sql

GET_QAC_JOB = sql.statement("get_qac_job")


async def get(conn: asyncpg.Connection, institution_id: int, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await sql.fetchrow(conn, GET_QAC_JOB, job_id, institution_id)
