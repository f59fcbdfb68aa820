"""A quota batch whose answer is lost after it was sent: its requests get 503, and it is never run again."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from db.pool import create_pool
from workers.quota_batcher import STATEMENT_TIMEOUT, QuotaBatcher, QuotaUnknown


async def test_a_lost_answer_is_a_503_and_counts_at_most_once(proxied_database):
    db = proxied_database
    direct = await asyncpg.connect(db.direct_url)
    pool = await create_pool(db.url, min_size=1, max_size=2, command_timeout=10, connect_timeout=5)
    try:
        slug = f"lost-{uuid.uuid4().hex[:8]}"
        institution_id = await direct.fetchval(
            "INSERT INTO institutions (slug, display_name, tier, hourly_limit) VALUES ($1, $1, 'academic', 10)"
            " RETURNING id",
            slug,
        )
        batcher = QuotaBatcher(pool, acquire_timeout=2.0)
        assert (await batcher.admit(institution_id, 10)).used == 1  # opens the window
        async with asyncio.timeout(10):  # its connection back in the pool, so the next batch needs no new one
            while batcher.in_flight:
                await asyncio.sleep(0.01)
        # Slower than the statement bound: the statement reaches the database after its sender gave up.
        db.proxy.delay(STATEMENT_TIMEOUT + 1.0)
        with pytest.raises(QuotaUnknown):
            await batcher.admit(institution_id, 10)
        db.proxy.restore()
        await asyncio.sleep(STATEMENT_TIMEOUT + 1.5)  # let the delayed statement land, if it does
        hits = await direct.fetchval("SELECT hits FROM rate_limit_windows WHERE institution_id = $1", institution_id)
        # Counted once (it committed after the 503: counted, not served) or not at all; never twice.
        assert hits in (1, 2)
        after = await batcher.admit(institution_id, 10)
        assert after.admitted and after.used == hits + 1
    finally:
        await pool.close()
        await direct.close()
