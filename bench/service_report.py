"""Results for bench/service.py: audit rows matched to the requests wrk sent, and the printed tables."""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg

from bench.wrk_load import Run

# ---------------------------------------------------------------- audit rows

# One row per wrk thread of a run. `matched` counts the distinct ids 1..issued, i.e. the requests
# wrk sent; anything else carrying the run's prefix (a duplicate, wrk's unsent id 0) is `unexpected`.
AUDIT_BY_RUN = """
SELECT thread,
       count(*) AS rows,
       count(DISTINCT n) FILTER (WHERE n BETWEEN 1 AND coalesce(($2::bigint[])[thread], 0)) AS matched,
       count(*) FILTER (WHERE status = '200') AS ok,
       count(*) FILTER (WHERE status = '499') AS client_closed
FROM (SELECT split_part(trace_id, '.', 3)::int AS thread,
             split_part(trace_id, '.', 4)::bigint AS n,
             metadata->>'status_code' AS status
      FROM audit_logs
      WHERE trace_id LIKE $1) AS tagged
GROUP BY thread
"""

# Rows inserted by one statement share its transaction id: distinct xmin = commits (group-commit batches).
AUDIT_COMMITS = "SELECT count(DISTINCT xmin::text) FROM audit_logs WHERE trace_id LIKE $1"


async def _audit_rows(dsn: str, prefix: str, issued_per_thread: list[int], with_commits: bool) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        pattern = prefix.replace("_", r"\_") + ".%"
        rows = await conn.fetch(AUDIT_BY_RUN, pattern, issued_per_thread)
        commits = await conn.fetchval(AUDIT_COMMITS, pattern) if with_commits else None
    finally:
        await conn.close()
    counts = {key: sum(r[key] for r in rows) for key in ("rows", "matched", "ok", "client_closed")}
    return {**counts, "commits": commits}


def audit_rows(dsn: str, prefix: str, issued_per_thread: list[int], with_commits: bool = False) -> dict:
    return asyncio.run(_audit_rows(dsn, prefix, issued_per_thread, with_commits))


def settle_audit(dsn: str, run: Run, tag: str, limit: float = 10.0) -> float:
    """Wait until the service has drained `run`, then record its audit rows in run.audit.

    Rows are committed before a response leaves, so once every request wrk sent has its row, or
    the count stays put for half a second, the service has drained this run. Returns the wait.
    """
    started = time.monotonic()
    last, stable_since = None, started
    while True:
        counts = audit_rows(dsn, f"{tag}.{run.run_id}", run.issued_per_thread)
        now = time.monotonic()
        if counts["rows"] != last:
            last, stable_since = counts["rows"], now
        if counts["matched"] >= run.issued or now - stable_since >= 0.5 or now - started >= limit:
            break
        time.sleep(0.1)
    counts = audit_rows(dsn, f"{tag}.{run.run_id}", run.issued_per_thread, with_commits=True)
    run.audit = {**counts, "missing": run.issued - counts["matched"], "unexpected": counts["rows"] - counts["matched"]}
    return time.monotonic() - started


# ---------------------------------------------------------------- report


def _num(value: float | None, spec: str, width: int) -> str:
    return f"{value:>{width}{spec}}" if value is not None else f"{'n/a':>{width}}"


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_ratio(a: float | None, b: float | None, width: int = 9) -> str:
    return f"{a / b:>{width}.3f}" if a is not None and b else f"{'n/a':>{width}}"


def print_runs(runs: list[Run]) -> None:
    print()
    print(
        f"{'run':<10} {'app':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'completed':>10} {'non-2xx':>8} {'sock err':>9} {'app CPU':>8} {'CPU us/req':>11}"
    )
    for r in runs:
        print(
            f"{r.label:<10} {r.app:<10} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f} "
            f"{r.requests:>10} {r.errors.get('status', 0):>8} {r.socket_errors:>9} "
            f"{_num(r.cores, '.2f', 8)} {_num(r.cpu_us_per_request, '.0f', 11)}"
        )
        errs = {k: v for k, v in r.errors.items() if v and k != "status"}
        if errs:
            print(f"{'':<21} socket errors: " + ", ".join(f"{k} {v}" for k, v in errs.items()))
    print(
        "  completed = responses wrk received before its deadline; non-2xx and socket errors are counted apart by wrk;"
    )
    print("  app CPU = cores the app's one process used during the run; CPU us/req = that CPU per completed request")


