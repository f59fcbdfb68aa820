"""The job queue in PostgreSQL: submit with inputs, exclusive claims, leases that run out, cancel, and the
schema's own rules."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from db import jobs
from tests.conftest import make_institution
from tests.job_kinds import TEST_TYPE, job_row, submit


async def _drain_queue(pool) -> None:
    """Earlier tests may have left queued jobs; cancel them so claims here see only this test's."""
    await pool.execute(
        "UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE status = 'queued'",
    )


async def test_submit_stores_the_input_in_chunks_and_reads_it_back(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    data = bytes(range(256)) * (jobs.CHUNK_BYTES // 256 * 2 + 7)  # two full chunks and a bit
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    job_id = await submit(jobs_pool, institution.id, {"n": 1}, input_file=path)
    seqs = await jobs_pool.fetch("SELECT seq, length(data) AS n FROM job_inputs WHERE job_id = $1 ORDER BY seq", job_id)
    assert [r["seq"] for r in seqs] == [0, 1, 2]
    assert [r["n"] for r in seqs] == [jobs.CHUNK_BYTES, jobs.CHUNK_BYTES, len(data) - 2 * jobs.CHUNK_BYTES]
    async with jobs_pool.acquire() as conn:
        assert b"".join([chunk async for chunk in jobs.input_chunks(conn, job_id)]) == data
    row = await job_row(jobs_pool, job_id)
    assert (row["status"], row["attempts"], row["params"], row["progress"]) == ("queued", 0, {"n": 1}, 0)


async def test_a_failed_submission_leaves_neither_job_nor_input(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    path = tmp_path / "upload.bin"
    path.write_bytes(b"x" * 1000)
    async with jobs_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                job = await jobs.submit(
                    conn, institution.id, TEST_TYPE, {}, trace_id="t", max_attempts=2, input_file=path
                )
                raise RuntimeError("the request failed after submitting")
    assert await jobs_pool.fetchval("SELECT count(*) FROM jobs WHERE id = $1", job["id"]) == 0
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job["id"]) == 0


async def test_concurrent_claimers_each_take_a_different_job(jobs_pool):
    await _drain_queue(jobs_pool)
    institution = await make_institution(jobs_pool)
    submitted = {await submit(jobs_pool, institution.id) for _ in range(6)}

    async def claimer(n: int) -> list[uuid.UUID]:
        taken = []
        async with jobs_pool.acquire() as conn:
            while (job := await jobs.claim(conn, f"worker-{n}", 30, [TEST_TYPE])) is not None:
                taken.append(job.id)
                await asyncio.sleep(0)
        return taken

    claims = await asyncio.gather(*(claimer(n) for n in range(4)))
    everything = [job_id for taken in claims for job_id in taken]
    assert sorted(everything) == sorted(submitted)  # each job once, none twice, none left
    rows = await jobs_pool.fetch("SELECT status, worker, attempts FROM jobs WHERE id = ANY($1)", list(submitted))
    assert {(r["status"], r["attempts"]) for r in rows} == {("running", 1)}
    owners = {job_id: f"worker-{n}" for n, taken in enumerate(claims) for job_id in taken}
    rows = await jobs_pool.fetch("SELECT id, worker FROM jobs WHERE id = ANY($1)", list(submitted))
    assert {r["id"]: r["worker"] for r in rows} == owners


async def test_a_claim_takes_the_oldest_job_of_the_types_it_runs(jobs_pool):
    await _drain_queue(jobs_pool)
    institution = await make_institution(jobs_pool)
    first = await submit(jobs_pool, institution.id)
    await submit(jobs_pool, institution.id)
    async with jobs_pool.acquire() as conn:
        assert await jobs.claim(conn, "w", 30, ["build"]) is None  # nothing of that type is queued
        job = await jobs.claim(conn, "w", 30, [TEST_TYPE])
    assert job.id == first and job.institution == institution.slug and job.attempts == 1


async def test_an_expired_lease_is_requeued_then_failed_after_max_attempts(jobs_pool, tmp_path):
    await _drain_queue(jobs_pool)
    institution = await make_institution(jobs_pool)
    path = tmp_path / "in"
    path.write_bytes(b"abc")
    job_id = await submit(jobs_pool, institution.id, input_file=path, max_attempts=2)
    async with jobs_pool.acquire() as conn:
        assert (await jobs.claim(conn, "dead-1", 0.05, [TEST_TYPE])).id == job_id
        await asyncio.sleep(0.1)
        [reaped] = [r for r in await jobs.reap_expired(conn) if r["id"] == job_id]
        assert (reaped["status"], reaped["attempts"]) == ("queued", 1)
        row = await job_row(jobs_pool, job_id)
        assert (row["worker"], row["lease_expires_at"], row["started_at"]) == (None, None, None)
        assert await jobs.heartbeat(conn, job_id, "dead-1", 30, 0.5) is None  # the dead worker's lease is gone

        assert (await jobs.claim(conn, "dead-2", 0.05, [TEST_TYPE])).attempts == 2
        await asyncio.sleep(0.1)
        [reaped] = [r for r in await jobs.reap_expired(conn) if r["id"] == job_id]
    assert reaped["status"] == "failed" and reaped["error"].startswith("worker lost")
    row = await job_row(jobs_pool, job_id)
    assert row["status"] == "failed" and row["finished_at"] is not None and row["worker"] is None
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job_id) == 0


async def test_a_live_lease_is_not_reaped_and_heartbeats_say_whether_to_cancel(jobs_pool):
    await _drain_queue(jobs_pool)
    institution = await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, institution.id)
    async with jobs_pool.acquire() as conn:
        await jobs.claim(conn, "alive", 30, [TEST_TYPE])
        assert job_id not in {r["id"] for r in await jobs.reap_expired(conn)}
        assert await jobs.heartbeat(conn, job_id, "alive", 30, 0.25) is False
        assert await jobs.heartbeat(conn, job_id, "someone-else", 30, 0.5) is None
        cancelled = await jobs.request_cancel(conn, institution.id, job_id)
        assert (cancelled["status"], cancelled["cancel_requested"]) == ("running", True)
        assert await jobs.heartbeat(conn, job_id, "alive", 30, 0.5) is True
    assert (await job_row(jobs_pool, job_id))["progress"] == pytest.approx(0.5)


