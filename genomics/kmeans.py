"""Seeded, deterministic k-means (k-means++ initialisation, at most 100 Lloyd steps); pure NumPy."""

from __future__ import annotations

import math

import numpy as np


def default_cluster_count(n_cells: int) -> int:
    """max(1, min(50, round(sqrt(n_cells / 2))))."""
    return max(1, min(50, round(math.sqrt(n_cells / 2))))


def cluster(vectors: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ init from `seed`, ≤100 Lloyd steps): (labels, centroids)."""
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n == 0:
        raise ValueError("cluster() needs a non-empty cells × dimensions array")
    k = min(n_clusters, n)
    rng = np.random.default_rng(seed)
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
        pick = (
            int(np.searchsorted(np.cumsum(closest), rng.random() * total, side="right"))
            if total > 0
            else int(rng.integers(x.shape[0]))
        )
        centroids[j] = x[min(pick, x.shape[0] - 1)]
        closest = np.minimum(closest, _sq_distances(x, centroids[j : j + 1])[:, 0])
    return centroids


def _sq_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    d = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)  # the expansion can go slightly negative through rounding
