"""Expression-matrix compression (log1p, centring, exact SVD) and marker queries; pure NumPy.

No HTTP here: inputs arrive validated, and what the maths itself cannot use raises MatrixError or
MarkerError, which each endpoint maps to its own field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from genomics.compression import (
    Compression,
    CompressionParams,
    MatrixError,
    choose_k,
    finish,
    frozen,
    signed,
)
from genomics.truncated_svd import compress_sparse

BASIS_VERSION = 1


class MarkerError(ValueError):
    """Marker genes give no usable query direction in a project's basis."""


def compress(
    matrix: np.ndarray, target_dimensions: int, params: CompressionParams | None = None, seed: int = 0
) -> Compression:
    """log1p, then `compress_normalized`: the compress endpoint's meaning, kept as it always was."""
    log = matrix.log1p() if sp.issparse(matrix) else np.log1p(np.asarray(matrix, dtype=np.float64))
    return compress_normalized(log, target_dimensions, params, seed)


def compress_normalized(
    matrix, target_dimensions: int, params: CompressionParams | None = None, seed: int = 0, progress=None
) -> Compression:
    """Centre genes and keep k components of an already normalised cells × genes matrix.

    A dense ndarray gets the exact SVD (deterministic; the seed is only recorded). A scipy sparse
    matrix gets genomics.truncated_svd (implicit centring, never densified; seeded, so the same
    input and seed give the same output). `progress(fraction)` is called along the way if given."""
    params = params or CompressionParams()
    if sp.issparse(matrix):
        return compress_sparse(matrix.tocsr(), target_dimensions, params, seed, progress)
    log = np.asarray(matrix, dtype=np.float64)
    n_cells, n_genes = log.shape
    centred, means = _centre(log)
    if not centred.any():
        raise MatrixError("no variance to compress: every gene has the same value in every cell")

    # SVD of the matrix scaled to a largest |value| of 1: tiny counts (1e-200, denormals) would
    # otherwise underflow when squared and give 0/0 explained variance. Dividing (never multiplying
    # by 1/scale, which overflows for denormals) is exact up to rounding; s is scaled back after.
    scale = float(np.abs(centred).max())
    _, unit_s, vt = np.linalg.svd(centred / scale, full_matrices=False)
    s = unit_s * scale
    tol = unit_s[0] * max(n_cells, n_genes) * np.finfo(np.float64).eps  # numpy.linalg.matrix_rank's default
    numerical_rank = int(np.count_nonzero(unit_s > tol))
    rank = max(1, min(n_cells - 1, n_genes, numerical_rank))
    variance = (unit_s / unit_s[0]) ** 2  # largest 1: the sum is in [1, rank], no underflow to 0/0
    ratios = variance / variance.sum()
    k, reason = choose_k(ratios, rank, target_dimensions, params)
    components = signed(vt[:k].copy())
    # = U_k·S_k with the fixed signs, computed as the projection of the centred cells on the components.
    vectors = centred @ components.T
    if progress is not None:
        progress(1.0)
    return finish(
        vectors, components, means, s[:k].copy(), ratios[:k], n_genes, target_dimensions, rank, reason, params, seed
    )


def _centre(log: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    means = log.mean(axis=0)
    # A constant gene's float mean can differ from its value by an ulp; pin it so it centres to exactly 0.
    constant = (log == log[0]).all(axis=0)
    means[constant] = log[0, constant]
    centred = log - means
    centred[:, constant] = 0.0
    return centred, means


@dataclass(frozen=True, eq=False)
class Basis:
    """A stored projection basis: gene order, per-gene means and high values, k × genes components."""

    gene_names: tuple[str, ...]
    gene_means: np.ndarray
    components: np.ndarray
    gene_high: np.ndarray
    dimensions: int

    def to_json(self) -> dict[str, Any]:
        """Plain lists of Python floats (repr round-trips exactly), for a jsonb column."""
        return {
            "version": BASIS_VERSION,
            "dimensions": self.dimensions,
            "gene_names": list(self.gene_names),
            "gene_means": self.gene_means.tolist(),
            "gene_high": self.gene_high.tolist(),
            "components": self.components.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Basis:
        """Rebuild from `to_json()` output; ValueError if the stored shape is inconsistent (server-side data)."""
        if data.get("version") != BASIS_VERSION:
            raise ValueError(f"unsupported basis version {data.get('version')!r}")
        genes = tuple(data["gene_names"])
        means = np.asarray(data["gene_means"], dtype=np.float64)
        high = np.asarray(data["gene_high"], dtype=np.float64)
        components = np.asarray(data["components"], dtype=np.float64).reshape(-1, len(genes))
        dims = int(data["dimensions"])
        if means.shape != (len(genes),) or high.shape != (len(genes),) or components.shape[0] != dims:
            raise ValueError("stored basis arrays do not match its gene list and dimensions")
        return cls(genes, frozen(means), frozen(components), frozen(high), dims)


def basis_from(compression: Compression, gene_names: list[str], log_matrix) -> Basis:
    """Basis to store with a project; `log_matrix` is the normalised matrix given to `compress_normalized`
    (log1p of the counts for `compress`), dense or scipy sparse."""
    if sp.issparse(log_matrix):
        from genomics.sparse_stats import column_high

        high = column_high(log_matrix.tocsr(), compression.gene_means)
    else:
        log_matrix = np.asarray(log_matrix, dtype=np.float64)
        high = np.percentile(log_matrix, 95, axis=0)
        # A marker expressed in under 5% of cells has p95 = 0 (below its mean), which would point a
        # query *away* from the cells expressing it; use the gene's maximum for those instead.
        low = high <= compression.gene_means
        high[low] = log_matrix.max(axis=0)[low]
    return Basis(
        tuple(gene_names),
        compression.gene_means,
        compression.components,
        frozen(high),
        compression.achieved_dimensions,
    )


def encode_markers(basis: Basis, marker_genes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Query vector for marker genes (at their high value, all else at the mean); returns (vector, unknown)."""
    markers = list(dict.fromkeys(marker_genes))  # dedupe, keep order
    index = {name: j for j, name in enumerate(basis.gene_names)}
    known = [index[g] for g in markers if g in index]
    unknown = [g for g in markers if g not in index]
    if not known:
        raise MarkerError("none of these genes is in the project's basis")
    delta = basis.gene_high[known] - basis.gene_means[known]
    delta[np.abs(delta) <= 1e-12 * (1.0 + np.abs(basis.gene_means[known]))] = 0.0  # rounding, not signal
    vector = basis.components[:, known] @ delta
    # Rows of components are orthonormal, so |vector| ≤ |delta|; a tiny ratio means no usable direction.
    if not delta.any() or np.linalg.norm(vector) <= 1e-9 * np.linalg.norm(delta):
        raise MarkerError(
            "these marker genes do not vary in the project's data "
            "(or only outside its kept components), so they give no direction"
        )
    return vector, unknown
