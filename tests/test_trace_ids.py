"""Minted trace ids (api/trace.py): 32 hex digits, the time in milliseconds first, so audit rows of
later requests land at the right edge of the trace id index."""

from __future__ import annotations

import re
import time

from api.trace import mint, trace_id_from
from tests.conftest import audit_rows
from tests.test_audit_middleware import audited

__all__ = ["audited"]  # the fixture, used by name


def test_a_minted_id_is_32_hex_digits_that_start_with_the_time_in_milliseconds():
    before_ms = time.time_ns() // 1_000_000
    minted = mint()
    after_ms = time.time_ns() // 1_000_000
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert before_ms <= int(minted[:12], 16) <= after_ms


def test_ids_minted_a_millisecond_apart_sort_in_that_order_and_never_repeat():
    earlier = [mint() for _ in range(1000)]
    time.sleep(0.002)
    later = mint()
    assert all(id_ < later for id_ in earlier)
    assert len(set(earlier)) == len(earlier)


def test_a_request_without_a_usable_x_request_id_gets_a_minted_one():
    assert trace_id_from([(b"x-request-id", b"keep-me.1")]) == "keep-me.1"
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id_from([(b"x-request-id", b"not safe!")]))
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id_from([]))


async def test_a_request_without_an_id_answers_with_a_minted_one_and_its_row_carries_it(audited, pool):
    before_ms = time.time_ns() // 1_000_000
    response = await audited.get("/api/v1/health/live")
    minted = response.headers["x-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted) and int(minted[:12], 16) >= before_ms
    assert len(await audit_rows(pool, minted, wait=5)) == 1
