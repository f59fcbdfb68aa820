"""The hourly fixed-window counter, kept in PostgreSQL so every instance shares it."""

from __future__ import annotations

import asyncpg

from db import sql

COUNT_REQUEST = sql.statement("count_request")


async def count_request(conn: asyncpg.Connection, institution_id: int, limit: int):
    """Count one request if under `limit`: the row (hits, window_start) when admitted, None when not."""
    return await sql.fetchrow(conn, COUNT_REQUEST, institution_id, limit)
