"""Requests the HTTP layer refuses before the app sees them (a head past its cap: 431; bytes that are
not HTTP/1.1: 400) get an audit row and a trace id like every other request.

The row says what could be read of the request (method and path, when the parser got that far; never
its query, headers or body), the peer's address and the status. Its answer is problem+json with the
row's trace id, and leaves once the row is committed or after REFUSAL_AUDIT_WAIT, whichever comes
first: like the health paths, a refusal is answered whatever the database does, and a row the
database could not take is retried (workers/audit_writer.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from api.audit_row import as_ip, clean
from api.trace import mint
from db.audit import AuditRow

REFUSAL_AUDIT_WAIT = 1.0  # seconds a refusal waits for its row before it is answered all the same
UNREAD = "(request line not read)"  # the row's action when not even the method and path were parsed

TITLES = {400: "Bad Request", 431: "Request Header Fields Too Large"}


def refusal_row(status: int, method: str | None, target: bytes | None, peer, head_bytes: int) -> AuditRow:
    path = clean(target.split(b"?", 1)[0].decode("latin-1"), 512) if target else None
    ip = as_ip(peer[0]) if isinstance(peer, tuple) and peer else None
    return AuditRow(
        occurred_at=datetime.now(UTC),
        institution="anonymous",
        action=f"{method} {path}" if method and path else UNREAD,
        trace_id=mint(),
        resource_type="http_request",
        resource_id=path,
        ip_address=ip,
        user_agent=None,
        metadata={
            "method": method,
            "endpoint": path,
            "status_code": status,
            "refused_by": "http_parser",
            "request_head_bytes": head_bytes,
        },
    )


def refusal_response(status: int, detail: str, trace_id: str, default_headers) -> bytes:
    body = json.dumps(
        {
            "type": f"https://don-research.example/problems/{TITLES[status].lower().replace(' ', '-')}",
            "title": TITLES[status],
            "status": status,
            "detail": detail,
            "trace_id": trace_id,
        },
        separators=(",", ":"),
    ).encode()
    content = [f"HTTP/1.1 {status} {TITLES[status]}\r\n".encode()]
    for name, value in default_headers:
        content.extend([name, b": ", value, b"\r\n"])
    content.extend(
        [
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"x-trace-id: " + trace_id.encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
    )
    return b"".join(content)
