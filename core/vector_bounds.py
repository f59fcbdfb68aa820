"""Which vectors pgvector can compare: the one rule every stored and query vector obeys. Pure NumPy.

pgvector 0.8 (src/vector.c) accumulates every distance in float32 and only converts the sum to
double at the end: l2 is sqrt((double) Σ(aᵢ−bᵢ)²), inner product −(double) Σaᵢbᵢ, cosine
1 − (double) Σaᵢbᵢ / sqrt((double) Σaᵢ² · (double) Σbᵢ²) clamped to [−1, 1], each Σ a float32.
A float32 sum overflows past FLOAT32_MAX ≈ 3.4e38 (l2 +inf, inner product −inf, cosine NaN or a
constant 1.0), and a float32 Σaᵢ² below the smallest normal float32 (≈ 1.2e-38) is denormal or 0
(cosine then comes out wrong, 0.0 or NaN). The rule, for vectors of at most MAX_DIMENSIONS:

1. Every element, as stored (float32), has |x| ≤ MAX_ABS_ELEMENT = 1e15. Then every partial sum
   is at most d·(2M)² = 2000 · 4e30 = 8e33 in magnitude (l2's differences are at most 2M; the
   inner product and cosine sums are at most d·M² = 2e33), about 40,000 times below FLOAT32_MAX,
   whatever order the (auto-vectorised) loop adds in. The largest M that would still fit is
   √(FLOAT32_MAX / 8000) ≈ 2e17; 1e15 leaves room for rounding and is a round number.
2. For cosine, the Euclidean norm is at least MIN_COSINE_NORM = 1e-15, so Σx² ≥ 1e-30 — a normal
   float32 more than 1e8 times above the denormal range. Elements whose squares are themselves
   denormal (or flush to 0) then change Σx² by at most 2000 · 1.4e-45 ≈ 3e-42, a relative 3e-12;
   the same holds for Σaᵢbᵢ against |a|·|b| ≥ 1e-30. The product of two norms is taken in double
   (≥ 1e-60, ≤ 4e66), so it neither underflows nor overflows. A zero vector, or one too close to
   zero, has no direction and is refused.

l2 and inner-product distances between allowed vectors are then finite and correct to float32
rounding relative to the size of the terms (Σ|terms|); tiny differences (below ~1e-19) can round
to 0, as float32 arithmetic does.
"""

from __future__ import annotations

import numpy as np

MAX_DIMENSIONS = 2000
MAX_ABS_ELEMENT = 1e15
MIN_COSINE_NORM = 1e-15

ELEMENT_MESSAGE = (
    "is too large: vector elements must be between -1e15 and 1e15, so that distances between vectors cannot overflow"
)
ZERO_MESSAGE = "a zero vector has no cosine distance to anything"
TINY_MESSAGE = (
    "this vector is too close to zero to have a direction: its length must be at least 1e-15 for cosine distance"
)


def first_incomparable(vectors: np.ndarray, metric: str) -> tuple[int, int | None, str] | None:
    """The first vector (rows of a 2-D array, or one 1-D vector as row 0) pgvector cannot compare
    under `metric`, as (row, column or None for the whole vector, message); None if all are fine.

    Elements are judged as float32 (what pgvector stores). NaN and infinities count as too large.
    """
    v = _float32_2d(vectors)
    bad = ~(np.abs(v) <= np.float32(MAX_ABS_ELEMENT))  # NaN compares false, so it is caught too
    element = None
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        element = (r, c, ELEMENT_MESSAGE)
    if metric == "cosine":
        rows = element[0] if element else v.shape[0]
        norms = _small_norms(v[:rows])
        if norms:
            r, norm = min(norms.items())
            return r, None, ZERO_MESSAGE if norm == 0 else TINY_MESSAGE
    return element


def comparable_rows(vectors: np.ndarray, metric: str) -> np.ndarray:
    """The same rule as a boolean mask of the rows that satisfy it (for callers that skip rather than refuse)."""
    v = _float32_2d(vectors)
    keep = (np.abs(v) <= np.float32(MAX_ABS_ELEMENT)).all(axis=1)
    if metric == "cosine":
        keep[list(_small_norms(v))] = False
    return keep


def _float32_2d(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors)
    return (v[None, :] if v.ndim == 1 else v).astype(np.float32, copy=False)


def _small_norms(v: np.ndarray) -> dict[int, float]:
    """{row: norm} of the rows whose Euclidean norm (in double) is below MIN_COSINE_NORM."""
    # |x| ≥ max|xᵢ|: only rows whose largest element is below the bound can be too short (cheap on big arrays).
    candidates = np.flatnonzero(np.abs(v).max(axis=1, initial=0) < MIN_COSINE_NORM)
    found = {}
    for r in candidates:
        row = v[r].astype(np.float64)
        norm = float(np.sqrt(row @ row))
        if norm < MIN_COSINE_NORM:
            found[int(r)] = norm
    return found
