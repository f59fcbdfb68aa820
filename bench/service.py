"""Benchmark: the service against a bare reference app, same database, same run, and an audit count.

    .venv/bin/python bench/service.py [--duration 10] [--connections 32] [--rounds 3] [--warmup 3]

What it does:
  1. Database: DATABASE_URL when set (it must already be migrated), otherwise an embedded
     PostgreSQL in a temp dir, migrated here and deleted at the end.
  2. Starts two uvicorn processes on 127.0.0.1 (free ports, one worker each, no access log,
     uvicorn's default loop/http, i.e. uvloop + httptools when installed, and the same
     environment, so the same pool sizes and timeouts):
       service:   python app.py serve                                (everything: audit middleware, ...)
       reference: python -m uvicorn bench.reference_app:app         (Starlette + asyncpg, nothing else)
     Both answer GET /api/v1/health by borrowing a pooled connection and running
     sql/health_probe.sql through db.health.probe.
  3. Drives them with wrk (-t1) in alternation: a short warm-up each, then --rounds rounds of
     --duration seconds, service then reference. Prints requests/s, p50 and p99 per run, the
     app process's CPU per request, the median of the rounds per app and the ratios
     service/reference.
  4. Audit count: every request wrk sends carries X-Request-ID "<tag>.<run>.<thread>.<n>" (n counts
     1, 2, ... per wrk thread), which the service adopts as the row's trace_id. After each service
     run the bench waits until the service has drained, then matches rows to requests one to one:
     a request wrk sent has a row or it is lost. wrk's own "requests" figure counts only responses
     that arrived before its deadline; the requests still in flight when wrk stops (at most one per
     connection) are answered by the server after that, so they have rows wrk does not count.
  5. Stops everything it started (also on Ctrl-C, SIGTERM and errors) and exits 0.

Loopback only. The machine's cores are shared by wrk, uvicorn and PostgreSQL: compare the ratio,
not the absolute figures, across machines.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench.processes import BenchError, Cleanup, free_port, start_embedded, stop_process  # noqa: E402
from core.config import ConfigError, Settings  # noqa: E402
from cli.startup import describe  # noqa: E402

HEALTH_PATH = "/api/v1/health"
START_TIMEOUT = 90.0
WRK_TIMEOUT = "5s"

# wrk script: a unique X-Request-ID per request, and one machine-readable summary line at the end.
WRK_SCRIPT = r"""
local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   prefix = args[1] .. "." .. tid .. "."
   issued = 0
   headers = {}
   -- wrk 4 calls request() once in the first thread's state before the run, to check the request
   -- it builds, and never sends it: that call gets id 0 and is not counted as issued.
   checking = (tid == 1)
end

function request()
   if checking then
      checking = false
      headers["X-Request-ID"] = prefix .. "0"
      return wrk.format(nil, nil, headers)
   end
   issued = issued + 1
   headers["X-Request-ID"] = prefix .. issued
   return wrk.format(nil, nil, headers)
end

function done(summary, latency, requests)
   local per_thread = {}
   local total = 0
   for i, t in ipairs(threads) do
      local n = t:get("issued") or 0
      per_thread[i] = tostring(n)
      total = total + n
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "issued": %d, "issued_per_thread": [%s], "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, total, table.concat(per_thread, ", "), summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Run:
    app: str          # "service" or "reference"
    label: str        # "warm-up", "round 1", ...
    run_id: str       # goes into X-Request-ID; no dots
    requests: int = 0
    issued: int = 0
    issued_per_thread: list = field(default_factory=list)
    duration_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    errors: dict = field(default_factory=dict)
    cpu_s: float | None = None  # CPU seconds the app's process used during the run (Linux /proc)
    audit: dict | None = None  # service runs only

    @property
    def cpu_us_per_request(self) -> float | None:
        return self.cpu_s / self.requests * 1e6 if self.cpu_s is not None and self.requests else None

    @property
    def cores(self) -> float | None:
        return self.cpu_s / self.duration_s if self.cpu_s is not None and self.duration_s else None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HEALTH_PATH}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"


