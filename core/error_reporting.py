"""Optional error reporting to Sentry: on only with SENTRY_DSN; without it nothing is imported.

What leaves the process is scrubbed first: no Authorization or Cookie header, no request body,
no query string, and anything shaped like a token becomes donr_REDACTED. Each event is tagged
with the trace id of the request it happened in (or the background task's id).
"""

from __future__ import annotations

from typing import Any

from core.logs import trace_id_var
from core.tokens import redact

DROPPED_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"})


def configure(dsn: str | None, release: str) -> bool:
    """Start reporting when `dsn` is set; True if it was started."""
    if not dsn:
        return False
    import sentry_sdk  # imported only here: a service without SENTRY_DSN never loads it

    sentry_sdk.init(
        dsn=dsn,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # locals can hold bodies and tokens
        traces_sample_rate=0,
        before_send=scrub,
        before_breadcrumb=lambda crumb, hint: _redacted(crumb),
    )
    return True


def scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event with secrets and bodies removed and the trace id as a tag."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
    event.setdefault("tags", {})["trace_id"] = trace_id_var.get()
    return _redacted(event)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value
