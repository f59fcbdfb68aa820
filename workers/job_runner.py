"""The job runner: claims queued jobs while it has a free slot (at most `concurrency` at once), runs
each in a child process (workers/job_supervisor.py), and commits each job's end, its stored result
and its audit row in one transaction. It also reaps jobs whose worker died (their lease ran out).

One runner per process, owned by the app's lifespan or by `python app.py worker`. A database outage
never stops it: it logs, and tries again at its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from db import jobs
from db.audit import insert_rows
from db.jobs import ClaimedJob
from db.pool import UNAVAILABLE_ERRORS, lend
from workers.job_audit import job_row
from workers.job_supervisor import Ended, Lease, supervise
from workers.job_types import JobFailed, JobType

POLL_SECONDS = 1.0
STORE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # a job's end is retried for ~15 s, then left to the reaper
STORE_FAILED = "the job's result could not be stored"
INTERNAL_ERROR = "the job failed with an internal error; quote the job id when reporting it"
WORKDIR_PREFIX = "don-job-"  # + job id + the runner's pid: a dead runner's directories can be told apart
log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


class JobRunner:
    """Claims and runs jobs of `types` until closed."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        types: dict[str, JobType],
        *,
        concurrency: int,
        lease_seconds: float,
        acquire_timeout: float,
        poll_seconds: float = POLL_SECONDS,
    ):
        self.pool = pool
        self.types = dict(types)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.worker = worker_name()
        self.lease = Lease(pool, self.worker, lease_seconds, acquire_timeout)
        self.running: dict[uuid.UUID, asyncio.Task] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._next_reap = 0.0

    def start(self) -> None:
        sweep_orphaned_workdirs()
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")

    def wake(self) -> None:
        """A job was just submitted in this process: look for it now rather than at the next poll."""
        self._wake.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop claiming; kill running children and give their jobs back to the queue (bounded)."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        tasks = list(self.running.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._reap_when_due()
                await self._fill()
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                log.warning(
                    "job runner: database unavailable (%s); retrying in %.0fs", type(exc).__name__, self.poll_seconds
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _reap_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_reap:
            return
        self._next_reap = now + self.lease.seconds / 3
        async with lend(self.pool, self.lease.acquire_timeout) as conn, conn.transaction():
            reaped = await jobs.reap_expired(conn)
            ended = [r for r in reaped if r["status"] != "queued"]
            if ended:
                await insert_rows(conn, [_reaped_row(r) for r in ended])
        for row in reaped:
            log.warning(
                "job %s: its worker's lease ran out (attempt %d of %d): %s",
                row["id"],
                row["attempts"],
                row["max_attempts"],
                row["status"],
            )

    async def _fill(self) -> None:
        while len(self.running) < self.concurrency and not self._stopping.is_set():
            async with lend(self.pool, self.lease.acquire_timeout) as conn:
                job = await jobs.claim(conn, self.worker, self.lease.seconds, self.types)
            if job is None:
                return
            log.info("job %s (%s): claimed, attempt %d of %d", job.id, job.type, job.attempts, job.max_attempts)
            self.running[job.id] = asyncio.create_task(self._run(job), name=f"job-{job.id}")

    async def _run(self, job: ClaimedJob) -> None:
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{job.id}-{os.getpid()}-"))
        try:
            job_type = self.types[job.type]
            if job.cancel_requested:  # asked while a previous worker held it
                ended = Ended("cancelled")
            else:
                try:
                    input_path = await self._fetch_input(job, workdir)
                except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                    log.warning("job %s: its input could not be read (%s); giving it back", job.id, type(exc).__name__)
                    await self._release(job)
                    return
                ended = await supervise(job, job_type, input_path, workdir, self.lease, self._stopping)
            if ended.outcome == "stopped":
                await self._release(job)
            elif ended.outcome != "lost":
                await self._store(job, job_type, ended, started)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if workdir.exists():
                log.error("job %s: could not delete its temporary directory %s", job.id, workdir)
            self.running.pop(job.id, None)
            self._wake.set()  # a slot is free

    async def _fetch_input(self, job: ClaimedJob, workdir: Path) -> Path | None:
        """Stream the job's input from job_inputs to a file for the child; None when it has none."""
        path, chunks = workdir / "input", 0
        async with lend(self.pool, self.lease.acquire_timeout) as conn:
            with open(path, "wb") as file:
                async for data in jobs.input_chunks(conn, job.id):
                    file.write(data)
                    chunks += 1
        return path if chunks else None

    async def _release(self, job: ClaimedJob) -> None:
        try:
            async with lend(self.pool, self.lease.acquire_timeout) as conn:
                await jobs.release(conn, job.id, self.worker)
            log.info("job %s: given back to the queue", job.id)
        except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("job %s: could not give it back (%s); its lease will run out", job.id, type(exc).__name__)

    async def _store(self, job: ClaimedJob, job_type: JobType, ended: Ended, started: float) -> None:
        """Commit the job's end; retried through a short outage, then left for its lease to run out."""
        for delay in STORE_RETRY_DELAYS:
            try:
                async with lend(self.pool, self.lease.acquire_timeout) as conn:
                    await self._commit(conn, job, job_type, ended, started)
                return
            except UNAVAILABLE_ERRORS as exc:
                log.warning("job %s: could not record its end (%s); retrying", job.id, type(exc).__name__)
                await asyncio.sleep(delay)
        log.error("job %s: its end could not be recorded; it will be retried when its lease runs out", job.id)

    async def _commit(self, conn, job: ClaimedJob, job_type: JobType, ended: Ended, started: float) -> None:
        if ended.outcome == "succeeded":
            try:
                async with conn.transaction():
                    result = await job_type.finish(conn, job, ended.output)
                    if not await self._end(conn, job, ended, started, result=result):
                        raise _LeaseLost
                return
            except _LeaseLost:
                log.warning("job %s: its lease was lost before its result was stored; dropped", job.id)
                return
            except UNAVAILABLE_ERRORS:
                raise
            except JobFailed as exc:
                ended = Ended("failed", error=str(exc)[:2000] or STORE_FAILED, peak_rss_bytes=ended.peak_rss_bytes)
            except asyncpg.PostgresError as exc:
                log.error("job %s: storing its result failed: %s", job.id, type(exc).__name__)
                ended = Ended("failed", error=STORE_FAILED, peak_rss_bytes=ended.peak_rss_bytes)
            except Exception:  # noqa: BLE001 - a bug in a finish hook must fail its job, not stop the runner
                log.exception("job %s: its %s finish raised", job.id, job.type)
                ended = Ended("failed", error=INTERNAL_ERROR, peak_rss_bytes=ended.peak_rss_bytes)
        async with conn.transaction():
            await self._end(conn, job, ended, started)
        log.info("job %s (%s): %s%s", job.id, job.type, ended.outcome, f": {ended.error}" if ended.error else "")

    async def _end(self, conn, job: ClaimedJob, ended: Ended, started: float, result: dict | None = None) -> bool:
        if await jobs.finish(conn, job.id, self.worker, ended.outcome, result, ended.error) is None:
            return False
        row = job_row(
            job_id=job.id,
            job_type=job.type,
            institution=job.institution,
            outcome=ended.outcome,
            attempt=job.attempts,
            submitted_trace_id=job.trace_id,
            worker=self.worker,
            duration_ms=round((time.monotonic() - started) * 1000),
            error=ended.error,
            peak_rss_bytes=ended.peak_rss_bytes,
        )
        await insert_rows(conn, [row])
        return True


def sweep_orphaned_workdirs() -> None:
    """Delete the temporary directories of runners on this machine that were killed (kill -9 leaves
    no `finally`); their jobs are retried from the database."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        rest = path.name[len(WORKDIR_PREFIX) + 36 :].split("-")  # after the job's uuid: -<pid>-<random>
        if len(rest) < 3 or not rest[1].isdigit():
            continue
        if int(rest[1]) != os.getpid() and not _alive(int(rest[1])):
            shutil.rmtree(path, ignore_errors=True)
            log.info("deleted %s, left by a runner that is gone", path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class _LeaseLost(Exception):
    """The job was reaped from under this worker: roll its result back."""


def _reaped_row(row) -> object:
    duration = None
    if row["started_at"] is not None and row["finished_at"] is not None:
        duration = round((row["finished_at"] - row["started_at"]).total_seconds() * 1000)
    return job_row(
        job_id=row["id"],
        job_type=row["type"],
        institution=row["institution"],
        outcome=row["status"],
        attempt=row["attempts"],
        submitted_trace_id=row["trace_id"],
        worker=None,
        duration_ms=duration,
        error=row["error"],
    )
