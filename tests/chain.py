"""Helpers for the audit chain tests: a scratch database of one's own (the fixtures `chain_url` and
`conn`, registered for every test module in tests/conftest.py), rows to write, and tampering."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db import migrations
from db.audit import AuditRow, insert_rows
from db.pool import init_connection
from tests import pg


def scratch_database(server_url: str) -> str:
    """A migrated database no other test writes to: tampering tests must not see, or break, anyone's rows."""
    url = pg.create_database(server_url, prefix="don_chain")
    migrations.apply(url)
    return url


@pytest.fixture
def chain_url(server_url):
    """A migrated database of the test's own."""
    return scratch_database(server_url)


@pytest.fixture
async def conn(chain_url):
    """A connection to `chain_url`, with the writer's codecs."""
    async with connect(chain_url) as connection:
        yield connection


@asynccontextmanager
async def connect(url: str):
    """A connection with the pool's codecs (jsonb as Python objects), as the audit writer has."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()


def row(n: int = 0, *, days_old: float = 0, **overrides) -> AuditRow:
    values = {
        "occurred_at": datetime.now(UTC) - timedelta(days=days_old),
        "institution": "chain-test",
        "action": "GET /api/v1/usage",
        "trace_id": f"chain-{uuid.uuid4().hex[:12]}-{n}",
        "resource_type": "http_request",
        "resource_id": "/api/v1/usage",
        "ip_address": "203.0.113.9",
        "user_agent": "pytest",
        "metadata": {"method": "GET", "status_code": 200, "n": n},
    }
    values.update(overrides)
    return AuditRow(**values)


async def write(conn: asyncpg.Connection, count: int, *, batch: int = 1, days_old: float = 0) -> list[int]:
    """Append `count` rows in batches of `batch`; returns their ids, in order."""
    before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_logs")
    for start in range(0, count, batch):
        await insert_rows(conn, [row(n, days_old=days_old) for n in range(start, min(start + batch, count))])
    return [r["id"] for r in await conn.fetch("SELECT id FROM audit_logs WHERE id > $1 ORDER BY id", before)]


async def tamper(conn: asyncpg.Connection, statement: str, *args) -> None:
    """What someone past the guard does: the tables' owner, with the append-only trigger disabled."""
    async with conn.transaction():
        await conn.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        await conn.execute(statement, *args)
        await conn.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only")
