"""The service's Prometheus metrics: one registry per app, made in the lifespan and reached through its state.

Events (a request served, a connection lent, an audit or quota batch) are observed as they happen.
The two every request pays for (its own latency, its connection's acquire wait) go to plain-number
histograms (`_Buckets`): prometheus-client's Histogram takes a lock twice and walks its buckets in
Python on each observation, which cost more than the rest of the request's bookkeeping; every
observation and every scrape runs on the event loop's one thread, so no lock is needed. What is a
state rather than an event (pool size, idle and waiting connections, the audit queue, the writer's
counts) is read at scrape time by a collector, and costs the requests nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Prometheus' classic text format: every Prometheus 2.x and 3.x and the Grafana Agent/Alloy read it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 300.0)
ROWS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Why a 503 was answered; "other" is a 503 no layer explained (it should stay at 0).
CAUSES = ("acquire_timeout", "statement_timeout", "deadline", "audit_unavailable", "database_down", "other")


class ServiceMetrics:
    """The metric definitions of one app and the calls that observe them (one call per event)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = _LabelledBuckets(
            "don_http_request_duration_seconds",
            "Requests served, by method, route template and status: latency from arrival to the last byte "
            "(its _count is the request count)",
            ("method", "route", "status"),
            SECONDS,
        )
        r.register(self._requests)
        unavailable = Counter(
            "don_http_unavailable", "503 answers by cause", ("cause",), registry=r
        )  # exported as don_http_unavailable_total
        # Every cause exists from the start at 0, so rate() sees the first one happen.
        self._unavailable = {cause: unavailable.labels(cause) for cause in CAUSES}
        acquire_wait = _LabelledBuckets(
            "don_db_pool_acquire_wait_seconds",
            "How long each borrower waited for a pooled connection (timeouts included)",
            (),
            SECONDS,
        )
        r.register(acquire_wait)
        self.observe_acquire_wait = acquire_wait.child(()).observe
        self._audit_rows = Histogram(
            "don_audit_batch_rows", "Rows per committed audit batch", buckets=ROWS, registry=r
        ).observe
        self._audit_commit = Histogram(
            "don_audit_commit_seconds",
            "Round trip of one audit batch's INSERT and commit",
            buckets=SECONDS,
            registry=r,
        ).observe
        self.observe_quota_batch = Histogram(
            "don_quota_batch_requests", "Requests counted per quota round trip", buckets=ROWS, registry=r
        ).observe
        ProcessCollector(registry=r)  # CPU seconds, resident memory, open file descriptors of this process

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # Bounded: methods and templates are fixed sets, statuses are the app's own.
        self._requests.child((method, route, status)).observe(seconds)

    def count_unavailable(self, cause: str) -> None:
        self._unavailable.get(cause, self._unavailable["other"]).inc()

    def observe_audit_batch(self, rows: int, seconds: float) -> None:
        self._audit_rows(rows)
        self._audit_commit(seconds)

    def watch(self, pool, writer) -> None:
        """Read `pool` (db.pool.Pool) and `writer` (workers.audit_writer.AuditWriter) at every scrape."""
        pool.on_wait = self.observe_acquire_wait
        self.registry.register(_LiveState(pool, writer))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveState(Collector):
    """Gauges and counters read from the pool and the audit writer when Prometheus scrapes."""

    def __init__(self, pool, writer) -> None:
        self._pool = pool
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        pool, writer = self._pool, self._writer
        yield _gauge("don_db_pool_size", "Connections open in the pool", pool.get_size())
        yield _gauge("don_db_pool_idle", "Open connections not lent out", pool.get_idle_size())
        yield _gauge("don_db_pool_max", "Most connections the pool opens (DB_POOL_MAX)", pool.get_max_size())
        yield _gauge("don_db_pool_waiting", "Borrowers waiting for a connection now", pool.waiting)
        yield _gauge("don_audit_queue_depth", "Audit rows queued, not yet sent to the database", writer.queue_depth)
        yield CounterMetricFamily(
            "don_audit_rows_written", "Audit rows committed by the group-commit writer", writer.rows_written
        )
        yield CounterMetricFamily(
            "don_audit_write_failures",
            "Audit row writes that failed (each attempt of a retried row counts)",
            writer.failures,
        )


class _Buckets:
    """One histogram's counts: bucket k holds the observations in (bounds[k-1], bounds[k]], the last one
    those above every bound (+Inf)."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.total += value


class _LabelledBuckets(Collector):
    """A histogram family with a `_Buckets` per label set, exported in Prometheus' cumulative form."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self._name, self._documentation, self._labels, self._bounds = name, documentation, labels, bounds
        self._children: dict[tuple, _Buckets] = {}

    def child(self, values: tuple) -> _Buckets:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Buckets(self._bounds)
        return child

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labels)
        edges = [*(floatToGoString(bound) for bound in self._bounds), "+Inf"]
        for values, child in list(self._children.items()):
            cumulative, running = [], 0
            for edge, count in zip(edges, child.counts, strict=True):
                running += count
                cumulative.append((edge, running))
            family.add_metric([str(v) for v in values], cumulative, child.total)
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
