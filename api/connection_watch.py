"""What the server knows of a request's connection, for the audit row: is the client gone, and how
much of the response has not left the process yet.

The service's HTTP protocol (api/http_protocol.py) puts one ConnectionWatch per connection in each
request's scope under CONNECTION_KEY; under another server (or in-process tests) there is none, and
the audit falls back to what the app itself saw (an http.disconnect from receive).
"""

from __future__ import annotations

from collections.abc import Callable

CONNECTION_KEY = "don.connection"


class ConnectionWatch:
    """Set `gone` when the connection is lost, and call whoever asked to be told."""

    __slots__ = ("_transport", "gone", "_callbacks")

    def __init__(self, transport) -> None:
        self._transport = transport
        self.gone = False
        self._callbacks: list[Callable[[], None]] = []

    def unsent(self) -> int:
        """Bytes handed to the server that are still in its write buffer (0 once gone: they never will be)."""
        return 0 if self.gone else self._transport.get_write_buffer_size()

    def when_lost(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def lost(self) -> None:
        self.gone = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
