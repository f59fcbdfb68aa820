"""The bare reference app for bench/service.py: Starlette + asyncpg, no middleware, no audit.

It answers GET/HEAD /api/v1/health with the work the service's health handler does (api/health.py):
the same pool (db.pool.create_pool: same per-connection init, sizes and timeouts from the same
environment), a connection borrowed with db.pool.lend under the same HEALTH_TIMEOUT, the same
probe (db.health.probe, i.e. sql/health_probe.sql) and a JSON body of the same shape. What it
leaves out is exactly what the benchmark measures: the audit middleware and its group-commit
writer, the trace-id plumbing and the service's start-up checks.

Run it the way bench/service.py does (DATABASE_URL must point at a migrated database):

    DATABASE_URL=postgres://... python -m uvicorn bench.reference_app:app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.routes.health import VERSION
from core.config import Settings
from db import health as db_health
from db.pool import DatabaseUnavailable, close, create_pool, lend, pool_figures


async def health(request: Request) -> JSONResponse:
    """The service's deep health check minus the audit writer (its failure count is reported as 0)."""
    state = request.state
    settings = state.settings
    body = {
        "version": VERSION,
        "timestamp": datetime.now(UTC).isoformat(),
        "pool": pool_figures(state.pool),
        "audit": {"write_failures": 0},
    }
    try:
        async with asyncio.timeout(settings.health_timeout):
            async with lend(state.pool, settings.health_timeout) as conn:
                database = await db_health.probe(conn)
    except TimeoutError:
        reason = f"database did not answer within {settings.health_timeout:g}s"
    except (DatabaseUnavailable, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"database unavailable ({type(exc).__name__})"
    else:
        return JSONResponse({"status": "healthy", **body, "database": database})
    return JSONResponse(
        {"status": "unhealthy", **body, "database": {"status": "unavailable", "reason": reason}},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if not settings.database_url:
            raise RuntimeError("the reference app needs DATABASE_URL (bench/service.py sets it)")
        pool = await create_pool(settings.database_url, **settings.pool_options())
        try:
            yield {"settings": settings, "pool": pool}
        finally:
            await close(pool)

    return Starlette(routes=[Route("/api/v1/health", health, methods=["GET", "HEAD"])], lifespan=lifespan)


app = create_app()
