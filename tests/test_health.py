"""Health: the deep check reports the database truthfully and quickly; the live check never touches it."""

from __future__ import annotations

import time

import httpx
from asgi_lifespan import LifespanManager

from core.config import Settings
from db import migrations
from tests import pg
from tests.conftest import TEST_CLIENT


async def test_health_reports_the_database_and_pgvector(client, pool):
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    db = body["database"]
    assert db["status"] == "ok" and db["pgvector_version"].startswith("0.8")
    assert db["schema_version"] == migrations.on_disk()[-1]
    assert db["server_version"] == await pool.fetchval("SHOW server_version")
    assert {"size", "idle", "max"} <= set(body["pool"]) and body["version"] and body["timestamp"]


async def test_a_connection_whose_server_died_idle_makes_health_503_not_500(client, monkeypatch):
    # What asyncpg raised on a pooled connection after the server was killed under the service
    # (tests/test_embedded_server.py met it): the deep check must call that unhealthy, not crash.
    import asyncpg

    from api.routes import health

    async def probe(conn):
        raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")

    monkeypatch.setattr(health.db_health, "probe", probe)
    response = await client.get("/api/v1/health")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["status"] == "unhealthy"


async def test_head_on_health_answers_without_a_body(client):
    response = await client.head("/api/v1/health")
    assert response.status_code == 200 and response.content == b""


async def test_health_is_503_within_2s_when_the_database_stops_and_recovers(tmp_path):
    with pg.scratch_server() as server:
        url = server.get_uri()
        migrations.apply(url)
        settings = Settings(database_url=url, pool_min=1, pool_max=2, health_timeout=1.0, data_dir=tmp_path)
        from app import create_app

        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/api/v1/health")).status_code == 200
                pg.stop(server)
                started = time.monotonic()
                down = await client.get("/api/v1/health")
                elapsed = time.monotonic() - started
                assert down.status_code == 503, down.text
                assert elapsed < 2.0
                assert down.json()["status"] == "unhealthy" and down.json()["database"]["reason"]
                assert (await client.get("/api/v1/health/live")).status_code == 200
                # Any other request fails closed: its audit row cannot be written.
                assert (await client.get("/nowhere")).status_code == 503
                pg.start(server)
                assert (await client.get("/api/v1/health")).status_code == 200
