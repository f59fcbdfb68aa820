"""Reading an institution's own audit trail: keyset pages and a streamed export."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from db import sql

AUDIT_PAGE = sql.statement("audit_page")
EXPORT_PREFETCH = 500


async def page(conn: asyncpg.Connection, institution: str, filters: dict, cursor: tuple | None, limit: int) -> list:
    after_time, after_id = cursor or (None, None)
    return await sql.fetch(
        conn,
        AUDIT_PAGE,
        institution,
        filters.get("since"),
        filters.get("until"),
        filters.get("action"),
        filters.get("status"),
        filters.get("trace_id"),
        after_time,
        after_id,
        limit,
    )


async def export(conn: asyncpg.Connection, institution: str, filters: dict) -> AsyncIterator[asyncpg.Record]:
    """Every matching row through a server-side cursor, so the selection is never held in memory."""
    sql.check_rows(AUDIT_PAGE)
    async with conn.transaction(readonly=True):
        async for row in conn.cursor(
            AUDIT_PAGE.text,
            institution,
            filters.get("since"),
            filters.get("until"),
            filters.get("action"),
            filters.get("status"),
            filters.get("trace_id"),
            None,
            None,
            None,
            prefetch=EXPORT_PREFETCH,
        ):
            yield row
