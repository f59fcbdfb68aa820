"""Figures for bench/hot_path.py: per-core busy shares from /proc/stat, and the printed tables."""

from __future__ import annotations

import statistics

from bench.wrk_load import Run


def core_busy() -> list[tuple[int, int]]:
    """(busy, total) jiffies of every core so far (Linux /proc/stat; empty elsewhere)."""
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and line[3].isdigit()]
    except OSError:
        return []
    out = []
    for fields in lines:
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        out.append((sum(ticks) - ticks[3] - ticks[4], sum(ticks)))
    return out


def busy_shares(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    """Each core's busy share between two core_busy() readings."""
    return [(b1 - b0) / (t1 - t0) if t1 > t0 else 0.0 for (b0, t0), (b1, t1) in zip(before, after, strict=True)]


def _cores(run: Run) -> str:
    return " ".join(f"{share * 100:3.0f}%" for share in run.cores_busy or [])


def print_run(run: Run, path: str) -> None:
    cpu = run.cpu_us_per_request
    audit = ""
    if run.audit is not None:
        audit = f"  audit {run.audit['matched']}/{run.issued} rows"
    print(
        f"  {run.label:<10} {run.app:<9} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f}  p99 {run.p99_ms:6.2f} ms  "
        f"app {0 if cpu is None else cpu:5.0f} us/req  cores busy {_cores(run)}{audit}  "
        f"non-2xx {run.errors.get('status', 0)}  {path}",
        flush=True,
    )


def print_pairs(name: str, pairs: list[tuple[Run, Run]], target: float) -> None:
    """Medians of each side and the median of the per-round throughput ratios."""
    ratios = [ours.rps / bare.rps for ours, bare in pairs if bare.rps]
    cpu_ratios = [
        bare.cpu_us_per_request / ours.cpu_us_per_request
        for ours, bare in pairs
        if ours.cpu_us_per_request and bare.cpu_us_per_request
    ]
    print(f"\n{name}: {len(pairs)} rounds{'':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'us/req':>7}  cores busy")
    for side in (0, 1):
        runs = [pair[side] for pair in pairs]
        cores = [statistics.median(r.cores_busy[i] for r in runs) for i in range(len(runs[0].cores_busy or []))]
        print(
            f"  {runs[0].app:<26} {statistics.median(r.rps for r in runs):8.0f} "
            f"{statistics.median(r.p50_ms for r in runs):7.2f} {statistics.median(r.p99_ms for r in runs):7.2f} "
            f"{statistics.median(r.cpu_us_per_request or 0 for r in runs):7.0f}  "
            + " ".join(f"{c * 100:3.0f}%" for c in cores)
        )
    print(
        f"  throughput ratio per round {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f} (target >= {target}); "
        f"CPU per request, bare/service: median {statistics.median(cpu_ratios) if cpu_ratios else float('nan'):.3f}"
    )


def print_audit_totals(service_runs: list[Run]) -> None:
    sent = sum(r.issued for r in service_runs)
    completed = sum(r.requests for r in service_runs)
    rows = sum(r.audit["matched"] for r in service_runs)
    commits = sum(r.audit["commits"] or 0 for r in service_runs)
    print(
        f"\naudit rows (measured service runs): {rows} for {sent} requests sent, {completed} completed "
        f"within wrk's clock (lost: {sent - rows}); {rows / commits if commits else 0:.1f} rows per commit"
    )
