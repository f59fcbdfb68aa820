"""uvicorn's httptools protocol with a cap on the request head, and no WebSocket upgrades.

httptools (llhttp) has no header limit, and the Python side of httptools re-concatenates a header
value on every read: a 64 MiB User-Agent took 3.6-4.7 s to parse, a concurrent GET waited up to
2.2 s and the process grew by 128 MiB. h11 has a limit (h11_max_incomplete_event_size) but parses
in Python. `.venv/bin/python bench/http_parser.py --stock-throughput` (trivial Starlette app, server
pinned to one CPU, wrk -t1 -c32, 5 interleaved rounds of 5 s, shared 2-core machine), last run:

  h11 + 64 KiB limit:    9.0k req/s median, p50 3.42 ms; refuses 64 MiB in 1 ms (400)
  this class (64 KiB):  22.1k req/s median, p50 1.12 ms; refuses 64 MiB in 3 ms (431)
  stock httptools:      19.8k req/s median, p50 1.36 ms; 64 MiB: 3.6 s, a GET waited 1.6 s
  per-round req/s ratio this class / h11: 1.7-3.0 (2.4 of the medians; 1.9-2.2 in earlier runs)
  this class / stock httptools: 0.75-1.40 per round, i.e. within the noise; in-process, the
  bookkeeping adds about 0.5 us to a 12 us request cycle.

Both caps bound the damage (no concurrent GET waited more than 4 ms during a refusal); this one
keeps httptools' throughput and answers 431 problem+json like the service's other errors.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.connection_watch import CONNECTION_KEY, ConnectionWatch
from api.refusals import REFUSAL_AUDIT_WAIT, refusal_response, refusal_row

MAX_HEADER_BYTES = 65536
# After the 431 the write side is shut and the rest of the oversized head is read and dropped for
# up to this long, so the client reads the answer instead of a reset (a close with unread input
# sends RST, and the peer's kernel then discards the 431 it already holds).
LINGER_SECONDS = 2.0

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
JOIN_MAX_BYTES = 65536  # a first body chunk up to this size is joined to the head in one write


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each request head (request line and headers) before the parser sees them.

    Past MAX_HEADER_BYTES the connection gets 431 problem+json and is closed; the parser is not fed
    the excess. The count starts at the connection's first byte and again after each complete
    message (keep-alive), and stops at headers-complete, so bodies do not count. While in a head,
    the parser is fed at most the bytes left in the budget, so the refusal comes after at most
    MAX_HEADER_BYTES of head. A pipelined head that begins inside a read already being parsed is
    counted from the next read on: its bound is MAX_HEADER_BYTES plus one read (256 KiB at most).

    Upgrade/CONNECT: the service has no WebSockets (uvicorn runs with ws="none"). llhttp still stops
    at such a request's head; uvicorn has already handed it to the app as ordinary HTTP, so it gets
    the app's answer (404/405/...), after which the connection is closed and anything the client
    sent after the head (possibly the other protocol's bytes) is dropped, never parsed as HTTP.
    uvicorn's two warnings per such request are not logged.

    Each request's scope also carries the connection's ConnectionWatch (api/connection_watch.py),
    so the audit row can say 499 when the client left before its response did.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refusing = False  # over the limit: 431 goes out once earlier responses are done
        self._ignoring = False  # refusing, or after an upgrade request: further bytes are dropped
        self._watch: ConnectionWatch | None = None
        self._refusal: asyncio.Task | None = None  # a refusal's answer, waiting for its audit row

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._watch = ConnectionWatch(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._watch is not None:
            self._watch.lost()

    def data_received(self, data: bytes) -> None:
        if self._ignoring:
            return
        if not self._in_head or len(data) < MAX_HEADER_BYTES - self._head_bytes:
            # The usual case: a body, or a read that fits in what is left of the head's budget.
            if self._in_head:
                self._head_bytes += len(data)
            HttpToolsProtocol.data_received(self, data)
            return
        while data:
            if not self._in_head:
                HttpToolsProtocol.data_received(self, data)  # a body, and whatever follows it
                return
            room = MAX_HEADER_BYTES - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
            self._head_bytes += len(piece)
            HttpToolsProtocol.data_received(self, piece)
            if self._ignoring or self.parser is None or self.transport.is_closing():
                return
        if self._in_head and self._head_bytes >= MAX_HEADER_BYTES:
            self._refuse()

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn calls this when llhttp stopped at an Upgrade/CONNECT head it will not upgrade
        # (with ws="none": always). The request was handed to the app at headers-complete as
        # plain HTTP; close after its answer rather than parse the other protocol's bytes.
        self._ignoring = True
        if self.cycle is not None:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        self._in_head = False
        scope = self.scope
        scope[CONNECTION_KEY] = self._watch  # the scope the app gets: its task has not started yet
        HttpToolsProtocol.on_headers_complete(self)
        cycle = self.cycle
        if cycle is not None and cycle.scope is scope and scope["method"] != "HEAD":
            cycle.transport = HeadWithBody(cycle.transport)  # its task has not run yet either

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        HttpToolsProtocol.on_message_complete(self)

    def _refuse(self) -> None:
        self._refusing = self._ignoring = True
        self._unset_keepalive_if_required()
        if self._responses_done():
            self._send_431()
        # else: on_response_complete sends it after the responses already owed, in order

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusing and self._responses_done() and not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self._send_431()

    def _responses_done(self) -> bool:
        # The newest cycle runs last (pipelined ones wait in order), so its end is the end of all.
        return self.cycle is None or self.cycle.response_complete

    def _send_431(self) -> None:
        self._refuse_audited(431, f"request headers exceed {MAX_HEADER_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to bytes llhttp cannot parse (an unknown method, a negative Content-Length):
        # text/plain with no trace id and no audit row. Here it is a request like any other refusal.
        self._ignoring = True
        self._refuse_audited(400, "the request is not valid HTTP/1.1")

    def _refuse_audited(self, status: int, detail: str) -> None:
        """Queue the refusal's audit row (api/refusals.py), then answer once it is in or after the wait."""
        target = getattr(self, "url", b"") or None
        method = None
        if target:  # the parser has read the request line
            try:
                method = self.parser.get_method().decode("latin-1")
            except Exception:  # httptools raises its own errors for a method it never finished
                method = None
        peer = self.transport.get_extra_info("peername")
        row = refusal_row(status, method, target, peer, self._head_bytes)
        writer = (self.app_state or {}).get("audit_writer")
        if writer is None:  # no lifespan (never in the service): answer without a row
            self._answer_refusal(status, detail, row.trace_id)
            return
        self._refusal = self.loop.create_task(self._answer_after_row(writer, row, status, detail))

    async def _answer_after_row(self, writer, row, status: int, detail: str) -> None:
        try:
            await writer.write_briefly(row, REFUSAL_AUDIT_WAIT)
        finally:
            if not self.transport.is_closing():
                self._answer_refusal(status, detail, row.trace_id)

    def _answer_refusal(self, status: int, detail: str, trace_id: str) -> None:
        self.transport.write(refusal_response(status, detail, trace_id, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.flow.resume_reading()  # drain (and drop) what the client is still sending
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


class HeadWithBody:
    """One response's view of the connection: its head goes out with its first body chunk, in one
    write (one system call, one TCP segment) where uvicorn makes two. About 5 us of kernel time a
    response on loopback; the client's side reads one segment instead of two.

    uvicorn writes the head as soon as the app sends http.response.start; here it waits for the
    next write, which is the body's (for HEAD, which writes no body, this view is not used). A close
    sends a head still waiting first, so a response cut short still shows its status. The interim
    100 Continue is not a head: it goes out at once."""

    __slots__ = ("_transport", "_head", "_done")

    def __init__(self, transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._done = False  # the head has gone out: every write now goes straight through

    def write(self, data: bytes) -> None:
        if self._done or data == CONTINUE:
            self._transport.write(data)
        elif self._head is None:
            self._head = data
        else:
            head, self._head, self._done = self._head, None, True
            if len(data) > JOIN_MAX_BYTES:  # not worth copying a large body to save one call
                self._transport.write(head)
                self._transport.write(data)
            else:
                self._transport.write(head + data)

    def close(self) -> None:
        if self._head is not None:
            head, self._head, self._done = self._head, None, True
            self._transport.write(head)
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)  # is_closing, get_write_buffer_size, ...
