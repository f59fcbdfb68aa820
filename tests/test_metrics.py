"""GET /metrics: opened only by METRICS_TOKEN, 404 while unset, and its figures move as requests are served."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.audit import AuditMiddleware
from api.problems import EXCEPTION_HANDLERS, unavailable_cause
from api.request_metrics import UNMATCHED, RequestMeter
from core.config import ConfigError, Settings
from core.metrics import ServiceMetrics
from db.pool import DatabaseUnavailable
from tests.conftest import TEST_CLIENT, audit_rows, audit_table_locked
from workers.audit_writer import AuditWriter

METRICS_TOKEN = "metrics-" + "x" * 40
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}
REQUESTS = "don_http_request_duration_seconds"


@contextlib.asynccontextmanager
async def metered_app(settings: Settings, **changes):
    """The real app with METRICS_TOKEN set (and any other settings changed), with a client and its state."""
    from app import create_app

    app = create_app(dataclasses.replace(settings, metrics_token=METRICS_TOKEN, **changes))
    seen: dict = {}

    async def capture_state(scope, receive, send):
        if scope["type"] == "http":
            seen.update(scope["state"])
        await app(scope, receive, send)

    async with LifespanManager(capture_state, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
            yield client, seen


@pytest.fixture(scope="module")
async def metered(settings):
    async with metered_app(settings) as (client, _):
        yield client


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape, keyed by name and labels."""
    response = await client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_is_404_while_metrics_token_is_unset(client, trace_id):
    response = await client.get("/metrics", headers={"X-Request-ID": trace_id, **SCRAPE})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no resource at /metrics"  # the answer of a path that does not exist


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer wrong-" + "y" * 40, f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x"],
    ids=["missing", "empty", "wrong", "not-bearer", "longer"],
)
async def test_metrics_refuses_callers_without_its_credential(metered, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await metered.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "don_" not in response.text


async def test_an_api_token_does_not_open_metrics(metered, institution):
    assert (await metered.get("/api/v1/usage", headers=institution.headers)).status_code == 200
    assert (await metered.get("/metrics", headers=institution.headers)).status_code == 401


async def test_the_scrape_is_audited_without_its_credential(metered, pool, trace_id):
    response = await metered.get("/metrics", headers={**SCRAPE, "X-Request-ID": trace_id})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    [row] = await audit_rows(pool, trace_id, wait=5)  # a probe: its row is queued, not waited for
    assert row["metadata"]["status_code"] == 200 and row["resource_id"] == "/metrics"
    assert METRICS_TOKEN not in str(row)


async def test_requests_are_counted_by_route_template_and_status(metered, institution):
    name = f"c-{uuid.uuid4().hex[:10]}"
    created = await metered.post(
        "/api/v1/collections", headers=institution.headers, json={"name": name, "dimensions": 3, "metric": "l2"}
    )
    assert created.status_code == 201
    template = "/api/v1/collections/{name}"
    before = await scrape(metered)
    assert (await metered.get(f"/api/v1/collections/{name}", headers=institution.headers)).status_code == 200
    assert (await metered.get(f"/api/v1/collections/{name}", headers=institution.headers)).status_code == 200
    assert (await metered.get(f"/api/v1/collections/{name}")).status_code == 401  # refused before routing
    assert (await metered.get(f"/nowhere/{name}")).status_code == 404
    after = await scrape(metered)

    def moved(**labels) -> float:
        name_ = f"{REQUESTS}_count"
        return sample(after, name_, **labels) - sample(before, name_, **labels)

    assert moved(method="GET", route=template, status="200") == 2
    assert moved(method="GET", route=template, status="401") == 1
    assert moved(method="GET", route=UNMATCHED, status="404") == 1
    assert not [key for key in after if any(name in value for _, value in key[1])]  # never the raw path


async def test_quota_batches_are_reported_with_their_requests(metered, institution):
    before = await scrape(metered)
    answers = await asyncio.gather(*(metered.get("/api/v1/usage", headers=institution.headers) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    after = await scrape(metered)
    batches = sample(after, "don_quota_batch_requests_count") - sample(before, "don_quota_batch_requests_count")
    counted = sample(after, "don_quota_batch_requests_sum") - sample(before, "don_quota_batch_requests_sum")
    assert 1 <= batches <= 6
    assert counted == 6  # every request counted once, in however many batches


async def test_audit_batches_and_the_pool_are_reported(metered):
    before = await scrape(metered)
    await asyncio.gather(*(metered.get("/api/v1/health/live") for _ in range(5)))
    assert (await metered.get("/openapi.json")).status_code == 200  # waits for its row: the batches are in
    after = await scrape(metered)
    for name in ("don_audit_batch_rows_count", "don_audit_commit_seconds_count", "don_audit_rows_written_total"):
        assert sample(after, name) > sample(before, name), name
    assert sample(after, "don_audit_batch_rows_sum") - sample(before, "don_audit_batch_rows_sum") >= 6
    assert sample(after, "don_db_pool_acquire_wait_seconds_count") > sample(
        before, "don_db_pool_acquire_wait_seconds_count"
    )
    assert sample(after, "don_db_pool_max") == 8  # the suite's DB_POOL_MAX
    assert 1 <= sample(after, "don_db_pool_size") <= 8
    assert sample(after, "don_db_pool_waiting") == 0
    assert ("don_audit_queue_depth", frozenset()) in after
    assert ("don_audit_write_failures_total", frozenset()) in after


async def test_a_saturated_pool_is_counted_as_an_acquire_timeout(settings, institution):
    async with metered_app(settings, pool_min=1, pool_max=1, acquire_timeout=0.3) as (client, state):
        assert (await client.get("/api/v1/usage", headers=institution.headers)).status_code == 200
        before = await scrape(client)
        async with state["pool"].acquire():  # the only connection is taken: the quota's lend times out
            waiting = asyncio.create_task(client.get("/api/v1/usage", headers=institution.headers))
            for _ in range(100):
                if state["pool"].waiting:
                    break
                await asyncio.sleep(0.01)
            # The scrape needs no connection, so it shows the saturation while it lasts.
            during = await scrape(client)
            assert sample(during, "don_db_pool_waiting") >= 1 and sample(during, "don_db_pool_idle") == 0
            assert (await waiting).status_code == 503
        after = await scrape(client)
    cause = "don_http_unavailable_total"
    assert sample(after, cause, cause="acquire_timeout") - sample(before, cause, cause="acquire_timeout") == 1
    assert sample(after, f"{REQUESTS}_count", method="GET", route="/api/v1/usage", status="503") == 1
    assert sample(after, "don_audit_write_failures_total") > sample(before, "don_audit_write_failures_total")


async def test_the_scrape_answers_while_the_audit_trail_is_stuck(metered, pool, trace_id):
    async with audit_table_locked(pool):  # every audit insert waits on the lock meanwhile
        response = await metered.get("/metrics", headers={**SCRAPE, "X-Request-ID": trace_id})
        assert response.status_code == 200
    [row] = await audit_rows(pool, trace_id, wait=5)  # written once the table is free again
    assert row["metadata"]["status_code"] == 200


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (DatabaseUnavailable("no database connection became free in time", "acquire_timeout"), "acquire_timeout"),
        (DatabaseUnavailable("database unreachable: connection refused"), "database_down"),
        (TimeoutError(), "statement_timeout"),  # asyncpg's command_timeout
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), "statement_timeout"),
        (ConnectionRefusedError(), "database_down"),
        (asyncpg.TooManyConnectionsError("too many clients"), "database_down"),
    ],
)
def test_each_database_error_has_its_503_cause(error, cause):
    assert unavailable_cause(error) == cause


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(30)
    return JSONResponse({"done": True})


