"""Audit rows: the one-statement chained batch insert (the group-commit writer is workers/audit_writer.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from db import sql

INSERT_AUDIT_ROWS = sql.statement("insert_audit_rows")


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, a cost paid
# by every request's row; nothing assigns to a row once built (a changed row is a new one, replace()).
@dataclass(slots=True)
class AuditRow:
    """One row of audit_logs, as the middleware builds it."""

    occurred_at: datetime
    institution: str
    action: str
    trace_id: str
    resource_type: str | None
    resource_id: str | None
    ip_address: str | None
    user_agent: str | None
    metadata: dict = field(default_factory=dict)


COLUMNS = (
    "occurred_at",
    "institution",
    "action",
    "trace_id",
    "resource_type",
    "resource_id",
    "ip_address",
    "user_agent",
    "metadata",
)


async def insert_rows(conn: asyncpg.Connection, rows: list[AuditRow]) -> None:
    """Append `rows` to the hash chain in one statement (its own implicit transaction: committed when it returns).

    The chaining happens in the database (audit_append, migration 0007), under the chain head's
    lock, so rows from every instance form one chain in id order."""
    columns = [[getattr(row, name) for row in rows] for name in COLUMNS]
    await sql.fetchval(conn, INSERT_AUDIT_ROWS, *columns)


class AuditWriteFailed(RuntimeError):
    """The audit row could not be committed; the response must not leave as if it had been."""