# ---------------------------------------------------------------- processes and the database

def start_server(name: str, argv: list[str], env: dict, workdir: Path, cleanup: Cleanup) -> Server:
    port = free_port()
    log_path = workdir / f"{name}.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [arg.replace("{port}", str(port)) for arg in argv],
        cwd=ROOT, env={**env, "PORT": str(port)}, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,  # a terminal Ctrl-C reaches the bench only; it stops the servers in order
    )
    log_file.close()
    server = Server(name, port, process, log_path)
    cleanup.push(f"{name} (pid {process.pid})", lambda: stop_process(process))
    return server


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with status {server.process.returncode} while starting; "
                             f"its log:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} did not answer 200 on {HEALTH_PATH} within {START_TIMEOUT:g}s; "
                     f"its log:\n{server.log_tail()}")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# ---------------------------------------------------------------- load

def run_wrk(server: Server, run: Run, args, script: Path, tag: str, cleanup_state: dict) -> Run:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{run.duration_s:g}s", f"--timeout={WRK_TIMEOUT}",
            "-s", str(script), server.url, "--", f"{tag}.{run.run_id}"]
    cpu_before = process_cpu_seconds(server.process.pid)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    cleanup_state["wrk"] = process
    try:
        output, _ = process.communicate(timeout=run.duration_s + 60)
        cpu_after = process_cpu_seconds(server.process.pid)
        if cpu_before is not None and cpu_after is not None:
            run.cpu_s = cpu_after - cpu_before
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        cleanup_state["wrk"] = None
    text = output.decode(errors="replace")
    if args.verbose:
        print("\n".join("      | " + line for line in text.splitlines()))
    summary = next((line[len("BENCH "):] for line in text.splitlines() if line.startswith("BENCH ")), None)
    if process.returncode != 0 or summary is None:
        raise BenchError(f"wrk failed (status {process.returncode}) against {server.name}:\n{text}")
    data = json.loads(summary)
    run.requests = data["requests"]
    run.issued = data["issued"]
    run.issued_per_thread = data["issued_per_thread"]
    run.duration_s = data["duration_us"] / 1e6
    run.p50_ms = data["p50_us"] / 1000
    run.p99_ms = data["p99_us"] / 1000
    run.mean_ms = data["mean_us"] / 1000
    run.max_ms = data["max_us"] / 1000
    run.errors = {k: data[k] for k in ("connect", "read", "write", "timeout", "status")}
    return run


# ---------------------------------------------------------------- audit rows

# One row per wrk thread of a run. `matched` counts the distinct ids 1..issued, i.e. the requests
# wrk sent; anything else carrying the run's prefix (a duplicate, wrk's unsent id 0) is `unexpected`.
AUDIT_BY_RUN = """
SELECT thread,
       count(*) AS rows,
       count(DISTINCT n) FILTER (WHERE n BETWEEN 1 AND coalesce(($2::bigint[])[thread], 0)) AS matched,
       count(*) FILTER (WHERE status = '200') AS ok,
       count(*) FILTER (WHERE status = '499') AS client_closed
FROM (SELECT split_part(trace_id, '.', 3)::int AS thread,
             split_part(trace_id, '.', 4)::bigint AS n,
             metadata->>'status_code' AS status
      FROM audit_logs
      WHERE trace_id LIKE $1) AS tagged
GROUP BY thread
"""

# Rows inserted by one statement share its transaction id: distinct xmin = commits (group-commit batches).
AUDIT_COMMITS = "SELECT count(DISTINCT xmin::text) FROM audit_logs WHERE trace_id LIKE $1"


async def _audit_rows(dsn: str, prefix: str, issued_per_thread: list[int], with_commits: bool) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        pattern = prefix.replace("_", r"\_") + ".%"
        rows = await conn.fetch(AUDIT_BY_RUN, pattern, issued_per_thread)
        commits = await conn.fetchval(AUDIT_COMMITS, pattern) if with_commits else None
    finally:
        await conn.close()
    counts = {key: sum(r[key] for r in rows) for key in ("rows", "matched", "ok", "client_closed")}
    return {**counts, "commits": commits}


