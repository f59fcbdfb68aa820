"""Group commit of the hourly quota: concurrent requests share one counting statement per batch.

Requests that arrive while a batch is being counted go together in the next one, so one
institution's throughput is bounded by batches per commit, not by requests per commit on its
single counter row. The database arbitrates every batch on that row's lock, so the quota stays
exact however many instances count at once (sql/count_requests.sql).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.logs import trace_id_var
from db.pool import UNAVAILABLE_ERRORS, DatabaseUnavailable, lend, why_unavailable
from db.rate_limits import count_requests
from workers.timer_wheel import Deadline

log = logging.getLogger(__name__)
# The counting statement takes a millisecond or two (plus the row lock's queue): one that has not
# answered in this long is treated as lost, and its requests get 503 within their deadline.
STATEMENT_TIMEOUT = 2.0
BATCH_MAX = 1000  # requests per statement; the arrays are small, this only bounds one statement's work
# A batch runs again for an institution whose window another instance opened at the same moment
# (nothing was counted for it), or after a deadlock the database broke by aborting it (nothing was
# counted at all). Both need a race at the top of an hour; a few rounds settle it.
ROUNDS = 3


@dataclass(slots=True)
class Admission:
    """The quota's answer for one request: admitted or not, the window's count with this request
    (the limit when refused), and the window it was counted in."""

    admitted: bool
    used: int
    window_start: datetime


class QuotaUnknown(DatabaseUnavailable):
    """The counting statement was sent but its answer was lost: whether it counted is unknown."""


@dataclass(eq=False, slots=True)
class _Pending:
    institution_id: int
    limit: int
    future: asyncio.Future


class QuotaBatcher:
    """One counting statement in flight per process; everything that queues meanwhile is the next batch."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float, batch_max: int = BATCH_MAX, metrics=None):
        self._pool = pool
        self._metrics = metrics  # core.metrics.ServiceMetrics, or None
        self._acquire_timeout = acquire_timeout
        self._batch_max = batch_max
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task | None = None
        self._batch_ids = itertools.count(1)
        self.batches = 0  # statements that answered
        self.counted = 0  # requests they answered for (admitted or refused)

    @property
    def queued(self) -> int:
        """Requests waiting for the next batch."""
        return len(self._queue)

    @property
    def in_flight(self) -> bool:
        """A batch is being counted now."""
        return self._flusher is not None and not self._flusher.done()

    async def admit(self, institution_id: int, limit: int) -> Admission:
        """Count one request of `institution_id` against `limit`; raises DatabaseUnavailable (503)
        when the database could not answer, QuotaUnknown when its batch's outcome is unknown.

        The wait is bounded by the acquire and statement timeouts, and by the request's deadline
        (api/audit.py cancels the request when it passes)."""
        item = _Pending(institution_id, limit, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="quota-batcher")
        try:
            # No shield: each request has its own future, so cancelling it touches no other request,
            # and its batch skips an answer nobody waits for.
            return await item.future
        except asyncio.CancelledError:
            # The request gave up (its deadline, its client). Still queued: it is taken out, so it
            # is never counted. Already sent: its batch counts it or not; either way the client gets
            # the deadline's 503 and an over-count by one is the safe side of an exact quota.
            if item in self._queue:
                self._queue.remove(item)
            _retrieve(item.future)  # answered in the moment it gave up: the answer is not reported as unseen
            raise

    async def _flush_all(self) -> None:
        while self._queue:
            await self._count(self._take())

    def _take(self) -> dict[int, list[_Pending]]:
        """The next batch, by institution (arrival order is kept within each institution's list)."""
        batch, self._queue = self._queue[: self._batch_max], self._queue[self._batch_max :]
        # The task's own context: its log lines carry the batch's id, never a request's.
        trace_id_var.set(f"quota-batch-{next(self._batch_ids)}")
        groups: dict[int, list[_Pending]] = {}
        for item in batch:
            groups.setdefault(item.institution_id, []).append(item)
        return groups

    async def _count(self, groups: dict[int, list[_Pending]]) -> None:
        """Count `groups`, then each batch that queued meanwhile, on one connection: one acquire and one
        connection reset (a round trip) per burst of batches, not per batch."""
        try:
            async with lend(self._pool, self._acquire_timeout) as conn:
                while True:
                    for _ in range(ROUNDS):
                        if not groups:
                            break
                        groups = await self._count_round(conn, groups)
                    if groups:
                        raise DatabaseUnavailable("the quota window kept changing under concurrent instances")
                    if not self._queue:
                        return
                    groups = self._take()
        except UNAVAILABLE_ERRORS as exc:
            # No connection (nothing sent), a lost answer (QuotaUnknown), or a window that would not settle.
            _fail(groups, exc)
        except asyncpg.PostgresError as exc:
            # The database refused the statement: it rolled back, nothing was counted.
            log.error("QUOTA_COUNT_FAILED requests=%d: %s: %s", _size(groups), type(exc).__name__, exc)
            _fail(groups, DatabaseUnavailable("the quota could not be counted"))

    async def _count_round(
        self, conn: asyncpg.Connection, groups: dict[int, list[_Pending]]
    ) -> dict[int, list[_Pending]]:
        """Run the statement once; returns the institutions it did not count (to be run again)."""
        ids = list(groups)
        counts = [len(group) for group in groups.values()]
        # Requests of one institution normally share its limit; if a limit changed while tokens were
        # cached, the smallest applies to the batch: never more admitted than any of them allows.
        limits = [min(item.limit for item in group) for group in groups.values()]
        try:
            async with Deadline(asyncio.get_running_loop().time() + STATEMENT_TIMEOUT):
                rows = await count_requests(conn, ids, counts, limits)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            # Aborted by the database before committing: nothing of this round was counted.
            return groups
        except UNAVAILABLE_ERRORS as exc:
            # Sent, and no answer: the statement may have committed or not. There is no per-request
            # key to look up afterwards (the counter is one number), so guessing either way breaks a
            # promise: "not counted" and running it again could count these requests twice; "counted"
            # and admitting them would serve requests the quota may never have seen. So every request
            # of the batch gets 503: at worst they were counted and not served, which is the safe side.
            conn.terminate()  # mid-protocol after a cancel: not fit to go back to the pool
            log.error("QUOTA_COUNT_UNKNOWN requests=%d: %s after sending", sum(counts), type(exc).__name__)
            raise QuotaUnknown("the quota's answer was lost; try again shortly") from exc
        self.batches += 1
        if self._metrics is not None:
            self._metrics.observe_quota_batch(sum(counts))
        for row in rows:
            group = groups.pop(row["institution_id"])
            self.counted += len(group)
            _settle(group, row["before"], row["after"], row["window_start"])
        return groups

    async def close(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the batch in flight at shutdown, so no request is left without its answer."""
        if self._flusher is not None and not self._flusher.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout)
            except TimeoutError:
                log.warning("quota batch still in flight after %gs at shutdown", timeout)


def _settle(group: list[_Pending], before: int, after: int, window_start: datetime) -> None:
    """Hand the batch's admissions out in arrival order: the first `after - before` are admitted."""
    for k, item in enumerate(group):
        if k < after - before:
            answer = Admission(True, before + k + 1, window_start)
        else:
            answer = Admission(False, item.limit, window_start)
        if not item.future.done():
            item.future.set_result(answer)


def _fail(groups: dict[int, list[_Pending]], exc: BaseException) -> None:
    """Every request left in `groups` gets a 503-class error of its own (a shared instance would
    collect every waiter's traceback)."""
    if isinstance(exc, DatabaseUnavailable):
        kind, detail, cause = type(exc), str(exc), exc.cause  # e.g. acquire_timeout: /metrics counts it so
    else:
        kind, detail = DatabaseUnavailable, f"database unavailable: {why_unavailable(exc)}"
        cause = "statement_timeout" if isinstance(exc, TimeoutError) else "database_down"
    for group in groups.values():
        for item in group:
            if not item.future.done():
                item.future.set_exception(kind(detail, cause))


def _size(groups: dict[int, list[_Pending]]) -> int:
    return sum(len(group) for group in groups.values())


def _retrieve(future: asyncio.Future) -> None:
    """Mark an outcome as seen: a failure whose request already gave up is not reported as unretrieved."""
    if future.done() and not future.cancelled():
        future.exception()
