"""Request metrics: each request's method, route template and status, observed once when it ends.

The route label is the template the router matched (`/api/v1/collections/{name}`), never the raw
path, so the label set stays bounded; a request answered before routing (401, 429, a deadline) is
matched against the same templates, and a path no route matches is `unmatched`. Whichever layer
answers 503 says why in the scope (`mark_unavailable`); the first cause stands, so a request that got
no connection and then could not write its audit row either counts as the acquire timeout.
"""

from __future__ import annotations

import re

from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from core.metrics import ServiceMetrics

UNMATCHED = "unmatched"
UNAVAILABLE_CAUSE = "unavailable_cause"  # scope key: why this request was answered 503
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CONVERTER = re.compile(r":\w+}")


def mark_unavailable(scope: Scope, cause: str) -> None:
    scope.setdefault(UNAVAILABLE_CAUSE, cause)


class RequestMeter:
    """Turns a finished request into one observation on the app's metrics."""

    def __init__(self, metrics: ServiceMetrics, routes: list[BaseRoute]):
        self.metrics = metrics
        self._routes = [r for r in routes if isinstance(r, Route)]
        # route.path ("/x/{id:path}") -> its template as the OpenAPI document writes it ("/x/{id}")
        self._templates = {r.path: _CONVERTER.sub("}", r.path) for r in self._routes}

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:  # the router ran (Starlette leaves the matched route in the scope)
            return self._templates.get(route.path, UNMATCHED)
        # Answered before routing: rarer, so the regex walk is paid only here.
        path = scope["path"]
        for r in self._routes:
            if r.path_regex.match(path):
                return self._templates[r.path]
        return UNMATCHED

    def done(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"]
        self.metrics.observe_request(method if method in METHODS else "OTHER", self.template(scope), status, seconds)
        if status == 503:
            self.metrics.count_unavailable(scope.get(UNAVAILABLE_CAUSE, "other"))
