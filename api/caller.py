"""Who is calling: the authenticated institution and token, set on the scope by the auth middleware."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from api.problems import Problem


@dataclass(frozen=True)
class Caller:
    institution_id: int
    slug: str
    tier: str
    hourly_limit: int
    token_id: int
    token_prefix: str


def caller_of(request: HTTPConnection) -> Caller:
    """The authenticated caller; every /api/v1 route but health sits behind authentication."""
    caller = request.scope.get("caller")
    if caller is None:
        raise Problem(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    return caller
