"""Audit rows: the one-statement chained batch insert (the group-commit writer is workers/audit_writer.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import orjson

from db import sql

INSERT_AUDIT_ROWS = sql.statement("insert_audit_rows")
# orjson encodes a batch about seven times faster than the standard library (1.0 against 7.1 us a row,
# every request pays it). It writes NaN and Infinity as null, which is all jsonb could hold of them. An
# integer beyond 64 bits it refuses; the standard encoder then writes the batch (jsonb holds any integer).
# What neither can encode raises TypeError: the writer then retries the batch row by row, so one bad
# row costs only itself.
_FALLBACK = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


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
    await sql.fetchval(conn, INSERT_AUDIT_ROWS, batch_json(rows))


def batch_json(rows: list[AuditRow]) -> str:
    """The batch as one JSON array of row objects (sql/insert_audit_rows.sql unpacks it). Times are
    RFC 3339 with their offset, so the database reads back the same instant to the microsecond."""
    objects = [
        {
            "occurred_at": row.occurred_at,
            "institution": row.institution,
            "action": row.action,
            "trace_id": row.trace_id,
            "resource_type": row.resource_type,
            "resource_id": row.resource_id,
            "ip_address": row.ip_address,
            "user_agent": row.user_agent,
            "metadata": row.metadata,
        }
        for row in rows
    ]
    try:
        return orjson.dumps(objects, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        for item in objects:
            item["occurred_at"] = item["occurred_at"].isoformat()
        return _FALLBACK.encode(objects)


class AuditWriteFailed(RuntimeError):
    """The audit row could not be committed; the response must not leave as if it had been."""
