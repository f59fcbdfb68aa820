"""The embedded PostgreSQL when its server dies under a running service, or the clock moves under its
owners: real processes on a temp DATA_DIR, with the helpers of tests/test_embedded_server.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from db import embedded_owners
from tests.test_embedded_server import START_TIMEOUT, STOP_TIMEOUT, data_dir, postgres_in, stop, wait_for

__all__ = ["data_dir"]  # the fixture, used by name


def test_a_service_whose_server_was_killed_exits_cleanly_and_says_so_in_one_line(data_dir):
    service = data_dir.serve()
    [server] = data_dir.postmasters()
    os.kill(server, signal.SIGKILL)  # the database dies under a running service (OOM killer, kill -9)
    wait_for(lambda: service.status() == 503, START_TIMEOUT, "the health check to report the database gone")
    assert stop(service) == 0
    log = service.log()
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 1500) :][:4000]
    assert "had stopped before this process exited" in log


def test_a_server_an_admin_command_restarted_under_a_service_stops_with_the_service(data_dir):
    service = data_dir.serve()
    [killed] = data_dir.postmasters()
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: service.status() == 503, START_TIMEOUT, "the health check to report the database gone")
    listed = data_dir.admin("institution", "list")  # finds no server and starts one
    assert listed.returncode == 0, listed.stderr
    [restarted] = data_dir.postmasters()
    assert restarted != killed
    wait_for(lambda: service.status() == 200, START_TIMEOUT, "the service to reconnect to the restarted server")
    assert stop(service) == 0
    wait_for(lambda: not postgres_in(data_dir.pgdata), STOP_TIMEOUT, "the restarted server to stop with its last owner")
    log = service.log()
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 1500) :][:4000]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the kernel's start ticks are read from /proc")
def test_a_live_owner_stays_an_owner_when_the_clock_moves_and_a_reused_pid_does_not(tmp_path):
    # psutil's start time is the boot time plus the kernel's ticks, and the boot time moves with the
    # clock: a live service once read 4 s off its record, and an admin command stopped its server.
    me, owner, reused = psutil.Process(), subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    try:
        stepped = embedded_owners._start_mark(owner.pid)
        stepped["started"] += 4.0
        other = embedded_owners._start_mark(reused.pid)
        other["ticks"] -= 100  # the pid's earlier holder started a second before this process did
        (tmp_path / embedded_owners.HANDLES_FILE).write_text(f"[{me.pid}, {owner.pid}, {reused.pid}]")
        records = {str(me.pid): embedded_owners._start_mark(me.pid), str(owner.pid): stepped, str(reused.pid): other}
        (tmp_path / embedded_owners.OWNERS_FILE).write_text(json.dumps(records))
        assert embedded_owners.prune(tmp_path) == [reused.pid]
        assert embedded_owners.listed(tmp_path) == [me.pid, owner.pid]
    finally:
        for process in (owner, reused):
            process.kill()
            process.wait(10)
