"""The audit middleware: pure ASGI, outermost, one audit row per HTTP request, and the request's deadline.

The row is built in api/audit_row.py and written by workers/audit_writer.py. The middleware wraps the
whole Starlette app, so every response, the 500s and 404s included, passes through it as messages
(an unhandled error reaches it directly: it answers the 500 itself). The final body chunk is held
back until the app has returned and the request's row is committed (so a Starlette BackgroundTask
would run before its client has the answer: the service has none); if the row cannot be written
the client gets a 503 instead (fail closed). The health paths wait at most HEALTH_AUDIT_WAIT for
theirs: a probe must always get the truth, fast.

Every request has one deadline (REQUEST_TIMEOUT; LONG_REQUEST_TIMEOUT for the genomics builds).
The handler, with authentication and the quota, must finish AUDIT_RESERVE before it; whichever step
is still running then is cancelled and the client gets 503 with Retry-After. The audit write gets
what is left, at least AUDIT_RESERVE: a row still queued then is rewritten to say 503, which is what
the client gets, so the row and the answer never disagree.

A client that leaves before its response is audited 499 (CLIENT_CLOSED), with the bytes known to
have left the process (api/delivery.py): gone before its row is queued, or while the row still waits
in the queue (it is rewritten). A large body's slices but the last leave before the row is written;
if that row cannot be written, the connection is cut before the last slice (the client sees a short
body, never a complete unaudited one), as for a streamed response. A client that leaves in the
millisecond its row is being committed is recorded with the status it was about to get.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.audit_row import audit_row, content_length
from api.body_limit import BodyTooLarge, is_upload, too_large
from api.connection_watch import CONNECTION_KEY
from api.delivery import FAILED, LATE, OK, SLICE_BYTES, Delivery
from api.paths import audit_exempt, long_running
from api.trace import trace_id_from
from core.logs import trace_id_var
from db.audit import AuditWriteFailed
from workers.audit_writer import LateRow
from workers.timer_wheel import Deadline

CLIENT_CLOSED = 499  # nginx's convention for "client closed the request before the response"
AUDIT_RESERVE = 0.5  # seconds of the deadline kept for the audit write
HEALTH_AUDIT_WAIT = 0.05  # the longest a health answer waits for its own row (live must answer in 100 ms)
# Scope key: headers inner layers want on the response (the quota's), added as the head is copied.
RESPONSE_HEADERS_KEY = "don.response_headers"
log = logging.getLogger(__name__)


class AuditMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        request_timeout: float = 5.0,
        long_request_timeout: float = 300.0,
        max_upload_bytes: int | None = None,
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_body_bytes if max_upload_bytes is None else max_upload_bytes
        self.request_timeout = request_timeout
        self.long_request_timeout = long_request_timeout

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine function: it hands back the exchange's coroutine, so each time the request's
        # task resumes (after every statement and commit it waits for) it passes one frame fewer.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return _Exchange(self, scope, receive, send).run()


class _Exchange(Delivery):
    """The state of one request/response pair; lives only for that request."""

    __slots__ = (
        "app", "audited", "committed_status", "deadline", "digest", "exempt", "extra_headers", "held_last", "limit",
        "loop", "occurred_at", "queued_row", "request_bytes", "started", "status",
        "upload", "watchdog",
    )  # fmt: skip

    def __init__(self, middleware: AuditMiddleware, scope: Scope, receive: Receive, send: Send):
        self.app = middleware.app
        self.upload = is_upload(scope)
        self.limit = middleware.max_upload_bytes if self.upload else middleware.max_body_bytes
        self.scope = scope
        self.receive_raw = receive
        self.send_raw = send
        self.started = time.perf_counter()
        self.occurred_at = datetime.now(UTC)
        self.trace_id = trace_id_from(scope["headers"])
        self.exempt = audit_exempt(scope["path"])
        self.timeout = middleware.long_request_timeout if long_running(scope["path"]) else middleware.request_timeout
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + self.timeout
        self.watchdog: Deadline | None = None
        self.digest = None  # made with the first body byte: most requests (every GET) have none
        self.request_bytes = 0
        self.response_bytes = 0
        self.handed_bytes = 0  # body bytes passed to the server
        self.taken_bytes = 0  # of those, the ones known to have left the process
        self.watch = scope.get(CONNECTION_KEY)
        self.queued_row = None  # this request's row while the writer may still have it queued
        self.status: int | None = None
        self.answered: int | None = None  # the status the client was sent: what /metrics counts
        self.held_start: Message | None = None
        self.held_last: Message | None = None  # the app's final body chunk, until its row is committed
        self.sent_start = False
        self.audited = False
        self.disconnected = False
        self.committed_status: int | None = None  # set when a write committed this request's row itself
        scope["trace_id"] = self.trace_id
        scope["audit_exchange"] = self  # api/audited_write.py commits the row with the data
        scope["audit"] = {"institution": "anonymous", "metadata": {}}
        self.extra_headers: list[tuple[bytes, bytes]] = [(b"x-trace-id", self.trace_id.encode())]
        scope[RESPONSE_HEADERS_KEY] = self.extra_headers

    async def run(self) -> None:
        token = trace_id_var.set(self.trace_id)
        try:
            declared = content_length(self.scope["headers"])
            if declared is not None and declared > self.limit:
                await self._answer_problem(413, too_large(self.scope, self.limit, self.upload))
                return
            try:
                if self.exempt:  # the health paths bound themselves (HEALTH_TIMEOUT) and never wait on the audit
                    await self.app(self.scope, self.receive, self.send)
                else:
                    async with Deadline(self.deadline - AUDIT_RESERVE) as self.watchdog:
                        await self.app(self.scope, self.receive, self.send)
            except ClientDisconnect:
                # The client went away mid-body: not a server error, nothing left to answer.
                await self._finish()
                log.info("client disconnected during %s %s", self.scope["method"], self.scope["path"])
                return
            except BaseException as exc:
                expired = self.watchdog is not None and self.watchdog.expired()
                if isinstance(exc, TimeoutError) and expired and self.held_last is None and not self.audited:
                    await self._answer_late()
                    return
                await self._finish()  # an answer complete before the error still goes out
                if not isinstance(exc, Exception):
                    raise  # cancellation and interpreter exits are not ours to stop
                # Logged here, inside the request's trace context, with its traceback; not re-raised,
                # so the server does not log it a second time with no trace id. The client has its 500.
                log.error(
                    "unhandled %s in %s %s", type(exc).__name__, self.scope["method"], self.scope["path"], exc_info=exc
                )
                return
            await self._finish()
        finally:
            trace_id_var.reset(token)
            # The scope and this exchange refer to each other: without the break, every request's
            # objects (the server's cycle, its coroutines, the scope) waited for the cyclic GC,
            # which then freed about 1,200 requests' worth per young collection.
            self.scope.pop("audit_exchange", None)
            meter = self.scope.get("state", {}).get("request_meter")
            if meter is not None:
                # Nothing sent, or sent to a client already gone: the client got no (whole) answer.
                answered = CLIENT_CLOSED if self._client_gone() else (self.answered or CLIENT_CLOSED)
                meter.done(self.scope, answered, time.perf_counter() - self.started)

    async def receive(self) -> Message:
        message = await self.receive_raw()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk and self.digest is None:
                self.digest = hashlib.sha256()
            self.request_bytes += len(chunk)
            if self.request_bytes > self.limit:
                raise BodyTooLarge(too_large(self.scope, self.limit, self.upload))
            if chunk:
                self.digest.update(chunk)
        elif message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.held_start = {**message, "headers": [*message.get("headers", ()), *self.extra_headers]}
            return
        if kind != "http.response.body":
            await self.send_raw(message)
            return
        self._stop_watchdog()  # the answer is made: from here the audit write has its own bound
        chunk = message.get("body", b"")
        self.response_bytes += len(chunk)
        if message.get("more_body", False):
            await self._release_start()
            await self._hand(message)
            return
        # The last chunk: nothing more leaves until the audit row is committed.
        if self.committed_status is not None:  # committed in the write's own transaction
            if self.committed_status != self.status:
                log.error("AUDIT_MISMATCH: row committed with %s, answering %s", self.committed_status, self.status)
            await self._release_start()
            await self._hand(message)
            return
        if len(chunk) > SLICE_BYTES and self.watch is not None and self._has_length():
            await self._release_start()
            message = await self._send_all_but_last_slice(chunk)
        # Held until the app has returned (run() finishes it): the wait for the row's commit then
        # suspends and wakes this request's task through two frames, not through the whole stack.
        self.held_last = message

    async def _finish(self) -> None:
        """After the app: its held final chunk goes out audited; with none, and no row yet, a 500."""
        if self.held_last is not None:
            await self._finish_held()
        elif not self.audited:
            await self._finish_after_crash()

    async def _finish_held(self) -> None:
        """The app's final chunk, held by send(): it leaves once the request's row is committed."""
        message, self.held_last = self.held_last, None
        outcome = await self._audit(self.status)
        if outcome is OK:
            await self._release_start()
            await self._hand(message)
            return
        if self.sent_start:
            # A streamed response cannot change its status. Returning with it unfinished makes the
            # server close the connection: the client sees a short body, never a complete unaudited one.
            log.error("audit row not written; streamed response cut short")
            return
        self.held_start = None
        await self._answer_not_audited(outcome)

    def _on_client_lost(self) -> None:
        """The connection was lost while this request's row waits: if it is still queued, it says 499."""
        writer = self.scope.get("state", {}).get("audit_writer")
        if self.queued_row is not None and writer is not None:
            writer.revise_queued(self.queued_row, self.row(CLIENT_CLOSED, self.taken_bytes))

    def row(self, status: int, response_bytes: int | None = None):
        """This request's audit row as it stands now, saying `status`."""
        return audit_row(
            self.scope,
            occurred_at=self.occurred_at,
            trace_id=self.trace_id,
            status=status,
            elapsed_ms=(time.perf_counter() - self.started) * 1000,
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes if response_bytes is None else response_bytes,
            request_sha256=self.digest.hexdigest() if self.digest is not None else None,
        )

    def stop_deadline(self) -> None:
        self._stop_watchdog()

    def audited_by_write(self, status: int) -> None:
        """The request's row was committed with its data (api/audited_write.py): write no other."""
        self.audited = True
        self.committed_status = status

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None and not self.watchdog.expired():
            self.watchdog.stop()

    async def _release_start(self) -> None:
        if self.held_start is not None:
            start, self.held_start = self.held_start, None
            self.answered = start["status"]
            await self.send_raw(start)
            self.sent_start = True

    async def _audit(self, status: int | None, deadline_exceeded: bool = False) -> str:
        """Write this request's row: OK once committed, LATE if it now says 503, FAILED if not written.
        Health paths only queue theirs, and answer whatever happens to it."""
        self.audited = True
        if self._client_gone():
            row = self.row(CLIENT_CLOSED, self.taken_bytes)
        else:
            row = self.row(status or 500)
        if deadline_exceeded:
            row.metadata["deadline_exceeded"] = True
        writer = self.scope.get("state", {}).get("audit_writer")
        try:
            if writer is None:
                raise AuditWriteFailed("the audit writer is not running")
            if self.watch is not None and not self.watch.gone:
                self.queued_row = row
                self.watch.when_lost(self._on_client_lost)
            if self.exempt:
                await writer.write_briefly(row, HEALTH_AUDIT_WAIT)
                return OK
            await writer.write(row, timeout=max(self.deadline - self.loop.time(), AUDIT_RESERVE))
            return OK
        except LateRow:
            log.warning("AUDIT_LATE %s %s: answered 503, and the row says so", self.scope["method"], self.scope["path"])
            return LATE
        except AuditWriteFailed as exc:
            log.error("AUDIT_WRITE_FAILED %s %s status=%s: %s", self.scope["method"], self.scope["path"], status, exc)
            return FAILED
        finally:
            self.queued_row = None
            if self.watch is not None:
                self.watch.forget(self._on_client_lost)
