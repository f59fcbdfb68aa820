"""Tokens (format, checksum, hashing) and Bearer authentication through the real app."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core import tokens
from core.ttl_cache import TTLCache
from tests.conftest import TEST_CLIENT, audit_rows, make_institution


def test_an_issued_token_has_the_typed_prefix_enough_randomness_and_a_checksum():
    issued = tokens.issue()
    assert issued.plaintext.startswith("donr_") and len(issued.plaintext) >= 5 + 43 + 7
    assert tokens.well_formed(issued.plaintext)
    assert issued.sha256 == tokens.digest(issued.plaintext) and len(issued.sha256) == 32
    assert issued.public_prefix == issued.plaintext[:13]
    assert tokens.issue().plaintext != issued.plaintext


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # checksum typo
        lambda t: t[:10] + ("x" if t[10] != "x" else "y") + t[11:],  # body typo
        lambda t: t.replace("donr_", "ghp_"),
        lambda t: t[:-7],
        lambda t: "",
        lambda t: t + "=",
    ],
)
def test_a_mistyped_token_is_rejected_without_a_database(mangle):
    assert not tokens.well_formed(mangle(tokens.issue().plaintext))


def test_the_token_cache_is_bounded_in_size_and_time():
    now = [0.0]
    cache = TTLCache(ttl_seconds=5, max_entries=3, clock=lambda: now[0])
    for key in "abcd":
        cache.put(key, key.upper())
    assert len(cache) == 3 and cache.get("a") is None and cache.get("d") == "D"
    now[0] = 4.9
    assert cache.get("b") == "B"
    now[0] = 5.0
    assert cache.get("b") is None and cache.get("c") is None


async def test_the_database_holds_only_the_hash(pool, institution):
    stored = await pool.fetchrow(
        "SELECT prefix, token_sha256 FROM api_tokens WHERE institution_id = $1", institution.id
    )
    assert bytes(stored["token_sha256"]) == tokens.digest(institution.token)
    assert stored["prefix"] == tokens.public_prefix(institution.token)
    found = await pool.fetchval(
        "SELECT count(*) FROM api_tokens t JOIN institutions i ON i.id = t.institution_id "
        "WHERE t::text LIKE '%' || $1 || '%' OR i::text LIKE '%' || $1 || '%'",
        institution.token[5:],
    )
    assert found == 0


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "missing"),
        ({"Authorization": "Bearer"}, "malformed"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
        ({"Authorization": "Bearer donr_short_ABCDEF"}, "malformed"),
        ({"Authorization": f"Bearer {tokens.issue().plaintext}"}, "unknown"),
    ],
)
async def test_every_authentication_failure_gets_the_same_401(client, pool, trace_id, headers, reason):
    response = await client.get("/api/v1/usage", headers={**headers, "X-Request-ID": trace_id})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == "a valid API token is required: send it as 'Authorization: Bearer <token>'"
    [row] = await audit_rows(pool, trace_id)
    assert row["institution"] == "anonymous" and row["metadata"]["auth_failure"] == reason
    assert row["metadata"]["status_code"] == 401


async def test_a_revoked_token_gets_the_same_401(client, pool, institution, trace_id):
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE institution_id = $1", institution.id)
    response = await client.get("/api/v1/usage", headers={**institution.headers, "X-Request-ID": trace_id})
    assert response.status_code == 401
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["auth_failure"] == "revoked"
    # The client learns nothing, the trail whose token it was: an institution can see its revoked
    # tokens still being tried (GET /api/v1/audit), a compliance officer which institution to ask.
    assert row["institution"] == institution.slug
    assert row["metadata"]["token_prefix"] == tokens.public_prefix(institution.token)


async def test_a_token_in_the_query_string_is_refused(client, institution, pool, trace_id):
    response = await client.get(f"/api/v1/usage?access_token={institution.token}", headers={"X-Request-ID": trace_id})
    assert response.status_code == 401
    [row] = await audit_rows(pool, trace_id)
    assert row["metadata"]["auth_failure"] == "token_in_query"
    assert institution.token not in str(row)


async def test_a_disabled_institution_gets_403(client, pool, trace_id):
    inst = await make_institution(pool)
    await pool.execute("UPDATE institutions SET disabled_at = now() WHERE id = $1", inst.id)
    response = await client.get("/api/v1/usage", headers={**inst.headers, "X-Request-ID": trace_id})
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    [row] = await audit_rows(pool, trace_id)
    assert row["institution"] == inst.slug and row["metadata"]["auth_failure"] == "institution_disabled"
    assert row["metadata"]["token_prefix"] == tokens.public_prefix(inst.token)


async def test_the_audit_row_names_the_institution_and_token_never_the_token_itself(
    client, pool, institution, trace_id, caplog
):
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/api/v1/usage", headers={**institution.headers, "X-Request-ID": trace_id})
    assert response.status_code == 200
    [row] = await audit_rows(pool, trace_id)
    assert row["institution"] == institution.slug
    assert row["metadata"]["token_prefix"] == tokens.public_prefix(institution.token)
    assert isinstance(row["metadata"]["token_id"], int)
    body = institution.token[len("donr_") :]
    assert (
        await pool.fetchval("SELECT count(*) FROM audit_logs WHERE audit_logs::text LIKE '%' || $1 || '%'", body) == 0
    )
    assert body not in caplog.text


async def test_revocation_takes_effect_within_the_cache_period(settings, pool, tmp_path):
    import dataclasses

    from app import create_app

    quick = dataclasses.replace(settings, token_cache_seconds=0.5)
    inst = await make_institution(pool)
    async with LifespanManager(create_app(quick), startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/api/v1/usage", headers=inst.headers)).status_code == 200
            await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE institution_id = $1", inst.id)
            await asyncio.sleep(0.6)
            assert (await client.get("/api/v1/usage", headers=inst.headers)).status_code == 401
