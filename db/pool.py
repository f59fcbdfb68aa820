"""The one asyncpg pool per process: codecs in its per-connection init, bounded acquire and statements."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
from pgvector.asyncpg import register_vector

log = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The database cannot serve this request now (down, saturated or too slow): answered as 503."""

    def __init__(self, message: str, cause: str = "database_down"):
        super().__init__(message)
        self.cause = cause  # "acquire_timeout" or "database_down": the 503's cause in /metrics


# What "the database cannot serve us right now" looks like from asyncpg: answered as 503.
UNAVAILABLE_ERRORS = (
    DatabaseUnavailable,
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # A pooled connection whose server died while it sat idle: the server's last words (FATAL) put its
    # protocol in a state no statement can start from, and the next one raises this before sending.
    asyncpg.InternalClientError,
)


def why_unavailable(exc: BaseException) -> str:
    """A short reason for people (health bodies, 503 details): no class names, no addresses."""
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return "the server is starting up or shutting down"
    if isinstance(exc, OSError):
        return exc.strerror.lower() if exc.strerror else "network error"
    if isinstance(exc, asyncpg.PostgresError):
        return "the server refused the request"
    return "connection lost"


# allow_nan=False: jsonb rejects NaN, so fail here with a clear error instead of in the server.
# One encoder for every value: json.dumps with non-default options builds a new one per call,
# and this runs for every audit row's metadata.
_JSONB_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _dumps(value) -> str:
    return _JSONB_ENCODER.encode(value)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Runs once per new physical connection: jsonb as Python objects, vector via pgvector's binary codec."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")
    await register_vector(conn)


class Pool(asyncpg.Pool):
    """asyncpg's pool plus what it does not count: borrowers waiting in `lend`, and a hook that is told
    each wait (the metrics' acquire-wait histogram). asyncpg's Pool has __slots__, hence a subclass."""

    __slots__ = ("waiting", "on_wait")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting = 0
        self.on_wait: Callable[[float], None] | None = None


async def create_pool(
    dsn: str, *, min_size: int, max_size: int, command_timeout: float, connect_timeout: float
) -> Pool:
    """Open the pool; raises if the database cannot be reached or pgvector is missing."""
    # asyncpg.create_pool(...) is `Pool(...)` with these defaults; built here so the pool is our subclass.
    return await Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=init_connection,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        server_settings={"application_name": "don-research-api", "TimeZone": "UTC"},
    )


@contextlib.asynccontextmanager
async def lend(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """Borrow a connection for one request; a saturated or unreachable database raises DatabaseUnavailable."""
    metered = isinstance(pool, Pool)
    if metered:
        pool.waiting += 1
        started = time.perf_counter()
    try:
        conn = await pool.acquire(timeout=timeout)
    except TimeoutError:
        raise DatabaseUnavailable("no database connection became free in time", "acquire_timeout") from None
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"database unreachable: {why_unavailable(exc)}") from None
    finally:
        if metered:
            pool.waiting -= 1
            if pool.on_wait is not None:
                pool.on_wait(time.perf_counter() - started)
    try:
        yield conn
    except (asyncio.CancelledError, TimeoutError):
        # Cut off mid-statement (a deadline, a probe's bound): the statement may still be running or
        # its answer may never come (a blackholed network). Close the connection rather than wait for
        # it to settle; the pool opens a new one when needed.
        conn.terminate()
        raise
    finally:
        await _release(pool, conn, timeout)


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection, timeout: float) -> None:
    """Give the connection back, bounded; one that cannot be reset cleanly (its server went away
    mid-statement, asyncpg's InternalClientError on a broken protocol state) is closed instead of
    escaping as an error after the request's work is done."""
    try:
        await pool.release(conn, timeout=timeout)
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
        log.warning("connection dropped on release (%s): %s", type(exc).__name__, why_unavailable(exc))
        with contextlib.suppress(asyncpg.InterfaceError):  # already back in the pool, closed
            conn.terminate()


async def close(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close the pool, bounded: a wedged connection is terminated rather than waited on forever."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        log.warning("pool did not close cleanly within %ss (%s); terminating it", timeout, type(exc).__name__)
        pool.terminate()


def pool_figures(pool: asyncpg.Pool) -> dict:
    return {"size": pool.get_size(), "idle": pool.get_idle_size(), "max": pool.get_max_size()}
