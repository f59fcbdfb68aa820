"""`python -m tests.job_worker`: `python app.py worker`'s runner, with the test job types, for the tests
that kill a worker process (settings from the environment, like the real command)."""

from __future__ import annotations

import asyncio
import sys

from cli.worker import run_worker
from core import logs
from core.config import Settings
from tests.job_kinds import TYPES

if __name__ == "__main__":
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    sys.exit(asyncio.run(run_worker(settings, TYPES)))
