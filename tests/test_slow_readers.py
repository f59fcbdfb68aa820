"""Clients that start a JSONL export and never read it hold no pooled connection (the real server,
a pool of two, five stuck readers)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta

from db.audit import AuditRow, insert_rows
from tests.conftest import make_institution
from tests.live_service import serving

STUCK_READERS = 5
ROWS = 20_000  # ~10 MB of JSON lines per export: far more than the sockets buffer


async def test_stuck_jsonl_readers_do_not_take_the_pool(database_url, pool):
    inst = await make_institution(pool)
    start = datetime.now(UTC) - timedelta(days=1)
    filler = {"note": "x" * 300, "status_code": 200}
    rows = [
        AuditRow(
            start + timedelta(milliseconds=i),
            inst.slug,
            "GET /filler",
            f"filler-{i}",
            "http_request",
            "/filler",
            None,
            None,
            filler,
        )
        for i in range(ROWS)
    ]
    async with pool.acquire() as conn:
        for i in range(0, ROWS, 1000):
            await insert_rows(conn, rows[i : i + 1000])

    with serving(database_url, DB_POOL_MIN="1", DB_POOL_MAX="2") as service:
        writers = []
        for _ in range(STUCK_READERS):
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(
                f"GET /api/v1/audit?format=jsonl HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {inst.token}\r\n\r\n".encode()
            )
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the export has started; now never read again
            writers.append(writer)
        try:
            await asyncio.sleep(1.0)  # let every export fill its socket and block on sending

            def usage() -> tuple[int, dict]:
                request = urllib.request.Request(
                    service.base_url + "/api/v1/usage", headers={"Authorization": f"Bearer {inst.token}"}
                )
                with urllib.request.urlopen(request, timeout=20) as response:
                    return response.status, json.loads(response.read())

            for _ in range(3):
                status, body = await asyncio.to_thread(usage)
                assert status == 200 and body["institution"] == inst.slug
        finally:
            for writer in writers:
                writer.close()
