"""Coarse timers for the per-request bounds: one event-loop timer per TICK of due times, shared by every
bound that falls due in it, instead of one timer per request.

Each request has a deadline and an audit wait, and nearly all of them are cancelled long before they
fall due. An event-loop timer costs a heap entry made and cancelled (under uvloop a libuv timer too):
asyncio.timeout_at alone cost about 6 us a request, against 2 us for a Timeout driven from here. A
bound fires at most TICK after its due time (`late`), or at most TICK before it (`early`, for a wait
that promises "at most").
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable

TICK = 0.01  # seconds: the resolution of every bound set here

_WHEELS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel] = weakref.WeakKeyDictionary()


class Entry:
    """One scheduled call; cancel() is O(1) and drops it from its slot at once."""

    __slots__ = ("_slot", "_callback", "_args")

    def __init__(self, slot: set, callback: Callable, args: tuple) -> None:
        self._slot = slot
        self._callback = callback
        self._args = args

    def cancel(self) -> None:
        self._slot.discard(self)

    def _run(self) -> None:
        self._callback(*self._args)


class _Wheel:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, set[Entry]] = {}

    def schedule(self, slot: int, callback: Callable, args: tuple) -> Entry:
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = set()
            self._loop.call_at(slot * TICK, self._fire, slot)
        entry = Entry(entries, callback, args)
        entries.add(entry)
        return entry

    def _fire(self, slot: int) -> None:
        entries = self._slots.pop(slot, set())
        for entry in list(entries):
            if entry not in entries:
                continue  # cancelled by a callback that ran before it
            try:
                entry._run()
            except Exception as exc:  # one failing callback must not cost the others their calls
                self._loop.call_exception_handler({"message": "timer wheel callback failed", "exception": exc})


_last: _Wheel | None = None  # the wheel asked for last: a service has one loop, and a weak look-up costs a weakref


def _wheel() -> _Wheel:
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last._loop is loop:
        return _last
    wheel = _WHEELS.get(loop)
    if wheel is None:
        wheel = _WHEELS[loop] = _Wheel(loop)
    _last = wheel
    return wheel


def late(when: float, callback: Callable, *args) -> Entry:
    """Call `callback(*args)` at the first tick at or after loop time `when` (never before it)."""
    return _wheel().schedule(math.ceil(when / TICK), callback, args)


def early(when: float, callback: Callable, *args) -> Entry:
    """Call `callback(*args)` at the last tick at or before loop time `when`, or at the next tick if that
    has passed: for a wait bounded by "at most"."""
    loop_now = asyncio.get_running_loop().time()
    return _wheel().schedule(max(math.floor(when / TICK), math.ceil(loop_now / TICK)), callback, args)


class Deadline:
    """`async with Deadline(when) as bound:` is asyncio.timeout_at(when) on the wheel: the block is
    cancelled and TimeoutError raised once `when` has passed (by at most TICK). `bound.expired()` and
    `bound.stop()` (the block runs on unbounded) work as on asyncio.Timeout."""

    __slots__ = ("_when", "_timeout", "_entry")

    def __init__(self, when: float) -> None:
        self._when = when
        self._timeout = asyncio.Timeout(None)
        self._entry: Entry | None = None

    async def __aenter__(self) -> Deadline:
        await self._timeout.__aenter__()
        self._entry = late(self._when, self._expire)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool | None:
        self.stop()
        return await self._timeout.__aexit__(exc_type, exc, tb)

    def expired(self) -> bool:
        return self._timeout.expired()

    def stop(self) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    def _expire(self) -> None:
        self._entry = None
        self._timeout.reschedule(asyncio.get_running_loop().time())  # expires at the loop's next turn
