"""An .h5ad upload build as a background job, end to end, against the issue's targets.

    .venv/bin/python bench/h5ad_jobs.py [--cells 100000] [--genes 20000] [--density 0.05] [--dimensions 32]

Generates (once, cached under /tmp) a synthetic counts matrix with planted cell types, starts the
service (`python app.py serve`, its own runner, DATABASE_URL or a throwaway embedded PostgreSQL),
uploads the file to POST /api/v1/genomics/vectors/build and measures: upload to succeeded, the job
child's peak RSS (from its audit row) and the web process's, GET /api/v1/health/live p99 during the
build, project search p50, and how many of each planted type's marker-gene search hits are that type.
Heavy: minutes of CPU and a few GiB of memory. Not a test.
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
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.h5ad_data import synthetic  # noqa: E402
from bench.processes import BenchError, Cleanup, free_port, start_embedded, stop_process  # noqa: E402

TARGETS = {"end to end": 300.0, "child peak RSS": 4.0, "live p99": 50.0}
LIVE = "/api/v1/health/live"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--dimensions", type=int, default=32)
    parser.add_argument("--searches", type=int, default=50)
    args = parser.parse_args()
    data = synthetic(args.cells, args.genes, args.density)
    cleanup = Cleanup()
    try:
        with tempfile.TemporaryDirectory(prefix="don-bench-h5ad-") as tmp:
            return run(args, data, Path(tmp), cleanup)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()


def run(args, data, workdir: Path, cleanup: Cleanup) -> int:
    dsn = os.environ.get("DATABASE_URL") or start_embedded(workdir, cleanup)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "MAX_UPLOAD_BYTES": str(8 * 2**30),
    }
    token = _token(env)
    log_path = workdir / "service.log"
    with open(log_path, "wb") as log:
        service = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, stderr=log)
    cleanup.push("service", lambda: stop_process(service))
    _wait_live(port, service, log_path)
    api = Api(port, token)
    project = f"bench-{uuid.uuid4().hex[:8]}"

    probe = LiveProbe(port)
    probe.start()
    started = time.perf_counter()
    status, job = api.upload(data.path, project, args.dimensions)
    if status != 202:
        raise BenchError(f"upload answered {status}: {job}")
    uploaded = time.perf_counter() - started
    while job["status"] in ("queued", "running"):
        time.sleep(0.5)
        job = api.get(f"/api/v1/jobs/{job['id']}")
    elapsed = time.perf_counter() - started
    probe.stop()
    if job["status"] != "succeeded":
        raise BenchError(f"the job ended {job['status']}: {job['error']}")
    audit = api.get(f"/api/v1/audit?trace_id=job-{job['id']}")["items"][0]["metadata"]
    child_rss_gib = audit["peak_rss_mib"] / 1024
    web_rss_gib = _peak_rss_kib(service.pid) / 2**20

    search_ms, hit_rates = [], {}
    for cell_type in data.types:
        markers = data.markers(cell_type)[:20]
        for _ in range(max(1, args.searches // len(data.types))):
            t0 = time.perf_counter()
            hits = api.post(
                "/api/v1/genomics/vectors/search", {"project_id": project, "gene_names": markers, "top_k": 50}
            )["hits"]
            search_ms.append((time.perf_counter() - t0) * 1000)
        hit_rates[cell_type] = sum(h["metadata"].get("cell_type") == cell_type for h in hits) / max(1, len(hits))

    size_mib = data.path.stat().st_size / 2**20
    print(f"\n{data.cells:,} cells × {data.genes:,} genes, {data.density:.0%} non-zero, {size_mib:,.0f} MiB")
    reported = ("vector_count", "dimensions", "explained_variance_total", "layer", "cell_type_key", "normalization")
    print("result:", json.dumps({k: job["result"].get(k) for k in reported}))
    rows = [
        ("upload (request answered 202)", f"{uploaded:.1f} s", ""),
        ("upload to succeeded", f"{elapsed:.1f} s", _vs(elapsed, TARGETS["end to end"], "s")),
        ("job child peak RSS", f"{child_rss_gib:.2f} GiB", _vs(child_rss_gib, TARGETS["child peak RSS"], "GiB")),
        ("web process peak RSS", f"{web_rss_gib:.2f} GiB", ""),
        (
            f"live probe p99 ({len(probe.ms)} probes)",
            f"{probe.p99():.1f} ms",
            _vs(probe.p99(), TARGETS["live p99"], "ms"),
        ),
        (f"search p50 ({len(search_ms)} marker searches)", f"{statistics.median(search_ms):.1f} ms", ""),
    ]
    rows += [(f"marker hit rate, {t}", f"{rate:.0%}", "") for t, rate in hit_rates.items()]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>12}  {target}")
    return 0


def _vs(value: float, target: float, unit: str) -> str:
    return f"target < {target:g} {unit}: {'met' if value < target else 'MISSED'}"


def _token(env: dict) -> str:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "app.py"]
    subprocess.run(
        [*command, "institution", "add", slug, "--name", "Bench", "--hourly-limit", "1000000"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    issued = subprocess.run(
        [*command, "token", "issue", slug], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return issued.stdout.strip()


def _wait_live(port: int, process, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the service exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{LIVE}", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise BenchError("the service did not come up")


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class LiveProbe(threading.Thread):
    """GET the live path every 20 ms on one keep-alive connection, recording each latency."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.ms, self._stop = port, [], threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self._stop.is_set():
            t0 = time.perf_counter()
            conn.request("GET", LIVE)
            conn.getresponse().read()
            self.ms.append((time.perf_counter() - t0) * 1000)
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self.join(10)

    def p99(self) -> float:
        return statistics.quantiles(self.ms, n=100)[98] if len(self.ms) >= 2 else float("nan")


class Api:
    def __init__(self, port: int, token: str):
        self.port, self.headers = port, {"Authorization": f"Bearer {token}"}

    def _send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def get(self, path: str):
        return self._send("GET", path)[1]

    def post(self, path: str, body: dict):
        return self._send("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})[1]

    def upload(self, path: Path, project: str, dimensions: int):
        """multipart/form-data streamed from the file (never whole in memory), with a Content-Length."""
        boundary = uuid.uuid4().hex
        fields = {"project_id": project, "mode": "cell", "target_dimensions": str(dimensions)}
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.putrequest("POST", "/api/v1/genomics/vectors/build")
        for k, v in {
            **self.headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + path.stat().st_size + len(tail)),
        }.items():
            conn.putheader(k, v)
        conn.endheaders()
        conn.send(head)
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                conn.send(chunk)
        conn.send(tail)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")


if __name__ == "__main__":
    sys.exit(main())
