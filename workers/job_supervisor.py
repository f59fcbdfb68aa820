"""Runs one claimed job's child process: relays its progress, renews the lease every lease/3, kills
the child when a cancel is requested, the lease is lost or the runner stops, and says how it ended."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from db import jobs
from db.jobs import ClaimedJob
from db.pool import UNAVAILABLE_ERRORS, lend
from workers import job_process
from workers.job_types import JobOutput, JobType

TICK_SECONDS = 0.1  # how often the parent looks at its child's pipe
PROGRESS_WRITE_SECONDS = 1.0  # progress reaches the database at most this often
KILL_WAIT_SECONDS = 5.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ended:
    """How a child ended: `outcome` is succeeded, failed or cancelled (the runner stores it), or lost
    (the lease went to someone else) or stopped (the runner is shutting down): nothing to store."""

    outcome: str
    output: JobOutput | None = None
    error: str | None = None
    peak_rss_bytes: int | None = None


@dataclass
class Lease:
    pool: asyncpg.Pool
    worker: str
    seconds: float
    acquire_timeout: float


async def supervise(
    job: ClaimedJob, job_type: JobType, input_path: Path | None, workdir: Path, lease: Lease, stopping: asyncio.Event
) -> Ended:
    output_dir = workdir / "output"
    output_dir.mkdir()
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=job_process.main,
        args=(job_type.child, None if input_path is None else str(input_path), job.params, str(output_dir), writer),
        kwargs={"parent_pid": os.getpid()},
        name=f"job-{job.id}",
        daemon=True,
    )
    try:
        await asyncio.to_thread(process.start)
        writer.close()  # the child holds the only write end: EOF on the reader means it is gone
        return await _watch(job, process, reader, output_dir, lease, stopping)
    finally:
        if process.is_alive():
            process.kill()
        if process.pid is not None:
            await asyncio.to_thread(process.join, KILL_WAIT_SECONDS)
        reader.close()


async def _watch(job, process, reader, output_dir: Path, lease: Lease, stopping: asyncio.Event) -> Ended:
    progress, written = 0.0, -1.0
    beat_every = lease.seconds / 3
    next_beat = time.monotonic() + beat_every
    last_write = 0.0
    while True:
        alive = process.is_alive()  # looked at before the pipe, so a last message is never missed
        messages = _drain(reader)
        for kind, *payload in messages or ():
            if kind == "progress":
                progress = payload[0]
            elif kind == "done":
                return Ended("succeeded", JobOutput(payload[0], output_dir, payload[1]), peak_rss_bytes=payload[1])
            elif kind == "failed":
                return Ended("failed", error=payload[0], peak_rss_bytes=payload[1])
        if messages is None or not alive:
            await asyncio.to_thread(process.join, KILL_WAIT_SECONDS)
            return Ended("failed", error=_exit_error(process.exitcode))
        if stopping.is_set():
            return Ended("stopped")
        now = time.monotonic()
        if now >= next_beat or (progress != written and now - last_write >= PROGRESS_WRITE_SECONDS):
            try:
                async with lend(lease.pool, lease.acquire_timeout) as conn:
                    cancel = await jobs.heartbeat(conn, job.id, lease.worker, lease.seconds, progress)
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                # The child goes on; the lease has two more beats before it runs out.
                log.warning("job %s: heartbeat failed (%s); retrying", job.id, type(exc).__name__)
                next_beat = now + min(1.0, beat_every)
            else:
                if cancel is None:
                    log.warning("job %s: its lease was lost (reaped after it ran out); stopping it", job.id)
                    return Ended("lost")
                if cancel:
                    return Ended("cancelled")
                written, last_write, next_beat = progress, now, now + beat_every
        await asyncio.sleep(TICK_SECONDS)


def _drain(reader) -> list | None:
    """Every message waiting on the pipe; None once the child's end is closed and nothing is left."""
    messages = []
    try:
        while reader.poll():
            messages.append(reader.recv())
    except (EOFError, OSError):
        return messages or None
    return messages


def _exit_error(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        # -9 is most often the kernel's out-of-memory killer.
        return f"the job's process was killed by signal {-exitcode} (out of memory?)"
    return f"the job's process exited unexpectedly (exit code {exitcode})"
