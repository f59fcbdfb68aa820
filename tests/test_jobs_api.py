"""GET /api/v1/jobs, GET and DELETE /api/v1/jobs/{id}: your own jobs only, newest first, cancel rules."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from db import jobs
from tests.conftest import TEST_CLIENT, make_institution
from tests.job_kinds import job_row, submit


@pytest_asyncio.fixture(scope="module")
async def jobs_client(settings, jobs_database_url):
    """The app on the job tests' own database, with no runner: jobs stay where the test puts them."""
    from app import create_app

    application = create_app(dataclasses.replace(settings, database_url=jobs_database_url, run_job_worker=False))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_job_reads_back_with_its_fields(jobs_client, jobs_pool):
    institution = await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, institution.id, {"k": 1}, project_id="proj-1")
    response = await jobs_client.get(f"/api/v1/jobs/{job_id}", headers=institution.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(job_id) and body["type"] == "qac_apply" and body["status"] == "queued"
    assert (body["progress"], body["project_id"], body["cancel_requested"]) == (0, "proj-1", False)
    assert body["started_at"] is None and body["finished_at"] is None
    assert body["result"] is None and body["error"] is None


@pytest.mark.parametrize("job_id", ["not-a-uuid", "00000000-0000-0000-0000-00000000000", str(uuid.uuid4()), "x" * 300])
async def test_a_malformed_or_unknown_id_is_404(jobs_client, jobs_pool, job_id):
    institution = await make_institution(jobs_pool)
    for method in ("GET", "DELETE"):
        response = await jobs_client.request(method, f"/api/v1/jobs/{job_id}", headers=institution.headers)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_another_institutions_job_is_not_found_and_not_cancelled(jobs_client, jobs_pool):
    owner, stranger = await make_institution(jobs_pool), await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, owner.id)
    assert (await jobs_client.get(f"/api/v1/jobs/{job_id}", headers=stranger.headers)).status_code == 404
    assert (await jobs_client.delete(f"/api/v1/jobs/{job_id}", headers=stranger.headers)).status_code == 404
    assert (await jobs_client.get("/api/v1/jobs", headers=stranger.headers)).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert (await job_row(jobs_pool, job_id))["status"] == "queued"


async def test_the_list_is_newest_first_and_pages_by_cursor(jobs_client, jobs_pool):
    institution = await make_institution(jobs_pool)
    submitted = [str(await submit(jobs_pool, institution.id)) for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await jobs_client.get("/api/v1/jobs", params=params, headers=institution.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == submitted[::-1]


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"cursor": "bm9wZQ"}, {"cursor": "!"}, {"other": "1"}]
)
async def test_bad_list_parameters_are_422(jobs_client, jobs_pool, params):
    institution = await make_institution(jobs_pool)
    response = await jobs_client.get("/api/v1/jobs", params=params, headers=institution.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == next(iter(params))


async def test_cancel_a_queued_job_at_once_and_refuse_a_second_cancel(jobs_client, jobs_pool, tmp_path, trace_id):
    institution = await make_institution(jobs_pool)
    upload = tmp_path / "in"
    upload.write_bytes(b"abc")
    job_id = await submit(jobs_pool, institution.id, input_file=upload)
    response = await jobs_client.delete(
        f"/api/v1/jobs/{job_id}", headers={**institution.headers, "X-Request-ID": trace_id}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"] is not None
    assert await jobs_pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1", job_id) == 0
    [audit] = await jobs_pool.fetch("SELECT metadata FROM audit_logs WHERE trace_id = $1", trace_id)
    assert audit["metadata"]["status_code"] == 200
    again = await jobs_client.delete(f"/api/v1/jobs/{job_id}", headers=institution.headers)
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]


async def test_cancel_a_running_job_asks_its_worker(jobs_client, jobs_pool):
    institution = await make_institution(jobs_pool)
    job_id = await submit(jobs_pool, institution.id)
    await jobs_pool.execute(
        "UPDATE jobs SET status = 'running', worker = 'w', lease_expires_at = now() + interval '1 minute',"
        " started_at = now(), attempts = 1 WHERE id = $1",
        job_id,
    )
    response = await jobs_client.delete(f"/api/v1/jobs/{job_id}", headers=institution.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    async with jobs_pool.acquire() as conn:
        assert await jobs.heartbeat(conn, job_id, "w", 60, 0.1) is True


async def test_the_jobs_endpoints_are_in_the_document(jobs_client):
    paths = (await jobs_client.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/v1/jobs"]) == {"get"}
    assert set(paths["/api/v1/jobs/{id}"]) == {"get", "delete"}
    assert "409" in paths["/api/v1/jobs/{id}"]["delete"]["responses"]


@pytest.mark.parametrize("raw, value", [("true", True), ("1", True), ("FALSE", False), ("no", False), ("off", False)])
def test_run_job_worker_reads_yes_and_no(raw, value):
    from core.config import Settings

    assert Settings.from_env({"RUN_JOB_WORKER": raw}).run_job_worker is value


def test_run_job_worker_refuses_anything_else():
    from core.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="RUN_JOB_WORKER"):
        Settings.from_env({"RUN_JOB_WORKER": "maybe"})
