"""The embedded PostgreSQL across crashes, with real processes on a temp DATA_DIR (DATABASE_URL unset).

One server per data dir, whoever starts first; the last live process using it stops it. A service
killed with SIGKILL leaves its server running: the next process re-adopts it (never a second
server) and its clean exit stops it. A stale postmaster.pid, of a dead server or naming a pid that
now belongs to something else, never blocks a start. Every test stops what it started: services
with SIGKILL, servers with SIGINT (PostgreSQL's fast shutdown, what `pg_ctl -m fast stop` sends),
found by their working directory, which is the data dir, so a doctored postmaster.pid cannot
misdirect the clean-up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from db import embedded_owners
from tests.live_service import LIVE, ROOT, free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class Running:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, path: str = "/api/v1/health") -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_healthy(self) -> None:
        status = self.status()
        assert status == 200, f"/api/v1/health -> {status}; the service said:\n{self.log()[-3000:]}"


class DataDir:
    """A temp DATA_DIR and everything the test ran on it; `close` stops all of it."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="don-emb-"))
        self.pgdata = self.path / "pg"
        self.processes: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        return {**environment, "DATA_DIR": str(self.path), "HOST": "127.0.0.1", **extra}

    def launch(self, **extra: str) -> Running:
        port = free_port()
        log_path = self.path / f"service-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "app.py", "serve"],
                cwd=ROOT,
                env=self.env(PORT=str(port), **extra),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.processes.append(process)
        return Running(process, port, log_path)

    def serve(self, **extra: str) -> Running:
        """A service on this data dir, answering its live path."""
        service = self.launch(**extra)
        wait_live(service)
        return service

    def admin(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "app.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )

    def postmasters(self) -> list[int]:
        """The running PostgreSQL servers on this data dir (their postmasters' pids)."""
        ours = postgres_in(self.pgdata)
        return sorted(p.pid for p in ours if p.ppid() not in {q.pid for q in ours})

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        for postmaster in self.postmasters():
            os.kill(postmaster, signal.SIGINT)
        try:
            wait_for(lambda: not postgres_in(self.pgdata), STOP_TIMEOUT, "the test's servers to stop")
        finally:
            for leftover in postgres_in(self.pgdata):
                leftover.kill()
            shutil.rmtree(self.path, ignore_errors=True)


def postgres_in(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "postgres" and Path(process.cwd()) == pgdata.resolve():
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}")
        time.sleep(0.1)


def wait_live(service: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited with {service.process.returncode}:\n{service.log()}")
        try:
            if service.status(LIVE) == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer on {LIVE} within {START_TIMEOUT:g}s:\n{service.log()}")
        time.sleep(0.2)


def crash(service: Running) -> None:
    service.process.kill()  # SIGKILL: no exit hooks run
    service.process.wait(10)


def stop(service: Running) -> int:
    service.process.send_signal(signal.SIGTERM)
    return service.process.wait(STOP_TIMEOUT)


@pytest.fixture
def data_dir() -> Iterator[DataDir]:
    directory = DataDir()
    try:
        yield directory
    finally:
        directory.close()


def test_after_a_crash_the_next_service_adopts_the_running_server_and_its_clean_exit_stops_it(data_dir):
    first = data_dir.serve()
    [server] = data_dir.postmasters()
    crash(first)
    assert data_dir.postmasters() == [server], "a crash of its owner does not take the server down"
    assert first.pid in embedded_owners.listed(data_dir.pgdata), "the dead owner is still listed"

    second = data_dir.serve()
    assert data_dir.postmasters() == [server], "re-adopted: no second server on the same data"
    second.assert_healthy()
    assert embedded_owners.listed(data_dir.pgdata) == [second.pid]
    assert "adopts the server" in second.log()

    assert stop(second) == 0
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the adopted server to stop with its new owner")


def test_an_admin_command_after_a_crash_stops_the_orphaned_server_when_it_exits(data_dir):
    crash(data_dir.serve())
    assert len(data_dir.postmasters()) == 1
    result = data_dir.admin("institution", "list")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the orphaned server to stop")


def test_admin_commands_and_a_second_service_never_stop_the_server_a_running_service_uses(data_dir):
    first = data_dir.serve()
    [server] = data_dir.postmasters()
    added = data_dir.admin("institution", "add", "shared", "--name", "Shared")
    assert added.returncode == 0, added.stderr
    listed = data_dir.admin("institution", "list")
    assert listed.returncode == 0 and "shared" in listed.stdout
    assert data_dir.postmasters() == [server]
    first.assert_healthy()

    second = data_dir.serve()
    assert data_dir.postmasters() == [server], "one server for both services"
    assert stop(second) == 0
    assert data_dir.postmasters() == [server], "the first service still uses it"
    first.assert_healthy()

    assert stop(first) == 0
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the server to stop with its last owner")


@pytest.mark.parametrize("stale_pid", ["dead", "reused"])
def test_a_stale_postmaster_pid_never_blocks_a_start_nor_names_the_server(data_dir, stale_pid):
    first = data_dir.serve()
    [server] = data_dir.postmasters()
    crash(first)
    os.kill(server, signal.SIGKILL)  # the server crashes too: postmaster.pid stays behind
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the killed server's processes to exit")
    pid_file = data_dir.pgdata / "postmaster.pid"
    assert pid_file.read_text().split("\n", 1)[0] == str(server)
    bystander = None
    try:
        if stale_pid == "reused":  # e.g. after a reboot or a container restart: the pid is someone else's now
            bystander = subprocess.Popen(["sleep", "120"])
            lines = pid_file.read_text().split("\n", 1)
            pid_file.write_text(f"{bystander.pid}\n{lines[1]}")

        second = data_dir.serve(DB_STARTUP_TIMEOUT="10")
        second.assert_healthy()
        [fresh] = data_dir.postmasters()
        assert fresh not in (server, bystander and bystander.pid)
        assert pid_file.read_text().split("\n", 1)[0] == str(fresh)
        if bystander is not None:
            assert bystander.poll() is None, "the process that inherited the pid is left alone"
        assert stop(second) == 0
        wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the fresh server to stop")
    finally:
        if bystander is not None:
            bystander.kill()
            bystander.wait(10)


def test_services_starting_together_on_a_new_data_dir_share_one_server(data_dir):
    services = [data_dir.launch(), data_dir.launch()]
    for service in services:
        wait_live(service)
    assert len(data_dir.postmasters()) == 1
    for service in services:
        service.assert_healthy()
    assert sorted(embedded_owners.listed(data_dir.pgdata)) == sorted(service.pid for service in services)
    assert [stop(service) for service in services] == [0, 0]
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the shared server to stop")


def test_owners_that_died_or_whose_pid_went_to_another_process_are_not_counted(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait(10)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        me = psutil.Process()
        (tmp_path / embedded_owners.HANDLES_FILE).write_text(f"[{me.pid}, {finished.pid}, {bystander.pid}]")
        started = {str(me.pid): me.create_time(), str(bystander.pid): psutil.Process(bystander.pid).create_time() - 60}
        (tmp_path / embedded_owners.OWNERS_FILE).write_text(json.dumps(started))
        assert sorted(embedded_owners.prune(tmp_path)) == sorted([finished.pid, bystander.pid])
        assert embedded_owners.listed(tmp_path) == [me.pid]
    finally:
        bystander.kill()
        bystander.wait(10)
