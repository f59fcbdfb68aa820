"""The fault proxy itself, against the real PostgreSQL: asyncpg through it, in every mode."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.faults.proxy import Proxy, target_of, through

# Errors a client sees when its connection is dropped under it.
DROPPED = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, ConnectionError, OSError)


def test_urls_of_either_form_are_proxied():
    embedded = "postgresql://postgres:@/don_x?host=/tmp/d/pg"
    assert target_of(embedded) == "/tmp/d/pg/.s.PGSQL.5432"
    assert through(embedded, 4321) == "postgresql://postgres:@127.0.0.1:4321/don_x"
    assert target_of("postgresql://u@%2Fvar%2Frun%2Fpg:5433/x") == "/var/run/pg/.s.PGSQL.5433"
    tcp = "postgres://user:secret@db.internal:6543/don?sslmode=disable"
    assert target_of(tcp) == ("db.internal", 6543)
    assert through(tcp, 4321) == "postgres://user:secret@127.0.0.1:4321/don?sslmode=disable"
    assert target_of("postgresql://localhost/x") == ("localhost", 5432)


async def test_asyncpg_connects_and_queries_through_the_proxy(proxied_database):
    proxy = proxied_database.proxy
    conn = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        database = urlsplit(proxied_database.direct_url).path.lstrip("/")
        assert await conn.fetchval("SELECT current_database()") == database
        assert proxy.connections == 1
    finally:
        await conn.close()


async def test_cut_drops_open_connections_at_once_and_refuses_new_ones_until_restored(proxied_database):
    proxy = proxied_database.proxy
    conn = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(DROPPED):
            await conn.fetchval("SELECT 1", timeout=10)
        assert time.monotonic() - started < 2, "a cut connection fails at once, not at the timeout"
        started = time.monotonic()
        with pytest.raises(DROPPED):
            await asyncpg.connect(proxied_database.url, timeout=10)
        assert time.monotonic() - started < 2
        assert proxy.connections == 0
    finally:
        conn.terminate()
    proxy.restore()
    again = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        assert await again.fetchval("SELECT 1", timeout=5) == 1
    finally:
        await again.close()


async def test_blackhole_makes_queries_and_connects_time_out_and_restore_lets_them_through(proxied_database):
    proxy = proxied_database.proxy
    conn = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.fetchval("SELECT 1", timeout=1)
        assert 0.9 < time.monotonic() - started < 3
        with pytest.raises(TimeoutError):
            await asyncpg.connect(proxied_database.url, timeout=1)
        assert proxy.connections >= 2, "the blackhole holds connections open rather than refusing them"
        proxy.restore()
        # The held bytes flow again: the connection is usable once the timed-out query's cancel settles.
        assert await conn.fetchval("SELECT 2", timeout=10) == 2
    finally:
        proxy.restore()
        conn.terminate()
    again = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        assert await again.fetchval("SELECT 1", timeout=5) == 1
    finally:
        await again.close()


async def test_delay_adds_latency_in_each_direction_and_restore_removes_it(proxied_database):
    proxy = proxied_database.proxy
    conn = await asyncpg.connect(proxied_database.url, timeout=10)
    try:
        baseline = await _round_trip(conn)
        proxy.delay(0.25)
        delayed = await _round_trip(conn)
        assert delayed >= 0.5, f"a query and its answer each wait 0.25 s, yet the round trip took {delayed:.3f}s"
        assert delayed < 5
        proxy.restore()
        assert await _round_trip(conn) < baseline + 0.25
    finally:
        proxy.restore()
        await conn.close()


def test_a_proxy_with_nothing_behind_it_drops_its_clients(tmp_path):
    with Proxy(str(tmp_path / "no.socket")) as proxy:
        with socket.create_connection(proxy.address, timeout=5) as sock:
            sock.settimeout(5)
            assert sock.recv(1) == b"", "the client is closed, not left hanging"


async def _round_trip(conn: asyncpg.Connection) -> float:
    started = time.monotonic()
    assert await conn.fetchval("SELECT 1", timeout=10) == 1
    return time.monotonic() - started
