"""The OpenAPI 3.1 document, generated from the endpoint declarations and their pydantic models."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from pydantic.json_schema import models_json_schema

from api.endpoint import Endpoint
from api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from api.schemas.common import ProblemDetails

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")
HEADERS = {
    "X-Trace-ID": (
        "The request's trace id: your X-Request-ID when safe, else a new one; also in the audit row",
        {"type": "string"},
    ),
    "X-RateLimit-Limit": ("Requests allowed per UTC hour", {"type": "integer"}),
    "X-RateLimit-Remaining": ("Requests left in this hour", {"type": "integer"}),
    "X-RateLimit-Reset": ("When the quota resets, Unix epoch seconds", {"type": "integer"}),
    "RateLimit-Policy": ('IETF draft field, e.g. "hourly";q=1000;w=3600', {"type": "string"}),
    "RateLimit": ('IETF draft field, e.g. "hourly";r=998;t=1312', {"type": "string"}),
    "Retry-After": ("Seconds to wait before retrying", {"type": "integer"}),
    "WWW-Authenticate": ("The Bearer challenge", {"type": "string"}),
    "Location": ("Where the new resource lives", {"type": "string"}),
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit")
ERROR_TEXT = {
    400: "The body is empty or not JSON (an upload: truncated or malformed multipart)",
    401: "No valid token: missing, malformed, unknown or revoked (the same answer for each)",
    403: "The institution's access is disabled",
    404: "Not found (another institution's resources are not found either)",
    409: "A conflict: the name is taken, a build of the project is queued or running, or the job has ended",
    413: "The body is larger than MAX_BODY_BYTES (an upload: MAX_UPLOAD_BYTES)",
    415: "The body is not JSON (another Content-Type, or a Content-Encoding)",
    422: "A field or parameter breaks the contract; `errors` names each one",
    429: "The hourly quota is used up",
    503: "The database is unavailable or saturated, or the audit trail cannot be written; retry after Retry-After",
}


def _header_refs(names) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _error_statuses(e: Endpoint) -> list[int]:
    statuses = set(e.errors) | {503}
    if e.body is not None:
        statuses |= {400, 413, 415, 422}
    if e.query is not None:
        statuses.add(422)
    if not e.public:
        statuses |= {401, 403, 429}
    if _PATH_PARAM.search(e.path):
        statuses.add(404)
    return sorted(statuses)


def _query_parameters(e: Endpoint, schemas: dict) -> list[dict]:
    schema = schemas[e.query.__name__]
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append(
            {"name": name, "in": "query", "required": name in required, "description": description, "schema": prop}
        )
    return params


def _camel(name: str) -> str:
    """createCollection for create_collection: Swagger UI's deep links take no underscores."""
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def _operation(e: Endpoint, schemas: dict) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": _camel(e.handler.__name__),
        "summary": e.summary,
        "tags": [e.tag],
        "security": [] if e.public else [{"bearerAuth": []}],
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAM.findall(e.path)
    ]
    if e.query is not None:
        params += _query_parameters(e, schemas)
    if params:
        op["parameters"] = params
    if e.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=e.body.__name__)}}},
        }
        if e.form is not None:
            op["requestBody"]["content"]["multipart/form-data"] = {
                "schema": {"$ref": REF.format(model=e.form.__name__)}
            }
    success: dict[str, Any] = {
        "description": HTTPStatus(e.status).phrase,
        "headers": _header_refs(("X-Trace-ID", *e.headers, *(() if e.public else RATE_HEADERS))),
    }
    if e.response is not None:
        success["content"] = {e.media_type: {"schema": {"$ref": REF.format(model=e.response.__name__)}}}
        for media in e.alternative_media:
            success["content"][media] = {"schema": {"type": "string"}}
    elif e.status != 204 and not 300 <= e.status < 400:
        success["content"] = {
            media: {"schema": {"type": "object"} if media.endswith("json") else {"type": "string"}}
            for media in (e.media_type, *e.alternative_media)
        }
    responses = {str(e.status): success}
    for status in _error_statuses(e):
        if status in e.errors_in_body:
            responses[str(status)] = {
                **success,
                "description": ERROR_TEXT[status],
                "headers": _header_refs(("X-Trace-ID", "Retry-After")),
            }
        else:
            responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    op["responses"] = responses
    return op


def _error_response(status: int) -> dict:
    headers = ["X-Trace-ID"]
    if status in (429, 503):
        headers.append("Retry-After")
    if status == 429:
        headers += RATE_HEADERS
    if status == 401:
        headers.append("WWW-Authenticate")
    return {
        "description": ERROR_TEXT[status],
        "headers": _header_refs(headers),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF.format(model="ProblemDetails")}}},
    }


def document(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    models = {ProblemDetails}
    for e in endpoints:
        models |= {m for m in (e.body, e.form, e.query, e.response) if m is not None}
    pairs = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    _, defs = models_json_schema(pairs, ref_template=REF)
    schemas = defs.get("$defs", {})
    paths: dict[str, dict] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DON Research API",
            "version": version,
            "description": "Store and search research vectors (PostgreSQL + pgvector), turn single-cell "
            "expression into vectors, and read your own audit trail. Every request is audited.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `python app.py token issue`",
                }
            },
            "headers": {name: {"description": text, "schema": schema} for name, (text, schema) in HEADERS.items()},
            "responses": {str(s): _error_response(s) for s in ERROR_TEXT},
        },
    }
