"""The audit middleware: pure ASGI, outermost, one audit row per HTTP request.

It lives in api/ because it is HTTP plumbing; the SQL it runs is in db/audit.py and sql/.
It wraps the whole Starlette app (outside its error middleware) so that every response,
the 500s and 404s included, passes through it as messages. The final body chunk is held back
until the request's audit row is committed; if the row cannot be written the client gets a
503 instead (fail closed), except on the health paths, which must always tell the truth.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.paths import audit_exempt
from api.problems import problem_response
from api.redaction import redacted_query
from api.trace import trace_id_from
from core.logs import trace_id_var
from core.tokens import redact
from db.audit import AuditRow, AuditWriteFailed

CLIENT_CLOSED = 499  # nginx's convention for "client closed the request before the response"
log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class AuditMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send).run()


class _Exchange:
    """The state of one request/response pair; lives only for that request."""

    def __init__(self, middleware: AuditMiddleware, scope: Scope, receive: Receive, send: Send):
        self.app = middleware.app
        self.limit = middleware.max_body_bytes
        self.scope = scope
        self.receive_raw = receive
        self.send_raw = send
        self.started = time.perf_counter()
        self.occurred_at = datetime.now(UTC)
        self.trace_id = trace_id_from(scope["headers"])
        self.exempt = audit_exempt(scope["path"])
        self.digest = hashlib.sha256()
        self.request_bytes = 0
        self.response_bytes = 0
        self.status: int | None = None
        self.held_start: Message | None = None
        self.sent_start = False
        self.audited = False
        self.disconnected = False
        scope["trace_id"] = self.trace_id
        # Downstream layers (authentication) enrich the row through this dict.
        scope["audit"] = {"institution": "anonymous", "metadata": {}}

    async def run(self) -> None:
        token = trace_id_var.set(self.trace_id)
        try:
            declared = _content_length(self.scope["headers"])
            if declared is not None and declared > self.limit:
                await self._answer_problem(413, f"request body exceeds the limit of {self.limit} bytes")
                return
            try:
                await self.app(self.scope, self.receive, self.send)
            except ClientDisconnect:
                # The client went away mid-body: not a server error, nothing left to answer.
                if not self.audited:
                    await self._finish_after_crash()
                log.info("client disconnected during %s %s", self.scope["method"], self.scope["path"])
                return
            except BaseException as exc:
                if not self.audited:
                    await self._finish_after_crash()
                if not isinstance(exc, Exception):
                    raise  # cancellation and interpreter exits are not ours to stop
                # Logged here, inside the request's trace context, with its traceback; not re-raised,
                # so the server does not log it a second time with no trace id. The client has its 500.
                log.error(
                    "unhandled %s in %s %s", type(exc).__name__, self.scope["method"], self.scope["path"], exc_info=exc
                )
                return
            if not self.audited:
                await self._finish_after_crash()
        finally:
            trace_id_var.reset(token)

    async def receive(self) -> Message:
        message = await self.receive_raw()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            self.request_bytes += len(chunk)
            if self.request_bytes > self.limit:
                raise BodyTooLarge(self.limit)
            self.digest.update(chunk)
        elif message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"x-trace-id", self.trace_id.encode()))
            self.held_start = {**message, "headers": headers}
            return
        if kind != "http.response.body":
            await self.send_raw(message)
            return
        chunk = message.get("body", b"")
        self.response_bytes += len(chunk)
        if message.get("more_body", False):
            await self._release_start()
            await self.send_raw(message)
            return
        # The last chunk: nothing more leaves until the audit row is committed.
        if not await self._audit(self.status):
            if self.sent_start:
                # A streamed response cannot change its status; cutting it short tells the client.
                raise AuditWriteFailed("audit row not written; streamed response aborted")
            self.held_start = None
            await self._answer_unaudited()
            return
        await self._release_start()
        await self.send_raw(message)

    async def _release_start(self) -> None:
        if self.held_start is not None:
            start, self.held_start = self.held_start, None
            await self.send_raw(start)
            self.sent_start = True

    async def _finish_after_crash(self) -> None:
        """The app raised, or returned without finishing a response: record a 500 and answer one if we still can."""
        status = CLIENT_CLOSED if self.disconnected else 500
        ok = await self._audit(status)
        if self.sent_start:
            return
        self.held_start = None
        if ok:
            await self._send_problem(500, "an unexpected error occurred; quote the trace_id when reporting it")
        else:
            await self._answer_unaudited()

    async def _answer_problem(self, status: int, detail: str) -> None:
        """Answer without calling the app (e.g. a declared body over the limit), audited like any response."""
        if await self._audit(status):
            await self._send_problem(status, detail)
        else:
            await self._answer_unaudited()

    async def _answer_unaudited(self) -> None:
        await self._send_problem(
            503,
            "the audit trail is unavailable, so the request cannot be answered; retry shortly",
            {"Retry-After": "2"},
        )

    async def _send_problem(self, status: int, detail: str, headers: dict | None = None) -> None:
        response = problem_response(
            status, detail, self.trace_id, headers={**(headers or {}), "X-Trace-ID": self.trace_id}
        )
        await response(self.scope, self.receive_raw, self.send_raw)
        self.sent_start = True

    async def _audit(self, status: int | None) -> bool:
        """Write this request's row; True once committed. Health paths answer even when it fails."""
        self.audited = True
        if self.disconnected:
            status = CLIENT_CLOSED
        writer = self.scope.get("state", {}).get("audit_writer")
        try:
            if writer is None:
                raise AuditWriteFailed("the audit writer is not running")
            await writer.write(self._row(status or 500))
            return True
        except AuditWriteFailed as exc:
            log.error("AUDIT_WRITE_FAILED %s %s status=%s: %s", self.scope["method"], self.scope["path"], status, exc)
            return self.exempt

    def _row(self, status: int) -> AuditRow:
        scope = self.scope
        context = scope["audit"]
        headers = dict(scope["headers"])
        metadata = {
            "method": scope["method"],
            "endpoint": _clean(scope["path"], 1000),
            "query": _clean(redacted_query(scope.get("query_string", b"")), 2000),
            "status_code": status,
            "response_time_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "request_sha256": self.digest.hexdigest() if self.request_bytes else None,
            "content_type": _clean(headers.get(b"content-type", b"").decode("latin-1"), 200) or None,
        }
        for key, value in context["metadata"].items():
            metadata.setdefault(key, value)
        return AuditRow(
            occurred_at=self.occurred_at,
            institution=context["institution"],
            action=_clean(f"{scope['method']} {scope['path']}", 1000),
            trace_id=self.trace_id,
            resource_type="http_request",
            resource_id=_clean(scope["path"], 1000),
            ip_address=_client_ip(scope),
            user_agent=_clean(headers.get(b"user-agent", b"").decode("latin-1"), 512) or None,
            metadata=metadata,
        )


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return _as_ip(client[0]) if client else None


@functools.lru_cache(maxsize=4096)
def _as_ip(host: str) -> str | None:
    """The address in canonical form, or None for what inet would refuse (a socket path, a name)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _clean(value: str, limit: int) -> str:
    """Text safe for a text/jsonb column and a log line: no NUL, no control characters, no lone surrogates."""
    value = redact(value)[:limit]
    if value.isprintable() and value.isascii():
        return value  # the common case, checked in C
    value = "".join(ch if ch.isprintable() else "\ufffd" for ch in value)
    return value.encode("utf-8", "replace").decode("utf-8")
