"""Institutions and their API tokens: admin writes and the authentication lookup."""

from __future__ import annotations

import asyncpg

from db import sql

INSERT_INSTITUTION = sql.statement("insert_institution")
LIST_INSTITUTIONS = sql.statement("list_institutions")
FIND_INSTITUTION = sql.statement("find_institution")
DISABLE_INSTITUTION = sql.statement("disable_institution")
INSERT_TOKEN = sql.statement("insert_token")
LIST_TOKENS = sql.statement("list_tokens")
REVOKE_TOKEN = sql.statement("revoke_token")
FIND_TOKEN = sql.statement("find_token")
TOUCH_TOKEN = sql.statement("touch_token")


async def add_institution(conn: asyncpg.Connection, slug: str, name: str, tier: str, hourly_limit: int):
    return await sql.fetchrow(conn, INSERT_INSTITUTION, slug, name, tier, hourly_limit)


async def list_institutions(conn: asyncpg.Connection) -> list:
    return await sql.fetch(conn, LIST_INSTITUTIONS)


async def find_institution(conn: asyncpg.Connection, slug: str):
    return await sql.fetchrow(conn, FIND_INSTITUTION, slug)


async def disable_institution(conn: asyncpg.Connection, slug: str):
    return await sql.fetchrow(conn, DISABLE_INSTITUTION, slug)


async def add_token(conn: asyncpg.Connection, institution_id: int, label: str, prefix: str, sha256: bytes):
    return await sql.fetchrow(conn, INSERT_TOKEN, institution_id, label, prefix, sha256)


async def list_tokens(conn: asyncpg.Connection, institution_id: int) -> list:
    return await sql.fetch(conn, LIST_TOKENS, institution_id)


async def revoke_token(conn: asyncpg.Connection, prefix: str):
    return await sql.fetchrow(conn, REVOKE_TOKEN, prefix)


async def find_token(conn: asyncpg.Connection, sha256: bytes):
    """The token and its institution, or None; marks the token used (at most once a minute)."""
    row = await sql.fetchrow(conn, FIND_TOKEN, sha256)
    if row is not None and row["revoked_at"] is None:
        await sql.execute(conn, TOUCH_TOKEN, row["token_id"])
    return row
