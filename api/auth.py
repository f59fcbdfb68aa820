"""Bearer-token authentication for /api/v1/* (health excepted): pure ASGI, answers 401/403 itself.

Every failure gets the same 401 body whatever the reason; the reason goes to the audit row
only. Lookups are cached per process for TOKEN_CACHE_SECONDS, which bounds how long a revoked
token or a disabled institution keeps working on an instance that has just seen it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.caller import Caller
from api.paths import needs_token
from api.problems import problem_response, unavailable_response
from api.redaction import token_in_query
from core import tokens
from core.ttl_cache import TTLCache
from db.institutions import find_token
from db.pool import UNAVAILABLE_ERRORS, lend

CACHE_MAX_ENTRIES = 10_000
UNAUTHORIZED = "a valid API token is required: send it as 'Authorization: Bearer <token>'"
log = logging.getLogger(__name__)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            return credential.strip() if scheme.lower() == "bearer" else ""
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A path without a token gets the next layer's coroutine itself: no frame of this layer stays
        # on the request's stack (api/audit.py says why that matters).
        if scope["type"] != "http" or not needs_token(scope["path"]):
            return self.app(scope, receive, send)
        return self._guard(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            outcome = await self._authenticate(scope)
        except UNAVAILABLE_ERRORS as exc:
            await unavailable_response(exc, scope.get("trace_id"), scope)(scope, receive, send)
            return
        if isinstance(outcome, Caller):
            scope["caller"] = outcome
            scope["audit"]["institution"] = outcome.slug
            scope["audit"]["metadata"].update(token_id=outcome.token_id, token_prefix=outcome.token_prefix)
            await self.app(scope, receive, send)
            return
        status, reason, known = outcome
        scope["audit"]["metadata"]["auth_failure"] = reason
        if known is not None:  # a real token, refused: the row says whose (the client is told nothing)
            slug, token_id, token_prefix = known
            scope["audit"]["institution"] = slug
            scope["audit"]["metadata"].update(token_id=token_id, token_prefix=token_prefix)
        if status == 403:
            response = problem_response(403, "this institution's access is disabled", scope.get("trace_id"))
        else:
            response = problem_response(
                401,
                UNAUTHORIZED,
                scope.get("trace_id"),
                headers={"WWW-Authenticate": 'Bearer realm="don-research-api"'},
            )
        await response(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Caller | tuple[int, str, tuple | None]:
        if token_in_query(scope.get("query_string", b"")):
            return 401, "token_in_query", None
        presented = _bearer(scope)
        if presented is None:
            return 401, "missing", None
        state = scope["state"]
        cache: TTLCache = state["token_cache"]
        digest = tokens.digest(presented)
        # The cache holds the outcome (a Caller, or a revoked/disabled refusal), so a cached token costs
        # one digest and one look-up per request. Only well-formed tokens are ever put in it, so a hit
        # needs no shape check; a miss checks the shape before asking the database.
        outcome = cache.get(digest)
        if outcome is not None:
            return outcome
        if not tokens.well_formed(presented):
            return 401, "malformed", None
        async with lend(state["pool"], state["settings"].acquire_timeout) as conn:
            row = await find_token(conn, digest)
        if row is None:
            return 401, "unknown", None
        outcome = _outcome(row)
        cache.put(digest, outcome)
        return outcome


def _outcome(row) -> Caller | tuple[int, str, tuple | None]:
    """What a token's row means for its bearer: a Caller, or (status, reason, whose token) for the row."""
    known = (row["slug"], row["token_id"], row["prefix"])
    if row["revoked_at"] is not None:
        return 401, "revoked", known
    if row["disabled_at"] is not None:
        return 403, "institution_disabled", known
    return Caller(
        institution_id=row["institution_id"],
        slug=row["slug"],
        tier=row["tier"],
        hourly_limit=row["hourly_limit"],
        token_id=row["token_id"],
        token_prefix=row["prefix"],
    )
