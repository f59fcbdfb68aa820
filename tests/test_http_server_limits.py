"""The real server process: a cap on request heads (431), and Upgrade/CONNECT answered as plain HTTP.

These go through uvicorn's protocol layer, which the in-process ASGI client never touches, so the
service runs as `python app.py serve` and the odd requests are written on raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from api.http_protocol import MAX_HEADER_BYTES
from api.refusals import UNREAD
from tests.conftest import audit_rows
from tests.live_service import LIVE, read_response, serving

WS_WARNING = "No supported WebSocket library"


@pytest.fixture(scope="module")
def service(database_url):
    with serving(database_url) as running:
        yield running


async def request_live(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {LIVE} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        status, _, _ = await read_response(reader)
        return status
    finally:
        writer.close()


async def test_an_oversized_head_gets_431_quickly_and_the_connection_is_closed(service):
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    big = b"GET " + LIVE.encode() + b" HTTP/1.1\r\nHost: test\r\nUser-Agent: " + b"x" * (1 << 20) + b"\r\n\r\n"

    async def send_big():
        writer.write(big)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the server may stop reading once it has answered

    started = time.monotonic()
    sending = asyncio.create_task(send_big())
    status, headers, body = await asyncio.wait_for(read_response(reader), 5)
    elapsed = time.monotonic() - started
    # Meanwhile the server keeps serving others.
    assert await asyncio.wait_for(request_live(service.port), 5) == 200

    assert status == 431 and elapsed < 5
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 431 and problem["title"] == "Request Header Fields Too Large"
    assert str(MAX_HEADER_BYTES) in problem["detail"]
    assert problem["trace_id"] == headers["x-trace-id"]
    # The server closes the connection: EOF (or a reset, if it gave up on the rest of the head).
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        pass
    await asyncio.wait_for(sending, 5)
    writer.close()


async def test_ordinary_heads_work_and_the_limit_counts_per_request(service):
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        # ~8 KiB of headers, as a browser with many cookies sends.
        headers = "".join(f"X-Filler-{i}: {'v' * 500}\r\n" for i in range(16))
        writer.write(f"GET {LIVE} HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode())
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        assert status == 200 and json.loads(body)["status"] == "alive"
        # Keep-alive: three heads of 3/4 of the limit each on one connection are each under it.
        filler = "c" * (MAX_HEADER_BYTES * 3 // 4)
        for _ in range(3):
            writer.write(f"GET {LIVE} HTTP/1.1\r\nHost: test\r\nCookie: {filler}\r\n\r\n".encode())
            status, _, _ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 200
        # Pipelined: a small request, then an oversized head in the same write: 200, then 431.
        writer.write(
            f"GET {LIVE} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
            + f"GET {LIVE} HTTP/1.1\r\nHost: test\r\nCookie: {'c' * 2 * MAX_HEADER_BYTES}\r\n\r\n".encode()
        )
        first, _, _ = await asyncio.wait_for(read_response(reader), 5)
        second, _, _ = await asyncio.wait_for(read_response(reader), 5)
        assert (first, second) == (200, 431)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"GET {LIVE} HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        f"GET {LIVE} HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        f"CONNECT {LIVE} HTTP/1.1\r\nHost: test\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    ],
    ids=["websocket", "h2c", "connect-path", "connect-authority"],
)
async def test_upgrade_and_connect_get_a_plain_http_answer_without_the_websocket_warning(service, request_bytes):
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(request_bytes.encode())
        status, headers, _ = await asyncio.wait_for(read_response(reader), 5)
        assert status != 101 and 200 <= status < 500
        if request_bytes.startswith("GET"):
            assert status == 200  # the ordinary answer; the Upgrade header is ignored
        assert headers.get("connection") == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    await asyncio.sleep(0.1)  # let the server's log line, if any, reach the file
    log = service.log()
    assert WS_WARNING not in log and "Unsupported upgrade request" not in log


@pytest.mark.parametrize(
    "head, action, method",
    [
        (
            f"GET {LIVE}?token=secret HTTP/1.1\r\nHost: test\r\nCookie: {'c' * 2 * MAX_HEADER_BYTES}\r\n\r\n",
            f"GET {LIVE}",
            "GET",
        ),
        (f"GET {LIVE} HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n", f"GET {LIVE}", "GET"),
        ("FOO / HTTP/1.1\r\nHost: test\r\n\r\n", UNREAD, None),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", UNREAD, None),  # a TLS hello on the plain port
    ],
    ids=["431", "negative-content-length", "unknown-method", "tls-hello"],
)
async def test_a_request_the_http_layer_refuses_has_its_audit_row_and_trace_id(service, pool, head, action, method):
    # Refused before the app sees it, it is still a request: one row, and the trace id to quote.
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(head.encode("latin-1"))
        status, headers, body = await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
    problem = json.loads(body)
    assert status == problem["status"] and status in (400, 431)
    assert headers["content-type"] == "application/problem+json"
    assert problem["trace_id"] == headers["x-trace-id"]
    [row] = await audit_rows(pool, problem["trace_id"], wait=5)
    assert row["action"] == action and row["institution"] == "anonymous"
    assert row["metadata"]["status_code"] == status and row["metadata"]["method"] == method
    assert row["metadata"]["refused_by"] == "http_parser" and str(row["ip_address"]).startswith("127.0.0.1")
    assert "secret" not in json.dumps(row, default=str)
