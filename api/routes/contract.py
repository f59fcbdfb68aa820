"""GET /openapi.json: the OpenAPI 3.1 document of every endpoint, rendered once at start-up."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from api.endpoint import Endpoint
from api.openapi import document
from api.routes.health import VERSION

PATH = "/openapi.json"


def openapi_endpoints(api: list[Endpoint]) -> list[Endpoint]:
    """The document's own endpoint, serving the document of `api` plus itself."""
    rendered: list[bytes] = []

    async def openapi(request: Request) -> Response:
        return Response(rendered[0], media_type="application/json")

    own = Endpoint("GET", PATH, openapi, "This OpenAPI 3.1 document", "docs", None, public=True)
    rendered.append(json.dumps(document([*api, own], VERSION), separators=(",", ":")).encode())
    return [own]
