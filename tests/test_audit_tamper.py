"""Tampering with the audit trail, against real PostgreSQL: every edit, delete and forged row is found
by verify and named, a consistent rewrite is caught by an anchor, and the guard refuses edits.

Every test works in a database of its own (tests/chain.py): other test files write audit rows to
the session database all the time. How the chain is built and stored: tests/test_audit_chain.py.
"""

from __future__ import annotations

import asyncpg
import pytest

from db import audit_chain
from tests.chain import row, tamper, write

COLUMN_EDITS = [
    ("metadata", "metadata || '{\"status_code\": 500}'"),
    ("metadata", '\'{"status_code": 200, "n": 3, "method": "GET"}\'::jsonb || \'{}\''),  # same keys, n changed
    ("occurred_at", "occurred_at + interval '1 microsecond'"),
    ("institution", "'someone-else'"),
    ("action", "'DELETE /api/v1/collections/x'"),
    ("trace_id", "trace_id || 'x'"),
    ("resource_type", "NULL"),
    ("resource_id", "''"),
    ("ip_address", "'203.0.113.10'"),
    ("user_agent", "NULL"),
    ("prev_hash", "sha256(prev_hash)"),
]


@pytest.mark.parametrize("column, value", COLUMN_EDITS)
async def test_an_update_of_any_column_is_detected_naming_the_row(conn, column, value):
    ids = await write(conn, 6, batch=2)
    await tamper(conn, f"UPDATE audit_logs SET {column} = {value} WHERE id = $1", ids[2])
    report = await audit_chain.verify(conn)
    assert not report.intact
    assert report.problem.startswith(f"row {ids[2]} "), report.problem
    if column != "prev_hash":
        assert "changed after it was written" in report.problem


async def test_an_update_of_the_last_row_is_detected(conn):
    ids = await write(conn, 3)
    await tamper(conn, "UPDATE audit_logs SET metadata = '{}' WHERE id = $1", ids[-1])
    report = await audit_chain.verify(conn)
    assert report.problem == f"row {ids[-1]} was changed after it was written: its content no longer matches its hash"


@pytest.mark.parametrize("position, words", [(0, "the start of the chain"), (2, "were deleted"), (-1, "missing")])
async def test_a_delete_is_detected_naming_the_row_after_the_gap(conn, position, words):
    ids = await write(conn, 5, batch=5)
    await tamper(conn, "DELETE FROM audit_logs WHERE id = $1", ids[position])
    report = await audit_chain.verify(conn)
    assert not report.intact and words in report.problem
    if position == -1:
        assert report.problem.startswith(f"rows after row {ids[-2]} are missing"), report.problem
    else:
        assert f"row {ids[position + 1]} does not chain from" in report.problem, report.problem


async def _forge(conn, row_id: int, prev: bytes, valid_hash: bool) -> None:
    """A row written with raw SQL into an id the chain skipped, as an intruder would."""
    forged = row(7, institution="forged")
    digest = "audit_row_hash($2, $1, $3, $4, $5, $6, $7, $8, $9::inet, $10, $11::jsonb)" if valid_hash else "sha256($2)"
    await conn.execute(
        "INSERT INTO audit_logs (id, occurred_at, institution, action, trace_id, resource_type, resource_id, "
        "ip_address, user_agent, metadata, prev_hash, row_hash) OVERRIDING SYSTEM VALUE "
        f"VALUES ($1, $3, $4, $5, $6, $7, $8, $9::inet, $10, $11::jsonb, $2, {digest})",
        row_id,
        prev,
        forged.occurred_at,
        forged.institution,
        forged.action,
        forged.trace_id,
        forged.resource_type,
        forged.resource_id,
        forged.ip_address,
        forged.user_agent,
        forged.metadata,
    )


@pytest.mark.parametrize("valid_hash", [True, False], ids=["hash-recomputed", "hash-made-up"])
async def test_a_forged_row_inserted_between_two_rows_is_detected_naming_it(conn, valid_hash):
    before = await write(conn, 3)
    await conn.execute("SELECT setval(pg_get_serial_sequence('audit_logs', 'id'), $1)", before[-1] + 5)  # a gap
    after = await write(conn, 2)
    prev = bytes(await conn.fetchval("SELECT row_hash FROM audit_logs WHERE id = $1", before[-1]))
    await _forge(conn, before[-1] + 2, prev, valid_hash)
    report = await audit_chain.verify(conn)
    assert report.problem.startswith(f"row {before[-1] + 2} was inserted outside the service"), report.problem
    assert f"row {after[0]} chains from row {before[-1]}" in report.problem


async def test_a_forged_row_appended_after_the_head_is_detected(conn):
    ids = await write(conn, 3)
    head_hash = bytes(await conn.fetchval("SELECT last_hash FROM audit_chain_head"))
    await _forge(conn, ids[-1] + 1, head_hash, valid_hash=True)
    report = await audit_chain.verify(conn)
    assert report.problem == (
        f"row {ids[-1] + 1} lies beyond the chain head (row {ids[-1]}): it was inserted outside the service"
    )


async def test_a_rewritten_tail_passes_alone_but_not_against_an_anchor(conn):
    ids = await write(conn, 4)
    anchor = (await audit_chain.verify(conn)).head
    # The owner rewrites history consistently: drops the last row and moves the head back to the row before.
    await tamper(conn, "DELETE FROM audit_logs WHERE id = $1", ids[-1])
    await conn.execute(
        "UPDATE audit_chain_head SET last_id = $1, last_hash = (SELECT row_hash FROM audit_logs WHERE id = $1)",
        ids[-2],
    )
    assert (await audit_chain.verify(conn)).intact  # the chain alone cannot tell
    report = await audit_chain.verify(conn, anchor)
    assert not report.intact and f"anchored row {anchor.id}" in report.problem
    assert (await audit_chain.verify(conn, audit_chain.Anchor(ids[1], anchor.hash))).problem.startswith(
        f"row {ids[1]} no longer carries the anchored hash"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'x'",
        "DELETE FROM audit_logs",
        "TRUNCATE audit_logs",
        "UPDATE audit_checkpoints SET through_id = 0",
        "DELETE FROM audit_checkpoints",
    ],
)
async def test_the_guard_refuses_edits_even_by_the_owner(conn, statement):
    await write(conn, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute(statement)
    assert (await audit_chain.verify(conn)).intact


async def test_a_row_without_hashes_is_refused(conn):
    with pytest.raises(asyncpg.CheckViolationError, match="audit_logs_chained"):
        await conn.execute("INSERT INTO audit_logs (institution, action, trace_id) VALUES ('x', 'GET /', 't')")
