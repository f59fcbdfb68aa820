"""Every wait on the database is bounded: a saturated pool answers 503, a slow statement times out."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager

from db.pool import DatabaseUnavailable, create_pool, lend
from tests.conftest import TEST_CLIENT


async def test_a_saturated_pool_gives_503_within_the_acquire_timeout(settings, institution):
    from app import create_app

    tight = dataclasses.replace(settings, pool_min=1, pool_max=1, acquire_timeout=0.3)
    app = create_app(tight)
    seen = {}

    async def capture_state(scope, receive, send):
        if scope["type"] == "http":
            seen["pool"] = scope["state"]["pool"]
        await app(scope, receive, send)

    async with LifespanManager(capture_state, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/api/v1/usage", headers=institution.headers)).status_code == 200
            async with seen["pool"].acquire():  # the only connection is now taken
                started = time.monotonic()
                response = await client.get("/api/v1/usage", headers=institution.headers)
                elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert "retry-after" in response.headers
            assert elapsed < 2.0
            assert (await client.get("/api/v1/usage", headers=institution.headers)).status_code == 200


async def test_lend_raises_database_unavailable_when_no_connection_frees_up(settings):
    pool = await create_pool(
        settings.database_url, **dataclasses.replace(settings, pool_min=1, pool_max=1).pool_options()
    )
    try:
        async with pool.acquire():
            with pytest.raises(DatabaseUnavailable):
                async with lend(pool, 0.1):
                    pass
    finally:
        await pool.close()


async def test_a_statement_over_the_command_timeout_is_cut_off_and_the_connection_reused(settings):
    pool = await create_pool(
        settings.database_url,
        **dataclasses.replace(settings, pool_min=1, pool_max=1, command_timeout=0.2).pool_options(),
    )
    try:
        with pytest.raises(asyncio.TimeoutError):
            await pool.fetchval("SELECT pg_sleep(5)")
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
