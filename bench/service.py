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
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import (  # noqa: E402
    REFERENCE_ARGV,
    BenchError,
    Cleanup,
    Server,
    fetch_json,
    start_embedded,
    start_server,
    stop_process,
    wait_ready,
)
from bench.service_report import audit_rows, print_audit, print_runs, print_summary, settle_audit  # noqa: E402
from bench.wrk_load import WRK_SCRIPT, Run, run_wrk  # noqa: E402
from cli.startup import describe  # noqa: E402
from core.config import ConfigError, Settings  # noqa: E402

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
    return (
        f"python {sys.version.split()[0]}, uvicorn loop/http auto -> {loop}/{http}, {wrk}, "
        f"{os.cpu_count()} CPUs ({load} before the runs)"
    )


def bench(args: argparse.Namespace, cleanup: Cleanup, cleanup_state: dict) -> int:
    if shutil.which("wrk") is None:
        print(
            "error: wrk (the load generator) is not installed. Install it with:\n"
            "    apt-get update && apt-get install -y wrk      (Debian/Ubuntu)\n"
            "    brew install wrk                              (macOS)",
            file=sys.stderr,
        )
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
    reference = start_server("reference", REFERENCE_ARGV, env, workdir, cleanup)
    wait_ready(service)
    wait_ready(reference)

    tag = f"bench{uuid.uuid4().hex[:10]}"
    print(f"service   pid {service.process.pid} on {service.url}")
    print(f"reference pid {reference.process.pid} on {reference.url}")
    print(f"{environment_line(env)}; pool {settings.pool_min}-{settings.pool_max} per app")
    print(
        f"wrk -t{args.threads} -c{args.connections}, warm-up {args.warmup:g}s per app, "
        f"{args.rounds} rounds x {args.duration:g}s per app; request ids {tag}.<run>.<thread>.<n>",
        flush=True,
    )

    def one(server: Server, label: str, run_id: str, duration: float) -> Run:
        run = Run(app=server.name, label=label, run_id=run_id, duration_s=duration)
        run_wrk(server, run, args, script, tag, cleanup_state)
        note = ""
        if server is service:
            waited = settle_audit(dsn, run, tag)
            note = f", audit settled in {waited:.2f}s"
        print(
            f"  {label:<8} {server.name:<9} {run.rps:9.1f} req/s  p50 {run.p50_ms:6.2f} ms  "
            f"p99 {run.p99_ms:6.2f} ms{note}",
            flush=True,
        )
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
        print(
            "load average %.2f %.2f %.2f after the runs (wrk, both apps and PostgreSQL share the machine; "
            "anything else running skews the figures)" % os.getloadavg()
        )

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
    print(
        f"  after the service shut down (audit writer drained): {after} rows "
        f"({'unchanged' if after == before else f'{after - before:+d}'})"
    )

    for server in (service, reference):
        noisy = [
            line
            for line in server.log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
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
