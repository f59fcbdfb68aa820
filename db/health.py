"""The database facts the health endpoint reports, read with one catalog query."""

from __future__ import annotations

import time

import asyncpg

from db import sql

HEALTH_PROBE = sql.statement("health_probe")


async def probe(conn: asyncpg.Connection) -> dict:
    started = time.perf_counter()
    row = await sql.fetchrow(conn, HEALTH_PROBE)
    return {
        "status": "ok",
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "server_version": row["server_version"],
        "pgvector_version": row["pgvector_version"],
        "schema_version": row["schema_version"],
    }
