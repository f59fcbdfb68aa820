"""PCA of a sparse cells × genes matrix: truncated SVD of X − 1·μᵀ with the centring kept implicit.

The centred matrix is never materialised (it would be dense): a LinearOperator applies it as
X·V − 1·(μᵀV) and Xᵀ·U − μ·(1ᵀU). Matrix products run in X's own dtype (float32 for uploads: scipy
would otherwise copy the whole of X to float64 on every product); everything else is float64.
Explained-variance ratios use the exact total variance ‖X‖²_F − n‖μ‖², so they mean what the dense
path's ratios mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, svds

from genomics.compression import Compression, CompressionParams, MatrixError, choose_k, finish, signed
from genomics.sparse_stats import column_means, squared_norm

SOLVERS = ("randomized", "arpack", "propack")
DEFAULT_SOLVER = "arpack"  # exact; randomized is 3x faster at 100k x 20k but wrong past the top components (README)
OVERSAMPLES = 10  # extra random directions beyond k (Halko, Martinsson & Tropp 2011, §4.2)
ARPACK_TOL = 1e-6  # relative accuracy of the Ritz values: 1.5x faster than machine precision, s still to ~1e-8
POWER_ITERATIONS = 7  # passes of (X Xᵀ) that sharpen a slowly decaying spectrum (sklearn's default for small k)


def centred_operator(
    matrix: sp.csr_matrix, means: np.ndarray, on_product: Callable[[], None] | None = None
) -> LinearOperator:
    """X − 1·μᵀ as a LinearOperator (float64 in and out), without forming it; `on_product()` after each X·V."""
    dtype = matrix.dtype
    transposed = matrix.T  # CSC view: no copy

    def matmat(v: np.ndarray) -> np.ndarray:
        if on_product is not None:
            on_product()
        v = np.asarray(v, dtype=np.float64).reshape(matrix.shape[1], -1)
        product = np.asarray(matrix @ v.astype(dtype, copy=False), dtype=np.float64)
        return product - (means @ v)[None, :]

    def rmatmat(u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64).reshape(matrix.shape[0], -1)
        product = np.asarray(transposed @ u.astype(dtype, copy=False), dtype=np.float64)
        return product - np.outer(means, u.sum(axis=0))

    return LinearOperator(
        matrix.shape,
        matvec=lambda v: matmat(v).ravel(),
        rmatvec=lambda u: rmatmat(u).ravel(),
        matmat=matmat,
        rmatmat=rmatmat,
        dtype=np.float64,
    )


def randomized(
    op: LinearOperator, k: int, seed: int, progress: Callable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest singular values and right singular vectors (k × genes) by randomized range finding."""
    n, g = op.shape
    width = min(k + OVERSAMPLES, n, g)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(op.matmat(rng.standard_normal((g, width))))
    for i in range(POWER_ITERATIONS):
        # Re-orthonormalising after each product keeps the small singular directions from drowning.
        basis, _ = np.linalg.qr(op.rmatmat(basis))
        basis, _ = np.linalg.qr(op.matmat(basis))
        if progress is not None:
            progress((i + 1) / (POWER_ITERATIONS + 1))
    small = op.rmatmat(basis).T  # width × genes: the data projected on the range found
    _, s, vt = np.linalg.svd(small, full_matrices=False)
    return s[:k], vt[:k]


def lanczos(op: LinearOperator, k: int, seed: int, solver: str) -> tuple[np.ndarray, np.ndarray]:
    """The same through scipy's svds (ARPACK or PROPACK), with a seeded start vector."""
    tol = ARPACK_TOL if solver == "arpack" else 0
    _, s, vt = svds(op, k=k, solver=solver, tol=tol, random_state=np.random.default_rng(seed))
    order = np.argsort(s)[::-1]
    return s[order], vt[order]


def _product_progress(progress: Callable | None, k: int) -> Callable[[], None] | None:
    """ARPACK's number of products is not known ahead: report 0.95·n / (n + 10·k) after n products,
    which rises towards 0.95 and never passes it (it was 0.37 after ~330 products at 10k × 5k, k 50)."""
    if progress is None:
        return None
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if done % 10 == 0:
            progress(0.95 * done / (done + 10 * k))

    return step


def compress_sparse(
    matrix: sp.csr_matrix,
    target: int,
    params: CompressionParams,
    seed: int,
    progress: Callable | None = None,
    solver: str = DEFAULT_SOLVER,
) -> Compression:
    """genomics.pca.compress_normalized for a CSR matrix: same k rule, signs and statistics."""
    n_cells, n_genes = matrix.shape
    means = column_means(matrix)
    total = squared_norm(matrix) - n_cells * float(means @ means)
    if not total > 0:
        raise MatrixError("no variance to compress: every gene has the same value in every cell")
    wanted = max(1, min(target, params.max_k, n_cells - 1, n_genes))
    op = centred_operator(matrix, means, _product_progress(progress, wanted) if solver == "arpack" else None)
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}")
    if wanted >= min(n_cells, n_genes):
        # svds needs k < min(shape); a range finder as wide as the matrix is exact instead.
        solver = "randomized"
    if solver == "randomized":
        s, vt = randomized(op, wanted, seed, progress)
    else:
        s, vt = lanczos(op, wanted, seed, solver)
    tol = s[0] * max(n_cells, n_genes) * np.finfo(matrix.dtype).eps
    rank = max(1, min(n_cells - 1, n_genes, int(np.count_nonzero(s > tol))))
    ratios = s**2 / total
    k, reason = choose_k(ratios, rank, target, params)
    components = signed(np.ascontiguousarray(vt[:k], dtype=np.float64))
    vectors = op.matmat(components.T)
    if progress is not None:
        progress(1.0)
    return finish(
        vectors, components, means, s[:k].copy(), ratios[:k], n_genes, target, rank, reason, params, seed, solver
    )