async def test_a_request_past_its_deadline_is_counted_as_a_deadline(settings, pool):
    metrics = ServiceMetrics()
    writer = AuditWriter(pool, 2.0, metrics=metrics)
    metrics.watch(pool, writer)
    inner = Starlette(routes=[Route("/slow/{n}", slow)], exception_handlers=EXCEPTION_HANDLERS)
    app = AuditMiddleware(inner, max_body_bytes=1024, request_timeout=0.8)
    state = {
        "settings": settings,
        "pool": pool,
        "audit_writer": writer,
        "request_meter": RequestMeter(metrics, inner.routes),
    }

    async def with_state(scope, receive, send):
        scope["state"] = state
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=with_state, client=TEST_CLIENT)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
        assert (await client.get("/slow/1")).status_code == 503
    await writer.drain()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert sample(samples, "don_http_unavailable_total", cause="deadline") == 1
    assert sample(samples, "don_http_unavailable_total", cause="other") == 0
    assert sample(samples, f"{REQUESTS}_count", method="GET", route="/slow/{n}", status="503") == 1


def test_route_labels_are_the_documented_templates():
    from app import create_app

    routes = create_app(Settings(database_url="postgresql://unused@localhost/unused")).app.routes
    meter = RequestMeter(ServiceMetrics(), routes)
    for path, template in [
        ("/api/v1/collections/abc", "/api/v1/collections/{name}"),
        ("/api/v1/collections/abc/vectors/a/b c", "/api/v1/collections/{name}/vectors/{vector_id}"),
        ("/api/v1/usage", "/api/v1/usage"),
        ("/api/v1/nothing/here", UNMATCHED),
    ]:
        assert meter.template({"path": path}) == template, path


@pytest.mark.parametrize("value", ["short", "x" * 31, "x" * 20 + " " + "x" * 20])
def test_a_weak_metrics_token_stops_start_up_without_being_echoed(value):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"METRICS_TOKEN": value})
    assert value not in str(refused.value) and "METRICS_TOKEN" in str(refused.value)


def test_histogram_buckets_are_cumulative_and_a_value_on_a_bound_counts_in_it():
    from prometheus_client.parser import text_string_to_metric_families

    from core.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    for seconds in (0.001, 0.0011, 400.0):
        metrics.observe_request("GET", "/api/v1/usage", 200, seconds)
    family = next(f for f in text_string_to_metric_families(metrics.render().decode()) if f.name == REQUESTS)
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name == REQUESTS + "_bucket"}
    assert (buckets["0.001"], buckets["0.0025"], buckets["300.0"], buckets["+Inf"]) == (1, 2, 2, 3)
    total = next(s.value for s in family.samples if s.name == REQUESTS + "_sum")
    assert total == pytest.approx(400.0021)
