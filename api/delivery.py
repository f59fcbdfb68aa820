"""Handing a response to the server while knowing how much of it left the process: the part of the
audit middleware's exchange (api/audit.py) that the 499 rows rest on, and the answers the middleware
makes itself (a crash's 500, a declared body's 413, the deadline's 503, the audit trail's 503), each
audited through the exchange's `_audit`.

The server's ConnectionWatch (api/connection_watch.py) says whether the client is gone and how many
handed bytes still wait in the write buffer; without one (another server, in-process tests) every
handed byte counts as taken. A large final chunk goes out in slices under the server's back-pressure,
so a client that stops reading part-way is seen before its row is written.
"""

from __future__ import annotations

from starlette.types import Message

from api.problems import problem_response
from api.request_metrics import mark_unavailable

OK, LATE, FAILED = "ok", "late", "failed"  # a row's outcome: committed, now saying 503, not written
SLICE_BYTES = 256 * 1024  # a final body chunk larger than this is sent in slices of this size, the last held


class Delivery:
    """Body bytes handed to the server, and of those the ones known to have left the process."""

    __slots__ = (
        "answered", "disconnected", "handed_bytes", "held_start", "receive_raw", "response_bytes", "scope",
        "send_raw", "sent_start", "taken_bytes", "timeout", "trace_id", "watch",
    )  # fmt: skip

    async def _hand(self, message: Message) -> None:
        """Pass a body chunk to the server, keeping count of what is known to have left."""
        if self._client_gone():
            return  # nothing reaches a closed connection; the server would drop it
        await self.send_raw(message)
        self.handed_bytes += len(message.get("body", b""))
        if self.watch is None:
            self.taken_bytes = self.handed_bytes
        elif not self.watch.gone:
            self.taken_bytes = self.handed_bytes - self.watch.unsent()

    async def _send_all_but_last_slice(self, chunk: bytes) -> Message:
        """Send a large final chunk's slices but the last (the server's back-pressure paces them);
        stop early if the client leaves. Returns the last slice's message."""
        view = memoryview(chunk)
        last = len(chunk) - SLICE_BYTES
        for offset in range(0, last, SLICE_BYTES):
            if self._client_gone():
                break
            piece = view[offset : min(offset + SLICE_BYTES, last)]
            await self._hand({"type": "http.response.body", "body": bytes(piece), "more_body": True})
        return {"type": "http.response.body", "body": bytes(view[last:]), "more_body": False}

    def _client_gone(self) -> bool:
        return self.disconnected or (self.watch is not None and self.watch.gone)

    def _has_length(self) -> bool:
        start = self.held_start or {}
        return any(name.lower() == b"content-length" for name, _ in start.get("headers", []))

    async def _finish_after_crash(self) -> None:
        """The app raised, or returned without finishing a response: record a 500 and answer one if we still can."""
        if self.sent_start:  # a streamed response cannot change its status: its row says what went out
            await self._audit(500)  # 499 instead if the client is gone
            return
        self.held_start = None
        await self._answer_problem(500, "an unexpected error occurred; quote the trace_id when reporting it")

    async def _answer_problem(self, status: int, detail: str) -> None:
        """Answer without (or instead of) the app: a declared body over the limit, a crash. Audited like
        any response, with the size of the body it is about to send."""
        response = self._problem(status, detail)
        self.response_bytes = len(response.body)
        outcome = await self._audit(status)  # 499 instead if the client is already gone
        if outcome is OK:
            await self._send(response, status)
        else:
            await self._answer_not_audited(outcome)

    async def _answer_late(self) -> None:
        """The deadline passed before the app answered: the app was cancelled; 503, audited as such."""
        self.held_start = None
        await self._audit(503, deadline_exceeded=True)  # whatever the outcome, the row (if any) says 503
        await self._send_late()

    async def _audit(self, status: int | None, deadline_exceeded: bool = False) -> str:
        """Write the request's row (api/audit.py): OK, LATE or FAILED."""
        raise NotImplementedError

    async def _answer_not_audited(self, outcome: str) -> None:
        if outcome is LATE:  # the row now says 503 and will be written when it can be
            await self._send_late()
            return
        mark_unavailable(self.scope, "audit_unavailable")
        await self._send_problem(
            503,
            "the audit trail is unavailable, so the request cannot be answered; retry shortly",
            {"Retry-After": "2"},
        )

    async def _send_late(self) -> None:
        mark_unavailable(self.scope, "deadline")
        await self._send_problem(
            503,
            f"the request did not finish within its {self.timeout:g} s deadline; retry shortly",
            {"Retry-After": "2"},
        )

    def _problem(self, status: int, detail: str, headers: dict | None = None):
        return problem_response(status, detail, self.trace_id, headers={**(headers or {}), "X-Trace-ID": self.trace_id})

    async def _send_problem(self, status: int, detail: str, headers: dict | None = None) -> None:
        await self._send(self._problem(status, detail, headers), status)

    async def _send(self, response, status: int) -> None:
        self.answered = status
        await response(self.scope, self.receive_raw, self.send_raw)
        self.sent_start = True
