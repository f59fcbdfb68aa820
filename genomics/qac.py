"""QAC as it ran in production: graph-Laplacian smoothing of a cell embedding over its kNN graph.

fit: a k-nearest-neighbour graph W over Z₀ (binary or gaussian weights), symmetrised (W + Wᵀ)/2.
apply: Z* = argmin ‖Z − Z₀‖² + β·tr(ZᵀLZ) + λ‖Z‖², i.e. (I(1+λ) + βL) Z* = Z₀ with L = D − W.
Pure NumPy/SciPy/scikit-learn; no IO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

CG_TOLERANCE = 1e-8  # relative residual per column: far below float32 output precision
CG_MAX_ITERATIONS = 2000
WEIGHTS = ("binary", "gaussian")


class EmbeddingError(ValueError):
    """The embedding cannot be used: wrong shape, not finite, too few cells for k."""


class RowCountMismatch(ValueError):
    """An apply's embedding has a different number of cells than the fitted graph."""


class NotConverged(RuntimeError):
    """Conjugate gradients did not reach the tolerance (cannot happen for an SPD system of sane size)."""


@dataclass(frozen=True, eq=False)
class Graph:
    """The symmetrised weight matrix W as CSR arrays, and the σ the gaussian weights used."""

    n_cells: int
    indptr: np.ndarray  # int64, n_cells + 1
    indices: np.ndarray  # int32, nnz
    weights: np.ndarray  # float64, nnz
    sigma: float | None  # None for binary weights

    def matrix(self) -> sparse.csr_matrix:
        return sparse.csr_matrix((self.weights, self.indices, self.indptr), shape=(self.n_cells, self.n_cells))

    def laplacian(self) -> sparse.csr_matrix:
        w = self.matrix()
        return (sparse.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()


def checked_embedding(z: np.ndarray) -> np.ndarray:
    """A 2-D float64 array of finite numbers with at least one cell and one dimension."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise EmbeddingError("the embedding must be a non-empty cells × dimensions matrix")
    if not np.isfinite(z).all():
        raise EmbeddingError("the embedding must hold finite numbers only")
    return z


def nearest_neighbours(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's k nearest other cells (Euclidean): distances and indices, n × k, nearest first.

    scikit-learn's brute-force search (chunked BLAS) is the fastest in-process choice measured at
    50,000 × 32 (bench/qac.py): trees degrade in 32 dimensions."""
    # Searched at unit scale (neighbours do not change under scaling): the search works with squared
    # norms, which underflow to 0 for entries near 1e-300 and would make every cell equidistant.
    scale = float(np.abs(z).max()) or 1.0
    search = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean", n_jobs=1).fit(z / scale)
    distances, indices = search.kneighbors()  # no query: each cell is left out of its own neighbours
    return distances * scale, indices


def fit(z0: np.ndarray, k: int, weight: str = "binary", sigma: float | None = None) -> Graph:
    """The kNN graph of Z₀ with symmetrised weights; σ defaults to the median k-th neighbour distance."""
    z0 = checked_embedding(z0)
    n = z0.shape[0]
    if not 1 <= k < n:
        raise EmbeddingError(f"k_nn must be at least 1 and less than the number of cells ({n}), got {k}")
    if weight not in WEIGHTS:
        raise EmbeddingError(f"weight must be one of {WEIGHTS}, got {weight!r}")
    distances, indices = nearest_neighbours(z0, k)
    used_sigma = None
    if weight == "binary":
        values = np.ones(n * k)
    else:
        used_sigma = float(sigma) if sigma is not None else _median_kth(distances)
        # (d/σ)² rather than d²/σ²: a σ so small that σ² underflows to 0 must not turn 0/0 into NaN.
        with np.errstate(over="ignore"):
            values = np.exp(-0.5 * (distances.ravel() / used_sigma) ** 2)
    rows = np.repeat(np.arange(n), k)
    w = sparse.csr_matrix((values, (rows, indices.ravel())), shape=(n, n))
    w = ((w + w.T) * 0.5).tocsr()
    w.sum_duplicates()
    w.sort_indices()
    return Graph(n, w.indptr.astype(np.int64), w.indices.astype(np.int32), w.data.astype(np.float64), used_sigma)


def _median_kth(distances: np.ndarray) -> float:
    """σ for gaussian weights; when most cells sit on duplicates (median 0), the positive distances decide."""
    kth = distances[:, -1]
    sigma = float(np.median(kth))
    if sigma > 0:
        return sigma
    positive = kth[kth > 0]
    return float(np.median(positive)) if positive.size else 1.0  # all cells identical: every weight is 1


def system(graph: Graph, beta: float, lambda_entropy: float) -> sparse.csr_matrix:
    """A = (1+λ)I + βL: symmetric positive definite, since L is positive semi-definite and 1+λ ≥ 1."""
    identity = sparse.identity(graph.n_cells, format="csr")
    return ((1.0 + lambda_entropy) * identity + beta * graph.laplacian()).tocsr()


def smooth(graph: Graph, z0: np.ndarray, beta: float, lambda_entropy: float) -> np.ndarray:
    """Z* solving (I(1+λ) + βL) Z* = Z₀ with the graph stored at fit time."""
    z0 = checked_embedding(z0)
    if z0.shape[0] != graph.n_cells:
        raise RowCountMismatch(f"the model was fitted on {graph.n_cells} cells; this embedding has {z0.shape[0]}")
    if beta == 0:
        return z0 / (1.0 + lambda_entropy)
    # Solved at unit scale, so that neither 1e-300 nor 1e38 entries underflow or overflow the norms.
    scale = float(np.abs(z0).max())
    if scale == 0:
        return np.zeros_like(z0)
    return conjugate_gradients(system(graph, beta, lambda_entropy), z0 / scale) * scale


def conjugate_gradients(a: sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    """Jacobi-preconditioned CG on every column of B at once (one sparse product per step for all).

    Measured against a sparse LU factorisation in bench/qac.py: a kNN graph is an expander, so LU fills in."""
    inverse_diagonal = 1.0 / a.diagonal()
    x = b * inverse_diagonal[:, None]
    r = b - a @ x
    z = r * inverse_diagonal[:, None]
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    target = CG_TOLERANCE * np.maximum(np.linalg.norm(b, axis=0), np.finfo(float).tiny)
    for _ in range(CG_MAX_ITERATIONS):
        if (np.linalg.norm(r, axis=0) <= target).all():
            return x
        ap = a @ p
        pap = np.einsum("ij,ij->j", p, ap)
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)  # converged columns stop moving
        x += p * alpha
        r -= ap * alpha
        z = r * inverse_diagonal[:, None]
        rz_next = np.einsum("ij,ij->j", r, z)
        step = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
        p = z + p * step
        rz = rz_next
    raise NotConverged(f"conjugate gradients did not converge in {CG_MAX_ITERATIONS} steps")


def dirichlet_energy(laplacian: sparse.csr_matrix, z: np.ndarray) -> float:
    """E = tr(ZᵀLZ) = ½ Σᵢⱼ wᵢⱼ ‖zᵢ − zⱼ‖²: how much the embedding varies along the graph's edges."""
    return float(np.einsum("ij,ij->", z, laplacian @ z))


def metrics(graph: Graph, z0: np.ndarray, smoothed: np.ndarray) -> dict[str, float]:
    """psi_fidelity = 1 − ‖Z*−Z₀‖/‖Z₀‖ and coherence_gain = (E₀−E₁)/E₀ (0 when E₀ = 0: nothing to smooth)."""
    norm0 = float(np.linalg.norm(z0))
    fidelity = 1.0 - float(np.linalg.norm(smoothed - z0)) / norm0 if norm0 > 0 else 1.0
    lap = graph.laplacian()
    e0, e1 = dirichlet_energy(lap, z0), dirichlet_energy(lap, smoothed)
    # E₀ is a sum of squares that rounding can leave a hair above 0 for an embedding constant on the
    # graph: below that scale the ratio is noise, and there is nothing to smooth.
    scale = float(np.einsum("ij,ij->", z0, z0 * np.asarray(lap.diagonal())[:, None]))
    gain = (e0 - e1) / e0 if e0 > 1e-12 * scale and e0 > 0 else 0.0
    return {"psi_fidelity": fidelity, "coherence_gain": gain}
