"""QAC at 50,000 × 32: kNN search candidates, fit, and apply (CG against sparse LU): time and peak RSS.

    .venv/bin/python bench/qac.py [--cells 50000] [--dims 32] [--k 15] [--skip-slow]

Each measurement runs in a fresh child process, so its peak RSS (ru_maxrss) is its own; the
baseline row is a child that only imports the modules and makes the embedding.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genomics import qac  # noqa: E402


def embedding(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Planted clusters with unit noise: the shape of a real cell embedding, not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (20, d))
    return centres[rng.integers(0, 20, n)] + rng.normal(0, 1, (n, d))


def knn_sklearn_brute(z, k):
    return qac.nearest_neighbours(z, k)


def knn_sklearn_kdtree(z, k):
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, algorithm="kd_tree", n_jobs=1).fit(z).kneighbors()


def knn_ckdtree(z, k):
    from scipy.spatial import cKDTree

    distances, indices = cKDTree(z).query(z, k + 1, workers=1)
    return distances[:, 1:], indices[:, 1:]  # no duplicate points here, so column 0 is the cell itself


def knn_numpy_brute(z, k, chunk=1024):
    sq = np.einsum("ij,ij->i", z, z)
    n = len(z)
    distances, indices = np.empty((n, k)), np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d2 = sq[s:e, None] - 2.0 * (z[s:e] @ z.T) + sq[None, :]
        d2[np.arange(e - s), np.arange(s, e)] = np.inf
        part = np.argpartition(d2, k, axis=1)[:, :k]
        pd = np.take_along_axis(d2, part, 1)
        order = np.argsort(pd, axis=1)
        indices[s:e] = np.take_along_axis(part, order, 1)
        distances[s:e] = np.sqrt(np.maximum(np.take_along_axis(pd, order, 1), 0))
    return distances, indices


def apply_splu(graph, z0, beta, lam):
    from scipy.sparse.linalg import splu

    return splu(qac.system(graph, beta, lam).tocsc()).solve(z0)


def _run(task: str, n: int, d: int, k: int, out) -> None:
    z = embedding(n, d)
    graph = qac.fit(z, k) if task.startswith("apply") else None
    started = time.perf_counter()
    extra = ""
    if task.startswith("knn:"):
        fn = {
            "sklearn-brute": knn_sklearn_brute,
            "sklearn-kdtree": knn_sklearn_kdtree,
            "ckdtree": knn_ckdtree,
            "numpy-brute": knn_numpy_brute,
        }[task[4:]]
        fn(z, k)
    elif task == "fit:binary":
        extra = f"nnz {qac.fit(z, k).weights.size}"
    elif task == "fit:gaussian":
        extra = f"sigma {qac.fit(z, k, 'gaussian').sigma:.3f}"
    elif task == "apply:cg":
        zs = qac.smooth(graph, z, 0.7, 0.05)
        residual = np.linalg.norm(qac.system(graph, 0.7, 0.05) @ zs - z) / np.linalg.norm(z)
        m = qac.metrics(graph, z, zs)
        extra = f"rel. residual {residual:.1e}, fidelity {m['psi_fidelity']:.3f}, gain {m['coherence_gain']:.3f}"
    elif task == "apply:splu":
        apply_splu(graph, z, 0.7, 0.05)
    seconds = time.perf_counter() - started
    out.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, extra))


def measure(task: str, n: int, d: int, k: int) -> tuple[float, float, str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_run, args=(task, n, d, k, child))
    process.start()
    result = parent.recv()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--skip-slow", action="store_true", help="leave out the tree searches and sparse LU")
    args = parser.parse_args()
    tasks = ["baseline", "knn:sklearn-brute", "knn:numpy-brute"]
    if not args.skip_slow:
        tasks += ["knn:sklearn-kdtree", "knn:ckdtree"]
    tasks += ["fit:binary", "fit:gaussian", "apply:cg"]
    if not args.skip_slow:
        tasks.append("apply:splu")
    print(f"{args.cells} cells × {args.dims} dims, k = {args.k}, one thread of BLAS per child as configured")
    print(f"{'task':<20} {'seconds':>8} {'peak RSS MB':>12}  notes")
    for task in tasks:
        seconds, rss, extra = measure(task, args.cells, args.dims, args.k)
        print(f"{task:<20} {seconds:8.2f} {rss:12.0f}  {extra}", flush=True)


if __name__ == "__main__":
    main()
