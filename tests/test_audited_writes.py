"""A request that changes data commits its data and its audit row in one transaction, or neither."""

from __future__ import annotations

import dataclasses
import time
import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import TEST_CLIENT, audit_rows, audit_table_locked

TIMEOUT = 1.0


@pytest.fixture(scope="module")
async def quick_deadline_client(settings):
    from app import create_app

    application = create_app(dataclasses.replace(settings, request_timeout=TIMEOUT))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as http:
            yield http


async def test_a_write_leaves_exactly_one_row_committed_with_it(client, institution, pool, trace_id):
    name = f"w-{uuid.uuid4().hex[:10]}"
    headers = {**institution.headers, "X-Request-ID": trace_id}
    created = await client.post(
        "/api/v1/collections", headers=headers, json={"name": name, "dimensions": 2, "metric": "l2"}
    )
    assert created.status_code == 201
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 201 and row["institution"] == institution.slug
    assert row["metadata"]["response_bytes"] == len(created.content)
    for method, path, body, status in [
        ("POST", f"/api/v1/collections/{name}/vectors", {"items": [{"id": "a", "vector": [1, 2]}]}, 200),
        ("DELETE", f"/api/v1/collections/{name}/vectors/a", None, 204),
        ("DELETE", f"/api/v1/collections/{name}", None, 204),
    ]:
        each = f"{trace_id}-{method}-{status}-{path.count('/')}"
        response = await client.request(method, path, json=body, headers={**institution.headers, "X-Request-ID": each})
        assert response.status_code == status, response.text
        assert [r["metadata"]["status_code"] for r in await audit_rows(pool, each)] == [status]


async def test_a_refused_write_is_audited_once_by_the_middleware(client, institution, pool, trace_id):
    response = await client.delete(
        "/api/v1/collections/does-not-exist", headers={**institution.headers, "X-Request-ID": trace_id}
    )
    assert response.status_code == 404
    assert [r["metadata"]["status_code"] for r in await audit_rows(pool, trace_id)] == [404]


async def test_a_write_whose_row_cannot_be_committed_stores_nothing(quick_deadline_client, institution, pool, trace_id):
    # Regression: data was committed and then its audit row failed, leaving a write with no row.
    name = f"w-{uuid.uuid4().hex[:10]}"
    async with audit_table_locked(pool):
        started = time.monotonic()
        response = await quick_deadline_client.post(
            "/api/v1/collections",
            headers={**institution.headers, "X-Request-ID": trace_id},
            json={"name": name, "dimensions": 2, "metric": "l2"},
        )
        assert response.status_code == 503 and response.headers["retry-after"]
        assert time.monotonic() - started < TIMEOUT * 5
    assert await pool.fetchval("SELECT count(*) FROM collections WHERE name = $1", name) == 0
    [row] = await audit_rows(pool, trace_id, wait=5)  # written once the table is free: it says 503
    assert row["metadata"]["status_code"] == 503
