"""Admin commands (institutions, tokens, retention, the audit chain), run from `python app.py`, never over HTTP."""

from __future__ import annotations

import re
import sys

import asyncpg

from core import tokens
from core.config import Settings
from db import audit_chain, institutions, retention

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
TIERS = ("academic", "nonprofit", "commercial", "internal")
PURGE_BATCH = 5000


class AdminError(RuntimeError):
    """A command cannot do what was asked; the message is the one line the operator sees."""


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


async def _institution(conn: asyncpg.Connection, slug: str):
    row = await institutions.find_institution(conn, slug)
    if row is None:
        raise AdminError(f"no institution {slug!r} (see: python app.py institution list)")
    return row


async def institution_add(conn, slug: str, name: str, tier: str, hourly_limit: int) -> None:
    if not SLUG.fullmatch(slug):
        raise AdminError(f"slug {slug!r} must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
    if not name.strip() or len(name) > 200:
        raise AdminError("--name must be 1 to 200 characters")
    try:
        row = await institutions.add_institution(conn, slug, name.strip(), tier, hourly_limit)
    except asyncpg.UniqueViolationError:
        raise AdminError(f"institution {slug!r} already exists") from None
    print(
        f"added institution {row['slug']} ({row['display_name']}, tier {row['tier']}, "
        f"{row['hourly_limit']} requests/hour)"
    )


async def institution_list(conn) -> None:
    rows = await institutions.list_institutions(conn)
    print(f"{'SLUG':<24} {'TIER':<11} {'LIMIT/H':>8} {'TOKENS':>6}  {'CREATED':<20} {'DISABLED':<20} NAME")
    for r in rows:
        print(
            f"{r['slug']:<24} {r['tier']:<11} {r['hourly_limit']:>8} {r['live_tokens']:>6}  "
            f"{_when(r['created_at']):<20} {_when(r['disabled_at']):<20} {r['display_name']}"
        )


async def institution_disable(conn, slug: str) -> None:
    row = await institutions.disable_institution(conn, slug)
    if row is None:
        raise AdminError(f"no institution {slug!r} (see: python app.py institution list)")
    print(f"disabled institution {slug} (since {_when(row['disabled_at'])}); its tokens now get 403", file=sys.stderr)


async def token_issue(conn, slug: str, label: str) -> None:
    institution = await _institution(conn, slug)
    if institution["disabled_at"] is not None:
        raise AdminError(f"institution {slug!r} is disabled; its tokens would be refused")
    if len(label) > 200:
        raise AdminError("--label must be at most 200 characters")
    issued = tokens.issue()
    await institutions.add_token(conn, institution["id"], label, issued.public_prefix, issued.sha256)
    print(issued.plaintext)  # stdout holds the token alone; it is never shown again
    print(f"issued token {issued.public_prefix}… for {slug}; store it now, it cannot be shown again", file=sys.stderr)


async def token_list(conn, slug: str) -> None:
    institution = await _institution(conn, slug)
    rows = await institutions.list_tokens(conn, institution["id"])
    print(f"{'PREFIX':<16} {'CREATED':<20} {'LAST USED':<20} {'REVOKED':<20} LABEL")
    for r in rows:
        print(
            f"{r['prefix']:<16} {_when(r['created_at']):<20} {_when(r['last_used_at']):<20} "
            f"{_when(r['revoked_at']):<20} {r['label']}"
        )


async def token_revoke(conn, prefix: str, settings: Settings) -> None:
    row = await institutions.revoke_token(conn, prefix)
    if row is None:
        raise AdminError(f"no token with prefix {prefix!r} (see: python app.py token list SLUG)")
    print(
        f"revoked token {prefix} at {_when(row['revoked_at'])}; every instance refuses it within "
        f"{settings.token_cache_seconds:g}s",
        file=sys.stderr,
    )


async def purge(conn, settings: Settings, audit_days: int | None, window_days: int | None) -> None:
    plan = (
        ("audit_logs", audit_days or settings.audit_retention_days),
        ("rate_limit_windows", window_days or settings.rate_window_retention_days),
    )
    for table, days in plan:
        total = 0
        while True:
            deleted = await retention.purge_batch(conn, table, days, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                break
        print(f"purged {total} row(s) older than {days} days from {table}")


async def audit_verify(conn, anchor: str | None) -> None:
    """Walk the audit chain; one line either way: the intact trail's head on stdout, or the first break."""
    try:
        expected = audit_chain.Anchor.parse(anchor) if anchor else None
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    report = await audit_chain.verify(conn, expected)
    if not report.intact:
        raise AdminError(f"audit trail broken: {report.problem}")
    span = f" (ids {report.first_id}-{report.head.id})" if report.rows else ""
    notes = []
    if report.checkpoint_id > report.chain_start_id:
        notes.append(f"purged through id {report.checkpoint_id}")
    if report.unchained:
        notes.append(f"{report.unchained} older row(s) predate the chain and are not covered")
    if expected:
        notes.append(f"anchor {expected.id} holds")
    print(f"audit trail intact: {report.rows} row(s) chained{span}; {'; '.join(notes + [f'head {report.head}'])}")
