"""GET /api/v1/audit: the caller's own audit trail, newest first, filtered, keyset-paginated or streamed as JSONL."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.body import validated_query
from api.caller import caller_of
from api.endpoint import Endpoint, answer
from api.schemas.audit import AuditPage, AuditQuery, decode_cursor, encode_cursor
from db import audit_trail
from db.pool import lend

EXPORT_PAGE = 500  # rows per database round trip of the JSONL export


def as_item(row) -> dict:
    item = dict(row)
    item["occurred_at"] = item["occurred_at"].isoformat()
    return item


async def audit(request: Request) -> Response:
    caller = caller_of(request)
    query = validated_query(AuditQuery, request.query_params).checked()
    cursor = decode_cursor(query.cursor) if query.cursor is not None else None
    pool, timeout = request.state.pool, request.state.settings.acquire_timeout
    if query.format == "jsonl":
        return StreamingResponse(_jsonl(pool, timeout, caller.slug, query.filters()), media_type="application/x-ndjson")
    async with lend(pool, timeout) as conn:
        rows = await audit_trail.page(conn, caller.slug, query.filters(), cursor, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if more else None
    return answer(
        AuditPage,
        {
            "items": [dict(r) for r in rows],
            "next_cursor": encode_cursor(last["occurred_at"], last["id"]) if last else None,
        },
    )


async def _jsonl(pool, timeout: float, institution: str, filters: dict):
    """The whole selection as JSON lines, read in keyset pages: each page borrows a connection and
    gives it back before a byte is sent, so a client that reads slowly (or never) holds no
    connection, only its place in the trail."""
    cursor = None
    while True:
        async with lend(pool, timeout) as conn:
            rows = await audit_trail.page(conn, institution, filters, cursor, EXPORT_PAGE)
        if not rows:
            return
        yield "".join(json.dumps(as_item(row), separators=(",", ":")) + "\n" for row in rows).encode()
        if len(rows) < EXPORT_PAGE:
            return
        cursor = (rows[-1]["occurred_at"], rows[-1]["id"])


endpoints = [
    Endpoint(
        "GET",
        "/api/v1/audit",
        audit,
        "Your institution's audit trail",
        "audit",
        AuditPage,
        query=AuditQuery,
        alternative_media=("application/x-ndjson",),
    ),
]
