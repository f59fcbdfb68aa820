"""A path that differs from a route's only by a trailing slash is redirected there with 307 (method and
body kept), as Starlette does, but with a relative Location: Starlette builds an absolute one from the
Host header the client sent, so `Host: evil.example` got a redirect to evil.example."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send


def redirect_slashes_relatively(router: Router) -> None:
    fallback = router.default
    router.redirect_slashes = False  # the router then hands every unmatched path to `default`

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            probe = {**scope, "path": other}
            if not other.startswith("//") and any(r.matches(probe)[0] is not Match.NONE for r in router.routes):
                query = scope.get("query_string", b"").decode("latin-1")
                location = scope.get("root_path", "") + other + (f"?{query}" if query else "")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await fallback(scope, receive, send)

    router.default = default
