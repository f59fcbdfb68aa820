"""The retention purge on the audit chain: it deletes a prefix in id order and records where it ended.

Each test has a database of its own (tests/chain.py): the purge is global, and the session
database holds other tests' rows, written in whatever order their clocks say.
"""

from __future__ import annotations

import asyncpg
import pytest

from cli import admin
from core.config import Settings
from db import audit_chain, migrations, retention
from tests import pg
from tests.chain import connect, scratch_database, tamper, write


@pytest.fixture
async def conn(server_url):
    async with connect(scratch_database(server_url)) as connection:
        yield connection


async def checkpoint(conn):
    return await conn.fetchrow("SELECT * FROM audit_checkpoints ORDER BY id DESC LIMIT 1")


async def test_purge_removes_the_expired_prefix_in_batches_and_the_rest_still_verifies(conn, monkeypatch):
    old = await write(conn, 3, days_old=120) + await write(conn, 1, days_old=91)
    kept = await write(conn, 2, days_old=89) + await write(conn, 2)
    monkeypatch.setattr(admin, "PURGE_BATCH", 2)  # several batches, each its own transaction
    await admin.purge(conn, Settings(), audit_days=None, window_days=None)
    assert [r["id"] for r in await conn.fetch("SELECT id FROM audit_logs ORDER BY id")] == kept
    last = await checkpoint(conn)
    assert (last["reason"], last["through_id"]) == ("purge", old[-1])
    history = await conn.fetch("SELECT rows_purged FROM audit_checkpoints WHERE reason = 'purge' ORDER BY id")
    assert [r["rows_purged"] for r in history] == [2, 2]
    report = await audit_chain.verify(conn)
    assert report.intact, report.problem
    assert (report.rows, report.first_id, report.checkpoint_id) == (4, kept[0], old[-1])
    await write(conn, 2)  # and the chain carries on from where it was
    assert (await audit_chain.verify(conn)).intact


async def test_the_checkpoint_carries_the_last_purged_rows_hash(conn):
    ids = await write(conn, 3, days_old=100)
    expected = bytes(await conn.fetchval("SELECT row_hash FROM audit_logs WHERE id = $1", ids[-1]))
    assert await retention.purge_batch(conn, "audit_logs", 90, 100) == 3
    assert bytes((await checkpoint(conn))["through_hash"]) == expected
    assert (await audit_chain.verify(conn)).intact  # an empty chain: the head is the checkpoint
    first = (await write(conn, 1))[0]
    assert bytes(await conn.fetchval("SELECT prev_hash FROM audit_logs WHERE id = $1", first)) == expected


async def test_purge_stops_at_the_first_row_within_retention(conn):
    # The purged part must be a prefix of the chain: an expired row after a recent one waits (in
    # practice ids and times agree to within a request's duration).
    first = await write(conn, 1, days_old=100)
    recent = await write(conn, 1)
    late = await write(conn, 1, days_old=100)
    assert await retention.purge_batch(conn, "audit_logs", 90, 100) == 1
    assert [r["id"] for r in await conn.fetch("SELECT id FROM audit_logs ORDER BY id")] == recent + late
    assert (await checkpoint(conn))["through_id"] == first[0]
    assert await retention.purge_batch(conn, "audit_logs", 90, 100) == 0
    assert (await audit_chain.verify(conn)).intact


async def test_a_row_slipped_into_the_purged_prefix_is_detected(conn):
    ids = await write(conn, 3, days_old=100) + await write(conn, 2)
    await retention.purge_batch(conn, "audit_logs", 90, 100)
    await conn.execute(
        "INSERT INTO audit_logs (id, institution, action, trace_id, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
        "VALUES ($1, 'x', 'GET /', 't', sha256('a'), sha256('b'))",
        ids[1],
    )
    report = await audit_chain.verify(conn)
    assert report.problem.startswith(f"row {ids[1]} lies inside the purged prefix (rows through id {ids[2]}")


async def test_a_delete_just_after_the_checkpoint_is_detected(conn):
    await write(conn, 2, days_old=100)
    ids = await write(conn, 3)
    await retention.purge_batch(conn, "audit_logs", 90, 100)
    await tamper(conn, "DELETE FROM audit_logs WHERE id = $1", ids[0])
    report = await audit_chain.verify(conn)
    assert report.problem.startswith(f"rows between the purge checkpoint after row {ids[0] - 1} and row {ids[1]}")


async def test_rows_from_before_the_chain_are_reported_and_purged_without_moving_the_start(server_url):
    url = pg.create_database(server_url, prefix="don_chain")
    migrations.apply(url)
    later = [m for m in migrations.on_disk() if m >= "0007"]
    assert migrations.rollback(url, count=len(later))[-1] == "0007.audit-chain"  # as it was before 0007
    async with connect(url) as conn:
        await conn.execute(
            "INSERT INTO audit_logs (occurred_at, institution, action, trace_id) "
            "SELECT now() - interval '100 days', 'legacy', 'GET /', 'legacy-' || n FROM generate_series(1, 3) n"
        )
    assert migrations.apply(url) == later
    async with connect(url) as conn:
        start = await checkpoint(conn)
        assert (start["reason"], start["through_id"]) == ("chain start", 3)
        ids = await write(conn, 2)
        report = await audit_chain.verify(conn)
        assert report.intact and (report.rows, report.unchained, report.first_id) == (2, 3, ids[0])
        assert await retention.purge_batch(conn, "audit_logs", 90, 100) == 3
        assert (await checkpoint(conn))["through_id"] == 3  # unchained rows gone; the chain starts where it did
        report = await audit_chain.verify(conn)
        assert report.intact and report.unchained == 0


async def test_only_the_purge_function_may_delete(conn):
    await write(conn, 2, days_old=100)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM audit_logs")
    async with conn.transaction():  # the flag audit_purge() raises for itself is lowered before it returns
        await retention.purge_batch(conn, "audit_logs", 90, 100)
        assert await conn.fetchval("SELECT current_setting('don.audit_purge', true)") == "off"
    assert await conn.fetchval("SELECT count(*) FROM audit_logs") == 0
