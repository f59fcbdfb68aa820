"""A client that leaves before its response has arrived is audited 499, with the bytes known to
have left the process, not the status and size it was about to get (the real server: the
ConnectionWatch comes from its HTTP protocol).

Regression: a response cut short by its client used to be audited 200, with response_bytes
counting every byte handed to the server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta

from db.audit import AuditRow, insert_rows
from tests.conftest import audit_rows, audit_table_locked, make_institution
from tests.live_service import serving

FILLER_ROWS = 1000
NOTE = "x" * 4000  # a page of 1,000 such rows is ~4 MB of JSON, one chunk: far more than the sockets take


def _request(port: int, path: str, trace: str, token: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nX-Request-ID: {trace}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


async def test_a_client_gone_while_its_row_is_queued_is_audited_499(database_url, pool):
    inst = await make_institution(pool)
    with serving(database_url) as service:
        first, trace = f"cut-first-{uuid.uuid4().hex}", f"cut-{uuid.uuid4().hex}"
        async with audit_table_locked(pool):
            # The first request's batch waits on the lock; the second's row queues behind it.
            ahead = _request(service.port, "/api/v1/usage", first, inst.token)
            await asyncio.sleep(0.3)
            sock = _request(service.port, "/api/v1/usage", trace, inst.token)
            await asyncio.sleep(0.3)
            sock.close()  # gone before its answer could leave
            await asyncio.sleep(0.2)
        [row] = await audit_rows(pool, trace, wait=10)
        ahead.settimeout(10)
        assert ahead.recv(12).startswith(b"HTTP/1.1 200")
        ahead.close()
    assert row["metadata"]["status_code"] == 499
    assert row["metadata"]["response_bytes"] == 0


async def test_a_large_answer_cut_part_way_is_audited_499_with_the_bytes_sent(database_url, pool):
    inst = await make_institution(pool)
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        AuditRow(
            start + timedelta(milliseconds=i),
            inst.slug,
            "GET /filler",
            f"filler-{uuid.uuid4().hex}",
            "http_request",
            "/filler",
            None,
            None,
            {"note": NOTE, "status_code": 200},
        )
        for i in range(FILLER_ROWS)
    ]
    async with pool.acquire() as conn:
        await insert_rows(conn, rows)
    with serving(database_url) as service:
        trace = f"cut-{uuid.uuid4().hex}"
        sock = _request(service.port, f"/api/v1/audit?limit={FILLER_ROWS}", trace, inst.token, receive_buffer=4096)
        sock.settimeout(10)
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1.0)  # the server fills the socket and waits on it
        sock.close()
        [row] = await audit_rows(pool, trace, wait=10)
    size = FILLER_ROWS * len(NOTE)
    assert row["metadata"]["status_code"] == 499
    assert 0 < row["metadata"]["response_bytes"] < size


async def test_an_answer_read_to_the_end_is_audited_as_sent(database_url, pool):
    inst = await make_institution(pool)
    with serving(database_url) as service:
        trace = f"whole-{uuid.uuid4().hex}"
        sock = _request(service.port, "/openapi.json", trace, inst.token)
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += sock.recv(65536)
        sock.close()
        [row] = await audit_rows(pool, trace, wait=10)
    assert row["metadata"]["status_code"] == 200
    assert row["metadata"]["response_bytes"] == length
