"""GET /docs: Swagger UI served wholly by this service, no token needed, one audit row per request."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from api.routes import docs
from tests.conftest import audit_rows

EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class References(HTMLParser):
    """Every URL the page makes the browser load or offer: src, href and data-spec-url attributes."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href", "data-spec-url"):
            if attributes.get(name):
                self.urls.append((tag, attributes[name]))
        if tag == "script":
            self._in_script = True
            if "src" not in attributes:
                self.inline_scripts += 1
        if tag == "style" or "style" in attributes:
            self.inline_scripts += 1  # an inline style would break the CSP as surely as an inline script

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


async def page(client, trace_id):
    response = await client.get("/docs", headers={"X-Request-ID": trace_id})
    parser = References()
    parser.feed(response.text)
    return response, parser


async def test_docs_is_html_with_a_strict_csp(client, pool, trace_id):
    response, parser = await page(client, trace_id)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert parser.inline_scripts == 0, "the CSP allows no inline script or style"
    assert ("div", "/openapi.json") in parser.urls
    assert len(await audit_rows(pool, trace_id)) == 1


async def test_docs_references_only_same_origin_assets(client):
    _, parser = await page(client, "docs-refs")
    assets = [url for tag, url in parser.urls if tag in ("script", "link")]
    assert len(assets) >= 3, assets  # stylesheet, Swagger UI bundle, initializer (+ favicons)
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not same-origin"
        assert parts.path.startswith("/docs/assets/"), url
    scripts = {urlsplit(url).path for tag, url in parser.urls if tag == "script"}
    assert scripts == {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/init.js"}


async def test_every_referenced_asset_is_served_with_its_type_and_one_audit_row(client, pool, trace_id):
    _, parser = await page(client, f"{trace_id}-page")
    assets = [url for tag, url in parser.urls if tag in ("script", "link")]
    for i, url in enumerate(assets):
        tid = f"{trace_id}-{i}"
        response = await client.get(url, headers={"X-Request-ID": tid})  # no Authorization header
        assert response.status_code == 200, url
        suffix = "." + urlsplit(url).path.rsplit(".", 1)[-1]
        assert response.headers["content-type"].split(";")[0] == EXPECTED_TYPES[suffix], url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert len(response.content) > 0
        assert len(await audit_rows(pool, tid)) == 1, url


async def test_initializer_loads_the_document_and_keeps_the_token(client):
    response = await client.get("/docs/assets/init.js")
    assert response.status_code == 200
    assert "persistAuthorization: true" in response.text
    assert "dataset.specUrl" in response.text
    assert "validatorUrl: null" in response.text  # no call to an outside validator


async def test_bundle_files_on_disk_exist():
    for name in docs.ASSETS:
        assert (docs.ASSET_DIR / name).is_file(), name


@pytest.mark.parametrize(
    "name",
    ["index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "index.j2", "..%2F__init__.py", "nope.js"],
)
async def test_files_outside_the_list_are_problem_404s(client, name):
    response = await client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_root_redirects_to_docs(client, pool, trace_id):
    response = await client.get("/", headers={"X-Request-ID": trace_id}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"
    assert len(await audit_rows(pool, trace_id)) == 1


@pytest.mark.parametrize("path", ["/", "/docs", "/docs/assets/swagger-ui.css"])
async def test_head_is_answered_and_audited(client, pool, trace_id, path):
    response = await client.head(path, headers={"X-Request-ID": trace_id}, follow_redirects=False)
    assert response.status_code in (200, 307)
    assert response.content == b""
    assert len(await audit_rows(pool, trace_id)) == 1


async def test_no_token_needed_and_a_bad_one_is_ignored(client):
    for path in ("/docs", "/docs/assets/init.js", "/docs/assets/swagger-ui-bundle.js"):
        response = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 200, path
        assert "www-authenticate" not in response.headers
