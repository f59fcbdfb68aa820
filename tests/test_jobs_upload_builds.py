"""Upload builds as jobs, on the job tests' own database and an app that runs no jobs: what the
submitting request commits (the job, the file in job_inputs, its audit row), the 409 for a second
build of a project, and a queued build finished later by a runner that was not there at submission."""

from __future__ import annotations

import dataclasses
import hashlib

import httpx
import numpy as np
import pytest_asyncio
import scipy.sparse as sp
from asgi_lifespan import LifespanManager

from api.job_registry import product_job_types
from tests.conftest import TEST_CLIENT, make_institution
from tests.job_kinds import temp_dirs_of, wait_for
from tests.test_genomics_api import dataset, new_project
from tests.test_genomics_upload_api import h5ad_of, stored, upload
from workers.job_runner import JobRunner


@pytest_asyncio.fixture(scope="module")
async def no_runner_client(settings, jobs_database_url):
    from app import create_app

    application = create_app(dataclasses.replace(settings, database_url=jobs_database_url, run_job_worker=False))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _h5ad(tmp_path) -> bytes:
    genes, rows, cells = dataset()
    return h5ad_of(tmp_path, sp.csr_matrix(np.asarray(rows, dtype=np.float32)), genes, cells)


async def test_an_upload_commits_a_queued_job_with_its_file_and_audit_row(
    no_runner_client, jobs_pool, tmp_path, trace_id
):
    institution = await make_institution(jobs_pool)
    content, pid = _h5ad(tmp_path), new_project()
    response = await upload(
        no_runner_client, institution, content, trace_id, project_id=pid, mode="cell", target_dimensions=4
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["status"], job["type"], job["project_id"], job["progress"]) == ("queued", "build", pid, 0)
    chunks = await jobs_pool.fetch("SELECT data FROM job_inputs WHERE job_id = $1::uuid ORDER BY seq", job["id"])
    assert hashlib.sha256(b"".join(c["data"] for c in chunks)).digest() == hashlib.sha256(content).digest()
    row = await jobs_pool.fetchrow("SELECT trace_id, params FROM jobs WHERE id = $1::uuid", job["id"])
    assert row["trace_id"] == trace_id
    assert row["params"] == {
        "project_id": pid,
        "mode": "cell",
        "target_dimensions": 4,
        "seed": 0,
        "layer": "X",
        "normalize": "auto",
    }
    [audit] = await jobs_pool.fetch("SELECT metadata FROM audit_logs WHERE trace_id = $1", trace_id)
    assert audit["metadata"]["status_code"] == 202
    listed = (await no_runner_client.get("/api/v1/jobs", headers=institution.headers)).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]
    cancelled = await no_runner_client.delete(response.headers["location"], headers=institution.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1::uuid", job["id"]) == 0


async def test_a_second_build_of_a_project_while_one_is_queued_is_409(no_runner_client, jobs_pool, tmp_path):
    institution = await make_institution(jobs_pool)
    content, pid = _h5ad(tmp_path), new_project()
    form = {"project_id": pid, "mode": "cell", "target_dimensions": 3}
    first = await upload(no_runner_client, institution, content, **form)
    assert first.status_code == 202, first.text
    second = await upload(no_runner_client, institution, content, **form)
    assert second.status_code == 409 and pid in second.json()["detail"]
    assert await jobs_pool.fetchval("SELECT count(*) FROM jobs WHERE project_id = $1", pid) == 1
    other = await upload(no_runner_client, institution, content, **{**form, "project_id": new_project()})
    assert other.status_code == 202
    for job in (first, other):  # leave nothing queued for the runners of later tests
        await no_runner_client.delete(job.headers["location"], headers=institution.headers)
    again = await upload(no_runner_client, institution, content, **form)  # the first has ended
    assert again.status_code == 202
    await no_runner_client.delete(again.headers["location"], headers=institution.headers)


async def test_a_build_queued_with_no_runner_is_finished_by_a_runner_started_later(
    no_runner_client, jobs_pool, tmp_path
):
    institution = await make_institution(jobs_pool)
    pid = new_project()
    response = await upload(
        no_runner_client, institution, _h5ad(tmp_path), project_id=pid, mode="cell", target_dimensions=4
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    runner = JobRunner(
        jobs_pool, product_job_types(), concurrency=1, lease_seconds=10, acquire_timeout=2, poll_seconds=0.1
    )
    runner.start()
    try:
        row = await wait_for(jobs_pool, job_id, "succeeded", "failed", "cancelled", timeout=120)
    finally:
        await runner.close()
    assert row["status"] == "succeeded", row["error"]
    job = (await no_runner_client.get(f"/api/v1/jobs/{job_id}", headers=institution.headers)).json()
    result = job["result"]
    assert (result["project_id"], result["vector_count"], result["layer"], result["cell_type_key"]) == (
        pid,
        90,
        "X",
        "cell_type",
    )
    assert result["normalize"] == "counts" and result["collection"] == f"genomics.{pid}"
    assert len(await stored(jobs_pool, institution.id, pid)) == 90
    project = await no_runner_client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)
    assert project.status_code == 200 and project.json()["cell_count"] == 90
    audit = await jobs_pool.fetchrow("SELECT metadata FROM audit_logs WHERE trace_id = $1", f"job-{job_id}")
    assert audit["metadata"]["outcome"] == "succeeded" and audit["metadata"]["peak_rss_mib"] > 0
    assert temp_dirs_of(job_id) == []
