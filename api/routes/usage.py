"""GET /api/v1/usage: the caller's hourly quota as the rate limiter counted this very request."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.caller import caller_of


async def usage(request: Request) -> JSONResponse:
    caller = caller_of(request)
    quota = request.scope["quota"]
    return JSONResponse({
        "institution": caller.slug,
        "tier": caller.tier,
        "window": "hourly",
        "limit": quota.limit,
        "used": quota.used,
        "remaining": quota.remaining,
        "reset_at": quota.reset_at.isoformat(),
    })


routes = [Route("/api/v1/usage", usage, methods=["GET"])]
