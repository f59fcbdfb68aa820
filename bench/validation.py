"""Benchmark: the NumPy fast path for big request arrays against validating them in pydantic, same run.

    .venv/bin/python bench/validation.py [--rounds 10] [--items 10000] [--dims 128]
                                         [--cells 3000] [--genes 2000] [--density 0.1] [--no-memory]

Two request bodies (seeded), serialised once and parsed once with json.loads outside the timing, so
both paths validate the very same Python objects:
  vectors: an upsert of --items items × --dims dimensions (values rounded to 6 decimals as a JSON
           client sends them), ids "v<i>", metadata {"group": i % 10, "i": i}; collection metric cosine.
  matrix:  a genomics build of --cells cells × --genes genes of integer counts, about --density of
           them non-zero (geometric counts ≥ 1); gene names "G<j>", no cell_metadata, mode "cell".

Paths, each ending with the same NumPy array and the same checks after it:
  (a) service:  api.schemas.collections.parse_items(body, dims, "cosine") and
                api.schemas.genomics.parse_build(body), as the service runs them: the models
                declare the arrays as SkipValidation[...] and api/schemas/arrays.py checks them
                (one type scan, one np.array).
  (b) pydantic: the same models with only the array field replaced (bench/validation_models.py):
                a vector is list[float] with strict=True, allow_inf_nan=False and the fast path's range
                (±float32 max), the matrix list[list[float]] with strict=True, allow_inf_nan=False
                and ge=0; model_validate, then np.asarray(..., float32 / float64) and the rest of
                parse_items / parse_build unchanged (duplicate ids, dimensions, metadata, pgvector's
                comparability rule; gene names, shape, cell records).
Before timing, each pair is checked to give equal arrays and to refuse the same bad element.

Timing: one warm-up call each, then --rounds rounds; in each round both cases run (a) and (b) back to
back, the order flipped every round (so with an even --rounds each goes first equally often), each
call after gc.collect() and right after a json.loads of its body, as in the service. Each call's wall
time and this process's user and system CPU time (getrusage) are taken: user CPU is the least
sensitive to the other core's load; system CPU is mostly page faults on fresh memory (NumPy asks for
transparent huge pages on big arrays, pydantic's new float objects fill fresh pymalloc arenas), and
varies with the kernel's state. json.loads and the service's own parser (api.body.parse_json:
duplicate-key check and long-integer guard) are timed in the same rounds, for context. Prints each
round, the medians, the ratios of the medians b/a, and the range of the per-round ratios, overall and
by which path went first.
Then (unless --no-memory) one untimed pass per path under tracemalloc: the peak of new allocations
during the call (Python objects and NumPy buffers; pydantic-core's Rust-side scratch is not traced).

Prints figures only and writes nothing. With the defaults it takes about 45-75 s. The two cores are
shared, so read the ratios; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.body import parse_json  # noqa: E402
from api.problems import InvalidInput  # noqa: E402
from api.schemas.collections import parse_items  # noqa: E402
from api.schemas.genomics import parse_build  # noqa: E402
from bench.validation_models import parse_build_pydantic, parse_items_pydantic  # noqa: E402

# ---------------------------------------------------------------- data


def vectors_body(items: int, dims: int, seed: int = 0) -> dict:
    x = np.round(np.random.default_rng(seed).standard_normal((items, dims)), 6)
    return {
        "items": [{"id": f"v{i}", "vector": x[i].tolist(), "metadata": {"group": i % 10, "i": i}} for i in range(items)]
    }


def matrix_body(cells: int, genes: int, density: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    counts = (rng.random((cells, genes)) < density) * rng.geometric(0.3, (cells, genes))
    return {
        "project_id": "bench-validation",
        "gene_names": [f"G{j}" for j in range(genes)],
        "expression_matrix": counts.tolist(),
        "target_dimensions": 50,
        "mode": "cell",
    }


# ---------------------------------------------------------------- checks (untimed)


def refusal(fn: Callable[[Any], Any], body: Any) -> str:
    """Where a path refuses `body`, as a JSON pointer."""
    try:
        fn(body)
    except InvalidInput as exc:
        return exc.pointer
    except ValidationError as exc:
        return "".join(f"/{part}" for part in exc.errors()[0]["loc"])
    return "accepted"


def check_equivalent(
    name: str, fast: Callable, slow: Callable, array_of: Callable, small: dict, spoil: Callable[[dict], None]
) -> None:
    a, b = array_of(fast(small)), array_of(slow(small))
    if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
        raise SystemExit(f"error: {name}: the two paths give different arrays")
    bad = json.loads(json.dumps(small))
    spoil(bad)
    where_a, where_b = refusal(fast, bad), refusal(slow, bad)
    if where_a == "accepted" or where_b == "accepted":
        raise SystemExit(f"error: {name}: a bad element was accepted ({where_a!r}, {where_b!r})")
    print(
        f"  {name}: equal arrays ({a.dtype}, {a.shape[0]}×{a.shape[1]} on a small body); "
        f"a bad element is refused by both (a at {where_a}, b at {where_b})"
    )


# ---------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, float, float]:
    """(wall, user CPU, system CPU) of one call in ms, after a full collection."""
    gc.collect()
    wall, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (
        (time.perf_counter() - wall) * 1000,
        (after.ru_utime - before.ru_utime) * 1000,
        (after.ru_stime - before.ru_stime) * 1000,
    )


def peak_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return (peak - base) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="interleaved rounds (default 10; even, so each path goes first equally often)",
    )
    parser.add_argument("--items", type=int, default=10_000, help="vectors in the upsert (default 10000)")
    parser.add_argument("--dims", type=int, default=128, help="dimensions of each vector (default 128)")
    parser.add_argument("--cells", type=int, default=3000, help="rows of the expression matrix (default 3000)")
    parser.add_argument("--genes", type=int, default=2000, help="columns of the expression matrix (default 2000)")
    parser.add_argument("--density", type=float, default=0.1, help="fraction of non-zero counts (default 0.1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args()
    if args.rounds < 1 or not 0 <= args.density <= 1:
        parser.error("--rounds must be ≥ 1 and --density within [0, 1]")

    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"python {sys.version.split()[0]}, numpy {np.__version__}, pydantic {__import__('pydantic').VERSION}"
    )
    dims = args.dims
    bodies = {
        "vectors": json.dumps(vectors_body(args.items, dims)).encode(),
        "matrix": json.dumps(matrix_body(args.cells, args.genes, args.density)).encode(),
    }
    parsed = {name: json.loads(body) for name, body in bodies.items()}
    paths = {
        "vectors": (
            lambda body: parse_items(body, dims, "cosine"),
            lambda body: parse_items_pydantic(body, dims, "cosine"),
            lambda result: result.vectors,
        ),
        "matrix": (parse_build, parse_build_pydantic, lambda result: result.matrix),
    }
    print(f"vectors: upsert of {args.items:,} items × {dims} dims, body {len(bodies['vectors']) / 1e6:.1f} MB")
    print(
        f"matrix:  build of {args.cells:,} cells × {args.genes:,} genes, integer counts, "
        f"{np.mean(np.asarray(parsed['matrix']['expression_matrix']) != 0):.1%} non-zero, "
        f"body {len(bodies['matrix']) / 1e6:.1f} MB"
    )

    print("\nchecks:")

    def spoil_vector(body):
        body["items"][1]["vector"][3] = float("nan")

    def spoil_count(body):
        body["expression_matrix"][1][3] = -1

    check_equivalent("vectors", *paths["vectors"], vectors_body(5, dims, seed=1), spoil_vector)
    check_equivalent("matrix", *paths["matrix"], matrix_body(4, 6, 0.5, seed=1), spoil_count)
    for name, (fast, slow, array_of) in paths.items():  # warm-up, and the full-size arrays agree too
        if not np.array_equal(array_of(fast(parsed[name])), array_of(slow(parsed[name]))):
            raise SystemExit(f"error: {name}: the two paths give different arrays on the full body")
    print("  full-size bodies: equal arrays")

    columns = ("json.loads", "parse_json", "a", "b")
    wall, user, system = ({name: {column: [] for column in columns} for name in paths} for _ in range(3))

    def record(name: str, column: str, call: Callable[[], Any]) -> None:
        for store, value in zip((wall, user, system), timed(call), strict=True):
            store[name][column].append(value)

    print(
        "\nrounds (ms; a = service fast path, b = all-pydantic, each wall (user CPU + system CPU);"
        " json.loads and parse_json for context):"
    )
    for number in range(1, args.rounds + 1):
        for name, (fast, slow, _) in paths.items():
            body, data = bodies[name], parsed[name]
            order = [("a", lambda fast=fast, data=data: fast(data)), ("b", lambda slow=slow, data=data: slow(data))]
            if number % 2 == 0:
                order.reverse()
            for column, fn in order:  # each path right after a json.loads of its body, as in the service
                record(name, "json.loads", lambda body=body: json.loads(body))
                record(name, column, fn)
            record(name, "parse_json", lambda body=body: parse_json(body))
            w, u, y = ({column: store[name][column][-1] for column in columns} for store in (wall, user, system))
            print(
                f"  round {number:2d} {name:8s} ({'a' if number % 2 else 'b'} first)  "
                f"json.loads {statistics.mean(wall[name]['json.loads'][-2:]):6.1f}  "
                f"parse_json {w['parse_json']:6.1f}  "
                f"a {w['a']:6.1f} ({u['a']:.0f}+{y['a']:.0f})  b {w['b']:6.1f} ({u['b']:.0f}+{y['b']:.0f})  "
                f"b/a {w['b'] / w['a']:.2f}, user CPU {u['b'] / u['a']:.2f}",
                flush=True,
            )

    print(f"\nmedians over {args.rounds} rounds:")
    for name in paths:
        m, mu, ms = (
            {column: statistics.median(store[name][column]) for column in columns} for store in (wall, user, system)
        )
        ratios = [b / a for a, b in zip(wall[name]["a"], wall[name]["b"], strict=True)]
        by_order = {
            first: statistics.median(ratios[index::2]) for first, index in (("a", 0), ("b", 1)) if ratios[index::2]
        }
        print(f"  {name:8s} json.loads {m['json.loads']:6.1f} ms, parse_json {m['parse_json']:6.1f} ms")
        print(f"  {'':8s} (a) service  {m['a']:6.1f} ms wall, user CPU {mu['a']:6.1f}, system CPU {ms['a']:5.1f}")
        print(f"  {'':8s} (b) pydantic {m['b']:6.1f} ms wall, user CPU {mu['b']:6.1f}, system CPU {ms['b']:5.1f}")
        print(
            f"  {'':8s} b/a {m['b'] / m['a']:.2f} wall, {mu['b'] / mu['a']:.2f} user CPU; "
            f"b-a {m['b'] - m['a']:+.1f} ms; "
            f"per-round wall b/a {min(ratios):.2f}-{max(ratios):.2f} (median {statistics.median(ratios):.2f}, "
            + ", ".join(f"{first} first {value:.2f}" for first, value in by_order.items())
            + f"); b faster in {sum(r < 1 for r in ratios)} of {len(ratios)} rounds"
        )

    if not args.no_memory:
        print("\npeak new allocations during the call (tracemalloc, one untimed pass each):")
        for name, (fast, slow, array_of) in paths.items():
            data = parsed[name]
            a_mb = peak_mb(lambda fast=fast, data=data: fast(data))
            b_mb = peak_mb(lambda slow=slow, data=data: slow(data))
            out_mb = array_of(fast(data)).nbytes / 1e6
            print(
                f"  {name:8s} (a) {a_mb:7.1f} MB  (b) {b_mb:7.1f} MB  b/a {b_mb / a_mb:.2f}  "
                f"(the resulting array alone: {out_mb:.1f} MB)"
            )

    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
