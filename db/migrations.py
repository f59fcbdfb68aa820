"""Applies and rolls back the yoyo SQL migrations in migrations/, always under yoyo's lock."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
LOCK_TIMEOUT = 60

log = logging.getLogger(__name__)


def yoyo_url(dsn: str) -> str:
    """yoyo picks its driver from the scheme: postgresql:// means psycopg2, which requirements.txt pins."""
    parts = urlsplit(dsn)
    return urlunsplit(("postgresql",) + tuple(parts[1:]))


def _backend_and_migrations(dsn: str):
    return get_backend(yoyo_url(dsn)), read_migrations(str(MIGRATIONS_DIR))


def apply(dsn: str) -> list[str]:
    """Apply every pending migration; returns the ids applied."""
    backend, migrations = _backend_and_migrations(dsn)
    with backend.lock(timeout=LOCK_TIMEOUT):
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    for migration_id in applied:
        log.info("applied migration %s", migration_id)
    return applied


def rollback(dsn: str, count: int = 1) -> list[str]:
    """Roll back the last `count` applied migrations (newest first); returns their ids."""
    backend, migrations = _backend_and_migrations(dsn)
    with backend.lock(timeout=LOCK_TIMEOUT):
        applied = backend.to_rollback(migrations)
        targets = applied[:count]
        backend.rollback_migrations(targets)
    return [m.id for m in targets]


def on_disk() -> list[str]:
    """Migration ids in migrations/, in order."""
    return sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if not p.name.endswith(".rollback.sql"))
