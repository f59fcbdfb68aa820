"""Group commit of audit rows: concurrent requests share one INSERT round trip; each waits for its own row.

Every outcome of a batch is known before a waiting request answers: committed, not written, or
(when the connection died after the INSERT was sent, so the commit may or may not have happened)
looked up by trace id and time on another connection. A request that cannot wait any longer for
its row either rewrites the row's status while it is still queued (the client gets that status, and
so does the row) or, once the row is in flight, learns the batch's outcome like everyone else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass

import asyncpg

from core.logs import trace_id_var
from core.metrics import ServiceMetrics
from db.audit import AuditRow, AuditWriteFailed, insert_rows
from db.audit_lookup import committed
from db.pool import UNAVAILABLE_ERRORS, lend
from workers import timer_wheel
from workers.commit_lookup import committed_within

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT = 1.0  # seconds for one look-up of an ambiguous batch on a fresh connection
LOOKUP_WINDOW = 6.0  # how long look-ups are retried: a database restart takes a second or two
# An audit INSERT takes milliseconds; one that has not answered in this long is treated as lost,
# so a request waiting on an in-flight row is answered within its deadline plus this and the lookup.
STATEMENT_TIMEOUT = 2.0
# A row the database could not take (it was down) is retried, with back-off, for about two minutes:
# it then says 503, the answer its client got. A retry first looks its row up, so none is written twice.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, *(8.0,) * 14)


@dataclass(eq=False, slots=True)
class _Pending:
    row: AuditRow
    future: asyncio.Future
    status_on_failure: int | None = 503  # what its client answers if it is not written (None: unchanged)
    attempt: int = 0


class AuditWriter:
    """Group commit: rows that arrive while a batch is being written go together in the next batch,
    so the database sees one round trip per batch instead of one per request."""

    def __init__(
        self, pool: asyncpg.Pool, acquire_timeout: float, batch_max: int = 500, metrics: ServiceMetrics | None = None
    ):
        self._pool = pool
        self._metrics = metrics
        self._acquire_timeout = acquire_timeout
        self._batch_max = batch_max
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task | None = None
        self._batches = itertools.count(1)
        self._retrying: dict[int, tuple[asyncio.TimerHandle, AuditRow, int]] = {}  # rows in their back-off
        self._retry_keys = itertools.count()
        self._sending: list[_Pending] = []  # the batch in flight
        self._stopping = False
        self.rows_written = 0
        self.failures = 0

    @property
    def queue_depth(self) -> int:
        """Rows waiting for a batch (rows waiting to be retried are not queued yet)."""
        return len(self._queue)

    async def write(self, row: AuditRow, timeout: float | None = None, status_if_late: int = 503) -> None:
        """Wait until `row` is committed; raise AuditWriteFailed if it was not.

        After `timeout` seconds a row still in the queue is rewritten to `status_if_late` and its
        caller no longer waits for it (the rewritten row is written later, when it can be): the
        caller must then answer with that status. A row already sent is waited for until its batch
        is resolved. A cancelled caller (client gone, shutdown) leaves its row to be written."""
        item = self._enqueue(row)
        # A coarse timer (workers/timer_wheel.py) settles a late row: nearly every one is cancelled unused,
        # and one event-loop timer per request cost more than the rest of this method. A cancelled caller
        # cancels only its own future; its row stays queued and is written all the same.
        late = None
        if timeout is not None:
            late = timer_wheel.late(asyncio.get_running_loop().time() + timeout, self._late, item, status_if_late)
        try:
            await item.future
        except asyncio.CancelledError:
            _retrieve(item.future)  # settled in the moment its caller left: not reported as unseen
            raise
        finally:
            if late is not None:
                late.cancel()

    def _late(self, item: _Pending, status_if_late: int) -> None:
        """The caller's wait is over: a row not sent yet will say `status_if_late`, and so will its
        caller's answer; a row in flight is waited for until its batch is resolved, unless it says that
        status already (every outcome of its batch then agrees with the answer)."""
        if item.future.done():
            return
        if item in self._queue:
            item.row = _with_status(item.row, status_if_late)
            item.future.set_exception(LateRow(item.row))
        elif item.row.metadata.get("status_code") == status_if_late:
            item.future.set_exception(LateRow(item.row))

    async def write_briefly(self, row: AuditRow, wait: float) -> None:
        """Queue `row` and wait at most `wait` seconds for its commit, whatever happens to it then (the
        health paths: they answer whatever the database does). Waiting the usual millisecond keeps a
        burst of probes in step with the group commit, as the other paths are."""
        item = self._enqueue(row, status_on_failure=None)
        stop = timer_wheel.early(asyncio.get_running_loop().time() + wait, _stop_waiting, item.future)
        try:
            await item.future
        except AuditWriteFailed:
            pass  # counted in self.failures and logged by the batch; a probe answers all the same
        except asyncio.CancelledError:
            _retrieve(item.future)
            raise
        finally:
            stop.cancel()

    def revise_queued(self, row: AuditRow, revised: AuditRow) -> bool:
        """Put `revised` in place of `row` if `row` still waits in the queue (not yet sent): its client
        left, and the row must say so. False once the row is in flight or written."""
        for item in self._queue:
            if item.row is row:
                item.row = revised
                return True
        return False

    def _enqueue(self, row: AuditRow, status_on_failure: int | None = 503, attempt: int = 0) -> _Pending:
        item = _Pending(row, asyncio.get_running_loop().create_future(), status_on_failure, attempt)
        if attempt:  # a retry has no caller waiting: its failure is counted, not reported as unretrieved
            item.future.add_done_callback(_retrieve)
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="audit-writer")
        return item

    async def _flush_all(self) -> None:
        while self._queue:
            await self._write_batches(self._take(), keep_going=True)

    def _take(self) -> list[_Pending]:
        batch, self._queue = self._queue[: self._batch_max], self._queue[self._batch_max :]
        self._sending = batch
        # The task's own context: its log lines carry the batch's id, never a request's.
        trace_id_var.set(f"audit-batch-{next(self._batches)}")
        return batch

    async def _write_batches(self, batch: list[_Pending], keep_going: bool = False) -> None:
        """Write `batch`; with `keep_going`, then each batch that queued meanwhile on the same connection
        while they commit: one acquire and one connection reset (a round trip) per burst, not per batch."""
        try:
            async with lend(self._pool, self._acquire_timeout) as conn:
                while await self._write_on(conn, batch) and keep_going and self._queue:
                    batch = self._take()
        except UNAVAILABLE_ERRORS as exc:
            self._fail(batch, exc, retry=True)  # never sent (no connection), or the ambiguity was resolved
        except (asyncpg.PostgresError, ValueError, TypeError) as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            # One bad row must not cost its neighbours their rows: write them one by one.
            for item in batch:
                await self._write_batches([item])
        except Exception as exc:
            # Anything else (a driver state nobody foresaw) must not end the writer with its rows'
            # requests left waiting for an outcome: they answer 503, and the rows are retried (a retry
            # looks its row up first, so one that did commit is not written twice).
            self._fail(batch, exc, retry=True)

    async def _write_on(self, conn: asyncpg.Connection, batch: list[_Pending]) -> bool:
        """One batch on `conn`: True once committed (or nothing was left to write), False when its
        outcome had to be looked up (the connection is not fit for another batch); raises otherwise."""
        batch[:] = await self._without_rows_already_there(conn, batch)  # in place: the caller fails what is left
        if not batch:
            return True
        try:
            async with timer_wheel.Deadline(asyncio.get_running_loop().time() + STATEMENT_TIMEOUT):
                sent = time.perf_counter()
                await insert_rows(conn, [item.row for item in batch])
                round_trip = time.perf_counter() - sent
        except UNAVAILABLE_ERRORS as exc:
            # Sent, but no answer came back: the commit may have happened. Find out.
            await self._resolve(batch, exc)
            return False
        # Committed (the statement is its own transaction): its requests answer now.
        self._succeed(batch)
        if self._metrics is not None:
            self._metrics.observe_audit_batch(len(batch), round_trip)
        return True

    async def _resolve(self, batch: list[_Pending], cause: BaseException) -> None:
        keys = [(item.row.trace_id, item.row.occurred_at) for item in batch]
        # The requests waiting on these rows wait meanwhile: answering now could contradict their rows.
        found = await committed_within(
            self._pool,
            keys,
            window=LOOKUP_WINDOW,
            attempt_timeout=LOOKUP_TIMEOUT,
            acquire_timeout=self._acquire_timeout,
        )
        if found is None:
            log.error(
                "AUDIT_COMMIT_UNKNOWN rows=%d: lost after sending (%s), and no look-up got through in %gs",
                len(batch),
                type(cause).__name__,
                LOOKUP_WINDOW,
            )
            self._fail(batch, cause, retry=True)  # the retry looks them up first
            return
        done = [item for item, key in zip(batch, keys, strict=True) if key in found]
        lost = [item for item, key in zip(batch, keys, strict=True) if key not in found]
        log.warning("audit batch resolved after a lost acknowledgement: %d committed, %d not", len(done), len(lost))
        self._succeed(done)
        if lost:
            self._fail(lost, cause, retry=True)

    def _succeed(self, batch: list[_Pending]) -> None:
        self.rows_written += len(batch)
        for item in batch:
            if not item.future.done():
                item.future.set_result(None)

    def _fail(self, batch: list[_Pending], exc: BaseException, retry: bool = False) -> None:
        self.failures += len(batch)
        log.error("AUDIT_WRITE_FAILED rows=%d error=%s: %s", len(batch), type(exc).__name__, exc)
        for item in batch:
            if not item.future.done():
                item.future.set_exception(AuditWriteFailed(f"{type(exc).__name__}: {exc}"))
            if retry and item.attempt < len(RETRY_DELAYS) and not self._stopping:
                row = item.row if item.status_on_failure is None else _with_status(item.row, item.status_on_failure)
                key = next(self._retry_keys)
                handle = asyncio.get_running_loop().call_later(RETRY_DELAYS[item.attempt], self._retry, key)
                self._retrying[key] = (handle, row, item.attempt + 1)
            elif retry:
                why = "the service is stopping" if self._stopping else f"after {item.attempt + 1} attempts"
                log.error("AUDIT_ROW_DROPPED trace=%s: not written (%s)", item.row.trace_id, why)

    def _retry(self, key: int) -> None:
        entry = self._retrying.pop(key, None)
        if entry is not None:
            _, row, attempt = entry
            self._enqueue(row, None, attempt)

    async def _without_rows_already_there(self, conn: asyncpg.Connection, batch: list[_Pending]) -> list[_Pending]:
        """Retried rows whose earlier attempt did commit after all are not written again."""
        retried = [item for item in batch if item.attempt]
        if not retried:
            return batch
        found = await committed(conn, [(item.row.trace_id, item.row.occurred_at) for item in retried])
        there = [item for item in retried if (item.row.trace_id, item.row.occurred_at) in found]
        self._succeed(there)
        return [item for item in batch if item not in there]

    async def drain(self) -> None:
        """Wait until every queued row is written (called at shutdown before the pool closes). Rows
        waiting out a retry's back-off get their last attempt now; what is not written then is
        logged row by row (AUDIT_ROW_DROPPED), never left behind unsaid."""
        self._stopping = True
        for key, (handle, _, _) in list(self._retrying.items()):
            handle.cancel()
            self._retry(key)
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    def abandon(self) -> int:
        """At shutdown, once the drain's time is up: log every row still unwritten; returns how many."""
        unsettled = [item for item in self._sending if not item.future.done()]
        left = [item.row for item in (*unsettled, *self._queue)] + [row for _, row, _ in self._retrying.values()]
        for row in left:
            log.error("AUDIT_ROW_DROPPED trace=%s: not written (the service stopped first)", row.trace_id)
        return len(left)


def _stop_waiting(future: asyncio.Future) -> None:
    """A health row's wait is over; its batch still writes it (and counts it if it fails)."""
    if not future.done():
        future.set_result(None)


def _retrieve(future: asyncio.Future) -> None:
    """Mark a row's outcome as seen: a failure nobody waits for is counted, not reported as unretrieved."""
    if future.done() and not future.cancelled():
        future.exception()


class LateRow(Exception):
    """The row could not be committed in time and now carries the status its caller must answer with."""

    def __init__(self, row: AuditRow):
        super().__init__(f"audit row rewritten to status {row.metadata.get('status_code')}")
        self.row = row


def _with_status(row: AuditRow, status: int) -> AuditRow:
    """The row saying `status`, the answer its client got instead (a deadline, or the audit trail down)."""
    return dataclasses.replace(row, metadata={**row.metadata, "status_code": status, "deadline_exceeded": True})
