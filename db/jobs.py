"""Durable jobs: submit (with the input file, in the caller's transaction), read, list, cancel, and
the worker's side: claim, heartbeat, finish, release and reap expired leases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from db import sql

SUBMIT_JOB = sql.statement("submit_job")
GET_JOB = sql.statement("get_job")
JOBS_PAGE = sql.statement("jobs_page")
CANCEL_JOB = sql.statement("cancel_job")
CLAIM_JOB = sql.statement("claim_job")
HEARTBEAT_JOB = sql.statement("heartbeat_job")
FINISH_JOB = sql.statement("finish_job")
RELEASE_JOB = sql.statement("release_job")
REAP_EXPIRED_JOBS = sql.statement("reap_expired_jobs")
DELETE_JOB_INPUTS = sql.statement("delete_job_inputs")
JOB_INPUT_CHUNK = sql.statement("job_input_chunk")

CHUNK_BYTES = 1024 * 1024  # one job_inputs row: small enough to stream, large enough to be few
ENDED = ("succeeded", "failed", "cancelled")
WORKER_LOST = (
    "worker lost: the job's worker stopped renewing its lease (the process died or lost the database) "
    "and no attempts remain"
)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds by its lease: what the runner needs to run, finish and audit it."""

    id: uuid.UUID
    type: str
    params: dict
    project_id: str | None
    attempts: int
    max_attempts: int
    trace_id: str
    cancel_requested: bool
    institution_id: int
    institution: str  # the slug, as audit rows name institutions


async def submit(
    conn: asyncpg.Connection,
    institution_id: int,
    job_type: str,
    params: dict,
    *,
    trace_id: str,
    max_attempts: int,
    project_id: str | None = None,
    input_file: Path | None = None,
    copy_timeout: float | None = None,
) -> asyncpg.Record:
    """Queue a job, with `input_file` copied into job_inputs in ~1 MiB chunks; run it inside the
    submitting request's transaction, so the job, its input and the request's audit row commit together.
    A second active job of the same type and project raises asyncpg.UniqueViolationError. The COPY of
    a large file may need longer than one ordinary statement: `copy_timeout` (None: the pool's)."""
    job = await sql.fetchrow(conn, SUBMIT_JOB, institution_id, job_type, params, project_id, max_attempts, trace_id)
    if input_file is not None:
        await conn.copy_records_to_table(
            "job_inputs",
            records=_chunks(job["id"], input_file),
            columns=("job_id", "seq", "data"),
            timeout=copy_timeout,
        )
    return job


async def _chunks(job_id: uuid.UUID, path: Path) -> AsyncIterator[tuple]:
    # Read one chunk at a time: the file may be gigabytes, memory holds a few MiB of it.
    with open(path, "rb") as file:
        seq = 0
        while data := file.read(CHUNK_BYTES):
            yield (job_id, seq, data)
            seq += 1


async def get(conn: asyncpg.Connection, institution_id: int, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await sql.fetchrow(conn, GET_JOB, job_id, institution_id)


async def page(
    conn: asyncpg.Connection, institution_id: int, cursor: tuple[datetime, uuid.UUID] | None, limit: int
) -> list:
    after_time, after_id = cursor or (None, None)
    return await sql.fetch(conn, JOBS_PAGE, institution_id, after_time, after_id, limit)


async def request_cancel(conn: asyncpg.Connection, institution_id: int, job_id: uuid.UUID) -> asyncpg.Record | None:
    """Cancel a queued job at once (its inputs go with it) or ask a running one's worker to stop it;
    None when the job is not the institution's or has already ended (the caller tells which apart)."""
    async with conn.transaction():
        job = await sql.fetchrow(conn, CANCEL_JOB, job_id, institution_id)
        if job is not None and job["status"] == "cancelled":
            await sql.execute(conn, DELETE_JOB_INPUTS, job_id)
    return job


async def claim(conn: asyncpg.Connection, worker: str, lease_seconds: float, types: Iterable[str]) -> ClaimedJob | None:
    """Take the oldest queued job of one of `types`, leased to `worker`; None when there is none."""
    row = await sql.fetchrow(conn, CLAIM_JOB, worker, lease_seconds, list(types))
    return None if row is None else ClaimedJob(**dict(row))


async def input_chunks(conn: asyncpg.Connection, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The job's input file, chunk by chunk (one round trip each, so memory holds one chunk)."""
    seq = 0
    while (data := await sql.fetchval(conn, JOB_INPUT_CHUNK, job_id, seq)) is not None:
        yield data
        seq += 1


async def heartbeat(
    conn: asyncpg.Connection, job_id: uuid.UUID, worker: str, lease_seconds: float, progress: float
) -> bool | None:
    """Renew the lease and record progress; True if a cancel was requested, None if the lease is lost."""
    return await sql.fetchval(conn, HEARTBEAT_JOB, job_id, worker, lease_seconds, progress)


async def finish(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    worker: str,
    status: str,
    result: dict | None = None,
    error: str | None = None,
) -> asyncpg.Record | None:
    """End a job this worker holds and drop its inputs, in the caller's transaction; None if the lease is lost."""
    if status not in ENDED:
        raise ValueError(f"a job ends as one of {ENDED}, not {status!r}")
    row = await sql.fetchrow(conn, FINISH_JOB, job_id, worker, status, result, error)
    if row is not None:
        await sql.execute(conn, DELETE_JOB_INPUTS, job_id)
    return row


async def release(conn: asyncpg.Connection, job_id: uuid.UUID, worker: str) -> bool:
    """Give a held job back to the queue without counting the attempt; False if it was no longer ours."""
    return await sql.fetchval(conn, RELEASE_JOB, job_id, worker) is not None


async def reap_expired(conn: asyncpg.Connection) -> list:
    """Requeue or fail running jobs whose lease ran out; returns them (status queued, failed or cancelled)."""
    return await sql.fetch(conn, REAP_EXPIRED_JOBS, WORKER_LOST)
