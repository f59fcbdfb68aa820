"""Unwritable audit rows: the middleware fails closed (503), health still answers, a bad row spares its batch."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

import asyncpg
import pytest

from db.pool import create_pool
from tests import pg
from tests.conftest import asgi_scope
from tests.test_audit_middleware import client_for, tiny_app
from workers.audit_writer import AuditWriter


@pytest.fixture(scope="module")
async def broken_writer_client(settings, server_url):
    """An app whose audit writer points at a database with no audit_logs table: every insert fails."""
    url = pg.create_database(server_url, prefix="don_noaudit")
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE EXTENSION IF NOT EXISTS vector; "
        "CREATE TABLE _yoyo_migration (migration_id text, applied_at_utc timestamp)"
    )
    await conn.close()
    broken_pool = await create_pool(url, **settings.pool_options())
    async with client_for(settings, broken_pool) as client:
        yield client, client.writer
    await broken_pool.close()


async def test_a_failing_audit_insert_yields_503_not_the_response(broken_writer_client, caplog):
    client, writer = broken_writer_client
    with caplog.at_level(logging.ERROR):
        response = await client.post("/echo", content=b"data")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "sha256" not in response.text
    assert any("AUDIT_WRITE_FAILED" in r.getMessage() for r in caplog.records)
    assert writer.failures >= 1


async def test_a_streamed_answer_whose_row_cannot_be_written_never_arrives_whole(
    broken_writer_client, settings, trace_id, caplog
):
    # Its head and first chunks left before the row could be written; the final chunk is held for the
    # row, so it never leaves, and the server closes the connection on an unfinished response.
    _, writer = broken_writer_client
    sent = []
    requests = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive():  # the request, then a client that stays (StreamingResponse listens meanwhile)
        for message in requests:
            return message
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    with caplog.at_level(logging.ERROR):
        await tiny_app()(asgi_scope("/stream", trace_id, {"settings": settings, "audit_writer": writer}), receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent[1:] if m["type"] == "http.response.body"]
    assert b"".join(m["body"] for m in bodies) == b"".join(f"chunk-{i}\n".encode() for i in range(5))
    assert all(m.get("more_body") for m in bodies)  # the response was never finished
    logged = [r.getMessage() for r in caplog.records]
    assert any("AUDIT_WRITE_FAILED" in m for m in logged) and any("cut short" in m for m in logged)


async def test_health_paths_answer_even_when_their_row_cannot_be_written(broken_writer_client):
    client, writer = broken_writer_client
    before = writer.failures
    live = await client.get("/api/v1/health/live")
    deep = await client.get("/api/v1/health")
    assert live.status_code == 200
    assert deep.status_code == 200 and deep.json()["status"] == "healthy"
    # They answered without waiting for their rows; the failures are counted when the writes fail.
    async with asyncio.timeout(5):
        while writer.failures < before + 2:
            await asyncio.sleep(0.02)
    assert writer.failures == before + 2


async def test_one_unwritable_row_does_not_cost_its_batch_neighbours_their_rows(pool, trace_id):
    from datetime import datetime

    from db.audit import AuditRow, AuditWriteFailed

    writer = AuditWriter(pool, 2.0)

    def row(n: int, metadata: dict) -> AuditRow:
        return AuditRow(
            occurred_at=datetime.now(UTC),
            institution="anonymous",
            action="GET /batch",
            trace_id=f"{trace_id}-{n}",
            resource_type="http_request",
            resource_id="/batch",
            ip_address=None,
            user_agent=None,
            metadata=metadata,
        )

    results = await asyncio.gather(
        writer.write(row(1, {"ok": 1})),
        writer.write(row(2, {"bad": object()})),  # no JSON encoder can write it
        writer.write(row(3, {"ok": 3})),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], AuditWriteFailed)
    written = await pool.fetch(
        "SELECT trace_id FROM audit_logs WHERE trace_id LIKE $1 || '-%' ORDER BY trace_id", trace_id
    )
    assert [r["trace_id"] for r in written] == [f"{trace_id}-1", f"{trace_id}-3"]
    assert writer.failures == 1 and writer.rows_written == 2


async def test_values_the_fast_encoder_refuses_or_rewrites_still_make_their_row(pool, trace_id):
    # orjson refuses integers beyond 64 bits (the standard encoder then writes the batch, and jsonb
    # keeps the number exactly), and writes NaN as null (jsonb holds no NaN): either way the row is there.
    from datetime import datetime

    from db.audit import AuditRow

    writer = AuditWriter(pool, 2.0)
    big = 10**30
    for n, metadata in ((1, {"big": big}), (2, {"nan": float("nan"), "inf": float("inf")})):
        await writer.write(
            AuditRow(datetime.now(UTC), "anonymous", "GET /x", f"{trace_id}-{n}", None, None, None, None, metadata)
        )
    stored = {
        r["trace_id"]: r["metadata"]
        for r in await pool.fetch("SELECT trace_id, metadata FROM audit_logs WHERE trace_id LIKE $1 || '-%'", trace_id)
    }
    assert stored[f"{trace_id}-1"] == {"big": big}
    assert stored[f"{trace_id}-2"] == {"nan": None, "inf": None}


@pytest.mark.parametrize("error", [asyncpg.InternalClientError, RuntimeError])
async def test_an_unforeseen_driver_error_fails_the_batch_and_the_writer_goes_on(pool, trace_id, monkeypatch, error):
    # InternalClientError is what asyncpg raised when a pooled connection's server had died while it
    # sat idle (tests/test_embedded_server.py met it); it used to end the writer's task, and the
    # requests waiting on its rows then waited for an outcome that never came.
    from datetime import datetime

    from db.audit import AuditRow, AuditWriteFailed
    from workers import audit_writer

    real_insert, calls = audit_writer.insert_rows, []

    async def insert_failing_once(conn, rows):
        calls.append(len(rows))
        if len(calls) == 1:
            raise error("cannot switch to state 12; another operation (2) is in progress")
        await real_insert(conn, rows)

    monkeypatch.setattr(audit_writer, "insert_rows", insert_failing_once)
    writer = AuditWriter(pool, 2.0)

    def row(n: int) -> AuditRow:
        return AuditRow(datetime.now(UTC), "anonymous", "GET /x", f"{trace_id}-{n}", None, None, None, None, {})

    with pytest.raises(AuditWriteFailed):
        await asyncio.wait_for(writer.write(row(1)), 30)  # answered (503), not left waiting
    await asyncio.wait_for(writer.write(row(2)), 30)  # the writer still writes
    async with asyncio.timeout(30):  # the failed row is retried after half a second, once
        while await pool.fetchval("SELECT count(*) FROM audit_logs WHERE trace_id = $1", f"{trace_id}-1") == 0:
            await asyncio.sleep(0.1)
    await writer.drain()
    stored = await pool.fetch("SELECT trace_id FROM audit_logs WHERE trace_id LIKE $1 || '-%'", trace_id)
    assert sorted(r["trace_id"] for r in stored) == [f"{trace_id}-1", f"{trace_id}-2"]


@pytest.mark.parametrize("database_back", [True, False])
async def test_at_shutdown_a_row_in_its_retry_back_off_is_written_or_logged_as_dropped(
    pool, trace_id, monkeypatch, caplog, database_back
):
    # Rows the database refused wait out a back-off before their retry; stopping the service used to
    # drop them with no word. The drain now gives each its last attempt, and logs the ones that fail.
    from datetime import datetime

    from db.audit import AuditRow, AuditWriteFailed
    from workers import audit_writer

    real_insert = audit_writer.insert_rows
    refusing = {"calls": 0}

    async def insert(conn, rows):
        refusing["calls"] += 1
        if refusing["calls"] == 1 or not database_back:
            raise ConnectionRefusedError("the database is down")
        await real_insert(conn, rows)

    monkeypatch.setattr(audit_writer, "insert_rows", insert)
    writer = AuditWriter(pool, 2.0)
    row = AuditRow(datetime.now(UTC), "anonymous", "GET /x", f"{trace_id}-1", None, None, None, None, {})
    with pytest.raises(AuditWriteFailed):
        await asyncio.wait_for(writer.write(row), 30)
    with caplog.at_level(logging.ERROR, logger="workers.audit_writer"):
        await asyncio.wait_for(writer.drain(), 30)  # at once: not after the back-off, nor a retry loop
    stored = await pool.fetch("SELECT metadata FROM audit_logs WHERE trace_id = $1", f"{trace_id}-1")
    dropped = [r.getMessage() for r in caplog.records if "AUDIT_ROW_DROPPED" in r.getMessage()]
    if database_back:
        assert [r["metadata"]["status_code"] for r in stored] == [503] and not dropped
    else:
        assert stored == []
        assert dropped == [f"AUDIT_ROW_DROPPED trace={trace_id}-1: not written (the service is stopping)"]
    assert writer.abandon() == 0
