"""GET /api/v1/audit: the caller's own audit trail, newest first, filtered, keyset-paginated or streamed as JSONL."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api.caller import caller_of
from core.validation import InvalidInput
from db import audit_trail
from db.pool import lend

PARAMETERS = frozenset({"since", "until", "action", "status", "trace_id", "limit", "cursor", "format"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _timestamp(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidInput.query(name, "must be an ISO 8601 date-time such as 2026-11-28T12:00:00Z") from None


def _int(name: str, raw: str, low: int, high: int) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise InvalidInput.query(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def _text(name: str, raw: str, max_len: int) -> str:
    if not raw or len(raw) > max_len or "\x00" in raw:
        raise InvalidInput.query(name, f"must be 1 to {max_len} characters")
    return raw


def encode_cursor(row) -> str:
    raw = json.dumps([row["occurred_at"].isoformat(), row["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, int]:
    try:
        occurred_at, row_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        value = datetime.fromisoformat(occurred_at).astimezone(timezone.utc)
        if type(row_id) is not int or not 0 < row_id < 2**63:
            raise ValueError
        return value, row_id
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput.query("cursor", "is not a cursor this API returned") from None


def parse_query(params) -> tuple[dict, tuple | None, int, str]:
    """Validate the query string: (filters, cursor, limit, format); 422 naming the bad parameter."""
    for name in params.keys():
        if name not in PARAMETERS:
            raise InvalidInput.query(name, f"is not a parameter of this endpoint ({', '.join(sorted(PARAMETERS))})")
        if len(params.getlist(name)) > 1:
            raise InvalidInput.query(name, "is given more than once")
    filters: dict = {}
    for name in ("since", "until"):
        if name in params:
            filters[name] = _timestamp(name, params[name])
    if "since" in filters and "until" in filters and filters["since"] >= filters["until"]:
        raise InvalidInput.query("until", "must be later than since")
    if "action" in params:
        filters["action"] = _text("action", params["action"], 1000)
    if "trace_id" in params:
        filters["trace_id"] = _text("trace_id", params["trace_id"], 128)
    if "status" in params:
        filters["status"] = _int("status", params["status"], 100, 599)
    fmt = params.get("format", "json")
    if fmt not in ("json", "jsonl"):
        raise InvalidInput.query("format", "must be json or jsonl")
    if fmt == "jsonl":
        for name in ("limit", "cursor"):
            if name in params:
                raise InvalidInput.query(name, "does not apply to format=jsonl, which streams the whole selection")
    limit = _int("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
    cursor = decode_cursor(params["cursor"]) if "cursor" in params else None
    return filters, cursor, limit, fmt


def as_item(row) -> dict:
    item = dict(row)
    item["occurred_at"] = item["occurred_at"].isoformat()
    return item


async def audit(request: Request):
    caller = caller_of(request)
    filters, cursor, limit, fmt = parse_query(request.query_params)
    pool, timeout = request.state.pool, request.state.settings.acquire_timeout
    if fmt == "jsonl":
        return StreamingResponse(_jsonl(pool, timeout, caller.slug, filters), media_type="application/x-ndjson")
    async with lend(pool, timeout) as conn:
        rows = await audit_trail.page(conn, caller.slug, filters, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse({"items": [as_item(r) for r in rows],
                         "next_cursor": encode_cursor(rows[-1]) if more else None})


async def _jsonl(pool, timeout: float, institution: str, filters: dict):
    async with lend(pool, timeout) as conn:
        async for row in audit_trail.export(conn, institution, filters):
            yield (json.dumps(as_item(row), separators=(",", ":")) + "\n").encode()


routes = [Route("/api/v1/audit", audit, methods=["GET"])]