def audit_rows(dsn: str, prefix: str, issued_per_thread: list[int], with_commits: bool = False) -> dict:
    return asyncio.run(_audit_rows(dsn, prefix, issued_per_thread, with_commits))


def settle_audit(dsn: str, run: Run, tag: str, limit: float = 10.0) -> float:
    """Wait until the service has drained `run`, then record its audit rows in run.audit.

    Rows are committed before a response leaves, so once every request wrk sent has its row, or
    the count stays put for half a second, the service has drained this run. Returns the wait.
    """
    started = time.monotonic()
    last, stable_since = None, started
    while True:
        counts = audit_rows(dsn, f"{tag}.{run.run_id}", run.issued_per_thread)
        now = time.monotonic()
        if counts["rows"] != last:
            last, stable_since = counts["rows"], now
        if counts["matched"] >= run.issued or now - stable_since >= 0.5 or now - started >= limit:
            break
        time.sleep(0.1)
    counts = audit_rows(dsn, f"{tag}.{run.run_id}", run.issued_per_thread, with_commits=True)
    run.audit = {**counts, "missing": run.issued - counts["matched"], "unexpected": counts["rows"] - counts["matched"]}
    return time.monotonic() - started


# ---------------------------------------------------------------- report

def _num(value: float | None, spec: str, width: int) -> str:
    return f"{value:>{width}{spec}}" if value is not None else f"{'n/a':>{width}}"


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_ratio(a: float | None, b: float | None, width: int = 9) -> str:
    return f"{a / b:>{width}.3f}" if a is not None and b else f"{'n/a':>{width}}"


def print_runs(runs: list[Run]) -> None:
    print()
    print(f"{'run':<10} {'app':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'completed':>10} {'non-2xx':>8} {'sock err':>9} {'app CPU':>8} {'CPU us/req':>11}")
    for r in runs:
        print(f"{r.label:<10} {r.app:<10} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f} "
              f"{r.requests:>10} {r.errors.get('status', 0):>8} {r.socket_errors:>9} "
              f"{_num(r.cores, '.2f', 8)} {_num(r.cpu_us_per_request, '.0f', 11)}")
        errs = {k: v for k, v in r.errors.items() if v and k != "status"}
        if errs:
            print(f"{'':<21} socket errors: " + ", ".join(f"{k} {v}" for k, v in errs.items()))
    print("  completed = responses wrk received before its deadline; non-2xx and socket errors are counted apart by wrk;")
    print("  app CPU = cores the app's one process used during the run; CPU us/req = that CPU per completed request")


