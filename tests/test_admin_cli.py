"""The admin command line, run as a user would, against a real database; and the retention purge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cli import admin
from core import tokens
from core.config import Settings
from db.audit import AuditRow, insert_rows
from tests.test_config_and_startup import run_app


def cli(database_url: str, *args: str):
    return run_app({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}, *args, timeout=60)


def test_institution_and_token_lifecycle(database_url, client):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    added = cli(
        database_url,
        "institution",
        "add",
        slug,
        "--name",
        "CLI University",
        "--tier",
        "nonprofit",
        "--hourly-limit",
        "250",
    )
    assert added.returncode == 0, added.stderr
    listed = cli(database_url, "institution", "list")
    assert slug in listed.stdout and "250" in listed.stdout and "nonprofit" in listed.stdout

    issued = cli(database_url, "token", "issue", slug, "--label", "laptop")
    assert issued.returncode == 0
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and tokens.well_formed(token)
    assert token not in issued.stderr
    listing = cli(database_url, "token", "list", slug)
    assert tokens.public_prefix(token) in listing.stdout and token not in listing.stdout

    revoked = cli(database_url, "token", "revoke", tokens.public_prefix(token))
    assert revoked.returncode == 0 and "within" in revoked.stderr
    disabled = cli(database_url, "institution", "disable", slug)
    assert disabled.returncode == 0
    again = cli(database_url, "institution", "add", slug, "--name", "Twice")
    assert again.returncode != 0


async def test_admin_commands_leave_audit_rows_and_never_the_token(database_url, pool):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert cli(database_url, "institution", "add", slug, "--name", "Audited U").returncode == 0
    issued = cli(database_url, "token", "issue", slug, "--label", "ci")
    assert issued.returncode == 0
    assert cli(database_url, "institution", "add", slug, "--name", "Twice").returncode != 0
    rows = await pool.fetch(
        "SELECT action, institution, metadata FROM audit_logs WHERE resource_id = $1 AND resource_type = 'cli_command'"
        " ORDER BY id",
        slug,
    )
    assert [(r["action"], r["metadata"]["outcome"]) for r in rows] == [
        ("cli:institution add", "ok"),
        ("cli:token issue", "ok"),
        ("cli:institution add", "refused"),
    ]
    assert all(r["institution"] == slug for r in rows) and "already exists" in rows[2]["metadata"]["detail"]
    assert issued.stdout.strip() not in str([dict(r) for r in rows])


@pytest.mark.parametrize(
    "args, words",
    [
        (("institution", "add", "dup-{slug}", "--name", "Again"), "already exists"),
        (("institution", "add", "Bad Slug", "--name", "x"), "slug"),
        (("institution", "add", "ok-{slug}", "--name", "x", "--hourly-limit", "0"), "from 1 to 2,147,483,647"),
        (("institution", "add", "ok-{slug}", "--name", "x", "--hourly-limit", "-3"), "from 1 to 2,147,483,647"),
        # Past the integer column: once a driver error with a traceback.
        (("institution", "add", "ok-{slug}", "--name", "x", "--hourly-limit", "2147483648"), "from 1 to"),
        # Past what "now minus the retention" can be as a timestamp, or an integer at all.
        (("purge", "--audit-days", "3650000"), "from 1 to 36,500"),
        (("purge", "--window-days", "99999999999999999999"), "from 1 to 36,500"),
        (("institution", "disable", "nobody-{slug}"), "no institution"),
        (("token", "issue", "nobody-{slug}"), "no institution"),
        (("token", "list", "nobody-{slug}"), "no institution"),
        (("token", "revoke", "donr_nothing"), "no token"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(database_url, args, words):
    slug = uuid.uuid4().hex[:8]
    assert cli(database_url, "institution", "add", f"dup-{slug}", "--name", "First").returncode == 0
    result = cli(database_url, *(a.format(slug=slug) for a in args))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


async def test_purge_removes_only_expired_rows_in_batches(server_url, monkeypatch):
    # Its own database: the purge removes the trail's expired prefix, which any recent row stops.
    from tests.chain import connect, scratch_database
    from tests.conftest import make_institution

    async with connect(scratch_database(server_url)) as conn:
        await _purge_case(conn, monkeypatch, await make_institution(conn))


async def _purge_case(conn, monkeypatch, institution):
    tag = uuid.uuid4().hex
    now = datetime.now(UTC)
    ages = {"old-1": 120, "old-2": 91, "new-1": 89, "new-2": 0}
    rows = [
        AuditRow(
            occurred_at=now - timedelta(days=days),
            institution="purge-test",
            action="GET /x",
            trace_id=f"{tag}-{name}",
            resource_type="http_request",
            resource_id="/x",
            ip_address=None,
            user_agent=None,
            metadata={},
        )
        for name, days in ages.items()
    ]
    await insert_rows(conn, rows)
    await conn.execute(
        "INSERT INTO rate_limit_windows (institution_id, window_start, hits) VALUES "
        "($1, date_trunc('hour', now()) - interval '3 days', 5), "
        "($1, date_trunc('hour', now()) - interval '1 day', 5)",
        institution.id,
    )
    monkeypatch.setattr(admin, "PURGE_BATCH", 1)  # force several batches
    await admin.purge(conn, Settings(), audit_days=None, window_days=None)
    left = {
        r["trace_id"].removeprefix(f"{tag}-")
        for r in await conn.fetch("SELECT trace_id FROM audit_logs WHERE trace_id LIKE $1 || '%'", tag)
    }
    assert left == {"new-1", "new-2"}
    windows = await conn.fetchval("SELECT count(*) FROM rate_limit_windows WHERE institution_id = $1", institution.id)
    assert windows == 1
