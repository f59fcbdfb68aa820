"""Per-gene statistics of a CSR cells × genes matrix in float64, a chunk at a time (no dense copy).

Float32 values are summed in float64 chunks: 100M float32 values would need 800 MB as float64 at once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

CHUNK = 1 << 22  # stored values per chunk


def _chunks(matrix: sp.csr_matrix):
    for start in range(0, matrix.nnz, CHUNK):
        end = min(start + CHUNK, matrix.nnz)
        yield matrix.indices[start:end], matrix.data[start:end].astype(np.float64)


def column_means(matrix: sp.csr_matrix) -> np.ndarray:
    """Mean of each column (zeros included), float64."""
    sums = np.zeros(matrix.shape[1])
    for columns, values in _chunks(matrix):
        sums += np.bincount(columns, weights=values, minlength=matrix.shape[1])
    return sums / matrix.shape[0]


def squared_norm(matrix: sp.csr_matrix) -> float:
    """‖X‖²_F in float64."""
    return float(sum(np.dot(values, values) for _, values in _chunks(matrix)))


def all_finite(matrix: sp.csr_matrix) -> bool:
    return all(np.isfinite(matrix.data[s : s + CHUNK]).all() for s in range(0, matrix.nnz, CHUNK))


def column_high(matrix: sp.csr_matrix, means: np.ndarray, q: float = 95.0) -> np.ndarray:
    """Per column: its q-th percentile (NumPy's linear interpolation, zeros included), or its
    maximum where that percentile is not above the mean — genomics.pca.basis_from's rule."""
    n_cells, n_genes = matrix.shape
    csc = matrix.tocsc()  # columns contiguous: one sort per gene of its stored values only
    high = np.empty(n_genes)
    position = q / 100.0 * (n_cells - 1)
    lower, upper = int(np.floor(position)), int(np.ceil(position))
    weight = position - lower
    for j in range(n_genes):
        stored = np.sort(csc.data[csc.indptr[j] : csc.indptr[j + 1]].astype(np.float64))
        value = _ranked(stored, n_cells, lower) + weight * (
            _ranked(stored, n_cells, upper) - _ranked(stored, n_cells, lower)
        )
        if value <= means[j]:
            top = float(stored[-1]) if stored.size else 0.0
            value = top if stored.size == n_cells else max(top, 0.0)  # an implicit zero counts too
        high[j] = value
    return high


def _ranked(stored: np.ndarray, n_cells: int, i: int) -> float:
    """The i-th smallest value of a column whose sorted stored values are `stored`, the rest zeros."""
    negatives = int(np.searchsorted(stored, 0.0, side="left"))
    positives_from = int(np.searchsorted(stored, 0.0, side="right"))
    zeros = n_cells - stored.size + (positives_from - negatives)  # implicit zeros plus stored ones
    if i < negatives:
        return float(stored[i])
    if i < negatives + zeros:
        return 0.0
    return float(stored[positives_from + i - negatives - zeros])
