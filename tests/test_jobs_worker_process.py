"""Worker processes that die: a job whose worker is killed with -9 is retried by another worker (or
failed once its attempts are spent), never left running, and its child does not outlive its worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from db.jobs import WORKER_LOST
from tests.conftest import make_institution
from tests.job_kinds import submit, temp_dirs_of, wait_for

ROOT = Path(__file__).resolve().parent.parent
LEASE_SECONDS = 2


@contextmanager
def worker_process(database_url: str, log_path: Path):
    """`python -m tests.job_worker` on the job tests' database; SIGTERM (then -9) when the block ends."""
    env = {**os.environ, "DATABASE_URL": database_url, "JOB_LEASE_SECONDS": str(LEASE_SECONDS), "LOG_LEVEL": "INFO"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "tests.job_worker"], cwd=ROOT, env=env, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def _pid_in(path: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"no child wrote {path}"
        await asyncio.sleep(0.05)
    return int(path.read_text())


async def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        await asyncio.sleep(0.1)
    return False


async def _kill_worker_mid_job(jobs_database_url, jobs_pool, tmp_path, max_attempts: int):
    institution = await make_institution(jobs_pool)
    pid_file = tmp_path / "pid"
    params = {"pid_file": str(pid_file), "slow_first": str(tmp_path / "slow-once")}
    job_id = await submit(jobs_pool, institution.id, params, max_attempts=max_attempts)
    with worker_process(jobs_database_url, tmp_path / "worker-a.log") as first:
        await wait_for(jobs_pool, job_id, "running")
        child = await _pid_in(pid_file)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert await _gone(child), "the job's child outlived its killed worker"
    assert (await wait_for(jobs_pool, job_id, "running"))["attempts"] == 1  # its lease has not run out yet
    assert temp_dirs_of(job_id) != []  # kill -9 leaves no `finally`
    pid_file.unlink()
    return institution, job_id


async def test_a_killed_workers_job_is_retried_by_a_worker_started_later(jobs_database_url, jobs_pool, tmp_path):
    _, job_id = await _kill_worker_mid_job(jobs_database_url, jobs_pool, tmp_path, max_attempts=2)
    with worker_process(jobs_database_url, tmp_path / "worker-b.log") as second:
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled", timeout=60)
        second.terminate()
        assert second.wait(20) == 0  # SIGTERM: a clean stop
    assert (row["status"], row["attempts"]) == ("succeeded", 2), row["error"]
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job_id) == 0
    # The killed worker could not delete its directory; the next runner on the machine did.
    assert temp_dirs_of(job_id) == []


async def test_a_killed_workers_last_attempt_fails_as_worker_lost(jobs_database_url, jobs_pool, tmp_path):
    _, job_id = await _kill_worker_mid_job(jobs_database_url, jobs_pool, tmp_path, max_attempts=1)
    with worker_process(jobs_database_url, tmp_path / "worker-b.log"):
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled", timeout=60)
    assert (row["status"], row["error"], row["worker"]) == ("failed", WORKER_LOST, None)
    audit = await jobs_pool.fetchrow("SELECT metadata FROM audit_logs WHERE trace_id = $1", f"job-{job_id}")
    assert audit["metadata"]["outcome"] == "failed"
    assert temp_dirs_of(job_id) == []


def test_python_app_py_worker_runs_until_sigterm_and_exits_cleanly(jobs_database_url, tmp_path):
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": jobs_database_url, "LOG_LEVEL": "INFO"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "app.py", "worker"], cwd=ROOT, env=env, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while "job worker" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        process.terminate()
        assert process.wait(20) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert "stopping" in log_path.read_text()
