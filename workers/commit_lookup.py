"""An ambiguous commit's rows looked up on fresh connections, asked again while the database restarts:
the one look-up the audit writer and the audited writes (api/audited_write.py) share."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from db.audit_lookup import committed
from db.pool import UNAVAILABLE_ERRORS, lend


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
