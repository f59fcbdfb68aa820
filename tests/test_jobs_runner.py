"""The job runner in this process, its jobs in child processes: every outcome ends the job, stores it
with its audit row, and leaves no temporary file or input behind."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from db import jobs
from db.jobs import WORKER_LOST
from tests.conftest import make_institution
from tests.job_kinds import runner, submit, temp_dirs_of, wait_for
from workers.job_process import INTERNAL_ERROR


async def _audit_of(pool, job_id) -> list[dict]:
    rows = await pool.fetch("SELECT * FROM audit_logs WHERE trace_id = $1 ORDER BY id", f"job-{job_id}")
    return [dict(r) for r in rows]


async def _inputs_left(pool, job_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) still answers signal 0.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


async def test_a_job_runs_in_a_child_process_and_its_result_is_stored_with_its_audit_row(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"cells" * 300_000)  # two chunks
    job_id = await submit(jobs_pool, institution.id, {"steps": 3}, input_file=upload)
    async with runner(jobs_pool):
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled")
    assert row["status"] == "succeeded", row["error"]
    assert row["result"]["sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert row["result"]["bytes"] == upload.stat().st_size
    assert row["result"]["pid"] != os.getpid()  # computed in a child process
    assert row["progress"] == 1 and row["finished_at"] >= row["started_at"] and row["worker"] is None
    [audit] = await _audit_of(jobs_pool, job_id)
    assert (audit["action"], audit["institution"], audit["resource_id"]) == (
        "job:qac_apply",
        institution.slug,
        str(job_id),
    )
    assert audit["metadata"]["outcome"] == "succeeded" and audit["metadata"]["duration_ms"] >= 0
    assert audit["metadata"]["submitted_trace_id"] == row["trace_id"] and audit["metadata"]["peak_rss_mib"] > 0
    assert await _inputs_left(jobs_pool, job_id) == 0
    assert temp_dirs_of(job_id) == []


@pytest.mark.parametrize(
    "params, error",
    [
        ({"fail": "gene column 'symbol' has duplicates"}, "gene column 'symbol' has duplicates"),
        ({"crash": True}, INTERNAL_ERROR),
        ({"exit": 3}, "the job's process exited unexpectedly (exit code 3)"),
        ({"refuse": "the project was deleted meanwhile"}, "the project was deleted meanwhile"),
    ],
)
async def test_a_failing_job_ends_failed_with_a_clear_error_and_leaves_nothing(jobs_pool, tmp_path, params, error):
    institution = await make_institution(jobs_pool)
    upload = tmp_path / "in"
    upload.write_bytes(b"x")
    job_id = await submit(jobs_pool, institution.id, params, input_file=upload)
    async with runner(jobs_pool):
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled")
    assert (row["status"], row["error"], row["result"]) == ("failed", error, None)
    assert "hunter2" not in row["error"] and "Traceback" not in row["error"]
    [audit] = await _audit_of(jobs_pool, job_id)
    assert audit["metadata"]["outcome"] == "failed" and audit["metadata"]["error"] == error
    assert await _inputs_left(jobs_pool, job_id) == 0
    assert temp_dirs_of(job_id) == []


async def test_cancelling_a_running_job_kills_its_child(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    pid_file = tmp_path / "pid"
    job_id = await submit(jobs_pool, institution.id, {"steps": 600, "sleep": 0.1, "pid_file": str(pid_file)})
    async with runner(jobs_pool, lease_seconds=1.5):
        await wait_for(jobs_pool, job_id, "running")
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
        child = int(pid_file.read_text())
        async with jobs_pool.acquire() as conn:
            assert (await jobs.request_cancel(conn, institution.id, job_id))["cancel_requested"]
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled", timeout=20)
    assert row["status"] == "cancelled" and row["error"] is None and row["result"] is None
    assert not _alive(child)
    [audit] = await _audit_of(jobs_pool, job_id)
    assert audit["metadata"]["outcome"] == "cancelled"
    assert temp_dirs_of(job_id) == []


async def test_at_most_concurrency_jobs_run_at_once(jobs_pool):
    institution = await make_institution(jobs_pool)
    submitted = [await submit(jobs_pool, institution.id, {"steps": 10, "sleep": 0.1}) for _ in range(3)]
    most = 0
    async with runner(jobs_pool, concurrency=2) as job_runner:
        while True:
            statuses = await jobs_pool.fetch("SELECT status FROM jobs WHERE id = ANY($1)", submitted)
            running = sum(r["status"] == "running" for r in statuses)
            most = max(most, running, len(job_runner.running))
            if all(r["status"] == "succeeded" for r in statuses):
                break
            await asyncio.sleep(0.02)
    assert most == 2


async def test_closing_the_runner_gives_its_running_job_back_without_spending_an_attempt(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    pid_file = tmp_path / "pid"
    job_id = await submit(jobs_pool, institution.id, {"steps": 600, "sleep": 0.1, "pid_file": str(pid_file)})
    async with runner(jobs_pool):
        await wait_for(jobs_pool, job_id, "running")
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
    row = await wait_for(jobs_pool, job_id, "queued")
    assert (row["attempts"], row["worker"], row["started_at"]) == (0, None, None)
    assert not _alive(int(pid_file.read_text()))
    assert temp_dirs_of(job_id) == []
    async with jobs_pool.acquire() as conn:  # nobody else should run it
        await jobs.request_cancel(conn, institution.id, job_id)


async def test_the_runner_reaps_a_job_whose_worker_vanished(jobs_pool):
    institution = await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, institution.id, max_attempts=1)
    async with jobs_pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")
        await conn.execute("UPDATE jobs SET status = 'queued', finished_at = NULL WHERE id = $1", job_id)
        claimed = await jobs.claim(conn, "vanished", 0.05, ["qac_apply"])
    assert claimed.id == job_id
    await asyncio.sleep(0.1)
    async with runner(jobs_pool):
        row = await wait_for(jobs_pool, job_id, "failed", "succeeded")
    assert (row["status"], row["error"]) == ("failed", WORKER_LOST)
    [audit] = await _audit_of(jobs_pool, job_id)
    assert audit["metadata"]["outcome"] == "failed" and audit["metadata"]["worker"] is None
