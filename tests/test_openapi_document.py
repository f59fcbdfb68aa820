"""The OpenAPI document, built in-process from the endpoint declarations: complete and self-describing."""

from __future__ import annotations

import asyncio
import json

import openapi_spec_validator
import pytest
from starlette.requests import Request

from api.openapi import ERROR_TEXT
from app import create_app
from core.config import Settings

API_TOKEN = {"bearerAuth": []}


@pytest.fixture(scope="module")
def routes():
    return create_app(Settings(database_url="postgresql://unused@localhost/unused")).app.routes


@pytest.fixture(scope="module")
def document(routes):
    route = next(r for r in routes if r.path == "/openapi.json")
    scope = {"type": "http", "method": "GET", "path": "/openapi.json", "headers": [], "query_string": b""}
    return json.loads(asyncio.run(route.endpoint(Request(scope))).body)


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    openapi_spec_validator.validate(document)


def test_every_route_is_in_the_document_and_nothing_else(routes, document):
    served = {(r.path.replace(":path", ""), m.lower()) for r in routes for m in r.methods if m != "HEAD"}
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented


def test_every_field_of_every_model_says_what_it_is(document):
    missing = [
        f"{name}.{field}"
        for name, schema in document["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert missing == []


def test_every_operation_declares_its_errors_as_problems(document):
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            statuses = set(op["responses"])
            assert "503" in statuses, (method, path)
            if API_TOKEN in op["security"]:
                assert {"401", "403", "429"} <= statuses, (method, path)
            elif op["security"]:  # its own credential (/metrics): refused with 401, never rate-limited
                assert "401" in statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415", "422"} <= statuses, (method, path)
    for status in ERROR_TEXT:
        assert list(document["components"]["responses"][str(status)]["content"]) == ["application/problem+json"]


def test_authenticated_successes_declare_the_rate_limit_headers(document):
    for operations in document["paths"].values():
        for op in operations.values():
            if API_TOKEN in op["security"]:
                success = next(r for s, r in op["responses"].items() if s.startswith("2"))
                assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "RateLimit"} <= set(success["headers"])
