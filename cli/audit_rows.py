"""The audit row of an admin command: action `cli:<command>`, who ran it, what it was asked, how it ended.

A command that changes data (institutions, tokens) commits its row in the same transaction as the
change, so nothing changes unaudited; a refused or read-only command leaves a row of its own.
Never a token: `token issue` is recorded by the institution it was issued for.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import uuid
from datetime import UTC, datetime

from core.tokens import redact
from db.audit import AuditRow

CHANGES_DATA = frozenset({("institution", "add"), ("institution", "disable"), ("token", "issue"), ("token", "revoke")})
RECORDED_ARGUMENTS = ("slug", "name", "tier", "hourly_limit", "label", "prefix", "audit_days", "window_days", "anchor")


def command_of(args: argparse.Namespace) -> tuple[str, str | None]:
    return args.command, getattr(args, "action", None)


def cli_row(args: argparse.Namespace, outcome: str, detail: str | None = None) -> AuditRow:
    command = " ".join(part for part in command_of(args) if part)
    arguments = {name: getattr(args, name) for name in RECORDED_ARGUMENTS if getattr(args, name, None) is not None}
    return AuditRow(
        occurred_at=datetime.now(UTC),
        institution=getattr(args, "slug", None) or "admin",
        action=f"cli:{command}",
        trace_id=f"cli-{uuid.uuid4().hex}",
        resource_type="cli_command",
        resource_id=getattr(args, "slug", None) or getattr(args, "prefix", None),
        ip_address=None,
        user_agent=redact(f"python app.py ({_who()})")[:512],
        metadata={
            "command": command,
            "arguments": arguments,
            "outcome": outcome,
            **({"detail": redact(detail)[:1000]} if detail else {}),
        },
    )


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
