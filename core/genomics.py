"""Expression-matrix compression (log1p, centring, exact SVD), projection, marker queries, k-means; pure NumPy."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.expression_input import (MAX_GENES, CompressionParams, parse_expression,  # noqa: F401 (re-export)
                                   parse_gene_names, parse_params)
from core.validation import InvalidInput, int_in

CAP_REASONS = ("evr_target", "compression_target", "max_k", "rank")
MAX_SEED = 2**63 - 1  # fits a Postgres bigint
BASIS_VERSION = 1


def _frozen(array: np.ndarray) -> np.ndarray:
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
        }


def compress(matrix: np.ndarray, target_dimensions: int, params: CompressionParams | None = None,
             seed: int = 0) -> Compression:
    """log1p, centre genes, exact SVD, keep k components. Deterministic; the seed is only recorded
    here (it matters for clustering), since no randomized solver is used."""
    params = params or CompressionParams()
    target = int_in(target_dimensions, "/compression_target", 1, MAX_GENES)
    seed = int_in(seed, "/seed", 0, MAX_SEED)
    log = np.log1p(np.asarray(matrix, dtype=np.float64))
    n_cells, n_genes = log.shape
    centred, means = _centre(log)
    if not centred.any():
        raise InvalidInput("/expression_matrix", "no variance to compress: every gene has the same value in every cell")

    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    tol = s[0] * max(n_cells, n_genes) * np.finfo(np.float64).eps  # numpy.linalg.matrix_rank's default
    numerical_rank = int(np.count_nonzero(s > tol))
    rank = max(1, min(n_cells - 1, n_genes, numerical_rank))
    variance = s**2
    ratios = variance / variance.sum()

    # Candidate bounds, in tie-break order: the first bound equal to k names the reason.
    bounds = {"compression_target": target, "max_k": params.max_k, "rank": rank}
    if params.mode == "auto_evr":
        cumulative = np.cumsum(ratios)
        # Tiny slack so evr_target=1.0 is met despite rounding in the cumulative sum.
        reached = np.flatnonzero(cumulative >= params.evr_target - 1e-12)
        bounds = {"evr_target": int(reached[0]) + 1 if reached.size else rank, **bounds}
    k = min(bounds.values())
    reason = next(name for name, bound in bounds.items() if bound == k)

    components = vt[:k].copy()
    # Sign convention: the loading with the largest magnitude is positive (first one on ties).
    pivots = components[np.arange(k), np.abs(components).argmax(axis=1)]
    components *= np.where(pivots < 0, -1.0, 1.0)[:, None]
    # = U_k·S_k with the fixed signs, computed as a projection so project() on the same cells matches bit for bit.
    vectors = centred @ components.T
    if not np.isfinite(vectors).all():
        raise InvalidInput("/expression_matrix", "values are too large to compress to finite vectors")
    kept = ratios[:k]
    return Compression(
        vectors=_frozen(vectors), components=_frozen(components), gene_means=_frozen(means),
        singular_values=_frozen(s[:k].copy()), explained_variance_ratio=kept.tolist(),
        explained_variance_total=float(min(1.0, kept.sum())), original_dimensions=n_genes,
        achieved_dimensions=k, requested_dimensions=target, available_rank=rank,
        rank_cap_reason=reason, params=params, seed=seed)


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
        return {"version": BASIS_VERSION, "dimensions": self.dimensions, "gene_names": list(self.gene_names),
                "gene_means": self.gene_means.tolist(), "gene_high": self.gene_high.tolist(),
                "components": self.components.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Basis":
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
        return cls(genes, _frozen(means), _frozen(components), _frozen(high), dims)


def basis_from(compression: Compression, gene_names: list[str], log_matrix: np.ndarray) -> Basis:
    """Basis to store with a project; `log_matrix` is log1p of the counts given to `compress`."""
    log_matrix = np.asarray(log_matrix, dtype=np.float64)
    high = np.percentile(log_matrix, 95, axis=0)
    # A marker expressed in under 5% of cells has p95 = 0 (below its mean), which would point a
    # query *away* from the cells expressing it; use the gene's maximum for those instead.
    low = high <= compression.gene_means
    high[low] = log_matrix.max(axis=0)[low]
    return Basis(tuple(gene_names), compression.gene_means, compression.components, _frozen(high),
                 compression.achieved_dimensions)


def project(basis: Basis, gene_names: list[str], matrix: np.ndarray) -> np.ndarray:
    """Project raw counts (cells × gene_names, any gene order) onto a basis: cells × dimensions."""
    matrix = np.asarray(matrix, dtype=np.float64)
    position = {name: i for i, name in enumerate(gene_names)}
    basis_idx = [j for j, name in enumerate(basis.gene_names) if name in position]
    if not basis_idx:
        raise InvalidInput("/gene_names", "none of these genes is in the project's basis")
    data_idx = [position[basis.gene_names[j]] for j in basis_idx]
    # Genes the new data lacks sit at the basis mean, i.e. contribute 0 after centring.
    centred = np.zeros((matrix.shape[0], len(basis.gene_names)))
    centred[:, basis_idx] = np.log1p(matrix[:, data_idx]) - basis.gene_means[basis_idx]
    return centred @ basis.components.T


def encode_markers(basis: Basis, marker_genes: Any) -> tuple[np.ndarray, list[str]]:
    """Query vector for marker genes (at their high value, all else at the mean); returns (vector, unknown)."""
    if not isinstance(marker_genes, list) or not marker_genes:
        raise InvalidInput("/gene_names", "must be a non-empty list of gene names")
    if len(marker_genes) > MAX_GENES:
        raise InvalidInput("/gene_names", f"has {len(marker_genes)} genes; at most {MAX_GENES} are allowed")
    markers = list(dict.fromkeys(_marker_name(g, i) for i, g in enumerate(marker_genes)))  # dedupe, keep order
    index = {name: j for j, name in enumerate(basis.gene_names)}
    known = [index[g] for g in markers if g in index]
    unknown = [g for g in markers if g not in index]
    if not known:
        raise InvalidInput("/gene_names", "none of these genes is in the project's basis")
    delta = basis.gene_high[known] - basis.gene_means[known]
    delta[np.abs(delta) <= 1e-12 * (1.0 + np.abs(basis.gene_means[known]))] = 0.0  # rounding, not signal
    vector = basis.components[:, known] @ delta
    # Rows of components are orthonormal, so |vector| ≤ |delta|; a tiny ratio means no usable direction.
    if not delta.any() or np.linalg.norm(vector) <= 1e-9 * np.linalg.norm(delta):
        raise InvalidInput("/gene_names", "these marker genes do not vary in the project's data "
                                          "(or only outside its kept components), so they give no direction")
    return vector, unknown


def _marker_name(value: Any, i: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"/gene_names/{i}", "must be a non-empty string")
    return value


def default_cluster_count(n_cells: int) -> int:
    """max(1, min(50, round(sqrt(n_cells / 2))))."""
    return max(1, min(50, round(math.sqrt(n_cells / 2))))


def cluster(vectors: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ init from `seed`, ≤100 Lloyd steps): (labels, centroids)."""
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n == 0:
        raise ValueError("cluster() needs a non-empty cells × dimensions array")
    k = min(int_in(n_clusters, "/n_clusters", 1, 10_000), n)
    rng = np.random.default_rng(int_in(seed, "/seed", 0, MAX_SEED))
    centroids = _kmeans_pp(x, k, rng)
    labels = np.full(n, -1)
    for _ in range(100):
        dist = _sq_distances(x, centroids)
        new_labels = dist.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty, None]
        # An emptied cluster restarts at the point farthest from its centroid (deterministic).
        own = dist[np.arange(n), labels]
        for j in np.flatnonzero(~nonempty):
            far = int(own.argmax())
            centroids[j] = x[far]
            own[far] = -1.0
    return labels, centroids


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(x.shape[0])]
    closest = _sq_distances(x, centroids[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        # Sample ∝ squared distance; searchsorted avoids rng.choice's strict sum-to-one check.
        pick = int(np.searchsorted(np.cumsum(closest), rng.random() * total, side="right")) if total > 0 \
            else int(rng.integers(x.shape[0]))
        centroids[j] = x[min(pick, x.shape[0] - 1)]
        closest = np.minimum(closest, _sq_distances(x, centroids[j:j + 1])[:, 0])
    return centroids


def _sq_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    d = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)  # the expansion can go slightly negative through rounding
