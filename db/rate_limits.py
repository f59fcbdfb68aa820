"""The hourly fixed-window counter, kept in PostgreSQL so every instance shares it."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from db import sql

COUNT_REQUESTS = sql.statement("count_requests")


async def count_requests(
    conn: asyncpg.Connection,
    institution_ids: Sequence[int],
    counts: Sequence[int],
    limits: Sequence[int],
    timeout: float | None = None,
) -> list[asyncpg.Record]:
    """Count a batch (parallel lists, one entry per institution) in one statement, committed when it
    returns: rows (institution_id, before, after, window_start); an institution missing from the
    answer had nothing counted (another instance opened its window first) and may be asked again."""
    return await sql.fetch(conn, COUNT_REQUESTS, list(institution_ids), list(counts), list(limits), timeout=timeout)
