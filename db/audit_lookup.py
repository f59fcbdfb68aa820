"""Looking audit rows up after an ambiguous commit: which of a batch's rows did reach the table."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from db import sql

FIND_AUDIT_ROWS = sql.statement("find_audit_rows")


async def committed(conn: asyncpg.Connection, keys: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
    """The (trace_id, occurred_at) pairs among `keys` that have a row."""
    rows = await sql.fetch(conn, FIND_AUDIT_ROWS, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["trace_id"], r["occurred_at"]) for r in rows}
