"""What a compression is, however it was computed: its parameters, its result, how k is chosen and
signed, and the error the maths raises. Shared by the exact dense SVD (pca.py) and the sparse
truncated SVD (truncated_svd.py), so neither imports the other's internals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CAP_REASONS = ("evr_target", "compression_target", "max_k", "rank")


class MatrixError(ValueError):
    """The expression matrix cannot be compressed (no variance, or values too large); `field` is the input to blame."""

    def __init__(self, message: str, field: str = "expression_matrix"):
        super().__init__(message)
        self.field = field  # expression_matrix, target_dimensions or normalize

    def __reduce__(self):  # keeps `field` across a process boundary (the upload job runs in a child)
        return (type(self), (str(self), self.field))


@dataclass(frozen=True)
class CompressionParams:
    """How many components to keep: fixed_k keeps min(target, max_k, rank); auto_evr stops at evr_target."""

    mode: str = "auto_evr"
    evr_target: float = 0.9
    max_k: int = 256


def frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # frozen dataclasses should not hand out mutable arrays
    return array


@dataclass(frozen=True, eq=False)
class Compression:
    """Result of `compress`: cell vectors, the basis that produced them, and how k was chosen."""

    vectors: np.ndarray  # cells × k
    components: np.ndarray  # k × genes, orthonormal rows
    gene_means: np.ndarray  # genes, mean of log1p expression
    singular_values: np.ndarray  # k kept singular values
    explained_variance_ratio: list[float]
    explained_variance_total: float
    original_dimensions: int
    achieved_dimensions: int
    requested_dimensions: int
    available_rank: int
    rank_cap_reason: str
    params: CompressionParams
    seed: int
    solver: str = "exact"  # exact (dense SVD) or randomized (sparse, truncated)

    def stats(self) -> dict[str, Any]:
        """JSON-serialisable summary (everything except the arrays)."""
        return {
            "original_dimensions": self.original_dimensions,
            "requested_dimensions": self.requested_dimensions,
            "achieved_dimensions": self.achieved_dimensions,
            "available_rank": self.available_rank,
            "rank_cap_reason": self.rank_cap_reason,
            "explained_variance_ratio": list(self.explained_variance_ratio),
            "explained_variance_total": self.explained_variance_total,
            "singular_values": self.singular_values.tolist(),
            "mode": self.params.mode,
            "evr_target": self.params.evr_target,
            "max_k": self.params.max_k,
            "seed": self.seed,
            "solver": self.solver,
        }


def choose_k(ratios: np.ndarray, rank: int, target: int, params: CompressionParams) -> tuple[int, str]:
    """How many components to keep, and the bound that decided it (ratios: explained-variance ratios, largest first)."""
    # Candidate bounds, in tie-break order: the first bound equal to k names the reason.
    bounds = {"compression_target": target, "max_k": params.max_k, "rank": rank}
    if params.mode == "auto_evr":
        cumulative = np.cumsum(ratios)
        # Tiny slack so evr_target=1.0 is met despite rounding in the cumulative sum.
        reached = np.flatnonzero(cumulative >= params.evr_target - 1e-12)
        bounds = {"evr_target": int(reached[0]) + 1 if reached.size else rank, **bounds}
    k = min(bounds.values())
    return k, next(name for name, bound in bounds.items() if bound == k)


def signed(components: np.ndarray) -> np.ndarray:
    """Sign convention: the loading with the largest magnitude is positive (first one on ties)."""
    k = components.shape[0]
    pivots = components[np.arange(k), np.abs(components).argmax(axis=1)]
    components *= np.where(pivots < 0, -1.0, 1.0)[:, None]
    return components


def finish(vectors, components, means, s, kept, n_genes, target, rank, reason, params, seed, solver="exact"):
    """The Compression, once its values are checked finite (a 422, not a 500 on NaN JSON)."""
    if not np.isfinite(vectors).all():
        raise MatrixError("values are too large to compress to finite vectors")
    if not (np.isfinite(kept).all() and np.isfinite(s).all()):  # never expected
        raise MatrixError("these values cannot be compressed to finite statistics")
    return Compression(
        vectors=frozen(vectors),
        components=frozen(components),
        gene_means=frozen(means),
        singular_values=frozen(s),
        explained_variance_ratio=kept.tolist(),
        explained_variance_total=float(min(1.0, kept.sum())),
        original_dimensions=n_genes,
        achieved_dimensions=components.shape[0],
        requested_dimensions=target,
        available_rank=rank,
        rank_cap_reason=reason,
        params=params,
        seed=seed,
        solver=solver,
    )
