"""Hourly quota per institution (fixed UTC-hour window, counted in PostgreSQL) and its headers.

Every authenticated response carries X-RateLimit-* (reset as epoch seconds, like GitHub) and
the IETF draft's RateLimit-Policy / RateLimit (reset as seconds from now); over the limit the
answer is 429 problem+json with Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.types import ASGIApp, Receive, Scope, Send

from api.audit import RESPONSE_HEADERS_KEY
from api.problems import problem_response, unavailable_response
from db.pool import UNAVAILABLE_ERRORS
from workers.quota_batcher import QuotaBatcher

WINDOW_SECONDS = 3600
HOUR = timedelta(hours=1)


@dataclass(slots=True)
class Quota:
    limit: int
    used: int
    reset_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, now: float) -> list[tuple[bytes, bytes]]:
        """The rate-limit headers at Unix time `now`. Built straight as bytes: every authenticated
        response carries them."""
        reset = self.reset_at.timestamp()
        reset_in = max(1, int(reset - now + 0.999))
        remaining = self.remaining
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % int(reset)),
            (b"ratelimit-policy", b'"hourly";q=%d;w=%d' % (self.limit, WINDOW_SECONDS)),
            (b"ratelimit", b'"hourly";r=%d;t=%d' % (remaining, reset_in)),
        ]


def window_end(now: datetime) -> datetime:
    """The top of the next UTC hour: when the current window's quota resets."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR


class RateLimitMiddleware:
    """Counts each authenticated request; runs after AuthMiddleware has set scope["caller"].

    Requests are counted in batches by the lifespan's QuotaBatcher (workers/quota_batcher.py)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        caller = scope.get("caller") if scope["type"] == "http" else None
        if caller is None:  # no frame of this layer on the stack of a request it does not count
            return self.app(scope, receive, send)
        return self._count(scope, receive, send, caller)

    async def _count(self, scope: Scope, receive: Receive, send: Send, caller) -> None:
        batcher: QuotaBatcher = scope["state"]["quota_batcher"]
        try:
            admission = await batcher.admit(caller.institution_id, caller.hourly_limit)
        except UNAVAILABLE_ERRORS as exc:
            # No quota check, no service: an unmetered request would break the contract.
            await unavailable_response(exc, scope.get("trace_id"), scope)(scope, receive, send)
            return
        if not admission.admitted:
            now = datetime.now(UTC)
            quota = Quota(caller.hourly_limit, caller.hourly_limit, window_end(now))
            scope["audit"]["metadata"]["rate_limited"] = True
            retry_after = str(max(1, int((quota.reset_at - now).total_seconds() + 0.999)))
            headers = {k.decode(): v.decode() for k, v in quota.headers(now.timestamp())} | {"Retry-After": retry_after}
            response = problem_response(
                429,
                f"hourly quota of {caller.hourly_limit} requests used up; it resets at {quota.reset_at.isoformat()}",
                scope.get("trace_id"),
                headers=headers,
            )
            await response(scope, receive, send)
            return
        quota = Quota(caller.hourly_limit, admission.used, admission.window_start + HOUR)
        scope["quota"] = quota
        # The audit middleware adds these to the response's head as it copies it (api/audit.py), which
        # costs less than another send wrapper around every response.
        scope[RESPONSE_HEADERS_KEY].extend(quota.headers(time.time()))
        await self.app(scope, receive, send)
