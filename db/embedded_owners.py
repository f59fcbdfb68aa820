"""Who owns the embedded server in a data dir: the library's pid list (pg/.handle_pids.json), and beside
it each owner's start (pg/.owners.json), so an owner that died, or whose pid went to another process,
is told from a live one (db/embedded.py says why it matters). Callers hold the library's lock."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

OWNERS_FILE = ".owners.json"  # {pid: when it started (_start_mark)}, beside the library's .handle_pids.json
# How far apart two wall-clock start times of one process may be, where the kernel's tick count cannot
# be read (not Linux, or a record an older version wrote). Wider errs on the safe side: a dead owner
# taken for alive only leaves its server running, a live one taken for dead has it stopped under it.
START_TOLERANCE = 1.0
HANDLES_FILE = ".handle_pids.json"


def listed(pgdata: Path) -> list[int]:
    """The pids the library counts as owners of the server in `pgdata` (dead ones included)."""
    return list(_read_json(Path(pgdata) / HANDLES_FILE, []))


def record(pgdata: Path, pid: int) -> None:
    """`pid` owns the server from now on."""
    started = _read_json(pgdata / OWNERS_FILE, {})
    started[str(pid)] = _start_mark(pid)
    _write_json(pgdata / OWNERS_FILE, started)


def forget(pgdata: Path, pid: int) -> None:
    """`pid`'s start record goes (the library drops the pid itself)."""
    started = _read_json(pgdata / OWNERS_FILE, {})
    if started.pop(str(pid), None) is not None:
        _write_json(pgdata / OWNERS_FILE, started)


def prune(pgdata: Path) -> list[int]:
    """Remove owners that are no longer running from both lists; returns their pids. Under the lock."""
    handles = _read_json(pgdata / HANDLES_FILE, [])
    started = _read_json(pgdata / OWNERS_FILE, {})
    dead = [pid for pid in handles if not _owner_alive(pid, started.get(str(pid)))]
    dead_records = [pid for pid in started if int(pid) not in handles or int(pid) in dead]
    if dead:
        _write_json(pgdata / HANDLES_FILE, [pid for pid in handles if pid not in dead])
    if dead_records:
        _write_json(pgdata / OWNERS_FILE, {pid: t for pid, t in started.items() if pid not in dead_records})
    return dead


def _owner_alive(pid: int, record) -> bool:
    if pid == os.getpid():
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if record is None:
            return True
        # Same pid, started at another moment: the owner died and its pid went to another process.
        if isinstance(record, dict) and record.get("ticks") is not None:
            ticks = _ticks(pid)
            if ticks is not None:
                return ticks == record["ticks"]
        started = record.get("started") if isinstance(record, dict) else record
        return started is None or abs(process.create_time() - started) < START_TOLERANCE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: keep it (never stop a server someone may be using)


def _start_mark(pid: int) -> dict:
    """When `pid` started: in the kernel's clock ticks since boot (Linux), and as wall-clock time.

    The tick count never changes for a process. psutil's create_time is the boot time plus it, and
    the boot time is derived from the clock, so it moves when the clock is stepped: a live service's
    start time once read 4 s later than recorded, and an admin command then stopped its server."""
    mark: dict = {"started": psutil.Process(pid).create_time()}
    ticks = _ticks(pid)
    if ticks is not None:
        mark["ticks"] = ticks
    return mark


def _ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (starttime); None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # the name, field 2, may hold spaces and ")"
    except (OSError, ValueError, IndexError):
        return None


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except ValueError:  # torn or hand-edited: start over rather than refuse to start
        log.warning("embedded PostgreSQL: ignoring unreadable %s", path)
        return default


def _write_json(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
