"""A request that changes data commits its data and its audit row in one transaction, or neither.

    async with borrow(request) as conn, audited_write(request, conn) as audit:
        ...write through db functions...
        response = answer(...)
        audit.answer_with(response)
    return response

The row (the response's status and size) is the transaction's last statement, so the audit
chain's lock is held only for the moment before COMMIT, and the request's deadline is stopped just
before COMMIT is sent: once data and row are committed, the client gets that response. If the
connection dies during COMMIT, the row is looked up on another connection: found, the write
happened and the response stands; not found, nothing happened and the error stands.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from db.audit import insert_rows
from db.pool import UNAVAILABLE_ERRORS
from workers.audit_writer import LOOKUP_TIMEOUT, LOOKUP_WINDOW
from workers.commit_lookup import committed_within

log = logging.getLogger(__name__)


class AuditedWrite:
    def __init__(self) -> None:
        self.response: Response | None = None

    def answer_with(self, response: Response) -> None:
        """The response this write will be answered with; its row is committed with the data."""
        self.response = response


@contextlib.asynccontextmanager
async def audited_write(request: Request, conn: asyncpg.Connection) -> AsyncIterator[AuditedWrite]:
    exchange = request.scope["audit_exchange"]
    write = AuditedWrite()
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield write
        if write.response is None:
            raise RuntimeError("an audited write must say its response (answer_with) before it ends")
        row = exchange.row(write.response.status_code, len(write.response.body))
        await insert_rows(conn, [row])
    except BaseException:
        with contextlib.suppress(*UNAVAILABLE_ERRORS, asyncpg.InterfaceError, asyncpg.PostgresError):
            await transaction.rollback()
        raise
    exchange.stop_deadline()  # from COMMIT on, the outcome is the database's, not the clock's
    try:
        await transaction.commit()
    except UNAVAILABLE_ERRORS:
        if not await _was_committed(request, row):
            raise
        log.warning("commit acknowledgement lost, but the write and its row are there: answering it")
    exchange.audited_by_write(write.response.status_code)


async def _was_committed(request: Request, row) -> bool:
    state = request.state
    found = await committed_within(
        state.pool,
        [(row.trace_id, row.occurred_at)],
        window=LOOKUP_WINDOW,
        attempt_timeout=LOOKUP_TIMEOUT,
        acquire_timeout=state.settings.acquire_timeout,
    )
    if found is None:
        log.error("AUDIT_COMMIT_UNKNOWN: a write's COMMIT got no answer and its row could not be looked up")
    return bool(found)
