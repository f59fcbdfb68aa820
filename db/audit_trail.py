"""Reading an institution's own audit trail: keyset pages (the JSONL export reads them one after another)."""

from __future__ import annotations

import asyncpg

from db import sql

AUDIT_PAGE = sql.statement("audit_page")


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
