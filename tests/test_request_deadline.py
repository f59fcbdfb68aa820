"""One deadline per request: a slow handler or a slow audit write ends in 503 + Retry-After on time,
and the audit row says what the client got. Time bounds here catch hangs, with a generous factor."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.audit import AuditMiddleware
from api.endpoint import routes as endpoint_routes
from api.problems import EXCEPTION_HANDLERS
from api.routes import health
from tests.conftest import TEST_CLIENT, audit_rows, audit_table_locked
from workers.audit_writer import AuditWriter

TIMEOUT = 1.0
cancelled: list[str] = []


async def slow(request: Request) -> JSONResponse:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(request.headers["x-request-id"])
        raise
    return JSONResponse({"done": True})


async def quick(request: Request) -> JSONResponse:
    return JSONResponse({"done": True})


@pytest.fixture
async def deadline_client(settings, pool):
    writer = AuditWriter(pool, 2.0)
    app = AuditMiddleware(
        Starlette(
            routes=[Route("/slow", slow), Route("/quick", quick), *endpoint_routes(health.endpoints)],
            exception_handlers=EXCEPTION_HANDLERS,
        ),
        max_body_bytes=1024,
        request_timeout=TIMEOUT,
    )

    async def with_state(scope, receive, send):
        scope["state"] = {"settings": settings, "pool": pool, "audit_writer": writer}
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=with_state, client=TEST_CLIENT, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
        yield client
    await writer.drain()


async def test_a_handler_past_the_deadline_is_cancelled_and_answered_503_on_time(deadline_client, pool, trace_id):
    started = time.monotonic()
    response = await deadline_client.get("/slow", headers={"X-Request-ID": trace_id})
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.headers["content-type"] == "application/problem+json"
    assert "deadline" in response.json()["detail"]
    assert elapsed < TIMEOUT * 5, elapsed
    assert trace_id in cancelled
    [row] = await audit_rows(pool, trace_id, wait=5)
    assert row["metadata"]["status_code"] == 503 and row["metadata"]["deadline_exceeded"] is True


async def test_a_row_that_cannot_be_written_in_time_says_503_like_the_answer(deadline_client, pool, trace_id):
    # Another session locks the audit table: the first request's row goes out and waits on the lock
    # (in flight, so it is waited for); the second's stays queued behind it, and at its deadline it
    # is rewritten to 503, the answer its client gets. Both rows land once the lock is gone.
    async with audit_table_locked(
        pool
    ):  # released well within the writer's 2 s statement bound, so the first batch commits
        first = asyncio.create_task(deadline_client.get("/quick", headers={"X-Request-ID": f"{trace_id}-a"}))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        second = await deadline_client.get("/quick", headers={"X-Request-ID": f"{trace_id}-b"})
        assert second.status_code == 503 and "deadline" in second.json()["detail"]
        assert time.monotonic() - started < TIMEOUT * 5
        assert not first.done()  # in flight: it will be answered with what its batch did
    assert (await asyncio.wait_for(first, 10)).status_code == 200
    [row_a] = await audit_rows(pool, f"{trace_id}-a", wait=5)
    [row_b] = await audit_rows(pool, f"{trace_id}-b", wait=5)
    assert row_a["metadata"]["status_code"] == 200
    assert row_b["metadata"]["status_code"] == 503 and row_b["metadata"]["deadline_exceeded"] is True


async def test_the_live_path_answers_at_once_while_the_audit_table_is_locked(deadline_client, pool, trace_id):
    async with audit_table_locked(pool):
        started = time.monotonic()
        live = await deadline_client.get("/api/v1/health/live", headers={"X-Request-ID": trace_id})
        assert live.status_code == 200
        assert time.monotonic() - started < 1.0  # designed for ~ms; generous for a shared machine
    [row] = await audit_rows(pool, trace_id, wait=5)  # written once the table is free again
    assert row["metadata"]["status_code"] == 200


def _row(trace_id: str):
    from datetime import UTC, datetime

    from db.audit import AuditRow

    return AuditRow(
        occurred_at=datetime.now(UTC),
        institution="anonymous",
        action="GET /x",
        trace_id=trace_id,
        resource_type="http_request",
        resource_id="/x",
        ip_address=None,
        user_agent=None,
        metadata={"status_code": 200},
    )


async def test_a_batch_whose_connection_dies_mid_insert_is_resolved_by_lookup(pool, trace_id):
    # The INSERT is sent, waits on a lock, and its backend is killed: no acknowledgement ever comes.
    # The writer looks the rows up on another connection, finds none, and reports them not written.
    # The row is retried later, saying 503: the answer a client waiting on it gets.
    from db.audit import AuditWriteFailed

    writer = AuditWriter(pool, 2.0)
    async with audit_table_locked(pool):
        write = asyncio.create_task(writer.write(_row(trace_id)))
        async with asyncio.timeout(10):
            while not (
                pid := await pool.fetchval(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query ~ 'audit_(append|logs)'"
                )
            ):
                await asyncio.sleep(0.05)
        await pool.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(AuditWriteFailed):
            await asyncio.wait_for(write, 10)
    # Not written then; retried once the table is free, saying 503 (what a waiting client answers).
    [row] = await audit_rows(pool, trace_id, wait=5)
    assert row["metadata"]["status_code"] == 503


async def test_a_lost_acknowledgement_of_a_committed_batch_counts_as_committed(pool, trace_id):
    from db.audit import insert_rows

    writer = AuditWriter(pool, 2.0)
    committed, missing = _row(f"{trace_id}-in"), _row(f"{trace_id}-out")
    async with pool.acquire() as conn:
        await insert_rows(conn, [committed])  # it reached the table; pretend its answer was lost
    loop = asyncio.get_running_loop()
    from workers.audit_writer import _Pending

    batch = [_Pending(r, loop.create_future(), status_on_failure=None) for r in (committed, missing)]
    await writer._resolve(batch, ConnectionResetError("lost after sending"))
    assert batch[0].future.result() is None
    assert isinstance(batch[1].future.exception(), Exception)
    assert writer.rows_written == 1 and writer.failures == 1
