"""The real service (a subprocess, default settings) with its database behind a fault proxy.

A dropped database must cost 503s with Retry-After, never a 500 or a hang, and the service must
recover by itself once the network does. Every request here is bounded by a 30 s client timeout,
and each must have been answered: a timeout counts as a hang.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from api.paths import HEALTH_PATH, LIVE_PATH

USAGE_PATH = "/api/v1/usage"
CLIENT_TIMEOUT = 30.0
RECOVERY_SECONDS = 10.0
REQUEST_TIMEOUT = 5.0  # the promised default deadline of a request (REQUEST_TIMEOUT)


@dataclass(frozen=True)
class Answer:
    path: str
    status: int | None  # None: no answer (the client timed out or the connection failed)
    seconds: float
    content_type: str = ""
    retry_after: str | None = None
    error: str = ""

    def __str__(self) -> str:
        what = self.status if self.status is not None else f"no answer ({self.error})"
        return f"{self.path} -> {what} in {self.seconds:.2f}s"


def ask(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> Answer:
    started = time.monotonic()
    try:
        response = client.get(path, headers=headers)
    except httpx.HTTPError as exc:
        return Answer(path, None, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    return Answer(
        path,
        response.status_code,
        time.monotonic() - started,
        response.headers.get("content-type", ""),
        response.headers.get("retry-after"),
    )


def hammer(base_url: str, headers: dict[str, str], stop: threading.Event, workers: int = 3) -> list[Answer]:
    """Each worker asks live, health and usage in turn until `stop` is set; every answer, in order."""

    def worker() -> list[Answer]:
        answers = []
        with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
            while not stop.is_set():
                answers.append(ask(client, LIVE_PATH))
                answers.append(ask(client, HEALTH_PATH))
                answers.append(ask(client, USAGE_PATH, headers))
                time.sleep(0.01)  # brisk, but leaves the two shared cores to the service
        return answers

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        return [answer for future in futures for answer in future.result()]


def assert_degraded_not_broken(answers: list[Answer]) -> None:
    """Answered, every one; live always 200; the rest 200 or a 503 problem with Retry-After."""
    unanswered = [str(a) for a in answers if a.status is None]
    assert not unanswered, f"requests that got no answer: {unanswered[:5]}"
    for answer in answers:
        if answer.path == LIVE_PATH:
            assert answer.status == 200, str(answer)
        elif answer.status != 200:
            assert answer.status == 503, f"{answer}: only 200 or 503 while the database is away, never a 500"
            assert answer.retry_after, f"{answer}: a 503 says when to retry"
            if answer.path != HEALTH_PATH:  # health's 503 is its own JSON document, listed in the contract
                assert answer.content_type.startswith("application/problem+json"), str(answer)


def wait_until_healthy(client: httpx.Client, headers: dict[str, str], within: float) -> float:
    """Seconds until health and an authenticated request both answer 200 again; fails after `within`."""
    started = time.monotonic()
    last: list[Answer] = []
    while time.monotonic() - started < within:
        last = [ask(client, HEALTH_PATH), ask(client, USAGE_PATH, headers)]
        if all(a.status == 200 for a in last):
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"not healthy {within:g}s after restore(): {[str(a) for a in last]}")


def assert_serving(service, client: httpx.Client, headers: dict[str, str]) -> None:
    """Before any fault: health and an authenticated request are 200 (else the service log says why)."""
    for answer in (ask(client, HEALTH_PATH), ask(client, USAGE_PATH, headers)):
        assert answer.status == 200, f"{answer} before any fault; the service said:\n{service.log()[-3000:]}"


def test_a_cut_costs_503s_never_500s_or_hangs_and_the_service_recovers_without_a_restart(proxied_database):
    proxy = proxied_database.proxy
    headers = proxied_database.issue_token()
    with proxied_database.serve() as service, httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT) as client:
        try:
            assert_serving(service, client, headers)
            stop = threading.Event()
            with ThreadPoolExecutor(1) as background:
                during = background.submit(hammer, service.base_url, headers, stop)
                time.sleep(0.5)
                proxy.cut()
                # Probe health from here too: the hammer's workers may all be waiting on a usage
                # request whose audit row is being resolved (up to its deadline and 8 s more).
                probes, cut_ends = [], time.monotonic() + 3.0
                while time.monotonic() < cut_ends:
                    probes.append(ask(client, HEALTH_PATH))
                    time.sleep(0.3)
                proxy.restore()
                stop.set()
                answers = during.result(timeout=3 * CLIENT_TIMEOUT) + probes
            assert_degraded_not_broken(answers)
            assert any(a.status == 503 for a in answers if a.path == HEALTH_PATH), "the cut went unnoticed"
            recovered_in = wait_until_healthy(client, headers, RECOVERY_SECONDS)
            assert recovered_in < RECOVERY_SECONDS
            assert ask(client, LIVE_PATH).status == 200
            assert service.process.poll() is None, "recovered by itself, without a restart"
            assert "Traceback" not in service.log()
        finally:
            proxy.restore()


def test_during_a_blackhole_the_live_check_answers_within_1s(proxied_database):
    proxy = proxied_database.proxy
    headers = proxied_database.issue_token()
    with proxied_database.serve() as service, httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT) as client:
        stop = threading.Event()
        try:
            proxy.blackhole()
            with ThreadPoolExecutor(1) as background:
                # Requests stuck on the database meanwhile must not hold up the live check.
                busy = background.submit(hammer, service.base_url, headers, stop, 2)
                time.sleep(0.5)
                answers = []
                for _ in range(5):
                    answers.append(ask(client, LIVE_PATH))
                    time.sleep(0.3)
                proxy.restore()
                stop.set()
                busy.result(timeout=3 * CLIENT_TIMEOUT)
            slow = [str(a) for a in answers if a.status != 200 or a.seconds > 1.0]
            assert not slow, f"live answers during a blackhole: {slow}; the service said:\n{service.log()[-4000:]}"
        finally:
            stop.set()
            proxy.restore()


def test_during_a_blackhole_health_answers_503_within_2s(proxied_database):
    proxy = proxied_database.proxy
    with proxied_database.serve() as service, httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT) as client:
        try:
            assert ask(client, HEALTH_PATH).status == 200
            proxy.blackhole()
            answers = []
            for _ in range(3):  # the first probe's stuck connection must not stall the next ones
                answers.append(ask(client, HEALTH_PATH))
            late = [str(a) for a in answers if a.status != 503 or a.seconds > 2.0]
            assert not late, f"health during a blackhole: {late}; the service said:\n{service.log()[-4000:]}"
        finally:
            proxy.restore()


def test_during_a_blackhole_an_authenticated_request_gets_503_within_the_request_timeout(proxied_database):
    proxy = proxied_database.proxy
    headers = proxied_database.issue_token()
    bound = 2 * REQUEST_TIMEOUT
    with proxied_database.serve() as service, httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT) as client:
        try:
            assert ask(client, USAGE_PATH, headers).status == 200
            proxy.blackhole()
            answers = [ask(client, USAGE_PATH, headers) for _ in range(2)]
            assert_degraded_not_broken(answers)
            late = [str(a) for a in answers if a.status != 503 or a.seconds > bound]
            assert not late, f"usage during a blackhole, wanted 503 within {bound:g}s: {late}"
        finally:
            proxy.restore()
