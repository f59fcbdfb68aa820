"""The router's order is chosen for speed (app.py puts the busiest paths first); it is safe only while
no path can match the patterns of two routes that differ in anything but their methods."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from app import create_app

# Values for path parameters, among them ones that look like other routes' literal segments.
SAMPLES = ("x", "vectors", "search", "live", "assets", "build", "x/y", "x/vectors/y", "")


def _routes() -> list[Route]:
    return [r for r in create_app().app.routes if isinstance(r, Route)]


def _paths(route: Route) -> set[str]:
    """Concrete paths for `route`: each parameter filled with every sample its converter admits."""
    paths = {route.path}
    for _ in route.param_convertors:
        filled = set()
        for path in paths:
            match = re.search(r"{(\w+)(?::(\w+))?}", path)
            for value in SAMPLES:
                if ("/" in value and match.group(2) != "path") or (value == "" and match.group(2) != "path"):
                    continue
                filled.add(path[: match.start()] + value + path[match.end() :])
        paths = filled
    return {path for path in paths if route.path_regex.match(path)}


def test_every_route_yields_sample_paths():
    assert all(_paths(route) for route in _routes())


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)} {r.path}")
def test_no_path_of_a_route_matches_another_routes_pattern(route):
    for path in _paths(route):
        others = {r.path for r in _routes() if r.path != route.path and r.path_regex.match(path)}
        assert not others, f"{path} matches {route.path} and {others}: the router's order would decide"


def test_the_busiest_paths_are_tried_first():
    paths = [r.path for r in _routes()]
    assert paths[:2] == ["/api/v1/health", "/api/v1/health/live"]
    assert paths.index("/api/v1/collections/{name}/vectors/{vector_id:path}") < paths.index("/api/v1/usage")


async def test_a_trailing_slash_is_redirected_relatively_never_to_the_host_the_client_named(client, institution):
    headers = {**institution.headers, "Host": "evil.example"}
    response = await client.get("/api/v1/usage/?x=1", headers=headers, follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/api/v1/usage?x=1"
    followed = await client.get("/api/v1/usage/", headers=institution.headers, follow_redirects=True)
    assert followed.status_code == 200 and followed.url.path == "/api/v1/usage"
    missing = await client.get("/api/v1/nothing-here/", headers=institution.headers, follow_redirects=False)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/health/live/"])
async def test_a_probe_with_a_trailing_slash_is_redirected_without_a_token(client, path):
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == path.rstrip("/")
