"""Every SQL file is valid against the migrated schema; migrations apply, roll back fully, and re-apply."""

from __future__ import annotations

import asyncpg
import pytest

from cli.startup import pending_migrations
from db import migrations, sql
from tests import pg


@pytest.mark.parametrize("name", sorted(sql.STATEMENTS))
async def test_sql_file_prepares_against_the_migrated_schema(pool, name):
    async with pool.acquire() as conn:
        await conn.prepare(sql.STATEMENTS[name].text)


def test_a_statement_name_that_does_not_exist_fails_at_lookup():
    with pytest.raises(sql.SqlFileError, match="no SQL file"):
        sql.statement("no_such_statement")


@pytest.mark.parametrize(
    "header, problem",
    [
        ("-- name: other\n-- returns: rows\n-- purpose\nSELECT 1", "must match the file name"),
        ("-- name: bad\n-- returns: many\n-- purpose\nSELECT 1", "returns"),
        ("-- name: bad\n-- returns: rows\nSELECT 1", "what the statement is for"),
        ("-- name: bad\n-- returns: rows\n-- purpose\n", "no SQL"),
    ],
)
def test_a_malformed_sql_file_is_refused_when_loaded(tmp_path, header, problem):
    path = tmp_path / "bad.sql"
    path.write_text(header)
    with pytest.raises(sql.SqlFileError, match=problem):
        sql.parse(path)


def test_every_migration_has_a_rollback_and_says_what_it_does():
    ids = migrations.on_disk()
    assert ids[0].startswith("0001.") and "vector" in (migrations.MIGRATIONS_DIR / f"{ids[0]}.sql").read_text()
    for number, migration_id in enumerate(ids, start=1):
        assert migration_id.startswith(f"{number:04d}."), "migrations are numbered without gaps"
        assert (migrations.MIGRATIONS_DIR / f"{migration_id}.rollback.sql").exists(), migration_id
        assert (migrations.MIGRATIONS_DIR / f"{migration_id}.sql").read_text().startswith("--")


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%'"
        )
        ext = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows} | ({"<vector>"} if ext else set())


async def test_migrations_apply_roll_back_fully_and_apply_again(server_url):
    url = pg.create_database(server_url, prefix="don_migrations")
    applied = migrations.apply(url)
    assert applied == migrations.on_disk()
    assert await pending_migrations(url) == []
    full = await _tables(url)
    assert {"audit_logs", "<vector>"} <= full
    undone = migrations.rollback(url, count=len(applied))
    assert undone == list(reversed(applied))
    assert await _tables(url) == set()
    assert migrations.apply(url) == applied
    assert await _tables(url) == full


async def test_a_time_range_across_institutions_is_read_through_an_index_and_the_btree_is_gone(pool):
    # 0011 put a BRIN index in place of the btree on occurred_at: a DBA's "everything in this hour,
    # every institution" must still be answered from an index, not by reading the whole trail.
    async with pool.acquire() as conn, conn.transaction():
        # With sequential scans priced out the planner still takes one if no index can serve the
        # range. (Which index it takes depends on the table's size: on a test database's few rows
        # PostgreSQL 18 may skip-scan audit_logs_institution_time instead.)
        await conn.execute("SET LOCAL enable_seqscan = off")
        lines = await conn.fetch(
            "EXPLAIN SELECT id FROM audit_logs WHERE occurred_at >= now() - interval '1 hour' AND occurred_at < now()"
        )
    plan = "\n".join(line[0] for line in lines)
    assert "Seq Scan" not in plan, plan
    async with pool.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = i.indkey[0] WHERE i.indrelid = 'audit_logs'::regclass AND a.attname = 'occurred_at'"
        )
    assert [(k["relname"], k["amname"]) for k in kinds] == [("audit_logs_occurred_at_brin", "brin")]
