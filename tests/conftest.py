"""Session fixtures: one real PostgreSQL (DATABASE_URL, or an embedded one), a migrated database, the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import asyncpg
import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from core.config import Settings
from db import migrations
from db.pool import create_pool
from tests import pg
from tests.chain import chain_url, conn  # noqa: F401 (fixtures: a scratch database of its own, for the audit chain tests)

TEST_CLIENT = ("203.0.113.9", 5000)


def asgi_scope(path: str, trace_id: str, state: dict, method: str = "GET") -> dict:
    """An HTTP scope as the server makes it, for tests that drive an ASGI app directly."""
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"x-request-id", trace_id.encode())],
        "client": TEST_CLIENT,
        "server": ("t", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "state": state,
    }


@pytest.fixture(scope="session")
def server_url():
    """The server the suite runs on: DATABASE_URL when given, else a throwaway embedded PostgreSQL."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with pg.scratch_server() as server:
        yield server.get_uri()


@pytest.fixture(scope="session")
def database_url(server_url):
    """A fresh database with every migration applied."""
    url = pg.create_database(server_url)
    migrations.apply(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url, tmp_path_factory):
    return Settings(
        database_url=database_url,
        pool_min=1,
        pool_max=8,
        acquire_timeout=2.0,
        command_timeout=5.0,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest_asyncio.fixture(scope="session")
async def pool(settings):
    pool = await create_pool(settings.database_url, **settings.pool_options())
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def app(settings):
    from app import create_app

    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        yield manager.app


@pytest_asyncio.fixture(scope="session")
async def client(app):
    transport = httpx.ASGITransport(app=app, client=TEST_CLIENT)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def trace_id() -> str:
    """A fresh X-Request-ID, so a test finds exactly its own audit rows."""
    return f"test-{uuid.uuid4().hex}"


async def audit_rows(pool: asyncpg.Pool, trace_id: str, wait: float = 0.0) -> list[dict]:
    """The rows of one trace id; `wait` seconds at most for the first to appear (the health paths
    queue their row and answer without waiting for it)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        rows = await pool.fetch("SELECT * FROM audit_logs WHERE trace_id = $1 ORDER BY id", trace_id)
        if rows or asyncio.get_running_loop().time() >= deadline:
            return [dict(r) for r in rows]
        await asyncio.sleep(0.02)


class TestInstitution:
    """An institution with one live token, made for one test."""

    def __init__(self, id: int, slug: str, token: str, hourly_limit: int):
        self.id = id
        self.slug = slug
        self.token = token
        self.hourly_limit = hourly_limit
        self.headers = {"Authorization": f"Bearer {token}"}


async def make_institution(pool: asyncpg.Pool, hourly_limit: int = 100_000, tier: str = "academic") -> TestInstitution:
    from core import tokens

    slug = f"inst-{uuid.uuid4().hex[:12]}"
    institution_id = await pool.fetchval(
        "INSERT INTO institutions (slug, display_name, tier, hourly_limit) VALUES ($1, $2, $3, $4) RETURNING id",
        slug,
        f"Test {slug}",
        tier,
        hourly_limit,
    )
    issued = tokens.issue()
    await pool.execute(
        "INSERT INTO api_tokens (institution_id, label, prefix, token_sha256) VALUES ($1, 'test', $2, $3)",
        institution_id,
        issued.public_prefix,
        issued.sha256,
    )
    return TestInstitution(institution_id, slug, issued.plaintext, hourly_limit)


@pytest_asyncio.fixture
async def institution(pool) -> TestInstitution:
    """A fresh institution and Bearer token; use `institution.headers` on requests."""
    return await make_institution(pool)


@pytest_asyncio.fixture
async def other_institution(pool) -> TestInstitution:
    return await make_institution(pool)


@contextlib.asynccontextmanager
async def audit_table_locked(pool: asyncpg.Pool):
    """Another session holds audit_logs in EXCLUSIVE mode for the block: audit inserts wait, reads go on."""
    blocker = await pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        await tx.rollback()
        await pool.release(blocker)


@pytest.fixture(scope="session")
def jobs_database_url(server_url):
    """A migrated database of its own for the job tests, so no other runner (the app fixture's) claims their jobs."""
    url = pg.create_database(server_url, prefix="don_jobs")
    migrations.apply(url)
    return url


@pytest_asyncio.fixture(scope="session")
async def jobs_pool(jobs_database_url, settings):
    pool = await create_pool(jobs_database_url, **settings.pool_options())
    yield pool
    await pool.close()
