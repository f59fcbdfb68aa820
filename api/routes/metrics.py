"""GET /metrics: the Prometheus scrape, opened only by METRICS_TOKEN (never by an API token).

Unset, the path answers 404 like any unknown one, so nothing is exposed by default. The credential
is compared as SHA-256 digests in constant time, so neither its content nor its length leaks
through timing. Reading the metrics touches no database: the scrape is never slowed by an outage.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.endpoint import Endpoint
from api.paths import METRICS_PATH
from api.problems import Problem
from core.metrics import CONTENT_TYPE

UNAUTHORIZED = "this path needs the metrics credential: send it as 'Authorization: Bearer <METRICS_TOKEN>'"


def _presented(request: Request) -> bytes | None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip().encode("latin-1") if scheme.lower() == "bearer" and credential else None


async def metrics(request: Request) -> Response:
    expected = request.state.settings.metrics_token
    if expected is None:
        raise HTTPException(404)  # answered exactly like a path that does not exist
    presented = _presented(request)
    if presented is None or not hmac.compare_digest(
        hashlib.sha256(presented).digest(), hashlib.sha256(expected.encode()).digest()
    ):
        request.scope["audit"]["metadata"]["auth_failure"] = "missing" if presented is None else "wrong_metrics_token"
        raise Problem(401, UNAUTHORIZED, headers={"WWW-Authenticate": 'Bearer realm="don-research-metrics"'})
    return Response(request.state.metrics.render(), media_type=CONTENT_TYPE)


endpoints = [
    Endpoint(
        "GET",
        METRICS_PATH,
        metrics,
        "Prometheus metrics (text format); needs METRICS_TOKEN, and is 404 while that is unset",
        "operations",
        None,
        public=True,
        credential="metricsToken",
        errors=(401, 404),
        media_type="text/plain",
    )
]
