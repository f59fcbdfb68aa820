"""What one request's audit row holds, built from the ASGI scope: cleaned, redacted, never a secret or a body."""

from __future__ import annotations

import functools
import ipaddress
from datetime import datetime

from starlette.types import Scope

from api.redaction import redacted_query
from core.tokens import redact
from db.audit import AuditRow


def audit_row(
    scope: Scope,
    *,
    occurred_at: datetime,
    trace_id: str,
    status: int,
    elapsed_ms: float,
    request_bytes: int,
    response_bytes: int,
    request_sha256: str | None,
) -> AuditRow:
    context = scope["audit"]  # downstream layers (authentication, quota) enrich the row through it
    content_type = user_agent = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"user-agent":
            user_agent = value
    path = clean(scope["path"], 1000)  # cleaned once: the endpoint and the resource id are the same text
    method = scope["method"]
    if not (method.isascii() and method.isalpha()):  # the server only passes tokens; an ASGI caller might not
        method = clean(method, 100)
    query = scope.get("query_string", b"")
    metadata = {
        "method": method,
        "endpoint": path,
        "query": clean(redacted_query(query), 2000) if query else "",
        "status_code": status,
        "response_time_ms": round(elapsed_ms, 3),
        "request_bytes": request_bytes,
        "response_bytes": response_bytes,
        "request_sha256": request_sha256,
        "content_type": clean(content_type.decode("latin-1"), 200) or None if content_type else None,
    }
    for key, value in context["metadata"].items():
        metadata.setdefault(key, value)
    return AuditRow(
        occurred_at=occurred_at,
        institution=context["institution"],
        action=f"{method} {path}"[:1000],
        trace_id=trace_id,
        resource_type="http_request",
        resource_id=path,
        ip_address=_client_ip(scope),
        user_agent=clean(user_agent.decode("latin-1"), 512) or None if user_agent else None,
        metadata=metadata,
    )


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return as_ip(client[0]) if client else None


@functools.lru_cache(maxsize=4096)
def as_ip(host: str) -> str | None:
    """The address in canonical form, or None for what inet would refuse (a socket path, a name)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def clean(value: str, limit: int) -> str:
    """Text safe for a text/jsonb column and a log line: no NUL, no control characters, no lone surrogates."""
    value = redact(value)[:limit]
    if value.isprintable() and value.isascii():
        return value  # the common case, checked in C
    value = "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    return value.encode("utf-8", "replace").decode("utf-8")