def print_summary(rounds: list[Run]) -> dict:
    medians = {}
    for app in ("service", "reference"):
        mine = [r for r in rounds if r.app == app]
        medians[app] = {
            "rps": _median(r.rps for r in mine),
            "p50": _median(r.p50_ms for r in mine),
            "p99": _median(r.p99_ms for r in mine),
            "cpu": _median(r.cpu_us_per_request for r in mine),
        }
    s, ref = medians["service"], medians["reference"]
    print()
    print(f"median of {len(rounds) // 2} rounds   {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    print(f"  service            {s['rps']:>9.1f} {s['p50']:>8.2f} {s['p99']:>8.2f} {_num(s['cpu'], '.0f', 11)}")
    print(f"  reference          {ref['rps']:>9.1f} {ref['p50']:>8.2f} {ref['p99']:>8.2f} {_num(ref['cpu'], '.0f', 11)}")
    print(f"  service/reference  {fmt_ratio(s['rps'], ref['rps'])} {fmt_ratio(s['p50'], ref['p50'], 8)} "
          f"{fmt_ratio(s['p99'], ref['p99'], 8)} {fmt_ratio(s['cpu'], ref['cpu'], 11)}")
    pairs = list(zip(rounds[0::2], rounds[1::2]))
    per_round = [a.rps / b.rps for a, b in pairs if b.rps]
    print(f"throughput ratio service/reference: {fmt_ratio(s['rps'], ref['rps'], 0)} (of the medians); "
          f"per round {', '.join(f'{x:.3f}' for x in per_round)}, median {statistics.median(per_round):.3f}; "
          f"target >= 0.8")
    if ref["cpu"] and s["cpu"]:
        print(f"  CPU-bound estimate: reference CPU per request / service CPU per request = {ref['cpu'] / s['cpu']:.3f}")
        short = [r for r in rounds if r.cores is not None and r.cores < 0.9]
        if short:
            print(f"  note: in {len(short)} of {len(rounds)} runs the app used < 0.9 of a core (starved by other load on "
                  f"the machine, or waiting on the database), so the req/s ratios are noisy; the CPU-per-request ratio "
                  f"is steadier when both apps are CPU-bound")
    return medians


def print_audit(service_runs: list[Run], service_failures) -> int:
    print()
    print("audit rows (service; matched to requests one to one by X-Request-ID = trace_id, counted after each run drained)")
    print(f"{'run':<10} {'sent':>8} {'wrk counted':>12} {'in flight':>10} {'rows':>8} {'status 200':>11} "
          f"{'499':>6} {'missing':>8} {'unexpected':>11} {'commits':>8} {'rows/commit':>12}")
    sent = matched = counted = unexpected = 0
    for r in service_runs:
        a = r.audit
        print(f"{r.label:<10} {r.issued:>8} {r.requests:>12} {r.issued - r.requests:>10} {a['rows']:>8} {a['ok']:>11} "
              f"{a['client_closed']:>6} {a['missing']:>8} {a['unexpected']:>11} {_num(a['commits'], 'd', 8)} "
              f"{_num(a['rows'] / a['commits'] if a['commits'] else None, '.1f', 12)}")
        sent += r.issued
        matched += a["matched"]
        counted += r.requests
        unexpected += a["unexpected"]
    print(f"{'total':<10} {sent:>8} {counted:>12} {sent - counted:>10} {matched + unexpected:>8}")
    print()
    print(f"audit rows written: {matched} for {sent} requests (lost: {sent - matched})")
    print(f"  'requests' = every request wrk sent to the service, warm-up included; wrk's own count of completed")
    print(f"  responses is {counted}: the other {sent - counted} were in flight when wrk's clock ran out (at most one per")
    print(f"  connection per run); the service answered them after wrk stopped reading, so they have rows too.")
    print(f"  rows matching no sent request: {unexpected}; audit write failures reported by the service: {service_failures}")
    return matched


# ---------------------------------------------------------------- main

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/service.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="service/reference rounds (default 3)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per app, not measured (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--pause", type=float, default=1.0, help="idle seconds between runs (default 1)")
    parser.add_argument("--verbose", action="store_true", help="also print wrk's own output and the servers' logs")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.rounds < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("durations must be positive, counts at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def environment_line(env: dict) -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    wrk = version[0].split(" [")[0] if version else "wrk"
    load = "load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else "load average n/a"
    return (f"python {sys.version.split()[0]}, uvicorn loop/http auto -> {loop}/{http}, {wrk}, "
            f"{os.cpu_count()} CPUs ({load} before the runs)")


def bench(args: argparse.Namespace, cleanup: Cleanup, cleanup_state: dict) -> int:
    if shutil.which("wrk") is None:
        print("error: wrk (the load generator) is not installed. Install it with:\n"
              "    apt-get update && apt-get install -y wrk      (Debian/Ubuntu)\n"
              "    brew install wrk                              (macOS)", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise BenchError(str(exc)) from None

    workdir = Path(tempfile.mkdtemp(prefix="don-bench-"))
    cleanup.push(f"temp dir {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)

    if settings.database_url:
        dsn = settings.database_url
        print(f"database: DATABASE_URL ({describe(dsn)}); it must be migrated already", flush=True)
    else:
        dsn = start_embedded(workdir, cleanup)
        print(f"database: embedded PostgreSQL ({describe(dsn)})", flush=True)

    env = {**os.environ, "DATABASE_URL": dsn, "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    service = start_server("service", [sys.executable, "app.py", "serve"], env, workdir, cleanup)
    reference = start_server("reference", [
        sys.executable, "-m", "uvicorn", "bench.reference_app:app", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", "1", "--no-access-log", "--log-level", "warning", "--loop", "auto", "--http", "auto",
        "--lifespan", "on", "--no-server-header",
    ], env, workdir, cleanup)
    wait_ready(service)
    wait_ready(reference)

    tag = f"bench{uuid.uuid4().hex[:10]}"
    print(f"service   pid {service.process.pid} on {service.url}")
    print(f"reference pid {reference.process.pid} on {reference.url}")
    print(f"{environment_line(env)}; pool {settings.pool_min}-{settings.pool_max} per app")
    print(f"wrk -t{args.threads} -c{args.connections}, warm-up {args.warmup:g}s per app, "
          f"{args.rounds} rounds x {args.duration:g}s per app; request ids {tag}.<run>.<thread>.<n>", flush=True)

    def one(server: Server, label: str, run_id: str, duration: float) -> Run:
        run = Run(app=server.name, label=label, run_id=run_id, duration_s=duration)
        run_wrk(server, run, args, script, tag, cleanup_state)
        note = ""
        if server is service:
            waited = settle_audit(dsn, run, tag)
            note = f", audit settled in {waited:.2f}s"
        print(f"  {label:<8} {server.name:<9} {run.rps:9.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
              f"p99 {run.p99_ms:6.2f} ms{note}", flush=True)
        time.sleep(args.pause)
        return run

    warmups: list[Run] = []
    if args.warmup > 0:
        warmups.append(one(service, "warm-up", "warm-s", args.warmup))
        warmups.append(one(reference, "warm-up", "warm-r", args.warmup))
    rounds: list[Run] = []
    for i in range(1, args.rounds + 1):
        rounds.append(one(service, f"round {i}", f"r{i}-s", args.duration))
        rounds.append(one(reference, f"round {i}", f"r{i}-r", args.duration))

    failures = fetch_json(service.url).get("audit", {}).get("write_failures", "?")
    if hasattr(os, "getloadavg"):
        print("load average %.2f %.2f %.2f after the runs (wrk, both apps and PostgreSQL share the machine; "
              "anything else running skews the figures)" % os.getloadavg())

    print_runs(warmups + rounds)
    print_summary(rounds)
    service_runs = [r for r in warmups + rounds if r.app == "service"]
    before = print_audit(service_runs, failures)

    # Stop the service (graceful shutdown drains its audit writer) and count again: nothing should move.
    for server in (service, reference):
        status = stop_process(server.process)
        if status not in (0, None) and status != -signal.SIGTERM:
            print(f"warning: {server.name} exited with status {status}")
    after = sum(audit_rows(dsn, f"{tag}.{r.run_id}", r.issued_per_thread)["matched"] for r in service_runs)
    print(f"  after the service shut down (audit writer drained): {after} rows "
          f"({'unchanged' if after == before else f'{after - before:+d}'})")

    for server in (service, reference):
        noisy = [line for line in server.log_path.read_text(errors="replace").splitlines()
                 if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        if noisy:
            print(f"  {server.name} logged {len(noisy)} warning/error line(s), e.g.: {noisy[0][:200]}")
        if args.verbose:
            print(f"{server.name} log:\n{server.log_tail(40)}")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cleanup = Cleanup()
    cleanup_state: dict = {"wrk": None}

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a shell starting the bench in the background would leave Ctrl-C ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    started = time.monotonic()
    try:
        return bench(args, cleanup, cleanup_state)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not leave servers or the temp database behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        wrk = cleanup_state.get("wrk")
        if wrk is not None and wrk.poll() is None:
            wrk.kill()
            wrk.wait()
        cleanup.run()
        print(f"done in {time.monotonic() - started:.0f}s; servers stopped, temp files removed", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