def print_summary(rounds: list[Run]) -> dict:
    medians = {}
    for app in ("service", "reference"):
        mine = [r for r in rounds if r.app == app]
        medians[app] = {
            "rps": _median(r.rps for r in mine),
            "p50": _median(r.p50_ms for r in mine),
            "p99": _median(r.p99_ms for r in mine),
            "cpu": _median(r.cpu_us_per_request for r in mine),
        }
    s, ref = medians["service"], medians["reference"]
    print()
    print(f"median of {len(rounds) // 2} rounds   {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    print(f"  service            {s['rps']:>9.1f} {s['p50']:>8.2f} {s['p99']:>8.2f} {_num(s['cpu'], '.0f', 11)}")
    print(
        f"  reference          {ref['rps']:>9.1f} {ref['p50']:>8.2f} {ref['p99']:>8.2f} {_num(ref['cpu'], '.0f', 11)}"
    )
    print(
        f"  service/reference  {fmt_ratio(s['rps'], ref['rps'])} {fmt_ratio(s['p50'], ref['p50'], 8)} "
        f"{fmt_ratio(s['p99'], ref['p99'], 8)} {fmt_ratio(s['cpu'], ref['cpu'], 11)}"
    )
    pairs = list(zip(rounds[0::2], rounds[1::2], strict=False))
    per_round = [a.rps / b.rps for a, b in pairs if b.rps]
    print(
        f"throughput ratio service/reference: {fmt_ratio(s['rps'], ref['rps'], 0)} (of the medians); "
        f"per round {', '.join(f'{x:.3f}' for x in per_round)}, median {statistics.median(per_round):.3f}; "
        f"target >= 0.8"
    )
    if ref["cpu"] and s["cpu"]:
        print(
            f"  CPU-bound estimate: reference CPU per request / service CPU per request = {ref['cpu'] / s['cpu']:.3f}"
        )
        short = [r for r in rounds if r.cores is not None and r.cores < 0.9]
        if short:
            print(
                f"  note: in {len(short)} of {len(rounds)} runs the app used < 0.9 of a core (starved by other load on "
                f"the machine, or waiting on the database), so the req/s ratios are noisy; the CPU-per-request ratio "
                f"is steadier when both apps are CPU-bound"
            )
    return medians


def print_audit(service_runs: list[Run], service_failures) -> int:
    print()
    print(
        "audit rows (service; matched to requests one to one by X-Request-ID = trace_id, "
        "counted after each run drained)"
    )
    print(
        f"{'run':<10} {'sent':>8} {'wrk counted':>12} {'in flight':>10} {'rows':>8} {'status 200':>11} "
        f"{'499':>6} {'missing':>8} {'unexpected':>11} {'commits':>8} {'rows/commit':>12}"
    )
    sent = matched = counted = unexpected = 0
    for r in service_runs:
        a = r.audit
        print(
            f"{r.label:<10} {r.issued:>8} {r.requests:>12} {r.issued - r.requests:>10} {a['rows']:>8} {a['ok']:>11} "
            f"{a['client_closed']:>6} {a['missing']:>8} {a['unexpected']:>11} {_num(a['commits'], 'd', 8)} "
            f"{_num(a['rows'] / a['commits'] if a['commits'] else None, '.1f', 12)}"
        )
        sent += r.issued
        matched += a["matched"]
        counted += r.requests
        unexpected += a["unexpected"]
    print(f"{'total':<10} {sent:>8} {counted:>12} {sent - counted:>10} {matched + unexpected:>8}")
    print()
    print(f"audit rows written: {matched} for {sent} requests (lost: {sent - matched})")
    print("  'requests' = every request wrk sent to the service, warm-up included; wrk's own count of completed")
    print(
        f"  responses is {counted}: the other {sent - counted} were in flight when wrk's clock ran out (at most one per"
    )
    print("  connection per run); the service answered them after wrk stopped reading, so they have rows too.")
    print(
        f"  rows matching no sent request: {unexpected}; "
        f"audit write failures reported by the service: {service_failures}"
    )
    return matched
