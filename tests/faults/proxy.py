"""A TCP proxy that misbehaves on demand, for fault tests: PostgreSQL with a bad network in front.

    with Proxy.to_url(database_url) as proxy:      # listens on 127.0.0.1:<free port>
        dsn = proxy.url(database_url)              # the same database, through the proxy
        proxy.cut()                                # drop every connection now; refuse new ones the same way
        proxy.blackhole()                          # accept and hold connections, forward nothing
        proxy.delay(0.2)                           # add 0.2 s before every chunk, each direction
        proxy.restore()                            # plain pass-through again

The target is a TCP (host, port) or a unix socket path: the embedded PostgreSQL listens only on a
unix socket, and its URL says so as `postgresql://postgres:@/postgres?host=/path/to/pg` (the socket
is `<host>/.s.PGSQL.<port or 5432>`). Clients always reach the proxy over TCP on 127.0.0.1.

The proxy runs its own asyncio loop in a background thread, so the same object serves sync tests
(driving a service subprocess) and async tests (asyncpg in pytest's loop) alike; every mode switch
has taken effect when the call returns.

Modes:
- pass-through: bytes flow both ways as they arrive.
- `cut()`: every open connection is aborted at once (the peers see a reset); while cut, new
  connections are accepted and aborted straight away, like a database that keeps dropping you.
- `blackhole()`: nothing is forwarded any more, in either direction, on open connections and on
  new ones (which are accepted and held, their upstream not even dialled). Bytes wait in the
  socket buffers, like a network partition: after `restore()` they flow again as if retransmitted.
- `delay(seconds)`: every chunk waits `seconds` before it is forwarded, in each direction.
- `restore()`: pass-through without delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

Target = tuple[str, int] | str  # (host, port) over TCP, or the path of a unix socket
CHUNK = 65536
CONTROL_TIMEOUT = 10.0


def target_of(url: str) -> Target:
    """Where a PostgreSQL URL points: (host, port), or the unix socket path for a socket directory."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or (unquote(parts.hostname) if parts.hostname else "") or "localhost"
    port = int(query.get("port") or parts.port or 5432)
    if "," in host:
        raise ValueError(f"a proxy fronts one server, not several: {host!r}")
    if host.startswith("/"):
        return f"{host.rstrip('/')}/.s.PGSQL.{port}"
    return (host, port)


def through(url: str, port: int, host: str = "127.0.0.1") -> str:
    """`url` pointed at host:port instead: same user, password, database and other parameters."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(eq=False)
class _Link:
    """One client connection and, once dialled, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    pumps: list[asyncio.Task] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class _Core:
    """The proxy itself; lives on one event loop, which alone touches it."""

    def __init__(self, target: Target):
        self.target = target
        self.server: asyncio.Server | None = None
        self.links: set[_Link] = set()
        self.handlers: set[asyncio.Task] = set()
        self.cutting = False
        self.flowing = asyncio.Event()  # cleared while blackholed
        self.flowing.set()
        self.latency = 0.0
        self.accepted = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.cut()
        if self.server is not None:
            await self.server.wait_closed()
        handlers = list(self.handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def cut(self) -> None:
        self.cutting = True
        self.flowing.set()  # held connections wake up and see the cut
        for link in list(self.links):
            link.abort()

    def blackhole(self) -> None:
        self.cutting = False
        self.flowing.clear()

    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def restore(self) -> None:
        self.cutting = False
        self.latency = 0.0
        self.flowing.set()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        handler = asyncio.current_task()
        self.handlers.add(handler)
        link = _Link(client_writer)
        self.links.add(link)
        try:
            await self.flowing.wait()  # blackholed: held here, not even dialling upstream
            if self.cutting:
                return
            try:
                if isinstance(self.target, str):
                    upstream_reader, link.upstream = await asyncio.open_unix_connection(self.target)
                else:
                    upstream_reader, link.upstream = await asyncio.open_connection(*self.target)
            except OSError:
                return
            if self.cutting:
                return
            link.pumps = [
                asyncio.ensure_future(self._pump(client_reader, link.upstream)),
                asyncio.ensure_future(self._pump(upstream_reader, client_writer)),
            ]
            # Either side ending ends the link: the pump that saw it has already passed on what it read.
            await asyncio.wait(link.pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in link.pumps:
                task.cancel()
            await asyncio.gather(*link.pumps, return_exceptions=True)
            if self.cutting:
                link.abort()
            else:
                for writer in (link.upstream, client_writer):
                    if writer is not None:
                        writer.close()
            self.links.discard(link)
            self.handlers.discard(handler)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(CHUNK)
                await self.flowing.wait()  # a blackhole holds what was read, and reads no more
                if self.cutting or not data:
                    return
                if self.latency:
                    await asyncio.sleep(self.latency)
                    await self.flowing.wait()
                    if self.cutting:
                        return
                writer.write(data)
                await writer.drain()


class Proxy:
    """The fault proxy on its own event loop thread; a context manager that starts and stops it."""

    def __init__(self, target: Target):
        self.target = target
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._core: _Core | None = None

    @classmethod
    def to_url(cls, url: str) -> Proxy:
        """A proxy in front of the server `url` names (TCP or unix socket)."""
        return cls(target_of(url))

    def url(self, url: str) -> str:
        """`url` (a URL of the proxied server) rewritten to go through this proxy."""
        return through(url, self.port)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def connections(self) -> int:
        """Client connections open right now (held ones included)."""
        return self._call(lambda core: len(core.links))

    @property
    def accepted(self) -> int:
        """Client connections accepted since the start."""
        return self._call(lambda core: core.accepted)

    def start(self) -> Proxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-proxy-{id(self):x}", daemon=True)
        self._thread.start()
        self._core = self._run(self._make_core())
        self.port = self._run(self._core.start())
        return self

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._run(self._core.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CONTROL_TIMEOUT)
            self._loop.close()
            self._loop = None

    def cut(self) -> None:
        self._call(_Core.cut)

    def blackhole(self) -> None:
        self._call(_Core.blackhole)

    def delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        self._call(lambda core: core.delay(seconds))

    def restore(self) -> None:
        self._call(_Core.restore)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    async def _make_core(self) -> _Core:
        return _Core(self.target)  # built on the proxy's loop: its Event belongs there

    def _call(self, action: Callable[[_Core], object]):
        async def on_loop():
            return action(self._core)

        return self._run(on_loop())

    def _run(self, coroutine):
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CONTROL_TIMEOUT)
