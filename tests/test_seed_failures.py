"""One regression test per failure in the incident report of the FastAPI + SQLAlchemy version (shared/seed)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import db
from db import sql
from db.audit import COLUMNS, AuditRow, insert_rows
from db.pool import lend

ROOT = Path(__file__).resolve().parent.parent


async def test_seed_1_async_pool_works_under_the_event_loop(pool):
    # Used to break: "Pool class QueuePool cannot be used with asyncio engine".
    assert isinstance(pool, asyncpg.Pool)
    results = await asyncio.gather(*(pool.fetchval("SELECT $1::int * 2", i) for i in range(40)))
    assert results == [i * 2 for i in range(40)]


async def test_seed_2_connection_and_transaction_context_managers_work_in_handlers(pool):
    # Used to break: "'async_generator' object does not support the asynchronous context manager protocol".
    await pool.execute("CREATE TABLE IF NOT EXISTS seed2_probe (n int)")

    async def handler(request: Request) -> JSONResponse:
        async with lend(pool, 2.0) as conn, conn.transaction():
            await conn.execute("INSERT INTO seed2_probe VALUES (1)")
            if request.query_params.get("fail"):
                raise ValueError("roll back")
            count = await conn.fetchval("SELECT count(*) FROM seed2_probe")
        return JSONResponse({"count": count})

    async def failing(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except ValueError:
            return JSONResponse({"rolled_back": True})

    app = Starlette(routes=[Route("/ok", handler), Route("/fail", failing)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        before = await pool.fetchval("SELECT count(*) FROM seed2_probe")
        assert (await client.get("/ok")).json() == {"count": before + 1}
        assert (await client.get("/fail?fail=1")).json() == {"rolled_back": True}
        assert await pool.fetchval("SELECT count(*) FROM seed2_probe") == before + 1


def test_seed_3_render_python_version_is_a_full_semantic_version():
    # Used to break: "The PYTHON_VERSION must provide a major, minor, and patch version".
    blueprint = yaml.safe_load((ROOT / "render.yaml").read_text())
    env = {e["key"]: e for e in blueprint["services"][0]["envVars"]}
    version = env["PYTHON_VERSION"]["value"]
    assert isinstance(version, str)
    major, minor, patch = version.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))


async def test_seed_4_ddl_goes_through_execute_and_fetch_is_never_used_for_commands(pool, tmp_path):
    # Used to break: "This result object does not return rows" (fetchall() on CREATE EXTENSION).
    ddl = tmp_path / "create_seed4_table.sql"
    ddl.write_text(
        "-- name: create_seed4_table\n-- returns: nothing\n-- A DDL command.\n"
        "CREATE TABLE IF NOT EXISTS seed4_probe (n int)\n"
    )
    statement = sql.parse(ddl)
    async with lend(pool, 2.0) as conn:
        status = await sql.execute(conn, statement)
        assert status == "CREATE TABLE"
        with pytest.raises(sql.WrongCall):
            await sql.fetch(conn, statement)
        # And the reverse: a query cannot be executed blind.
        with pytest.raises(sql.WrongCall):
            await sql.execute(conn, sql.statement("health_probe"))
    # Every command file really returns no rows, every query file really returns some columns.
    async with lend(pool, 2.0) as conn:
        for stmt in sql.STATEMENTS.values():
            prepared = await conn.prepare(stmt.text)
            returns_rows = bool(prepared.get_attributes())
            assert returns_rows == (stmt.returns != "nothing"), stmt.name


def test_seed_5_database_functions_take_the_connection_explicitly():
    # Used to break: "'AsyncSession' object has no attribute 'model_class'" (a repository
    # class called as if static, with session state hidden in instances).
    checked = 0
    for info in pkgutil.iter_modules(db.__path__):
        module = importlib.import_module(f"db.{info.name}")
        for name, func in inspect.getmembers(module, inspect.iscoroutinefunction):
            if func.__module__ != module.__name__ or name.startswith("_"):
                continue
            params = list(inspect.signature(func).parameters)
            if info.name in ("pool", "sql"):
                continue  # the pool itself and the call guards, which take a connection or pool by design
            assert params and params[0] == "conn", f"db.{info.name}.{name} must take the connection first"
            checked += 1
    assert checked >= 2


async def test_seed_6_the_audit_insert_matches_the_real_table(pool):
    # Used to break: "'endpoint' is an invalid keyword argument for AuditLog".
    columns = {
        r["column_name"]
        for r in await pool.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'audit_logs'")
    }
    assert set(COLUMNS) <= columns
    row = AuditRow(
        occurred_at=datetime.now(UTC),
        institution="seed6",
        action="GET /seed6",
        trace_id="seed6-trace",
        resource_type="http_request",
        resource_id="/seed6",
        ip_address="198.51.100.7",
        user_agent="pytest",
        metadata={"method": "GET", "status_code": 200},
    )
    async with lend(pool, 2.0) as conn:
        await insert_rows(conn, [row])
    stored = await pool.fetchrow("SELECT * FROM audit_logs WHERE trace_id = 'seed6-trace'")
    assert stored["metadata"] == {"method": "GET", "status_code": 200}
    assert str(stored["ip_address"]) == "198.51.100.7"
    assert stored["action"] == "GET /seed6"
