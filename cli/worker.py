"""`python app.py worker`: a job runner alone, with its own pool, until SIGTERM or SIGINT; on either it
stops claiming, kills its running children and gives their jobs back to the queue."""

from __future__ import annotations

import asyncio
import logging
import signal

from cli.startup import describe, prepare
from core.config import Settings
from db.pool import close, create_pool
from workers.job_runner import JobRunner
from workers.job_types import JobType

log = logging.getLogger("don")


async def run_worker(settings: Settings, types: dict[str, JobType]) -> int:
    dsn = await prepare(settings)
    pool = await create_pool(dsn, **settings.pool_options())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = JobRunner(pool, types, **settings.runner_options())
    runner.start()
    log.info(
        "job worker %s: running %s, up to %d at once (database %s)",
        runner.worker,
        ", ".join(sorted(types)) or "no job types",
        settings.job_concurrency,
        describe(dsn),
    )
    try:
        await stop.wait()
        log.info("job worker %s: stopping", runner.worker)
    finally:
        await runner.close()
        await close(pool)
    return 0
