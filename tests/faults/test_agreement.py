"""Across a cut of every database connection under load: each audit row says what its client got,
no row is written twice, and nothing is stored without its row (nor when its client got a 503)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx

CLIENT_TIMEOUT = 30.0
SETTLE_SECONDS = 20.0  # rows the database could not take are retried with back-off


def _client_loop(base_url: str, headers: dict, collection: str, stop: threading.Event, worker: int) -> list[dict]:
    sent = []
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        n = 0
        while not stop.is_set():
            n += 1
            trace = f"agree-{worker}-{n}-{uuid.uuid4().hex[:8]}"
            vector_id = trace if n % 2 else None
            try:
                if vector_id:
                    response = client.post(
                        f"/api/v1/collections/{collection}/vectors",
                        headers={**headers, "X-Request-ID": trace},
                        json={"items": [{"id": vector_id, "vector": [1.0, n]}]},
                    )
                else:
                    response = client.get("/api/v1/usage", headers={**headers, "X-Request-ID": trace})
                status = response.status_code
            except httpx.HTTPError:
                status = None  # no answer: the outcome is unknown to the client
            sent.append({"trace": trace, "status": status, "vector_id": vector_id})
    return sent


async def _rows_and_vectors(direct_url: str, traces: list[str], collection: str):
    conn = await asyncpg.connect(direct_url)
    try:
        rows = await conn.fetch(
            "SELECT trace_id, (metadata->>'status_code')::int AS status FROM audit_logs"
            " WHERE trace_id = ANY($1::text[])",
            traces,
        )
        stored = await conn.fetch(
            "SELECT v.id FROM vectors v JOIN collections c ON c.id = v.collection_id WHERE c.name = $1", collection
        )
    finally:
        await conn.close()
    return rows, {r["id"] for r in stored}


async def test_rows_agree_with_answers_and_nothing_is_stored_unaudited_across_a_cut(proxied_database):
    proxy = proxied_database.proxy
    headers = proxied_database.issue_token()
    collection = f"agree-{uuid.uuid4().hex[:8]}"
    with proxied_database.serve() as service:
        with httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT) as client:
            created = client.post(
                "/api/v1/collections", headers=headers, json={"name": collection, "dimensions": 2, "metric": "l2"}
            )
            assert created.status_code == 201, created.text
        stop = threading.Event()
        try:
            with ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(_client_loop, service.base_url, headers, collection, stop, w) for w in range(4)]
                time.sleep(1.0)
                proxy.cut()
                time.sleep(1.5)
                proxy.restore()
                time.sleep(1.5)
                stop.set()
                sent = [item for f in futures for item in f.result(timeout=3 * CLIENT_TIMEOUT)]
        finally:
            stop.set()
            proxy.restore()
        assert any(s["status"] == 503 for s in sent), "the cut went unnoticed"
        assert any(s["status"] == 200 for s in sent)
        by_trace = {s["trace"]: s for s in sent}
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:  # until every answered 503 has its (retried) row, or the settle time is up
            rows, stored = await _rows_and_vectors(proxied_database.direct_url, list(by_trace), collection)
            have = {r["trace_id"] for r in rows}
            if all(s["trace"] in have for s in sent if s["status"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "Traceback" not in service.log()

    statuses: dict[str, list[int]] = {}
    for row in rows:
        statuses.setdefault(row["trace_id"], []).append(row["status"])
    duplicates = {t: s for t, s in statuses.items() if len(s) > 1}
    assert not duplicates, duplicates
    disagree = {
        t: (by_trace[t]["status"], s[0])
        for t, s in statuses.items()
        if by_trace[t]["status"] is not None and by_trace[t]["status"] != s[0]
    }
    assert not disagree, disagree
    assert all(s["trace"] in statuses for s in sent if s["status"] == 200), "a 200 without its row"
    for s in sent:
        if s["vector_id"] is None or s["status"] is None:
            continue
        assert (s["vector_id"] in stored) == (s["status"] == 200), s
    unaudited = [v for v in stored if statuses.get(v, [None])[0] != 200]
    assert not unaudited, f"stored without a 200 row: {unaudited}"
