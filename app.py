"""DON Research API: composes the Starlette app (routes, middleware, lifespan) and dispatches commands.

`python app.py` (or `python app.py serve`) runs the service; `python app.py --help` lists the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware

from api.audit import AuditMiddleware
from api.auth import CACHE_MAX_ENTRIES, AuthMiddleware
from api.endpoint import routes
from api.job_registry import product_job_types
from api.problems import EXCEPTION_HANDLERS
from api.ratelimit import RateLimitMiddleware
from api.request_metrics import RequestMeter
from api.routes import audit_trail, collections, docs, genomics, health, jobs, metrics, qac, usage, vectors
from api.routes.contract import openapi_endpoints
from api.trailing_slash import redirect_slashes_relatively
from cli.startup import prepare
from core.config import Settings
from core.metrics import ServiceMetrics
from core.ttl_cache import TTLCache
from db.pool import close, create_pool
from workers.audit_writer import AuditWriter
from workers.index_maintainer import IndexMaintainer
from workers.job_runner import JobRunner
from workers.quota_batcher import QuotaBatcher

SHUTDOWN_DRAIN_SECONDS = 10


class ServiceStarlette(Starlette):
    """Starlette without its outermost layer, ServerErrorMiddleware: the audit middleware around it
    already answers an unhandled error with a 500 problem, records it and logs it once with its trace
    id, and every request paid for one more layer and a send wrapper around each of its messages."""

    def build_middleware_stack(self):
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        app = self.router
        for cls, args, kwargs in reversed(
            [*self.user_middleware, Middleware(ExceptionMiddleware, handlers=handlers, debug=self.debug)]
        ):
            app = cls(app, *args, **kwargs)
        return app


def create_app(settings: Settings | None = None) -> AuditMiddleware:
    """The ASGI app: the audit middleware wrapped around everything, so no response escapes it."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        dsn = await prepare(settings)
        pool = await create_pool(dsn, **settings.pool_options())
        service_metrics = ServiceMetrics()  # one registry per app, never the process-global one
        writer = AuditWriter(pool, settings.acquire_timeout, settings.audit_batch_max, service_metrics)
        service_metrics.watch(pool, writer)
        maintainer = IndexMaintainer(pool, settings.acquire_timeout)
        quota = QuotaBatcher(pool, settings.acquire_timeout, metrics=service_metrics)
        runner = JobRunner(pool, product_job_types(), **settings.runner_options()) if settings.run_job_worker else None
        if runner is not None:
            runner.start()
        try:
            yield {
                "settings": settings,
                "pool": pool,
                "audit_writer": writer,
                "metrics": service_metrics,
                "request_meter": RequestMeter(service_metrics, app.routes),
                "index_maintainer": maintainer,
                "quota_batcher": quota,
                "job_runner": runner,
                "token_cache": TTLCache(settings.token_cache_seconds, CACHE_MAX_ENTRIES),
            }
        finally:
            if runner is not None:
                await runner.close()
            await maintainer.close()
            await quota.close()
            try:
                await asyncio.wait_for(writer.drain(), SHUTDOWN_DRAIN_SECONDS)
            except TimeoutError:
                writer.abandon()  # each row still unwritten is logged by its trace id
            await close(pool)

    api = [
        *health.endpoints,
        *usage.endpoints,
        *audit_trail.endpoints,
        *collections.endpoints,
        *vectors.endpoints,
        *genomics.endpoints,
        *jobs.endpoints,
        *qac.endpoints,
        *docs.endpoints,
        *metrics.endpoints,
    ]
    # The router tries its routes in order, a regular expression each, until one matches: the paths
    # called most (probes, then single vectors and search) go first. The order changes no answer, since
    # no path matches the patterns of two different routes (tests/test_route_order.py); the document
    # keeps the declaration order.
    hot = [*health.endpoints, *vectors.endpoints]
    by_traffic = [*hot, *(e for e in api if e not in hot)]
    # Order matters: authenticate first, then count the request against the caller's quota.
    middleware = [Middleware(AuthMiddleware), Middleware(RateLimitMiddleware)]
    app = ServiceStarlette(
        routes=routes([*by_traffic, *openapi_endpoints(api)]),
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    redirect_slashes_relatively(app.router)
    return AuditMiddleware(
        app,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        request_timeout=settings.request_timeout,
        long_request_timeout=settings.long_request_timeout,
    )


if __name__ == "__main__":
    from cli.main import main

    sys.exit(main(sys.argv[1:], create_app))
