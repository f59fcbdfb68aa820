"""What a genomics build stores: per-cell vectors or cluster centroids, with their metadata. Pure NumPy.

Cell mode: one vector per cell (its compressed expression), keyed by barcode, carrying the cell's
metadata. Cluster mode: k-means on those vectors (seeded, deterministic); one centroid per
non-empty cluster, keyed cluster-<n>, carrying its size and majority cell type.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.vector_bounds import comparable_rows
from genomics.kmeans import cluster, default_cluster_count
from genomics.pca import Compression

TOP_CELL_TYPES = 20  # cell-type counts kept per cluster


@dataclass(frozen=True, eq=False)
class ProjectVectors:
    ids: list[str]
    vectors: np.ndarray  # float32, stored rows only
    metadata: list[dict[str, Any]]
    skipped_zero: int  # rows dropped because a zero vector has no cosine distance (a cell exactly at the mean)
    clusters: int | None


def cell_vectors(compression: Compression, cells: list[dict[str, Any]]) -> ProjectVectors:
    return _without_zero_rows([c["barcode"] for c in cells], compression.vectors, cells, None)


def cluster_vectors(
    compression: Compression, cells: list[dict[str, Any]], n_clusters: int | None, seed: int
) -> ProjectVectors:
    k = n_clusters or default_cluster_count(len(cells))
    labels, centroids = cluster(compression.vectors, k, seed)
    ids, rows, metadata = [], [], []
    for j in range(centroids.shape[0]):
        members = np.flatnonzero(labels == j)
        if members.size == 0:
            continue
        types = Counter(cells[i]["cell_type"] for i in members if cells[i]["cell_type"] is not None)
        majority = types.most_common(1)[0] if types else None
        ids.append(f"cluster-{j}")
        rows.append(centroids[j])
        metadata.append(
            {
                "cluster": j,
                "size": int(members.size),
                "cell_type": majority[0] if majority else None,
                "cell_type_fraction": round(majority[1] / members.size, 6) if majority else None,
                "cell_type_counts": dict(types.most_common(TOP_CELL_TYPES)),
                "barcodes_sample": [cells[i]["barcode"] for i in members[:10]],
            }
        )
    return _without_zero_rows(ids, np.asarray(rows), metadata, len(ids))


def _without_zero_rows(
    ids: list[str], rows: np.ndarray, metadata: list[dict[str, Any]], clusters: int | None
) -> ProjectVectors:
    vectors = np.asarray(rows, dtype=np.float32)
    # A zero vector, or one too close to zero for pgvector's float32 cosine (core/vector_bounds.py), has no direction.
    keep = comparable_rows(vectors, "cosine")
    if keep.all():
        return ProjectVectors(ids, vectors, metadata, 0, clusters)
    kept = np.flatnonzero(keep)
    return ProjectVectors(
        [ids[i] for i in kept], vectors[kept], [metadata[i] for i in kept], int((~keep).sum()), clusters
    )
