"""Retention: purge old audit rows and rate-limit windows in bounded batches."""

from __future__ import annotations

import asyncpg

from db import sql

PURGE_AUDIT_ROWS = sql.statement("purge_audit_rows")
PURGE_RATE_WINDOWS = sql.statement("purge_rate_windows")


async def purge_batch(conn: asyncpg.Connection, what: str, older_than_days: int, batch_size: int) -> int:
    """Delete one batch (its own short transaction); returns how many rows went.

    Audit rows go through audit_purge() (migration 0007), which keeps what is left a verifiable
    chain: it deletes a prefix in id order and records where that prefix ended."""
    if what == "audit_logs":
        return await sql.fetchval(conn, PURGE_AUDIT_ROWS, older_than_days, batch_size)
    status = await sql.execute(conn, PURGE_RATE_WINDOWS, older_than_days, batch_size)
    return int(status.split()[-1])
