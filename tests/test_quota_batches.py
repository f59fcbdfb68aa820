"""The batched quota (workers/quota_batcher.py): exact across service processes, and a batch that
admits some requests and refuses others answers each in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
from asgi_lifespan import LifespanManager

from core import tokens
from tests.conftest import TEST_CLIENT, make_institution
from tests.live_service import serving
from tests.pg import issue_token
from workers.quota_batcher import QuotaBatcher


def _hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def test_two_service_processes_admit_exactly_the_limit(database_url, pool):
    limit, attempts = 40, 150
    with contextlib.ExitStack() as stack:
        services = [stack.enter_context(serving(database_url, LOG_LEVEL="WARNING", DB_POOL_MAX="4")) for _ in range(2)]
        async with contextlib.AsyncExitStack() as clients:
            http = [await clients.enter_async_context(httpx.AsyncClient(base_url=s.base_url)) for s in services]
            for _ in range(2):  # a run that straddles the top of the hour is repeated once
                hour = _hour()
                token = issue_token(database_url, limit, "quota")
                headers = {"Authorization": f"Bearer {token}"}
                responses = await asyncio.gather(
                    *(http[i % 2].get("/api/v1/usage", headers=headers, timeout=30) for i in range(attempts))
                )
                if _hour() == hour:
                    break
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == limit and statuses.count(429) == attempts - limit
    hits = await pool.fetchval(
        "SELECT w.hits FROM rate_limit_windows w JOIN api_tokens t USING (institution_id)"
        " WHERE t.token_sha256 = $1 AND w.window_start = $2",
        tokens.digest(token),
        hour,
    )
    assert hits == limit
    # Every admitted request saw a different count: the remaining values are exactly limit-1 .. 0.
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(limit))


async def test_one_batch_admits_in_arrival_order_and_refuses_the_rest(settings, pool):
    from app import create_app

    states = []

    def capture(inner):
        async def app(scope, receive, send):
            states.append(scope.get("state"))
            await inner(scope, receive, send)

        return app

    inst = await make_institution(pool, hourly_limit=5)
    async with LifespanManager(capture(create_app(settings)), startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(2):  # a run that straddles the top of the hour is repeated once
                hour = _hour()
                await pool.execute("DELETE FROM rate_limit_windows WHERE institution_id = $1", inst.id)
                first = await client.get("/api/v1/usage", headers=inst.headers)  # opens the window: used 1
                batcher: QuotaBatcher = states[-1]["quota_batcher"]
                async with pool.acquire() as blocker, blocker.transaction():
                    # Hold the counter row: the next request's batch waits on it, and the six after it
                    # queue up behind, one by one, into the following batch.
                    await blocker.execute(
                        "SELECT hits FROM rate_limit_windows WHERE institution_id = $1 FOR UPDATE", inst.id
                    )
                    stuck = asyncio.create_task(client.get("/api/v1/usage", headers=inst.headers))
                    await _until(lambda b=batcher: b.queued == 0 and b.in_flight)
                    batches_before = batcher.batches
                    queued = []
                    for n in range(1, 7):
                        queued.append(asyncio.create_task(client.get("/api/v1/usage", headers=inst.headers)))
                        await _until(lambda n=n, b=batcher: b.queued == n)
                responses = [await stuck, *[await task for task in queued]]
                if _hour() == hour:
                    break
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining"] == "4"
    assert batcher.batches == batches_before + 2  # the stuck one, then the six together
    # Used 2 by the stuck request; the batch of six has 3 left: the first three in, the rest refused.
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 429, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["3", "2", "1", "0", "0", "0", "0"]
    for response in responses:
        assert response.headers["x-ratelimit-limit"] == "5"
        assert response.headers["ratelimit-policy"] == '"hourly";q=5;w=3600'
        assert response.headers["ratelimit"].startswith(f'"hourly";r={response.headers["x-ratelimit-remaining"]};t=')
    assert [r.json()["used"] for r in responses[:4]] == [2, 3, 4, 5]
    for refused in responses[4:]:
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert await pool.fetchval("SELECT hits FROM rate_limit_windows WHERE institution_id = $1", inst.id) == 5


async def _until(condition, limit: float = 10.0) -> None:
    """Wait for the batcher to reach a state (bounded: a hang fails the test instead of blocking it)."""
    async with asyncio.timeout(limit):
        while not condition():
            await asyncio.sleep(0.002)


async def test_a_batch_of_two_institutions_counts_each_against_its_own_window(pool):
    a = await make_institution(pool, hourly_limit=3)
    b = await make_institution(pool, hourly_limit=2)
    batcher = QuotaBatcher(pool, acquire_timeout=2.0)
    for _ in range(2):  # a run that straddles the top of the hour is repeated once
        hour = _hour()
        await pool.execute("DELETE FROM rate_limit_windows WHERE institution_id = ANY($1)", [a.id, b.id])
        assert (await batcher.admit(a.id, 3)).used == 1  # opens a's window
        async with pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("SELECT hits FROM rate_limit_windows WHERE institution_id = $1 FOR UPDATE", a.id)
            stuck = asyncio.create_task(batcher.admit(a.id, 3))
            await _until(lambda: batcher.queued == 0 and batcher.in_flight)
            # Interleaved arrivals of both institutions: one batch, b's window opened by it.
            mixed = [asyncio.create_task(batcher.admit(inst.id, inst.hourly_limit)) for inst in (a, b, a, b, b, a)]
            await _until(lambda: batcher.queued == 6)
        answers = [await stuck, *[await task for task in mixed]]
        if _hour() == hour:
            break
    assert [(x.admitted, x.used) for x in answers] == [
        (True, 2),  # a, the stuck batch
        (True, 3),  # a: its last one
        (True, 1),  # b
        (False, 3),  # a: over
        (True, 2),  # b: its last one
        (False, 2),  # b: over
        (False, 3),  # a: over
    ]
    rows = await pool.fetch(
        "SELECT institution_id, hits FROM rate_limit_windows WHERE institution_id = ANY($1)", [a.id, b.id]
    )
    assert {r["institution_id"]: r["hits"] for r in rows} == {a.id: 3, b.id: 2}
