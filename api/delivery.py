"""Handing a response's body to the server while knowing how much of it left the process: the part of
the audit middleware's exchange (api/audit.py) that the 499 rows rest on.

The server's ConnectionWatch (api/connection_watch.py) says whether the client is gone and how many
handed bytes still wait in the write buffer; without one (another server, in-process tests) every
handed byte counts as taken. A large final chunk goes out in slices under the server's back-pressure,
so a client that stops reading part-way is seen before its row is written.
"""

from __future__ import annotations

from starlette.types import Message

SLICE_BYTES = 256 * 1024  # a final body chunk larger than this is sent in slices of this size, the last held


class Delivery:
    """Body bytes handed to the server, and of those the ones known to have left the process."""

    __slots__ = ("send_raw", "watch", "disconnected", "handed_bytes", "taken_bytes")

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
