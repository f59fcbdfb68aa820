"""RFC 9457 problem+json responses and the one mapping from exceptions to HTTP statuses."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from api.request_metrics import mark_unavailable
from db.pool import DatabaseUnavailable

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


class InvalidInput(ValueError):
    """Client input that breaks the contract: answered as 422 (or 400) naming the offending field."""

    def __init__(
        self,
        pointer: str,
        detail: str,
        status: int = 422,
        parameter: str | None = None,
        errors: list[dict] | None = None,
    ):
        super().__init__(detail)
        self.pointer = pointer
        self.detail = detail
        self.status = status
        self.parameter = parameter  # set for a query parameter instead of a body field
        self.errors = errors

    def __reduce__(self):  # picklable whole, so a build run in a child process can report it
        return (type(self), (self.pointer, self.detail, self.status, self.parameter, self.errors))

    @classmethod
    def query(cls, name: str, detail: str) -> InvalidInput:
        return cls("", f"query parameter {name!r}: {detail}", parameter=name)

    def error_items(self) -> list[dict]:
        if self.errors:
            return self.errors
        where = {"parameter": self.parameter} if self.parameter is not None else {"pointer": self.pointer}
        return [{**where, "detail": self.detail}]


class Problem(Exception):
    """An error a handler raises to answer with a given status, title and detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.kind = kind


def problem_response(
    status: int,
    detail: str,
    trace_id: str | None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict] | None = None,
    kind: str | None = None,
) -> Response:
    """Build the one error shape every error response has."""
    title = title or HTTPStatus(status).phrase
    body = {
        "type": f"https://don-research.example/problems/{kind or _slug(title)}",
        "title": title,
        "status": status,
        "detail": detail,
        "trace_id": trace_id,
    }
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body, allow_nan=False), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _slug(title: str) -> str:
    return title.lower().replace(" ", "-").replace("'", "")


def trace_id_of(request: Request) -> str | None:
    return request.scope.get("trace_id")


async def on_problem(request: Request, exc: Problem) -> Response:
    return problem_response(
        exc.status, exc.detail, trace_id_of(request), title=exc.title, headers=exc.headers, kind=exc.kind
    )


async def on_http_exception(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404:
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(exc.status_code, detail, trace_id_of(request), headers=exc.headers)


async def on_invalid_input(request: Request, exc: InvalidInput) -> Response:
    return problem_response(
        exc.status,
        exc.detail,
        trace_id_of(request),
        errors=exc.error_items(),
        kind="invalid-input" if exc.status == 422 else None,
    )


def unavailable_cause(exc: BaseException) -> str:
    """Why the database could not serve: the 503's cause label in /metrics."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.cause
    # asyncpg's command_timeout raises TimeoutError; the server's statement_timeout cancels the query.
    if isinstance(exc, (TimeoutError, asyncpg.QueryCanceledError)):
        return "statement_timeout"
    return "database_down"


def unavailable_response(exc: Exception, trace_id: str | None, scope: Scope | None = None) -> Response:
    """The database's 503; given the request's scope, it also records why, for /metrics."""
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    if scope is not None:
        mark_unavailable(scope, unavailable_cause(exc))
    return problem_response(
        503, "the database is unavailable; try again shortly", trace_id, headers={"Retry-After": "2"}
    )


async def on_database_unavailable(request: Request, exc: Exception) -> Response:
    return unavailable_response(exc, trace_id_of(request), request.scope)


async def on_unique_violation(request: Request, exc: asyncpg.UniqueViolationError) -> Response:
    return problem_response(409, "that resource already exists", trace_id_of(request))


async def on_server_error(request: Request, exc: Exception) -> Response:
    # Never a stack trace to the client; ServerErrorMiddleware re-raises so the server logs it.
    return problem_response(
        500, "an unexpected error occurred; quote the trace_id when reporting it", trace_id_of(request)
    )


async def on_bug(request: Request, exc: Exception) -> Response:
    # Handled inside the app, so nothing re-raises it: log it here, with its traceback.
    log.error("unexpected %s", type(exc).__name__, exc_info=exc)
    return await on_server_error(request, exc)


EXCEPTION_HANDLERS = {
    Problem: on_problem,
    HTTPException: on_http_exception,
    InvalidInput: on_invalid_input,
    DatabaseUnavailable: on_database_unavailable,
    asyncpg.PostgresConnectionError: on_database_unavailable,
    asyncpg.exceptions.OperatorInterventionError: on_database_unavailable,
    asyncpg.TooManyConnectionsError: on_database_unavailable,
    asyncpg.InterfaceError: on_database_unavailable,
    asyncpg.InternalClientError: on_database_unavailable,  # a pooled connection whose server died idle
    asyncpg.exceptions._base.DataError: on_bug,
    ConnectionError: on_database_unavailable,
    TimeoutError: on_database_unavailable,
    asyncpg.UniqueViolationError: on_unique_violation,
    Exception: on_server_error,
}
