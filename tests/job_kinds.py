"""Job types for the job tests only (the product registers its own in workers/job_types.py): one child
function whose params say how it behaves, and a finish that stores what it wrote. Importable in a
spawned process, like every job type's child function."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from db import jobs
from workers.job_runner import JobRunner
from workers.job_types import JobFailed, JobOutput, JobType

MAX_ATTEMPTS = 2


def echo(input_path: Path | None, params: dict, output_dir: Path, progress) -> dict:
    """Digest the input; params: steps × sleep seconds of work, pid_file to say who runs it, and
    fail / crash / exit to end badly in each way a job can."""
    if params.get("pid_file"):
        Path(params["pid_file"]).write_text(str(os.getpid()))
    data = input_path.read_bytes() if input_path is not None else b""
    steps = params.get("steps", 1)
    if params.get("slow_first") and not Path(params["slow_first"]).exists():
        Path(params["slow_first"]).touch()  # the next attempt is quick
        steps, params = 600, {**params, "sleep": 0.1}
    for step in range(steps):
        time.sleep(params.get("sleep", 0))
        progress((step + 1) / steps)
    if params.get("fail"):
        raise JobFailed(params["fail"])
    if params.get("crash"):
        raise RuntimeError("password=hunter2 in an internal detail that must not reach the caller")
    if params.get("exit") is not None:
        os._exit(params["exit"])
    digest = hashlib.sha256(data).hexdigest()
    (output_dir / "digest").write_text(digest)
    return {"bytes": len(data), "pid": os.getpid()}


async def store_echo(conn: asyncpg.Connection, job: jobs.ClaimedJob, output: JobOutput) -> dict:
    """The parent's side: reads the file the child wrote, inside the runner's transaction."""
    if job.params.get("refuse"):
        raise JobFailed(job.params["refuse"])
    digest = (output.directory / "digest").read_text()
    now = await conn.fetchval("SELECT now()")  # on the finish transaction's connection
    return {**output.value, "sha256": digest, "stored_at": now.isoformat()}


TEST_TYPE = "qac_apply"  # a name the schema allows; the test databases have no product runner
TYPES = {TEST_TYPE: JobType(TEST_TYPE, "tests.job_kinds:echo", store_echo)}


async def submit(pool: asyncpg.Pool, institution_id: int, params: dict | None = None, **kwargs) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        job = await jobs.submit(
            conn,
            institution_id,
            TEST_TYPE,
            params or {},
            trace_id=f"test-{uuid.uuid4().hex}",
            max_attempts=kwargs.pop("max_attempts", MAX_ATTEMPTS),
            **kwargs,
        )
    return job["id"]


async def job_row(pool: asyncpg.Pool, job_id: uuid.UUID) -> dict:
    return dict(await pool.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id))


async def wait_for(pool: asyncpg.Pool, job_id: uuid.UUID, *statuses: str, timeout: float = 60.0) -> dict:
    """The job's row once its status is one of `statuses` (a generous bound only catches a hang)."""
    deadline = time.monotonic() + timeout
    while True:
        row = await job_row(pool, job_id)
        if row["status"] in statuses:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is still {row['status']} after {timeout:g}s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def runner(pool: asyncpg.Pool, *, concurrency: int = 1, lease_seconds: float = 3.0, poll_seconds: float = 0.1):
    job_runner = JobRunner(
        pool,
        TYPES,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        acquire_timeout=2.0,
        poll_seconds=poll_seconds,
    )
    job_runner.start()
    try:
        yield job_runner
    finally:
        await job_runner.close()


def temp_dirs_of(job_id: uuid.UUID) -> list[Path]:
    """The runner's temporary directories of one job that are still on disk."""
    return list(Path(tempfile.gettempdir()).glob(f"don-job-{job_id}-*"))
