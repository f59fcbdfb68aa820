"""Which truncated SVD for sparse PCA: randomized vs ARPACK vs PROPACK, time and accuracy (not a test).

    python bench/sparse_svd_solvers.py CELLS GENES [K]

Accuracy: each solver's singular values against the best found, and the subspace angle of its
components against ARPACK's (exact to 1e-13 against a dense SVD). Uses genomics.truncated_svd directly.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic_counts import synthetic_counts  # noqa: E402
from genomics.normalize import normalize  # noqa: E402
from genomics.sparse_stats import column_means  # noqa: E402
from genomics.truncated_svd import centred_operator, lanczos, randomized  # noqa: E402


def main() -> None:
    cells, genes = int(sys.argv[1]), int(sys.argv[2])
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    started = time.perf_counter()
    counts, _, _ = synthetic_counts(cells, genes)
    matrix = normalize(counts, "counts").matrix
    del counts
    print(
        f"{cells} x {genes}, nnz {matrix.nnz} ({matrix.nnz / cells / genes:.3%}), "
        f"made in {time.perf_counter() - started:.1f} s"
    )
    op = centred_operator(matrix, column_means(matrix))
    results = {}
    for name in ("randomized", "propack", "arpack"):
        started = time.perf_counter()
        s, vt = randomized(op, k, 0) if name == "randomized" else lanczos(op, k, 0, name)
        results[name] = (time.perf_counter() - started, s, vt)
    reference = results["arpack"]  # PROPACK returned non-orthogonal vectors here
    for name, (seconds, s, vt) in results.items():
        s_err = float(np.max(np.abs(s - reference[1]) / reference[1]))
        cosines = np.linalg.svd(vt @ reference[2].T, compute_uv=False)
        print(
            f"{name:10s} {seconds:7.1f} s  ({seconds / reference[0]:.2f}x arpack)  "
            f"max rel singular-value error {s_err:.2e}  worst subspace cosine {cosines.min():.6f}  "
            f"top-10 rel error {float(np.max(np.abs(s[:10] - reference[1][:10]) / reference[1][:10])):.2e}"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
