"""Hourly quotas: exact across instances, headers on every authenticated response, 429 audited."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import httpx
from asgi_lifespan import LifespanManager

from api.ratelimit import window_end
from tests.conftest import TEST_CLIENT, audit_rows, make_institution


async def test_two_instances_and_many_clients_admit_exactly_the_limit(settings, pool):
    from app import create_app

    limit, attempts = 37, 120
    for _ in range(2):  # a run that straddles the top of the hour is repeated once
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        inst = await make_institution(pool, hourly_limit=limit)
        small = dataclasses.replace(settings, pool_max=4)
        async with (
            LifespanManager(create_app(small), startup_timeout=60) as one,
            LifespanManager(create_app(small), startup_timeout=60) as two,
        ):
            clients = [
                httpx.AsyncClient(transport=httpx.ASGITransport(app=m.app, client=TEST_CLIENT), base_url="http://t")
                for m in (one, two)
            ]
            try:
                responses = await asyncio.gather(
                    *(clients[i % 2].get("/api/v1/usage", headers=inst.headers) for i in range(attempts))
                )
            finally:
                for c in clients:
                    await c.aclose()
        if datetime.now(UTC).replace(minute=0, second=0, microsecond=0) == hour:
            break
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == limit
    assert statuses.count(429) == attempts - limit
    hits = await pool.fetchval("SELECT hits FROM rate_limit_windows WHERE institution_id = $1", inst.id)
    assert hits == limit


async def test_every_authenticated_response_carries_both_header_families(client, institution):
    response = await client.get("/api/v1/usage", headers=institution.headers)
    h = response.headers
    assert h["x-ratelimit-limit"] == str(institution.hourly_limit)
    assert h["x-ratelimit-remaining"] == str(institution.hourly_limit - 1)
    assert int(h["x-ratelimit-reset"]) == int(window_end(datetime.now(UTC)).timestamp())
    assert h["ratelimit-policy"] == f'"hourly";q={institution.hourly_limit};w=3600'
    assert h["ratelimit"].startswith(f'"hourly";r={institution.hourly_limit - 1};t=')
    # Also on an error answered behind authentication.
    missing = await client.get("/api/v1/no-such-thing", headers=institution.headers)
    assert missing.status_code == 404 and "ratelimit" in missing.headers


async def test_over_the_limit_is_a_429_with_retry_after_and_an_audit_row(client, pool, trace_id):
    inst = await make_institution(pool, hourly_limit=2)
    for _ in range(2):
        assert (await client.get("/api/v1/usage", headers=inst.headers)).status_code == 200
    response = await client.get("/api/v1/usage", headers={**inst.headers, "X-Request-ID": trace_id})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= 3600
    assert response.headers["x-ratelimit-remaining"] == "0"
    [row] = await audit_rows(pool, trace_id)
    assert row["institution"] == inst.slug and row["metadata"]["status_code"] == 429
    assert row["metadata"]["rate_limited"] is True


async def test_usage_reports_the_window(client, pool):
    inst = await make_institution(pool, hourly_limit=50, tier="nonprofit")
    for _ in range(3):
        await client.get("/api/v1/usage", headers=inst.headers)
    body = (await client.get("/api/v1/usage", headers=inst.headers)).json()
    body["reset_at"] = datetime.fromisoformat(body["reset_at"])  # ISO 8601 (UTC written as Z)
    body["reset_time"] = datetime.fromisoformat(body["reset_time"])
    assert body == {
        "institution": inst.slug,
        "tier": "nonprofit",
        "window": "hourly",
        "limit": 50,
        "used": 4,
        "remaining": 46,
        "reset_at": window_end(datetime.now(UTC)),
        "requests_made": 4,  # the original service's names for used and reset_at
        "reset_time": window_end(datetime.now(UTC)),
    }
