"""The coarse timers behind every request's deadline and audit wait (workers/timer_wheel.py)."""

from __future__ import annotations

import asyncio

import pytest

from workers import timer_wheel
from workers.timer_wheel import TICK, Deadline


async def test_late_never_fires_before_its_time_and_early_never_after_it():
    loop = asyncio.get_running_loop()
    fired: dict[str, float] = {}
    start = loop.time()
    timer_wheel.late(start + 0.05, lambda: fired.setdefault("late", loop.time()))
    timer_wheel.early(start + 0.05, lambda: fired.setdefault("early", loop.time()))
    await asyncio.sleep(0.05 + 3 * TICK)
    assert fired["late"] >= start + 0.05
    assert fired["early"] <= start + 0.05 + loop._clock_resolution + 0.002  # the loop's own timer slack


async def test_a_cancelled_entry_never_fires_and_its_neighbours_still_do():
    loop = asyncio.get_running_loop()
    fired = []
    when = loop.time() + 0.02
    entries = [timer_wheel.late(when, fired.append, n) for n in range(5)]
    entries[2].cancel()
    await asyncio.sleep(0.02 + 3 * TICK)
    assert sorted(fired) == [0, 1, 3, 4]


async def test_a_callback_may_cancel_another_of_its_tick():
    loop = asyncio.get_running_loop()
    fired, entries = [], {}
    when = loop.time() + 0.02

    def first():
        fired.append("a")
        entries["b"].cancel()

    entries["a"] = timer_wheel.late(when, first)
    entries["b"] = timer_wheel.late(when, fired.append, "b")
    await asyncio.sleep(0.02 + 3 * TICK)
    assert fired in (["a"], ["b", "a"])  # whichever ran first; "b" never after "a" cancelled it


async def test_a_failing_callback_costs_the_others_nothing():
    loop = asyncio.get_running_loop()
    fired, errors = [], []
    loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
    try:
        when = loop.time() + 0.02
        timer_wheel.late(when, lambda: 1 / 0)
        timer_wheel.late(when, fired.append, "ok")
        await asyncio.sleep(0.02 + 3 * TICK)
    finally:
        loop.set_exception_handler(None)
    assert fired == ["ok"] and isinstance(errors[0], ZeroDivisionError)


async def test_deadline_cancels_the_block_with_timeout_error_once_due():
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with Deadline(start + 0.05) as bound:
            await asyncio.sleep(5)
    assert bound.expired()
    assert 0.05 <= loop.time() - start < 1.0  # a generous bound: only a hang fails it


async def test_a_stopped_deadline_lets_the_block_run_on():
    loop = asyncio.get_running_loop()
    async with Deadline(loop.time() + 0.02) as bound:
        bound.stop()
        await asyncio.sleep(0.02 + 3 * TICK)
    assert not bound.expired()


async def test_a_deadline_does_not_swallow_an_outer_cancellation():
    loop = asyncio.get_running_loop()

    async def bounded():
        async with Deadline(loop.time() + 10):
            await asyncio.sleep(10)

    task = asyncio.create_task(bounded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
