"""Group commit of audit rows: concurrent requests share one INSERT round trip; each waits for its own row."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from db.audit import AuditRow, AuditWriteFailed, insert_rows
from db.pool import UNAVAILABLE_ERRORS, lend

log = logging.getLogger(__name__)


class AuditWriter:
    """Group commit: every caller waits until its own row is committed; rows that arrive while
    a batch is being written go together in the next batch, so the database sees one round
    trip per batch instead of one per request."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float, batch_max: int = 500):
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._batch_max = batch_max
        self._queue: list[tuple[AuditRow, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self.rows_written = 0
        self.failures = 0

    async def write(self, row: AuditRow) -> None:
        """Return once `row` is committed; raise if it could not be written."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # A cancelled request (client gone, shutdown) cancels only this wait: its row stays in
        # the queue and is written all the same.
        await future

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._batch_max], self._queue[self._batch_max :]
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[tuple[AuditRow, asyncio.Future]]) -> None:
        try:
            async with lend(self._pool, self._acquire_timeout) as conn:
                await insert_rows(conn, [row for row, _ in batch])
        except UNAVAILABLE_ERRORS as exc:
            self._fail(batch, exc)
        except (asyncpg.PostgresError, ValueError, TypeError) as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            # One bad row must not cost its neighbours their rows: write them one by one.
            for item in batch:
                await self._write_batch([item])
        else:
            self.rows_written += len(batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _fail(self, batch: list[tuple[AuditRow, asyncio.Future]], exc: Exception) -> None:
        self.failures += len(batch)
        log.error("AUDIT_WRITE_FAILED rows=%d error=%s: %s", len(batch), type(exc).__name__, exc)
        for _, future in batch:
            if not future.done():
                future.set_exception(AuditWriteFailed(f"{type(exc).__name__}: {exc}"))

    async def drain(self) -> None:
        """Wait until every queued row is written (called at shutdown before the pool closes)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