async def test_cancelling_a_queued_job_ends_it_at_once_and_drops_its_input(jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    path = tmp_path / "in"
    path.write_bytes(b"abc")
    job_id = await submit(jobs_pool, institution.id, input_file=path)
    async with jobs_pool.acquire() as conn:
        job = await jobs.request_cancel(conn, institution.id, job_id)
        assert (job["status"], job["cancel_requested"]) == ("cancelled", False) and job["finished_at"] is not None
        assert await jobs.request_cancel(conn, institution.id, job_id) is None  # already ended
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job_id) == 0


async def test_another_institution_neither_sees_nor_cancels_a_job(jobs_pool):
    owner, stranger = await make_institution(jobs_pool), await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, owner.id)
    async with jobs_pool.acquire() as conn:
        assert await jobs.get(conn, stranger.id, job_id) is None
        assert await jobs.request_cancel(conn, stranger.id, job_id) is None
        assert [r["id"] for r in await jobs.page(conn, stranger.id, None, 10)] == []
        assert (await jobs.get(conn, owner.id, job_id))["status"] == "queued"


async def test_one_active_job_per_project_and_type(jobs_pool):
    institution = await make_institution(jobs_pool)
    first = await submit(jobs_pool, institution.id, project_id="p1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await submit(jobs_pool, institution.id, project_id="p1")
    await submit(jobs_pool, institution.id, project_id="p2")  # another project is fine
    other = await make_institution(jobs_pool)
    await submit(jobs_pool, other.id, project_id="p1")  # so is another institution
    async with jobs_pool.acquire() as conn:
        await jobs.request_cancel(conn, institution.id, first)
    await submit(jobs_pool, institution.id, project_id="p1")  # once the first has ended


async def test_pages_are_newest_first_and_follow_the_cursor(jobs_pool):
    institution = await make_institution(jobs_pool)
    submitted = [await submit(jobs_pool, institution.id) for _ in range(5)]
    async with jobs_pool.acquire() as conn:
        first = await jobs.page(conn, institution.id, None, 3)
        last = first[-1]
        rest = await jobs.page(conn, institution.id, (last["created_at"], last["id"]), 3)
    assert [r["id"] for r in first + rest] == submitted[::-1]


@pytest.mark.parametrize(
    "statement, constraint",
    [
        ("UPDATE jobs SET status = 'running' WHERE id = $1", "jobs_lease_iff_running"),
        (
            "UPDATE jobs SET status = 'succeeded', finished_at = now(), started_at = now() WHERE id = $1",
            "jobs_result_iff_succeeded",
        ),
        ("UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = $1", "jobs_error_iff_failed"),
        ("UPDATE jobs SET status = 'cancelled' WHERE id = $1", "jobs_finished_iff_ended"),
        ("UPDATE jobs SET progress = 1.5 WHERE id = $1", "jobs_progress_check"),
        ("UPDATE jobs SET attempts = 3 WHERE id = $1", "jobs_attempts_bounded"),
    ],
)
async def test_the_schema_refuses_impossible_job_states(jobs_pool, statement, constraint):
    institution = await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, institution.id)
    with pytest.raises(asyncpg.CheckViolationError) as raised:
        await jobs_pool.execute(statement, job_id)
    assert raised.value.constraint_name == constraint
