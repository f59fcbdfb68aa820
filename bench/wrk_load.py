"""wrk driving for bench/service.py: the Lua script that tags every request, one timed run, its parsed figures."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import BenchError, Server

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
   -- An optional second argument is sent as the Authorization header (bench/hot_path.py's Bearer token).
   if args[2] then headers["Authorization"] = args[2] end
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
    app: str  # "service" or "reference"
    label: str  # "warm-up", "round 1", ...
    run_id: str  # goes into X-Request-ID; no dots
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
    cores_busy: list | None = None  # bench/hot_path.py: each core's busy share during the run

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


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process, from /proc (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_wrk(
    server: Server,
    run: Run,
    args,
    script: Path,
    tag: str,
    cleanup_state: dict,
    url: str | None = None,
    authorization: str | None = None,
) -> Run:
    """One timed wrk run against `url` (the server's health path by default); fills in `run`."""
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{run.duration_s:g}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(script),
        url or server.url,
        "--",
        f"{tag}.{run.run_id}",
        *([authorization] if authorization else []),
    ]
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
    summary = next((line[len("BENCH ") :] for line in text.splitlines() if line.startswith("BENCH ")), None)
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
