"""GET /api/v1/audit: own rows only, newest first, filters, keyset pages, JSONL export, 422 on bad parameters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import make_institution


@pytest.fixture
async def busy(client, pool):
    """An institution that has made 7 requests (3 of them 404s), and a neighbour that made 2."""
    inst, other = await make_institution(pool), await make_institution(pool)
    tag = uuid.uuid4().hex[:8]
    for i in range(4):
        await client.get("/api/v1/usage", headers={**inst.headers, "X-Request-ID": f"{tag}-ok-{i}"})
    for i in range(3):
        await client.get("/api/v1/nothing-here", headers={**inst.headers, "X-Request-ID": f"{tag}-404-{i}"})
    for i in range(2):
        await client.get("/api/v1/usage", headers={**other.headers, "X-Request-ID": f"{tag}-other-{i}"})
    return inst, other, tag


async def test_an_institution_sees_only_its_own_rows_newest_first(client, busy):
    inst, other, tag = busy
    body = (await client.get("/api/v1/audit", headers=inst.headers)).json()
    items = body["items"]
    assert {item["institution"] for item in items} == {inst.slug}
    assert not any(item["trace_id"].startswith(f"{tag}-other") for item in items)
    assert [i["trace_id"] for i in items[:7]] == [f"{tag}-404-{i}" for i in (2, 1, 0)] + [
        f"{tag}-ok-{i}" for i in (3, 2, 1, 0)
    ]
    first = items[0]
    assert set(first) == {
        "id",
        "occurred_at",
        "institution",
        "action",
        "trace_id",
        "resource_type",
        "resource_id",
        "ip_address",
        "user_agent",
        "metadata",
    }
    # And the neighbour sees none of the first institution's rows, even by trace id.
    theirs = (await client.get(f"/api/v1/audit?trace_id={tag}-ok-0", headers=other.headers)).json()
    assert theirs["items"] == []


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=404", 3),
        ("action=GET%20/api/v1/usage", 4),
        ("status=200&action=GET%20/api/v1/usage", 4),
        ("status=500", 0),
    ],
)
async def test_filters(client, busy, query, expected):
    inst, _, tag = busy
    items = (await client.get(f"/api/v1/audit?{query}", headers=inst.headers)).json()["items"]
    assert len([i for i in items if i["trace_id"].startswith(tag)]) == expected


async def test_time_filters(client, busy):
    inst, _, _ = busy
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert (await client.get("/api/v1/audit", params={"since": future}, headers=inst.headers)).json()["items"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    items = (await client.get("/api/v1/audit", params={"since": past, "until": future}, headers=inst.headers)).json()[
        "items"
    ]
    assert len(items) >= 7


async def test_keyset_pages_cover_every_row_once(client, busy):
    inst, _, _ = busy
    seen, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/audit", params=params, headers=inst.headers)).json()
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # The paging requests are audited too; rows newer than the first page are not part of that walk.
    everything = (await client.get("/api/v1/audit?limit=1000", headers=inst.headers)).json()["items"]
    assert seen == [item["id"] for item in everything if item["id"] <= seen[0]]
    assert len(seen) == len(set(seen)) >= 7


async def test_jsonl_export_streams_the_whole_selection(client, busy):
    inst, _, tag = busy
    response = await client.get("/api/v1/audit?format=jsonl&status=404", headers=inst.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["trace_id"] for line in lines] == [f"{tag}-404-{i}" for i in (2, 1, 0)]
    assert {line["institution"] for line in lines} == {inst.slug}


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("cursor=garbage", "cursor"),
        ("cursor=W10", "cursor"),
        ("status=abc", "status"),
        ("status=99", "status"),
        ("format=csv", "format"),
        ("format=jsonl&limit=5", "limit"),
        ("colour=blue", "colour"),
        ("limit=1&limit=2", "limit"),
        ("trace_id=" + "x" * 129, "trace_id"),
        ("limit=" + "9" * 5000, "limit"),
        ("status=%C2%B2", "status"),
        ("since=9999-12-31T23:59:59-23:00", "since"),
        ("until=0001-01-01T00:00:00%2B05:00", "until"),
        ("cursor=WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTIzOjAwIiwgMV0", "cursor"),
        ("cursor=WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgLTFd", "cursor"),
    ],
)
async def test_bad_parameters_get_422_naming_the_parameter(client, institution, query, parameter):
    response = await client.get(f"/api/v1/audit?{query}", headers=institution.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["errors"][0]["parameter"] == parameter and parameter in body["detail"]
