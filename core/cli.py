"""The command line behind `python app.py`: serve, migrate, and the admin commands."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from typing import Callable

from core import logs
from core.config import ConfigError, Settings
from core.startup import StartupError, describe, prepare, resolve_database, wait_for_database
from db import migrations

log = logging.getLogger("don")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python app.py", description="DON Research API")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP service (the default)")
    migrate = commands.add_parser("migrate", help="apply pending migrations (under yoyo's lock)")
    migrate.add_argument("--rollback", action="store_true", help="undo the last applied migration instead")
    return parser


def main(argv: list[str], create_app: Callable) -> int:
    parser = build_parser()
    args = parser.parse_args(argv or ["serve"])
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        if args.command in (None, "serve"):
            return serve(settings, create_app)
        if args.command == "migrate":
            return asyncio.run(migrate(settings, rollback=args.rollback))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


def serve(settings: Settings, create_app: Callable) -> int:
    import uvicorn

    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting normally then lets the
    # embedded PostgreSQL's exit hook stop the server this process started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    dsn = asyncio.run(prepare(settings))
    # Later checks in the lifespan reuse the server just started instead of starting another.
    settings = dataclasses.replace(settings, database_url=dsn)
    log.info("serving on %s:%d (database %s)", settings.host, settings.port, describe(dsn))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        lifespan="on",
        log_config=None,
        access_log=False,  # the audit trail records every request; a second log of them adds nothing
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    return 0


async def migrate(settings: Settings, rollback: bool) -> int:
    dsn = await asyncio.to_thread(resolve_database, settings)
    await wait_for_database(dsn, settings)
    if rollback:
        undone = await asyncio.to_thread(migrations.rollback, dsn)
        print(f"rolled back: {', '.join(undone) or 'nothing to roll back'}")
    else:
        applied = await asyncio.to_thread(migrations.apply, dsn)
        print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")
    return 0
