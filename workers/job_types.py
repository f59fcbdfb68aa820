"""What a job type is: a pure child-side function run in its own process, and a parent-side finish
that stores its output in the database (the product's types: api/job_registry.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from db.jobs import ClaimedJob


class JobFailed(Exception):
    """A job's own, expected failure (bad input, nothing to build): its message is shown to the caller
    as the job's error, so it must be plain words, never a traceback or a secret."""


@dataclass(frozen=True)
class JobOutput:
    """What the child left: the small JSON-able value it returned, and the directory it wrote files to."""

    value: dict[str, Any]
    directory: Path
    peak_rss_bytes: int | None = None


# finish(conn, job, output) -> the job's result (a JSON object). It runs inside the runner's
# transaction, which also ends the job and writes its audit row; it raises JobFailed to fail it.
Finish = Callable[[asyncpg.Connection, ClaimedJob, JobOutput], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class JobType:
    """`child` is "package.module:function", imported in a spawned process and called as
    function(input_path | None, params, output_dir, progress) -> dict, where progress(fraction)
    reports 0..1; it must be pure (no database, no network): its inputs are the file and params."""

    name: str
    child: str
    finish: Finish
