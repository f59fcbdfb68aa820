"""QAC fit and apply through the running service, sync against job, at 50,000 × 32.

    .venv/bin/python bench/qac_service.py [--cells 50000] [--dims 32] [--k 15]

Starts the service (`python app.py serve` with its own job runner, QAC_MAX_SYNC_CELLS raised to
--cells so sync is allowed; DATABASE_URL or a throwaway embedded PostgreSQL) and measures each
call from request to answer (a job: to succeeded, polling every 0.2 s), the web process's peak RSS
(VmHWM) after each phase, a job child's peak RSS (from its audit row), and GET /api/v1/health/live
p99 while each runs, i.e. how much the call holds up the service's other requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.h5ad_jobs import Api, _peak_rss_kib, _token, _wait_live  # noqa: E402
from bench.processes import BenchError, Cleanup, free_port, start_embedded, stop_process  # noqa: E402
from bench.qac import embedding  # noqa: E402


class LiveProbe(threading.Thread):
    """GET the live path every 20 ms on one keep-alive connection, recording each latency."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.ms, self.done = port, [], threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.done.is_set():
            t0 = time.perf_counter()
            conn.request("GET", "/api/v1/health/live")
            conn.getresponse().read()
            self.ms.append((time.perf_counter() - t0) * 1000)
            self.done.wait(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join(60)

    def p99(self) -> float:
        return statistics.quantiles(self.ms, n=100)[98] if len(self.ms) >= 2 else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--k", type=int, default=15)
    args = parser.parse_args()
    cleanup = Cleanup()
    try:
        with tempfile.TemporaryDirectory(prefix="don-bench-qac-") as tmp:
            return run(args, Path(tmp), cleanup)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()


def run(args, workdir: Path, cleanup: Cleanup) -> int:
    dsn = os.environ.get("DATABASE_URL") or start_embedded(workdir, cleanup)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "QAC_MAX_SYNC_CELLS": str(args.cells),
        "DB_COMMAND_TIMEOUT": "60",
    }
    token = _token(env)
    log_path = workdir / "service.log"
    with open(log_path, "wb") as log:
        service = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stderr=log)
    cleanup.push("service", lambda: stop_process(service))
    _wait_live(port, service, log_path)
    api = Api(port, token)
    z = embedding(args.cells, args.dims).round(6).tolist()
    body = json.dumps({"embedding": z, "params": {"k_nn": args.k}}).encode()
    print(f"{args.cells:,} cells × {args.dims} dims, k = {args.k}; request body {len(body) / 2**20:.0f} MiB")
    print(f"web process peak RSS after start-up: {_peak_rss_kib(service.pid) / 1024:.0f} MiB")
    rows = []

    def timed(name: str, path: str, payload: dict, sync: bool):
        probe = LiveProbe(port)
        probe.start()
        started = time.perf_counter()
        status, answer = api._send(
            "POST", path, json.dumps({**payload, "sync": sync}).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise BenchError(f"{name} answered {status}: {str(answer)[:500]}")
        answered = time.perf_counter() - started
        child = ""
        if not sync:
            while answer["status"] in ("queued", "running"):
                time.sleep(0.2)
                answer = api.get(f"/api/v1/quantum/qac/jobs/{answer['id']}")
            if answer["status"] != "succeeded":
                raise BenchError(f"{name} ended {answer['status']}: {answer['error']}")
            job_id, answer = answer["id"], answer["result"]
            audit = api.get(f"/api/v1/audit?trace_id=job-{job_id}")["items"][0]["metadata"]
            child = f"{audit.get('peak_rss_mib', float('nan')):.0f} MiB"
        elapsed = time.perf_counter() - started
        probe.stop()
        web = _peak_rss_kib(service.pid) / 1024
        rows.append((name, answered, elapsed, web, child, probe.p99(), max(probe.ms), len(probe.ms)))
        return answer

    fitted = timed("fit, sync", "/api/v1/quantum/qac/fit", {"embedding": z, "params": {"k_nn": args.k}}, True)
    timed("apply, sync", "/api/v1/quantum/qac/apply", {"model_id": fitted["model_id"], "embedding": z}, True)
    fitted = timed("fit, job", "/api/v1/quantum/qac/fit", {"embedding": z, "params": {"k_nn": args.k}}, False)
    timed("apply, job", "/api/v1/quantum/qac/apply", {"model_id": fitted["model_id"], "embedding": z}, False)

    print(
        f"{'call':<12} {'answered':>9} {'done':>8} {'web peak RSS':>13} {'child peak RSS':>15} {'live p99 / max':>16}"
    )
    for name, answered, elapsed, web, child, p99, worst, probes in rows:
        print(
            f"{name:<12} {answered:8.1f}s {elapsed:7.1f}s {web:9.0f} MiB {child:>15} "
            f"{p99:6.0f} / {worst:4.0f} ms ({probes} probes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
