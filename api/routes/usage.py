"""GET /api/v1/usage: the caller's hourly quota as the rate limiter counted this very request."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.caller import caller_of
from api.endpoint import Endpoint, answer
from api.schemas.service import Usage


async def usage(request: Request) -> Response:
    caller = caller_of(request)
    quota = request.scope["quota"]
    return answer(
        Usage,
        {
            "institution": caller.slug,
            "tier": caller.tier,
            "window": "hourly",
            "limit": quota.limit,
            "used": quota.used,
            "remaining": quota.remaining,
            "reset_at": quota.reset_at,
            "requests_made": quota.used,
            "reset_time": quota.reset_at,
        },
    )


endpoints = [Endpoint("GET", "/api/v1/usage", usage, "Your hourly quota, this request included", "usage", Usage)]
