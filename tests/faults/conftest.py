"""Fixtures for fault tests: a fresh migrated database behind a fault proxy, and the service through it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from db import migrations
from tests import pg
from tests.faults.proxy import Proxy
from tests.live_service import Service, serving


@dataclass(frozen=True)
class ProxiedDatabase:
    """A database reachable directly (`direct_url`) and through `proxy` (`url`)."""

    proxy: Proxy
    url: str
    direct_url: str

    def serve(self, **env: str) -> contextlib.AbstractContextManager[Service]:
        """The real service (`python app.py serve`, a subprocess) with DATABASE_URL through the proxy."""
        return serving(self.url, **env)

    def issue_token(self, hourly_limit: int = 100_000) -> dict[str, str]:
        """A new institution with one token, written directly (not through the proxy); its auth headers."""
        return {"Authorization": f"Bearer {pg.issue_token(self.direct_url, hourly_limit, 'fault')}"}


@pytest.fixture
def proxied_database(server_url) -> Iterator[ProxiedDatabase]:
    """A fresh migrated database with a fault proxy in front; the proxy is closed afterwards."""
    direct_url = pg.create_database(server_url, prefix="don_fault")
    migrations.apply(direct_url)
    with Proxy.to_url(direct_url) as proxy:
        yield ProxiedDatabase(proxy, proxy.url(direct_url), direct_url)
