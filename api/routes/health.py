"""Health: a deep check for monitors and people, and a live check for the load balancer."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from api.endpoint import Endpoint, answer
from api.paths import HEALTH_PATH, LIVE_PATH
from api.request_metrics import mark_unavailable
from api.schemas.service import Health, Live
from db import health as db_health
from db.pool import UNAVAILABLE_ERRORS, lend, pool_figures, why_unavailable

VERSION = "1.0.0"
log = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    """200 when the database answers within HEALTH_TIMEOUT, else 503 with a short reason; never hangs."""
    state = request.state
    settings = state.settings
    body = {
        "version": VERSION,
        "timestamp": datetime.now(UTC),
        "pool": pool_figures(state.pool),
        "audit": {"write_failures": state.audit_writer.failures},
    }
    try:
        async with asyncio.timeout(settings.health_timeout):
            async with lend(state.pool, settings.health_timeout) as conn:
                database = await db_health.probe(conn)
    except TimeoutError:
        reason = f"database did not answer within {settings.health_timeout:g}s"
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
        reason = f"database unavailable: {why_unavailable(exc)}"
    else:
        return answer(Health, {"status": "healthy", **body, "database": database})
    log.warning("health check failed: %s", reason)
    mark_unavailable(request.scope, "database_down")
    return answer(
        Health,
        {"status": "unhealthy", **body, "database": {"status": "unavailable", "reason": reason}},
        status=503,
        headers={"Retry-After": "5"},
    )


async def live(request: Request) -> Response:
    """200 whenever this process serves requests; touches no database (Render's healthCheckPath)."""
    return answer(Live, {"status": "alive", "version": VERSION, "timestamp": datetime.now(UTC)})


endpoints = [
    Endpoint(
        "GET",
        HEALTH_PATH,
        health,
        "Deep health: the database answers within HEALTH_TIMEOUT",
        "health",
        Health,
        public=True,
        head=True,
        errors_in_body=(503,),
    ),
    Endpoint(
        "GET",
        LIVE_PATH,
        live,
        "Liveness: the process serves; touches no database",
        "health",
        Live,
        public=True,
        head=True,
    ),
]
