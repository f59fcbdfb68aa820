"""The real service as a process (`python app.py serve` on 127.0.0.1, a free port), for tests that
need uvicorn's own layer or a real socket; always stopped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIVE = "/api/v1/health/live"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Service:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the service wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(database_url: str, **env: str) -> Iterator[Service]:
    """Run the service on `database_url` until the block ends; waits for the live path first."""
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port), **env}
    with tempfile.TemporaryDirectory(prefix="don-serve-") as tmp:
        log_path = Path(tmp) / "stderr.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "app.py", "serve"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=log
            )
        service = Service(process, port, log_path)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the service exited with {process.returncode}:\n{service.log()}")
                try:
                    with urllib.request.urlopen(service.base_url + LIVE, timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no answer on {LIVE} within {START_TIMEOUT:g}s:\n{service.log()}")
                time.sleep(0.2)
            yield service
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def read_response(reader: asyncio.StreamReader, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response off a raw connection: status, headers (lower-case names), body (none
    for an answer to HEAD)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
    return int(status_line.split()[1]), headers, await reader.readexactly(length)
