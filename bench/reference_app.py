"""The bare reference app for bench/service.py: Starlette + asyncpg, no middleware, no audit.

It answers GET/HEAD /api/v1/health with the work the service's health handler does (api/health.py):
the same pool (db.pool.create_pool: same per-connection init, sizes and timeouts from the same
environment), a connection borrowed with db.pool.lend under the same HEALTH_TIMEOUT, the same
probe (db.health.probe, i.e. sql/health_probe.sql) and a JSON body of the same shape. What it
leaves out is exactly what the benchmark measures: the audit middleware and its group-commit
writer, the trace-id plumbing and the service's start-up checks.

For bench/hot_path.py it also serves, with no authentication, quota or audit:
  GET /api/v1/collections/{name}/vectors/{vector_id}: the two statements the service's handler runs
      (sql/get_collection.sql, sql/get_vector.sql) for the institution REFERENCE_INSTITUTION_ID, on
      one borrowed connection, answered as JSON of the same shape;
  GET /plain: a constant JSON body, no database (the bare side of the service's live path);
  GET /count-each: the quota as it was before batching, one upsert committed per request on the
      institution's counter row (the row-lock ceiling the commit-latency demonstration shows).

Run it the way bench/service.py does (DATABASE_URL must point at a migrated database):

    DATABASE_URL=postgres://... python -m uvicorn bench.reference_app:app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.routes.health import VERSION
from core.config import Settings
from db import health as db_health
from db import sql
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


GET_COLLECTION = sql.statement("get_collection")
GET_VECTOR = sql.statement("get_vector")
# The pre-batching quota statement, kept here only as the bench's reference for one upsert per request.
COUNT_ONE = """
INSERT INTO rate_limit_windows AS w (institution_id, window_start, hits)
VALUES ($1, date_trunc('hour', now(), 'UTC'), 1)
ON CONFLICT (institution_id, window_start) DO UPDATE SET hits = w.hits + 1 WHERE w.hits < $2
RETURNING w.hits, w.window_start
"""


async def get_vector(request: Request) -> Response:
    state = request.state
    async with lend(state.pool, state.settings.acquire_timeout) as conn:
        collection = await sql.fetchrow(conn, GET_COLLECTION, state.institution_id, request.path_params["name"])
        if collection is None:
            return JSONResponse({"detail": "no such collection"}, status_code=404)
        row = await sql.fetchrow(conn, GET_VECTOR, collection["id"], request.path_params["vector_id"])
    if row is None:
        return JSONResponse({"detail": "no such vector"}, status_code=404)
    return JSONResponse(
        {
            "id": row["id"],
            "vector": row["embedding"].to_list(),
            "metadata": row["metadata"],
            "updated_at": row["updated_at"].isoformat(),
        }
    )


async def plain(request: Request) -> Response:
    return JSONResponse({"status": "alive", "version": VERSION, "timestamp": datetime.now(UTC).isoformat()})


async def count_each(request: Request) -> Response:
    state = request.state
    async with lend(state.pool, state.settings.acquire_timeout) as conn:
        row = await conn.fetchrow(COUNT_ONE, state.institution_id, 2**31 - 1)
    return JSONResponse({"used": row["hits"]})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if not settings.database_url:
            raise RuntimeError("the reference app needs DATABASE_URL (bench/service.py sets it)")
        pool = await create_pool(settings.database_url, **settings.pool_options())
        try:
            institution_id = int(os.environ.get("REFERENCE_INSTITUTION_ID", "0"))
            yield {"settings": settings, "pool": pool, "institution_id": institution_id}
        finally:
            await close(pool)

    routes = [
        Route("/api/v1/health", health, methods=["GET", "HEAD"]),
        Route("/api/v1/collections/{name}/vectors/{vector_id}", get_vector),
        Route("/plain", plain),
        Route("/count-each", count_each),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


app = create_app()
