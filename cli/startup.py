"""Start-up checks: find the database, wait for it (bounded), require pgvector and a current schema."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import asyncpg

from core.config import Settings
from db import embedded, migrations, sql
from db.pool import why_unavailable

APPLIED_MIGRATIONS = sql.statement("applied_migrations")
VECTOR_EXTENSION = sql.statement("vector_extension")
log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start; the message is the one line an operator sees."""


def describe(dsn: str) -> str:
    """Where a URL points, without its password."""
    parts = urlsplit(dsn)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("host", "?")
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def resolve_database(settings: Settings) -> str:
    """DATABASE_URL when set, otherwise the embedded PostgreSQL (started if needed)."""
    if settings.database_url:
        return settings.database_url
    try:
        return embedded.start(settings.data_dir)
    except Exception as exc:  # the library raises plain subprocess/OS errors; one clear line instead
        raise StartupError(f"could not start the embedded PostgreSQL in {settings.data_dir}: {exc}") from None


async def wait_for_database(dsn: str, settings: Settings) -> None:
    """Connect with back-off until it works or DB_STARTUP_TIMEOUT passes; then require pgvector."""
    deadline = time.monotonic() + settings.startup_timeout
    delay = 0.25
    while True:
        try:
            conn = await asyncpg.connect(
                dsn, timeout=min(settings.connect_timeout, max(0.1, deadline - time.monotonic()))
            )
            break
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if isinstance(
                exc,
                (
                    asyncpg.InvalidPasswordError,
                    asyncpg.InvalidCatalogNameError,
                    asyncpg.InvalidAuthorizationSpecificationError,
                ),
            ):
                raise StartupError(f"database {describe(dsn)} refused the connection: {exc}") from None
            if time.monotonic() + delay >= deadline:
                raise StartupError(
                    f"database {describe(dsn)} unreachable after {settings.startup_timeout:g}s: "
                    f"{str(exc) or why_unavailable(exc)}"  # a timeout's message is empty: say "timed out"
                ) from None
            log.warning(
                "database %s not reachable yet (%s); retrying in %.2fs", describe(dsn), type(exc).__name__, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        row = await sql.fetchrow(conn, VECTOR_EXTENSION)
    finally:
        await conn.close()
    if row is None:
        raise StartupError(
            f"pgvector is not available on database server {describe(dsn)}: install the 'vector' extension"
        )


async def pending_migrations(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        applied = {r["migration_id"] for r in await sql.fetch(conn, APPLIED_MIGRATIONS)}
    except asyncpg.UndefinedTableError:
        applied = set()
    finally:
        await conn.close()
    return [m for m in migrations.on_disk() if m not in applied]


async def prepare(settings: Settings) -> str:
    """Everything that must hold before serving; returns the DSN to pool. Raises StartupError."""
    dsn = await asyncio.to_thread(resolve_database, settings)
    await wait_for_database(dsn, settings)
    if settings.embedded:
        applied = await asyncio.to_thread(migrations.apply, dsn)
        if applied:
            log.info("applied %d migration(s) to the embedded database", len(applied))
    missing = await pending_migrations(dsn)
    if missing:
        raise StartupError(
            f"{len(missing)} migration(s) not applied ({', '.join(missing)}): run `python app.py migrate`"
        )
    return dsn
