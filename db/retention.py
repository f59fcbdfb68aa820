"""Retention: purge old audit rows and rate-limit windows in bounded batches."""

from __future__ import annotations

import asyncpg

from db import sql

PURGE_AUDIT_ROWS = sql.statement("purge_audit_rows")
PURGE_RATE_WINDOWS = sql.statement("purge_rate_windows")


async def purge_batch(conn: asyncpg.Connection, what: str, older_than_days: int, batch_size: int) -> int:
    """Delete one batch (its own short transaction); returns how many rows went."""
    statement = {"audit_logs": PURGE_AUDIT_ROWS, "rate_limit_windows": PURGE_RATE_WINDOWS}[what]
    status = await sql.execute(conn, statement, older_than_days, batch_size)
    return int(status.split()[-1])
