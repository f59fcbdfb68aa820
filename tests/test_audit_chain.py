"""The audit trail's hash chain, against real PostgreSQL: what it stores, that an intact trail
verifies, the CLI, and the head's guards. Tampering and what verify says of it:
tests/test_audit_tamper.py.

Each test works in a database of its own (tests/chain.py): other test files write audit rows to
the session database all the time.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import random
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from db import audit_chain
from db.audit import insert_rows
from tests.chain import connect, row, tamper, write
from tests.test_config_and_startup import run_app

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def documented_hash(prev: bytes, row_id: int, r, metadata_text: str) -> bytes:
    """The encoding as README "Tamper evidence" states it, rebuilt outside the database."""

    def field(value: str | None) -> bytes:
        if value is None:
            return b"\xff\xff\xff\xff"
        data = value.encode("utf-8")
        return len(data).to_bytes(4, "big") + data

    micros = (r.occurred_at - EPOCH) // timedelta(microseconds=1)
    ip = ipaddress.ip_interface(r.ip_address).with_prefixlen if r.ip_address else None
    values = [str(row_id), str(micros), r.institution, r.action, r.trace_id, r.resource_type, r.resource_id, ip]
    return hashlib.sha256(prev + b"".join(field(v) for v in [*values, r.user_agent, metadata_text])).digest()


async def test_each_row_stores_the_documented_hash_whatever_the_session_time_zone(conn):
    await conn.execute("SET TimeZone = 'America/New_York'")  # timestamptz::text would change; the hash must not
    first = row(1, ip_address="2001:db8::7", user_agent=None, metadata={"status_code": 200, "method": "GET", "é": "ü"})
    second = row(2, resource_type=None, resource_id="")
    await insert_rows(conn, [first, second])
    stored = await conn.fetch("SELECT id, prev_hash, row_hash, metadata::text AS m FROM audit_logs ORDER BY id")
    assert stored[0]["m"] == '{"é": "ü", "method": "GET", "status_code": 200}'  # jsonb's own canonical text
    assert bytes(stored[0]["prev_hash"]) == bytes(32)
    assert bytes(stored[0]["row_hash"]) == documented_hash(bytes(32), stored[0]["id"], first, stored[0]["m"])
    assert bytes(stored[1]["prev_hash"]) == bytes(stored[0]["row_hash"])
    assert bytes(stored[1]["row_hash"]) == documented_hash(
        bytes(stored[0]["row_hash"]), stored[1]["id"], second, stored[1]["m"]
    )


async def test_a_batch_is_stored_exactly_as_built_whatever_its_text(conn):
    # The batch travels as one JSON text (db/audit.batch_json): quotes, backslashes, non-ASCII text,
    # NULLs, microseconds and time zones must come back exactly as the rows held them, in batch order.
    when = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-7)))
    rows = [
        row(1, occurred_at=when, user_agent='say "hi" \\ ünï \u2603 😀', ip_address=None),
        row(2, resource_type=None, resource_id=None, metadata={"q": 'a"b', "deep": [{"x": None}], "f": 0.1}),
        row(3, institution="é-lab", action="POST /api/v1/collections/{n}", ip_address="2001:db8::1"),
    ]
    await insert_rows(conn, rows)
    stored = await conn.fetch(
        "SELECT occurred_at, institution, action, trace_id, resource_type, resource_id, host(ip_address) AS ip, "
        "user_agent, metadata FROM audit_logs ORDER BY id"
    )
    for built, got in zip(rows, stored, strict=True):
        assert got["occurred_at"] == built.occurred_at
        assert (got["institution"], got["action"], got["trace_id"]) == (built.institution, built.action, built.trace_id)
        assert (got["resource_type"], got["resource_id"]) == (built.resource_type, built.resource_id)
        assert (got["ip"], got["user_agent"], got["metadata"]) == (built.ip_address, built.user_agent, built.metadata)
    assert (await audit_chain.verify(conn)).intact


async def test_an_intact_trail_verifies_across_chunks_and_id_gaps(conn):
    await write(conn, 7, batch=3)
    with pytest.raises(asyncpg.CheckViolationError):  # refused, and it burns an id
        await conn.execute("INSERT INTO audit_logs (institution, action, trace_id) VALUES ('x', 'y', 'z')")
    rolled_back = conn.transaction()
    await rolled_back.start()
    await insert_rows(conn, [row(99)])
    await rolled_back.rollback()  # burns ids too, and leaves the head where it was
    async with conn.transaction():  # a batch inside a caller's transaction holds the head until it commits
        await write(conn, 4, batch=4)
    ids = await write(conn, 5, batch=2)
    report = await audit_chain.verify(conn, chunk=3)
    assert report.intact, report.problem
    assert report.rows == 16 and report.head.id == ids[-1]
    assert ids[-1] - report.first_id + 1 > 16  # the ids have gaps; the chain has none


async def test_concurrent_batches_from_several_connections_form_one_chain_in_id_order(chain_url, conn):
    async def writer(seed: int) -> int:
        rng = random.Random(seed)
        async with connect(chain_url) as own:
            written = 0
            for _ in range(30):
                size = rng.choice((1, 1, 3, 11, 40))
                await insert_rows(own, [row(n) for n in range(size)])
                written += size
            return written

    written = sum(await asyncio.gather(*(writer(seed) for seed in range(4))))
    report = await audit_chain.verify(conn)
    assert report.intact, report.problem
    assert report.rows == written == await conn.fetchval("SELECT count(*) FROM audit_logs")
    broken_links = await conn.fetchval(
        "SELECT count(*) FROM (SELECT prev_hash, lag(row_hash) OVER (ORDER BY id) AS before FROM audit_logs) s "
        "WHERE before IS NOT NULL AND prev_hash <> before"
    )
    assert broken_links == 0
    assert await conn.fetchval("SELECT last_id FROM audit_chain_head") == await conn.fetchval(
        "SELECT max(id) FROM audit_logs"
    )


def verify_cli(url: str, *args: str):
    return run_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}, "audit", "verify", *args, timeout=60)


async def test_the_cli_prints_one_line_and_exits_0_then_non_zero_once_broken(chain_url, conn):
    ids = await write(conn, 5, batch=2)
    intact = verify_cli(chain_url)
    assert intact.returncode == 0, intact.stderr
    assert intact.stderr == "" and len(intact.stdout.splitlines()) == 1
    assert intact.stdout.startswith(f"audit trail intact: 5 row(s) chained (ids {ids[0]}-{ids[-1]});")
    anchor = intact.stdout.split("head ")[-1].strip()
    assert verify_cli(chain_url, "--anchor", anchor).returncode == 0

    await tamper(conn, "UPDATE audit_logs SET user_agent = 'curl' WHERE id = $1", ids[1])
    broken = verify_cli(chain_url)
    assert broken.returncode == 1 and broken.stdout == ""
    lines = broken.stderr.strip().splitlines()
    assert lines == [
        f"error: audit trail broken: row {ids[1]} was changed after it was written: "
        "its content no longer matches its hash"
    ], broken.stderr


def test_a_malformed_anchor_is_one_line(chain_url):
    result = verify_cli(chain_url, "--anchor", "12:nothex")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "ID:HASH" in result.stderr and "Traceback" not in result.stderr


async def test_a_transaction_that_appends_and_goes_quiet_cannot_hold_the_head(chain_url, conn):
    # A write commits its row with its data, so the head's lock can outlive the append. Used to be
    # possible: a client cut off before COMMIT would have stopped every instance's audit writes.
    default = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
    async with connect(chain_url) as stalled:
        transaction = stalled.transaction()
        await transaction.start()
        await insert_rows(stalled, [row(1)])
        assert await stalled.fetchval("SHOW idle_in_transaction_session_timeout") == "5s"
        # ...and then says nothing: the server ends it, so this append gets the head within the bound.
        await asyncio.wait_for(insert_rows(conn, [row(2)]), timeout=30)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await transaction.commit()
    assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == default
    report = await audit_chain.verify(conn)
    assert report.intact and report.rows == 1


async def test_an_id_sequence_set_back_is_refused_rather_than_breaking_the_chain(conn):
    ids = await write(conn, 3)
    await conn.execute("SELECT setval(pg_get_serial_sequence('audit_logs', 'id'), $1)", ids[0])
    with pytest.raises(asyncpg.RaiseError, match="not after the chain head"):
        await insert_rows(conn, [row(1)])
    assert (await audit_chain.verify(conn)).intact
