"""GET /docs: Swagger UI for the service's own OpenAPI document, served entirely from this process.

Every asset comes from the `swagger_ui_bundle` package on disk (no CDN, works offline). Only
the files the page needs are served, each from a fixed list, so the package's demo index.html,
source maps and templates stay unreachable. The page carries a Content-Security-Policy that
allows only this origin: the Swagger UI initializer is therefore an external script
(`/docs/assets/init.js`), not inline, and reads the document's URL from a data attribute.
Nothing here needs a token; the page asks for one (Authorize) and sends it as
`Authorization: Bearer …` on "Try it out" calls, and remembers it across reloads
(persistAuthorization, kept in the browser's localStorage).
"""

from __future__ import annotations

import html
from pathlib import Path

import swagger_ui_bundle
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from api.endpoint import Endpoint

ASSET_DIR = Path(str(swagger_ui_bundle.swagger_ui_path))
# The directory is named after the Swagger UI release ("swagger-ui-5.31.0"): used as a cache-buster.
ASSET_VERSION = ASSET_DIR.name.removeprefix("swagger-ui-")
SPEC_PATH = "/openapi.json"
ASSET_PREFIX = "/docs/assets/"

JS = "text/javascript; charset=utf-8"
ASSETS = {  # name served under /docs/assets/ -> media type; all other names are 404
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": JS,
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
ASSET_CACHE = "public, max-age=86400"

# 'self' only. Swagger UI's stylesheet draws its icons as data: SVGs, hence img-src data:.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

INIT_JS = """\
// Starts Swagger UI on #swagger-ui; the element's data-spec-url names the OpenAPI document.
(function () {
  "use strict";
  function start() {
    var root = document.getElementById("swagger-ui");
    window.ui = SwaggerUIBundle({
      url: root.dataset.specUrl,
      domNode: root,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      deepLinking: true,
      persistAuthorization: true,
      displayRequestDuration: true,
      defaultModelsExpandDepth: 0,
      validatorUrl: null
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
"""

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DON Research API: interactive documentation</title>
<link rel="stylesheet" href="{assets}swagger-ui.css?v={version}">
<link rel="icon" type="image/png" sizes="32x32" href="{assets}favicon-32x32.png?v={version}">
<link rel="icon" type="image/png" sizes="16x16" href="{assets}favicon-16x16.png?v={version}">
<script defer src="{assets}swagger-ui-bundle.js?v={version}"></script>
<script defer src="{assets}init.js?v={version}"></script>
</head>
<body>
<noscript>This page needs JavaScript. The OpenAPI document itself is at <a href="{spec}">{spec}</a>.</noscript>
<div id="swagger-ui" data-spec-url="{spec}"></div>
</body>
</html>
"""


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


async def docs_page(request: Request) -> Response:
    root = _root(request)
    body = PAGE.format(
        assets=html.escape(root + ASSET_PREFIX), spec=html.escape(root + SPEC_PATH), version=html.escape(ASSET_VERSION)
    )
    return Response(body, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    headers = {"Cache-Control": ASSET_CACHE, "X-Content-Type-Options": "nosniff"}
    if name == "init.js":
        return Response(INIT_JS, headers=headers, media_type=JS)
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(ASSET_DIR / name, headers=headers, media_type=media_type)


async def home(request: Request) -> Response:
    return RedirectResponse(_root(request) + "/docs", status_code=307)


endpoints = [
    Endpoint(
        "GET",
        "/",
        home,
        "Redirects to the interactive documentation",
        "docs",
        None,
        status=307,
        public=True,
        head=True,
        headers=("Location",),
    ),
    Endpoint(
        "GET",
        "/docs",
        docs_page,
        "Interactive documentation (Swagger UI, served offline)",
        "docs",
        None,
        public=True,
        head=True,
        media_type="text/html",
    ),
    Endpoint(
        "GET",
        ASSET_PREFIX + "{name}",
        asset,
        "The documentation page's scripts, styles and icons",
        "docs",
        None,
        public=True,
        head=True,
        media_type="text/javascript",
        alternative_media=("text/css", "image/png"),
    ),
]
