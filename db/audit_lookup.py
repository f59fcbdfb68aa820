"""Looking audit rows up after an ambiguous commit: which of a batch's rows did reach the table."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from db import sql
from db.pool import UNAVAILABLE_ERRORS, lend

FIND_AUDIT_ROWS = sql.statement("find_audit_rows")


async def committed(conn: asyncpg.Connection, keys: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
    """The (trace_id, occurred_at) pairs among `keys` that have a row."""
    rows = await sql.fetch(conn, FIND_AUDIT_ROWS, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["trace_id"], r["occurred_at"]) for r in rows}


async def committed_within(
    pool: asyncpg.Pool,
    keys: list[tuple[str, datetime]],
    *,
    window: float,
    attempt_timeout: float,
    acquire_timeout: float,
) -> set[tuple[str, datetime]] | None:
    """`committed`, asked again on fresh connections until one answers or `window` seconds pass
    (a database restart takes a second or two); None if none answered."""
    give_up = asyncio.get_running_loop().time() + window
    while True:
        try:
            async with asyncio.timeout(attempt_timeout), lend(pool, acquire_timeout) as conn:
                return await committed(conn, keys)
        except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() >= give_up:
                return None
            await asyncio.sleep(0.2)
