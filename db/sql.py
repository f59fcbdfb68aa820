"""Loads every file under sql/ into a named Statement and runs it through the one call its header allows.

Each file starts with a header:

    -- name: insert_audit_rows
    -- returns: nothing | rows | row | value
    -- <what it is for>

`returns` maps one-to-one onto asyncpg: nothing -> execute, rows -> fetch, row -> fetchrow,
value -> fetchval. Calling the wrong one raises WrongCall, so a command is never fetched and a
query is never executed blind (seed failure 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import asyncpg

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
KINDS = {"nothing": "execute", "rows": "fetch", "row": "fetchrow", "value": "fetchval"}
_HEADER = re.compile(r"^--\s*(name|returns):\s*(\S+)\s*$")


class SqlFileError(RuntimeError):
    """A file under sql/ is malformed or a statement name does not exist."""


class WrongCall(TypeError):
    """A statement was run through a call that does not match what it returns."""


@dataclass(frozen=True)
class Statement:
    name: str
    returns: str
    text: str
    purpose: str
    path: Path


def parse(path: Path) -> Statement:
    """Read one SQL file and check its header."""
    header: dict[str, str] = {}
    purpose: list[str] = []
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line.strip())
        if not body and match:
            header[match.group(1)] = match.group(2)
        elif not body and line.startswith("--"):
            purpose.append(line.lstrip("-").strip())
        else:
            body.append(line)
    name, returns = header.get("name"), header.get("returns")
    if name != path.stem:
        raise SqlFileError(f"{path.name}: header '-- name: {name}' must match the file name")
    if returns not in KINDS:
        raise SqlFileError(f"{path.name}: '-- returns:' must be one of {', '.join(KINDS)}")
    if not any(purpose):
        raise SqlFileError(f"{path.name}: say in a comment under the header what the statement is for")
    text = "\n".join(body).strip()
    if not text:
        raise SqlFileError(f"{path.name}: no SQL")
    return Statement(name=name, returns=returns, text=text, purpose=" ".join(p for p in purpose if p), path=path)


def load_all(directory: Path = SQL_DIR) -> MappingProxyType:
    """Every statement under `directory`, keyed by name, read-only."""
    statements = {}
    for path in sorted(directory.glob("*.sql")):
        statement = parse(path)
        statements[statement.name] = statement
    return MappingProxyType(statements)


STATEMENTS = load_all()


def statement(name: str) -> Statement:
    """Look a statement up by name; modules call this at import, so a bad name fails start-up."""
    try:
        return STATEMENTS[name]
    except KeyError:
        raise SqlFileError(f"no SQL file sql/{name}.sql") from None


def _check(stmt: Statement, call: str) -> None:
    if KINDS[stmt.returns] != call:
        raise WrongCall(
            f"sql/{stmt.name}.sql returns {stmt.returns}: run it with {KINDS[stmt.returns]}(), not {call}()"
        )


async def execute(conn: asyncpg.Connection, stmt: Statement, *args: Any, timeout: float | None = None) -> str:
    """Run a command that returns no rows (DDL, INSERT/UPDATE/DELETE without RETURNING); returns its status."""
    _check(stmt, "execute")
    return await conn.execute(stmt.text, *args, timeout=timeout)


async def fetch(conn: asyncpg.Connection, stmt: Statement, *args: Any, timeout: float | None = None) -> list:
    _check(stmt, "fetch")
    return await conn.fetch(stmt.text, *args, timeout=timeout)


async def fetchrow(conn: asyncpg.Connection, stmt: Statement, *args: Any, timeout: float | None = None):
    _check(stmt, "fetchrow")
    return await conn.fetchrow(stmt.text, *args, timeout=timeout)


async def fetchval(conn: asyncpg.Connection, stmt: Statement, *args: Any, timeout: float | None = None):
    _check(stmt, "fetchval")
    return await conn.fetchval(stmt.text, *args, timeout=timeout)
