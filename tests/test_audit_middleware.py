"""The audit middleware: one row per request whatever happens, nothing secret in it (failures: *_write_failures.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api.audit import AuditMiddleware
from api.endpoint import routes as endpoint_routes
from api.problems import EXCEPTION_HANDLERS, InvalidInput
from api.routes import health
from app import ServiceStarlette
from core import logs
from tests.conftest import TEST_CLIENT, asgi_scope, audit_rows
from workers.audit_writer import AuditWriter

LIMIT = 1024


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def boom(request: Request):
    raise RuntimeError("kaboom: internal detail that must not leak")


async def invalid(request: Request):
    raise InvalidInput("/vector/3", "must be a finite number")


async def stream(request: Request) -> StreamingResponse:
    async def chunks():
        for i in range(5):
            yield f"chunk-{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


class _RaisesAfterAnswering(JSONResponse):
    async def __call__(self, scope, receive, send):
        await super().__call__(scope, receive, send)
        raise RuntimeError("kaboom after the answer was complete")


async def answers_then_raises(request: Request) -> JSONResponse:
    return _RaisesAfterAnswering({"answered": True})


async def logs_trace(request: Request) -> JSONResponse:
    logging.getLogger("tests.handler").warning("inside the handler")
    return JSONResponse({"trace": logs.trace_id_var.get()})


def tiny_app() -> AuditMiddleware:
    routes = [
        Route("/echo", echo, methods=["POST"]),
        Route("/boom", boom),
        Route("/invalid", invalid),
        Route("/stream", stream),
        Route("/answers-then-raises", answers_then_raises),
        Route("/logs", logs_trace),
        *endpoint_routes(health.endpoints),
    ]
    # The service's own Starlette (no ServerErrorMiddleware): a crash reaches the audit middleware as it does there.
    app = ServiceStarlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    return AuditMiddleware(app, max_body_bytes=LIMIT)


def client_for(settings, pool) -> httpx.AsyncClient:
    """An HTTP client for the tiny app, its lifespan state standing in: the real writer on `pool`."""
    state = {"settings": settings, "pool": pool, "audit_writer": AuditWriter(pool, 2.0)}
    app = tiny_app()

    async def with_state(scope, receive, send):
        scope["state"] = dict(state)
        await app(scope, receive, send)

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=with_state, client=TEST_CLIENT, raise_app_exceptions=False),
        base_url="http://t",
    )
    client.writer = state["audit_writer"]
    return client


@pytest.fixture(scope="module")
async def audited(settings, pool):
    """A tiny app wired to the real audit writer and the migrated database."""
    async with client_for(settings, pool) as client:
        yield client


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/v1/health/live", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/api/v1/health/live", 405),
        ("GET", "/invalid", 422),
        ("GET", "/boom", 500),
    ],
)
async def test_each_request_leaves_exactly_one_row(audited, pool, trace_id, method, path, status):
    response = await audited.request(method, path + "?page=2", headers={"X-Request-ID": trace_id, "User-Agent": "ua/1"})
    assert response.status_code == status
    assert response.headers["x-trace-id"] == trace_id
    rows = await audit_rows(pool, trace_id, wait=5)  # a health path's row is written just after its answer
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == f"{method} {path}"
    assert (row["institution"], row["resource_type"], row["resource_id"]) == ("anonymous", "http_request", path)
    assert str(row["ip_address"]) == TEST_CLIENT[0]
    assert row["user_agent"] == "ua/1"
    meta = row["metadata"]
    assert set(meta) >= {
        "method",
        "endpoint",
        "query",
        "status_code",
        "response_time_ms",
        "request_bytes",
        "response_bytes",
        "request_sha256",
        "content_type",
    }
    assert (meta["method"], meta["endpoint"], meta["query"], meta["status_code"]) == (method, path, "page=2", status)
    assert meta["response_bytes"] == len(response.content)
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status and problem["trace_id"] == trace_id
        assert {"type", "title", "detail"} <= set(problem)


async def test_a_500_leaks_no_stack_trace(audited, trace_id):
    response = await audited.get("/boom", headers={"X-Request-ID": trace_id})
    assert response.status_code == 500
    assert "kaboom" not in response.text and "Traceback" not in response.text


async def test_the_handler_sees_the_exact_body_and_the_row_keeps_only_its_digest(audited, pool, trace_id):
    body = b'{"vector": [0.25, 1e-3, 3], "secret_gene": "BRCA1"}' + bytes(range(256)) * 2
    response = await audited.post(
        "/echo", content=body, headers={"X-Request-ID": trace_id, "Content-Type": "application/json"}
    )
    assert response.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["request_bytes"] == len(body)
    assert row["metadata"]["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert row["metadata"]["content_type"] == "application/json"
    assert "BRCA1" not in json.dumps(row, default=str)


async def test_no_authorization_value_or_query_secret_reaches_the_table(audited, pool, trace_id):
    secret = "donr_this-is-a-secret-token-value"
    await audited.get(
        f"/api/v1/health/live?token={secret}&x=1",
        headers={"X-Request-ID": trace_id, "Authorization": f"Bearer {secret}", "Cookie": f"s={secret}"},
    )
    [row] = await audit_rows(pool, trace_id, wait=5)  # a health path's row is written just after its answer
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_logs WHERE audit_logs::text LIKE '%' || $1 || '%'", secret) == 0
    )
    assert row["metadata"]["query"] == "token=REDACTED&x=1"


async def test_streaming_responses_still_stream_and_are_audited(audited, pool, trace_id):
    async with audited.stream("GET", "/stream", headers={"X-Request-ID": trace_id}) as response:
        chunks = [chunk async for chunk in response.aiter_bytes()]
    assert b"".join(chunks) == b"".join(f"chunk-{i}\n".encode() for i in range(5))
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 200 and row["metadata"]["response_bytes"] == 40


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversize_body_gets_413_and_a_row(audited, pool, trace_id, chunked):
    big = b"x" * (LIMIT + 1)

    async def pieces():
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    content = pieces() if chunked else big
    response = await audited.post("/echo", content=content, headers={"X-Request-ID": trace_id})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 413


@pytest.mark.parametrize(
    "given, reused", [("abc-123_X.y:z", True), ("bad id with spaces", False), ("x" * 129, False), ("ok" * 64, True)]
)
async def test_a_safe_request_id_is_reused_and_an_unsafe_one_replaced(audited, given, reused):
    response = await audited.get("/api/v1/health/live", headers={"X-Request-ID": given})
    assert (response.headers["x-trace-id"] == given) is reused
    assert len(response.headers["x-trace-id"]) <= 128


async def test_log_lines_carry_the_trace_id(audited, trace_id, caplog):
    caplog.handler.addFilter(logs._TraceIdFilter())
    with caplog.at_level(logging.WARNING, logger="tests.handler"):
        response = await audited.get("/logs", headers={"X-Request-ID": trace_id})
    assert response.json() == {"trace": trace_id}
    assert [r.trace_id for r in caplog.records if r.name == "tests.handler"] == [trace_id]


async def test_a_500_is_logged_once_with_its_trace_id_and_traceback(audited, trace_id, caplog):
    # Regression: the traceback used to be logged by the server after the request's context was gone (trace=-).
    caplog.handler.addFilter(logs._TraceIdFilter())
    with caplog.at_level(logging.ERROR):
        response = await audited.get("/boom", headers={"X-Request-ID": trace_id})
    assert response.status_code == 500 and response.json()["trace_id"] == trace_id
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert len(errors) == 1
    assert errors[0].trace_id == trace_id and "kaboom" in str(errors[0].exc_info[1])


async def test_an_app_that_raises_after_a_complete_answer_still_answers_it_audited(audited, pool, trace_id, caplog):
    # The middleware holds the final chunk until the app has returned, then writes the row: an error
    # raised after the answer was complete neither loses that answer nor turns its row into a 500.
    with caplog.at_level(logging.ERROR):
        response = await audited.get("/answers-then-raises", headers={"X-Request-ID": trace_id})
    assert response.status_code == 200 and response.json() == {"answered": True}
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 200
    assert row["metadata"]["response_bytes"] == len(response.content)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert len(errors) == 1 and "after the answer" in str(errors[0].exc_info[1])


async def test_a_client_that_disconnects_leaves_one_row(settings, pool, trace_id):
    """Drive the ASGI app directly: the client goes away while the handler waits for the body."""
    state = {"settings": settings, "pool": pool, "audit_writer": AuditWriter(pool, 2.0)}
    app = tiny_app()
    scope = asgi_scope("/echo", trace_id, state, method="POST")
    messages = iter([{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)  # Starlette's ClientDisconnect is not a server error: no exception escapes
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["status_code"] == 499


@pytest.mark.parametrize("raw_path", ["/nowhere%00x", "/caf%C3%A9/%0A%0D", "/%ED%A0%80"])
async def test_control_characters_in_the_path_are_audited_not_refused(audited, pool, trace_id, raw_path):
    # Used to break: a %00 in the path reached jsonb, which refuses NUL, so the row failed and the client got 503.
    response = await audited.get(raw_path, headers={"X-Request-ID": trace_id})
    assert response.status_code == 404
    [row] = await audit_rows(pool, trace_id)
    assert "\x00" not in row["metadata"]["endpoint"] and "\n" not in row["action"]
    assert row["metadata"]["endpoint"] == row["resource_id"]


async def test_a_served_request_leaves_no_cycle_for_the_garbage_collector(audited, pool, trace_id):
    # The scope and the request's exchange referred to each other, so every request's objects
    # waited for the cyclic GC (about 10 ms per young collection under load); freed by reference
    # counting, none of them is left once the GC is off.
    import gc

    from api.audit import _Exchange

    gc.collect()
    gc.disable()
    try:
        for n in range(3):
            assert (
                await audited.get("/api/v1/health/live", headers={"X-Request-ID": f"{trace_id}-{n}"})
            ).status_code == 200
            assert (await audited.post("/echo", content=b'{"a": 1}')).status_code == 200
        left = [o for o in gc.get_objects() if isinstance(o, _Exchange)]
    finally:
        gc.enable()
    assert left == []
    assert len(await audit_rows(pool, f"{trace_id}-2", wait=5)) == 1
