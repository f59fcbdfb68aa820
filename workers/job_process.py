"""The child side of a job: runs in a process of its own (multiprocessing "spawn"), so CPU-heavy work
neither blocks the service's event loop nor holds its GIL. It talks to the parent over one pipe."""

from __future__ import annotations

import importlib
import logging
import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from workers.job_types import JobFailed

ORPHAN_CHECK_SECONDS = 1.0
INTERNAL_ERROR = "the job failed with an internal error; quote the job id when reporting it"
log = logging.getLogger(__name__)


def load(child: str):
    """The function a job type names as "package.module:function"."""
    module_name, _, function_name = child.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _die_with_parent(parent_pid: int) -> None:
    """A parent killed with -9 cannot kill its child: the child notices it was orphaned and exits,
    so no computation outlives the worker that would have stored it."""

    def watch() -> None:
        while True:
            time.sleep(ORPHAN_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(70)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main(child: str, input_path: str | None, params: dict, output_dir: str, pipe: Connection, parent_pid: int) -> None:
    """The spawned process's entry: sends ("progress", f)*, then ("done", value, peak_rss) or
    ("failed", message, peak_rss)."""
    _die_with_parent(parent_pid)
    last_sent = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last_sent[0] >= 0.2 or fraction >= 1.0:  # no flood of tiny updates
            last_sent[0] = now
            pipe.send(("progress", min(max(float(fraction), 0.0), 1.0)))

    try:
        function = load(child)
        value = function(None if input_path is None else Path(input_path), params, Path(output_dir), progress)
        if not isinstance(value, dict):
            raise TypeError(f"{child} returned {type(value).__name__}, not a dict")
        pipe.send(("done", value, _peak_rss_bytes()))
    except JobFailed as exc:
        pipe.send(("failed", str(exc)[:2000] or "the job failed", _peak_rss_bytes()))
    except Exception as exc:  # noqa: BLE001 - whatever a job's code raises, the caller gets a clear error
        # The traceback goes to this process's stderr (the worker's log), never into the job's error.
        log.exception("job function %s raised %s", child, type(exc).__name__)
        pipe.send(("failed", INTERNAL_ERROR, _peak_rss_bytes()))
    finally:
        pipe.close()
