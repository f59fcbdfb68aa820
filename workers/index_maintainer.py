"""The background work on HNSW indexes: build the ones searches ask for, calibrate them, adopt
them, and drop stale ones, one at a time, with the DDL in db/hnsw.py.

One IndexMaintainer per app (per pool); its work runs in a single task that exists only while
there is work. Across processes, a session advisory lock serialises all index DDL (two concurrent
builds on one table would queue on its lock anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from db import collections, hnsw, sql, vector_search
from db.pool import UNAVAILABLE_ERRORS, lend

TRY_LOCK = sql.statement("try_index_maintenance_lock")
RELEASE_LOCK = sql.statement("release_index_maintenance_lock")
MAINTENANCE_LOCK_KEY = 0x444F4E_484E5357  # "DON" "HNSW": one advisory lock for all index DDL
RETRY_SECONDS = 30.0  # a build that could not start (lock taken, database busy) is retried this late
TASK_NAME = "hnsw-index-maintenance"  # the background task's name (tests wait for it by name)
log = logging.getLogger(__name__)


async def build_and_adopt(conn: asyncpg.Connection, collection_id: int) -> tuple[int, int | None, float] | None:
    """Build an index over the collection's rows so far, calibrate it and make it the collection's;
    returns (seq, ef_search, recall), or None if the collection is gone or empty. The caller holds
    the maintenance lock (tests may call it directly)."""
    current = await collections.get_by_id(conn, collection_id)
    if current is None:
        return None
    seq = await hnsw.build(conn, collection_id)
    if seq is None:
        return None
    ef_search, recall = await vector_search.calibrate(conn, current, seq)
    await hnsw.adopt(conn, collection_id, seq, ef_search, recall)
    return seq, ef_search, recall


class IndexMaintainer:
    """Builds, calibrates and adopts wanted HNSW indexes and drops stale ones, in the background.

    If another process holds the lock, the job is dropped and a later search asks again after
    RETRY_SECONDS."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float):
        self.pool = pool
        self._acquire_timeout = acquire_timeout
        self._wanted: set[int] = set()
        self._sweep = False
        self._last_try: dict[int, float] = {}
        self._task: asyncio.Task | None = None
        self.building: int | None = None
        self.failures = 0

    def want_index(self, collection_id: int) -> None:
        """Ask for a (new) index on the collection; cheap and idempotent, so searches call it freely.
        The maintainer re-checks hnsw.wants_index against the database before building."""
        if collection_id in self._wanted or collection_id == self.building:
            return
        if time.monotonic() - self._last_try.get(collection_id, -RETRY_SECONDS) < RETRY_SECONDS:
            return
        self._wanted.add(collection_id)
        self._start()

    def forget(self, collection_id: int) -> None:
        """A collection was deleted: drop its index (if any) in the background."""
        self._wanted.discard(collection_id)
        self._sweep = True
        self._start()

    def is_building(self, collection_id: int) -> bool:
        return collection_id == self.building or collection_id in self._wanted

    async def close(self) -> None:
        """Cancel a running build (it leaves an invalid index that the next sweep drops)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=TASK_NAME)

    async def _run(self) -> None:
        while self._wanted or self._sweep:
            try:
                async with lend(self.pool, self._acquire_timeout) as conn:
                    if not await sql.fetchval(conn, TRY_LOCK, MAINTENANCE_LOCK_KEY):
                        log.info("index maintenance: another session holds the lock; will retry")
                        self._give_up_for_now()
                        return
                    try:
                        await self._work(conn)
                    finally:
                        await sql.fetchval(conn, RELEASE_LOCK, MAINTENANCE_LOCK_KEY)
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                self.failures += 1
                log.error("INDEX_MAINTENANCE_FAILED %s: %s", type(exc).__name__, exc)
                self._give_up_for_now()
                return

    async def _work(self, conn: asyncpg.Connection) -> None:
        self._sweep = True
        while self._wanted or self._sweep:
            if self._sweep:
                self._sweep = False
                dropped = await hnsw.drop_stale(conn)
                if dropped:
                    log.info("dropped stale HNSW indexes (collection, seq): %s", dropped)
            if not self._wanted:
                break
            collection_id = self._wanted.pop()
            self._last_try[collection_id] = time.monotonic()
            self.building = collection_id  # from here on, so is_building() has no gap
            started = time.perf_counter()
            try:
                current = await collections.get_by_id(conn, collection_id)
                if current is None or not hnsw.wants_index(current):
                    continue  # deleted, or another process has built it meanwhile
                built = await build_and_adopt(conn, collection_id)
            finally:
                self.building = None
            if built is None:
                continue
            seq, ef_search, recall = built
            log.info(
                "built the HNSW index of collection %d up to seq %d in %.1fs: recall@10 %.3f at ef_search %s%s",
                collection_id,
                seq,
                time.perf_counter() - started,
                recall,
                ef_search,
                "" if ef_search else " (below target: searched exactly)",
            )
            self._sweep = True  # the index it replaces, if any

    def _give_up_for_now(self) -> None:
        now = time.monotonic()
        for collection_id in self._wanted:
            self._last_try[collection_id] = now
        self._wanted.clear()
        if len(self._last_try) > 10_000:  # forget old attempts, so the dict stays small
            self._last_try = {k: t for k, t in self._last_try.items() if now - t < RETRY_SECONDS}
