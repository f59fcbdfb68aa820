"""The command line behind `python app.py`: serve, migrate, and the admin commands."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import signal
import sys
from collections.abc import Callable

import asyncpg

from cli import admin
from cli.audit_rows import CHANGES_DATA, cli_row, command_of
from cli.startup import StartupError, describe, prepare, resolve_database, wait_for_database
from core import logs
from core.config import MAX_RETENTION_DAYS, ConfigError, Settings
from db import migrations
from db.audit import insert_rows
from db.pool import init_connection

log = logging.getLogger("don")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python app.py", description="DON Research API")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    commands.add_parser("serve", help="run the HTTP service (the default)")
    commands.add_parser("worker", help="run background jobs alone, until SIGTERM (no HTTP)")
    migrate = commands.add_parser("migrate", help="apply pending migrations (under yoyo's lock)")
    migrate.add_argument("--rollback", action="store_true", help="undo the last applied migration instead")

    institution = commands.add_parser("institution", help="add, list or disable institutions")
    inst = institution.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = inst.add_parser("add", help="add an institution")
    add.add_argument("slug")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--tier", default="academic", choices=admin.TIERS)
    hourly = _positive_up_to(MAX_HOURLY_LIMIT)
    add.add_argument("--hourly-limit", type=hourly, default=1000, help="requests per UTC hour (default 1000)")
    inst.add_parser("list", help="list institutions")
    disable = inst.add_parser("disable", help="disable an institution (its tokens get 403)")
    disable.add_argument("slug")

    token = commands.add_parser("token", help="issue, list or revoke API tokens")
    tok = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = tok.add_parser("issue", help="issue a token; prints it alone on stdout, once")
    issue.add_argument("slug")
    issue.add_argument("--label", default="", help="what the token is for")
    listing = tok.add_parser("list", help="list an institution's tokens")
    listing.add_argument("slug")
    revoke = tok.add_parser("revoke", help="revoke a token by its public prefix")
    revoke.add_argument("prefix")

    purge = commands.add_parser("purge", help="delete audit rows and rate-limit windows past retention")
    days = _positive_up_to(MAX_RETENTION_DAYS)
    purge.add_argument("--audit-days", type=days, help="override AUDIT_RETENTION_DAYS")
    purge.add_argument("--window-days", type=days, help="override RATE_WINDOW_RETENTION_DAYS")

    audit = commands.add_parser("audit", help="check the audit trail's hash chain")
    aud = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = aud.add_parser("verify", help="recompute the chain; exit non-zero naming the first broken row")
    verify.add_argument("--anchor", metavar="ID:HASH", help="a head an earlier verify printed: it must still hold")
    return parser


def _positive_up_to(most: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not 0 < int(raw) <= most:
            raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {most:,}, not {raw!r}")
        return int(raw)

    return parse


MAX_HOURLY_LIMIT = 2**31 - 1  # institutions.hourly_limit is an integer column


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line, like every other failure of the command line."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def main(argv: list[str], create_app: Callable) -> int:
    parser = build_parser()
    args = parser.parse_args(argv or ["serve"])
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Admin commands speak through their own output; routine log lines would only clutter it.
    quiet = args.command not in (None, "serve", "worker") and settings.log_level in ("DEBUG", "INFO")
    logs.configure("WARNING" if quiet else settings.log_level)
    try:
        if args.command in (None, "serve"):
            return serve(settings, create_app)
        if args.command == "worker":
            from api.job_registry import product_job_types
            from cli.worker import run_worker

            return asyncio.run(run_worker(settings, product_job_types()))
        if args.command == "migrate":
            return asyncio.run(migrate(settings, rollback=args.rollback))
        return asyncio.run(run_admin(settings, args))
    except (StartupError, admin.AdminError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def serve(settings: Settings, create_app: Callable) -> int:
    import uvicorn

    from api.http_protocol import LimitedHttpToolsProtocol
    from api.routes.health import VERSION
    from core import error_reporting

    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting normally then lets the
    # embedded PostgreSQL's exit hook stop the server this process started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if error_reporting.configure(settings.sentry_dsn, f"don-research-api@{VERSION}"):
        log.info("reporting unhandled errors to Sentry")
    dsn = asyncio.run(prepare(settings))
    # Later checks in the lifespan reuse the server just started instead of starting another.
    settings = dataclasses.replace(settings, database_url=dsn)
    log.info("serving on %s:%d (database %s)", settings.host, settings.port, describe(dsn))
    # Everything loaded so far lives for the whole process: keep it out of every collection,
    # and collect less often (requests waiting on their audit commit hold many short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=LimitedHttpToolsProtocol,  # httptools with a cap on the request head (431 past 64 KiB)
        interface="asgi3",  # said, not guessed: the middlewares hand back coroutines rather than being ones
        ws="none",  # no WebSockets here: Upgrade/CONNECT get the app's ordinary HTTP answer
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


async def run_admin(settings: Settings, args: argparse.Namespace) -> int:

    dsn = await prepare(settings)
    conn = await asyncpg.connect(dsn, timeout=settings.connect_timeout, command_timeout=settings.command_timeout)
    await init_connection(conn)  # the pool's codecs: jsonb as Python objects, for the audit row
    try:
        await _audited(conn, settings, args)
    finally:
        await conn.close()
    return 0


async def _audited(conn, settings: Settings, args: argparse.Namespace) -> None:
    """Run the command with its audit row: in the change's own transaction, or beside a refusal."""
    try:
        if command_of(args) in CHANGES_DATA:
            async with conn.transaction():
                await _dispatch(conn, settings, args)
                await insert_rows(conn, [cli_row(args, "ok")])
            return
        await _dispatch(conn, settings, args)
    except admin.AdminError as exc:
        try:  # a refused command changed nothing; its row is kept when it can be
            await insert_rows(conn, [cli_row(args, "refused", str(exc))])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as failure:
            log.warning("the refused command's audit row was not written: %s", type(failure).__name__)
        raise
    await insert_rows(conn, [cli_row(args, "ok")])


async def _dispatch(conn, settings: Settings, args: argparse.Namespace) -> None:
    key = (args.command, getattr(args, "action", None))
    if key == ("institution", "add"):
        await admin.institution_add(conn, args.slug, args.name, args.tier, args.hourly_limit)
    elif key == ("institution", "list"):
        await admin.institution_list(conn)
    elif key == ("institution", "disable"):
        await admin.institution_disable(conn, args.slug)
    elif key == ("token", "issue"):
        await admin.token_issue(conn, args.slug, args.label)
    elif key == ("token", "list"):
        await admin.token_list(conn, args.slug)
    elif key == ("token", "revoke"):
        await admin.token_revoke(conn, args.prefix, settings)
    elif key == ("purge", None):
        await admin.purge(conn, settings, args.audit_days, args.window_days)
    elif key == ("audit", "verify"):
        await admin.audit_verify(conn, args.anchor)
