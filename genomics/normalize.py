"""Expression normalisation before PCA: counts → library size 10⁴ + log1p, log data as is, scaled data as is.

`normalize(matrix, how)` works on a dense array or a scipy CSR matrix without densifying it, and
returns the matrix with the setting actually applied (auto resolves to counts, log or none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from genomics.pca import MatrixError

SETTINGS = ("auto", "counts", "log", "none", "log1p")
TARGET_SUM = 1e4  # the scanpy convention: counts per 10,000 before log1p
CHUNK = 1 << 23  # elements scanned at once, so checks on 100M values make no full-size temporaries


@dataclass(frozen=True, eq=False)
class Normalized:
    """The normalised matrix (dense float64 or CSR, float32 kept) and which setting was applied."""

    matrix: np.ndarray | sp.csr_matrix
    applied: str  # counts, log, none or log1p


def _values(matrix) -> np.ndarray:
    return matrix.data if sp.issparse(matrix) else np.asarray(matrix).reshape(-1)


def _chunks(values: np.ndarray):
    for start in range(0, values.size, CHUNK):
        yield values[start : start + CHUNK]


def detect(matrix) -> str:
    """What `auto` means for this matrix: counts (integers ≥ 0), log (other values ≥ 0) or none (any negative)."""
    integers = True
    for chunk in _chunks(_values(matrix)):
        if (chunk < 0).any():
            return "none"
        if integers and not np.array_equal(chunk, np.floor(chunk)):
            integers = False
    return "counts" if integers else "log"


def normalize(matrix, how: str = "auto") -> Normalized:
    """Apply `how` (one of SETTINGS) to a cells × genes matrix; MatrixError(field="normalize") if it cannot apply."""
    if how not in SETTINGS:
        raise MatrixError(f"normalize must be one of {', '.join(SETTINGS)}, not {how!r}", field="normalize")
    applied = detect(matrix) if how == "auto" else how
    if applied in ("log", "none"):
        return Normalized(_as_float(matrix), applied)
    if any((chunk < 0).any() for chunk in _chunks(_values(matrix))):
        raise MatrixError(f"normalize={how!r} needs values ≥ 0, and this matrix has negative values", field="normalize")
    if applied == "log1p":
        return Normalized(_log1p(_as_float(matrix)), applied)
    return Normalized(_log1p(_library_size(_as_float(matrix))), applied)


def _as_float(matrix):
    """A float copy of the values (CSR: of its data only; the structure is shared), to normalise in place."""
    if sp.issparse(matrix):
        csr = matrix.tocsr()
        dtype = csr.dtype if csr.dtype in (np.float32, np.float64) else np.float32
        return sp.csr_matrix((csr.data.astype(dtype, copy=True), csr.indices, csr.indptr), shape=csr.shape)
    return np.array(matrix, dtype=np.float64, copy=True)


def _log1p(matrix):
    np.log1p(_values(matrix), out=_values(matrix))  # log1p(0) = 0: sparse structure unchanged
    return matrix


def row_blocks(indptr: np.ndarray, rows: int = 4096):
    """(first row, end row, first value, end value) of consecutive row blocks of a CSR matrix."""
    n = indptr.size - 1
    for a in range(0, n, rows):
        b = min(a + rows, n)
        yield a, b, int(indptr[a]), int(indptr[b])


def row_sums(matrix: sp.csr_matrix) -> np.ndarray:
    """Per-row sums in float64, a block of rows at a time (no full-size float64 copy)."""
    sums = np.zeros(matrix.shape[0])
    for a, b, lo, hi in row_blocks(matrix.indptr):
        running = np.concatenate(([0.0], np.cumsum(matrix.data[lo:hi], dtype=np.float64)))
        sums[a:b] = running[matrix.indptr[a + 1 : b + 1] - lo] - running[matrix.indptr[a:b] - lo]
    return sums


def _library_size(matrix):
    """Scale each cell to TARGET_SUM in total, in place; an all-zero cell stays zero."""
    if sp.issparse(matrix):
        sums = row_sums(matrix)
        factor = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
        for a, b, lo, hi in row_blocks(matrix.indptr):
            counts = np.diff(matrix.indptr[a : b + 1])
            matrix.data[lo:hi] *= np.repeat(factor[a:b], counts).astype(matrix.dtype)
        return matrix
    sums = matrix.sum(axis=1, keepdims=True)
    matrix *= np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
    return matrix
