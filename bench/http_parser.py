"""Benchmark: two ways to cap the request head, same trivial app, same run.

    .venv/bin/python bench/http_parser.py [--duration 5] [--rounds 5] [--connections 32]
                                          [--big-mib 64] [--big-rounds 3] [--no-stock]
                                          [--stock-throughput]

Servers (one uvicorn process each on a free 127.0.0.1 port, pinned to CPU 0 with taskset when
there are two CPUs or more; the load generator gets CPU 1; uvicorn's default loop, lifespan off,
no access log), all serving the same Starlette app with GET /plain -> small JSON:
  h11:     http="h11", h11_max_incomplete_event_size=65536 (uvicorn's answer over it: 400)
  limited: http=core.http_protocol.LimitedHttpToolsProtocol (httptools, 431 over 65536 bytes)
  stock:   http="httptools" with no cap: in the refusal test, as the "before" figure, and with
           --stock-throughput in the throughput rounds too (the cost of the cap itself)

1. Throughput: wrk -t1 -c<connections> for --duration seconds, h11 and limited alternating
   (order flipped every round) for --rounds rounds after a short warm-up each. Prints req/s, p50
   and p99 per run, the medians and the ratios limited/h11.
2. Refusal: one client sends GET /plain with a --big-mib MiB User-Agent while another asks
   GET /plain over and over on its own connection. Prints the time until the big request is
   answered (or its connection ends), what it got, the longest wait of a concurrent GET /plain
   meanwhile, and how much the server's peak RSS grew.

Needs wrk (apt-get install -y wrk). Loopback only; prints figures and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import BenchError, Cleanup, free_port, stop_process  # noqa: E402

LIMIT = 65536
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""


# ---------------------------------------------------------------- the server side (a child process)


def serve(kind: str, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def plain(request):
        return JSONResponse({"status": "ok", "service": "bench"})

    app = Starlette(routes=[Route("/plain", plain)])
    options: dict = {}
    if kind == "h11":
        options = {"http": "h11", "h11_max_incomplete_event_size": LIMIT}
    elif kind == "limited":
        from api.http_protocol import MAX_HEADER_BYTES, LimitedHttpToolsProtocol

        assert MAX_HEADER_BYTES == LIMIT
        options = {"http": LimitedHttpToolsProtocol}
    else:
        options = {"http": "httptools"}
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ws="none",
        lifespan="off",
        log_level="error",
        access_log=False,
        server_header=False,
        **options,
    )


# ---------------------------------------------------------------- the driver


class Server:
    def __init__(self, kind: str, pin: list[str], cleanup: Cleanup) -> None:
        self.kind = kind
        self.port = free_port()
        self.process = subprocess.Popen(
            [*pin, sys.executable, __file__, "--serve", kind, "--port", str(self.port)], cwd=ROOT
        )
        cleanup.push(f"{kind} server", lambda: stop_process(self.process, 10))
        self.url = f"http://127.0.0.1:{self.port}/plain"
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"the {kind} server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    response.read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"the {kind} server did not answer within 30 s") from None
                time.sleep(0.1)

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))


def wrk(server: Server, script: str, pin: list[str], connections: int, duration: int) -> dict:
    out = subprocess.run(
        [*pin, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script, server.url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
    )
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$", out.stdout, re.M)
    if not match:
        raise BenchError(f"wrk gave no result: {out.stdout.strip()} {out.stderr.strip()}")
    requests, duration_us, p50, p99, errors = map(int, match.groups())
    return {"rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "errors": errors}


def refusal(server: Server, big_mib: int, timeout: float = 60.0) -> dict:
    """Time until the oversized request is answered, and the longest GET /plain meanwhile."""
    probe = socket.create_connection(("127.0.0.1", server.port))
    probe_request = b"GET /plain HTTP/1.1\r\nHost: bench\r\n\r\n"
    waits: list[float] = []
    stop = threading.Event()

    def read_response(sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
        while len(body) < length:
            body += sock.recv(65536)

    def prober() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            probe.sendall(probe_request)
            read_response(probe)
            waits.append(time.perf_counter() - started)
            time.sleep(0.005)

    rss_before = server.peak_rss_kib()
    probe_thread = threading.Thread(target=prober, daemon=True)
    probe_thread.start()
    time.sleep(0.2)
    waits.clear()

    big = socket.create_connection(("127.0.0.1", server.port))
    big.settimeout(timeout)
    payload = b"GET /plain HTTP/1.1\r\nHost: bench\r\nUser-Agent: " + b"x" * (big_mib << 20) + b"\r\n\r\n"
    send_error: list[str] = []

    def send() -> None:
        try:
            big.sendall(payload)
        except OSError as exc:
            send_error.append(type(exc).__name__)

    started = time.perf_counter()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        first = big.recv(4096)
        answer = first.split(b"\r\n", 1)[0].decode("latin-1") if first else "connection closed"
    except ConnectionResetError:
        answer = "connection reset"
    except TimeoutError:
        answer = f"nothing within {timeout:.0f} s"
    elapsed = time.perf_counter() - started
    time.sleep(0.2)  # a few probes after the answer too
    stop.set()
    probe_thread.join(5)
    big.close()
    sender.join(5)
    probe.close()
    return {
        "seconds": elapsed,
        "answer": answer,
        "max_wait_ms": max(waits, default=0.0) * 1000,
        "probes": len(waits),
        "rss_growth_mib": (server.peak_rss_kib() - rss_before) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--big-rounds", type=int, default=3)
    parser.add_argument("--no-stock", action="store_true", help="skip the uncapped httptools reference")
    parser.add_argument(
        "--stock-throughput", action="store_true", help="also run the uncapped httptools in the throughput rounds"
    )
    parser.add_argument("--serve", choices=("h11", "limited", "stock"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1

    pin_server: list[str] = []
    pin_client: list[str] = []
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        pin_server, pin_client = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
        os.sched_setaffinity(0, {1})  # the refusal test's client threads
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"pinning: {'server CPU 0, client CPU 1' if pin_server else 'none'}",
        flush=True,
    )

    cleanup = Cleanup()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = str(Path(tmp) / "report.lua")
            Path(script).write_text(WRK_SCRIPT)
            kinds = ["h11", "limited"] + (["stock"] if args.stock_throughput else [])
            servers = {kind: Server(kind, pin_server, cleanup) for kind in kinds}
            for server in servers.values():
                wrk(server, script, pin_client, args.connections, args.warmup)

            print(
                f"\nthroughput: wrk -t1 -c{args.connections} -d{args.duration}s GET /plain, "
                f"{args.rounds} rounds interleaved"
            )
            runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
            for number in range(1, args.rounds + 1):
                order = kinds if number % 2 else kinds[::-1]
                for kind in order:
                    result = wrk(servers[kind], script, pin_client, args.connections, args.duration)
                    runs[kind].append(result)
                    print(
                        f"  round {number} {kind:8s} {result['rps']:9.0f} req/s  p50 {result['p50_ms']:6.2f} ms"
                        f"  p99 {result['p99_ms']:6.2f} ms  errors {result['errors']}",
                        flush=True,
                    )
                ratios = ", ".join(
                    f"{other}: {runs['limited'][-1]['rps'] / runs[other][-1]['rps']:.2f}"
                    for other in kinds
                    if other != "limited"
                )
                print(f"  round {number} req/s ratio limited/{ratios}")
            medians = {
                kind: {key: statistics.median(r[key] for r in results) for key in ("rps", "p50_ms", "p99_ms")}
                for kind, results in runs.items()
            }
            for kind, m in medians.items():
                print(
                    f"  median   {kind:8s} {m['rps']:9.0f} req/s  p50 {m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:6.2f} ms"
                )
            for other in kinds:
                if other != "limited":
                    print(
                        f"  median ratios limited/{other}: "
                        f"req/s {medians['limited']['rps'] / medians[other]['rps']:.2f}, "
                        f"p50 {medians['limited']['p50_ms'] / medians[other]['p50_ms']:.2f}, "
                        f"p99 {medians['limited']['p99_ms'] / medians[other]['p99_ms']:.2f}"
                    )

            print(
                f"\nrefusal: one GET /plain with a {args.big_mib} MiB User-Agent, "
                f"GET /plain probes on another connection meanwhile"
            )
            if not args.no_stock and "stock" not in servers:
                servers["stock"] = Server("stock", pin_server, cleanup)
            elif args.no_stock:
                servers.pop("stock", None)
            for number in range(1, args.big_rounds + 1):
                for kind in servers:
                    if kind == "stock" and number > 1:
                        continue  # one uncapped run is enough to show the problem
                    r = refusal(servers[kind], args.big_mib)
                    print(
                        f"  round {number} {kind:8s} answered in {r['seconds']:7.3f} s ({r['answer']}); "
                        f"longest concurrent GET /plain {r['max_wait_ms']:8.1f} ms over {r['probes']} probes; "
                        f"peak RSS +{r['rss_growth_mib']:.0f} MiB",
                        flush=True,
                    )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup.run()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
