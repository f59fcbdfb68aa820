"""A project build from a matrix, pure: normalise, compress, basis, stored vectors and the summary.

    prepare_build(matrix, gene_names, cells, *, mode, target, n_clusters=None, seed=0, params=None,
                  normalize="auto", progress=None) -> PreparedBuild

Used by both the JSON build request and the upload job (which calls it in a child process). No HTTP
and no database here: every error is genomics.pca.MatrixError, whose `field` (expression_matrix,
target_dimensions or normalize) the caller maps to its own pointer or form field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from genomics.normalize import normalize as normalized
from genomics.pca import Basis, Compression, CompressionParams, MatrixError, basis_from, compress_normalized
from genomics.project_vectors import ProjectVectors, cell_vectors, cluster_vectors

MAX_BASIS_VALUES = 4_000_000  # components (dimensions × genes) stored with a project: ~80 MB of JSON


@dataclass(frozen=True, eq=False)
class PreparedBuild:
    """What a build stores (basis, ids, float32 vectors, metadata) and what it answers (summary)."""

    compression: Compression
    basis: Basis
    stored: ProjectVectors
    normalization: str  # the setting applied: counts, log, none or log1p
    summary: dict[str, Any]  # BuildResult's fields but project_id, collection, vector_count and store_ms


def _report(progress: Callable[[float], None] | None, start: float, end: float) -> Callable[[float], None] | None:
    """A progress callback for one stage, mapped onto [start, end] of the whole build."""
    if progress is None:
        return None
    return lambda fraction: progress(start + (end - start) * min(1.0, max(0.0, fraction)))


def prepare_build(
    matrix: np.ndarray | sp.spmatrix,
    gene_names: list[str],
    cells: list[dict[str, Any]],
    *,
    mode: str,
    target: int,
    n_clusters: int | None = None,
    seed: int = 0,
    params: CompressionParams | None = None,
    normalize: str = "auto",
    progress: Callable[[float], None] | None = None,
) -> PreparedBuild:
    """Build a project's vectors from a cells × genes matrix (dense or scipy sparse, never densified).

    `cells`: one dict per matrix row with "barcode" (the vector id), "cell_type" (str or None) and
    any metadata to store. `mode`: "cell" or "cluster". `params` None keeps exactly `target`
    components (rank permitting). `progress(fraction)`, if given, is called with 0…1 as it goes."""
    started = time.perf_counter()
    n_cells, n_genes = matrix.shape
    if len(cells) != n_cells or len(gene_names) != n_genes:
        raise ValueError("cells and gene_names must match the matrix's rows and columns")  # a caller's bug
    params = params or CompressionParams(mode="fixed_k", max_k=max(target, 1))
    prepared = normalized(matrix, normalize)
    if progress is not None:
        progress(0.05)
    compression = compress_normalized(prepared.matrix, target, params, seed, _report(progress, 0.05, 0.8))
    if compression.achieved_dimensions * n_genes > MAX_BASIS_VALUES:
        raise MatrixError(
            f"{compression.achieved_dimensions} dimensions × {n_genes} genes "
            f"is more than the {MAX_BASIS_VALUES} basis values a project keeps",
            field="target_dimensions",
        )
    basis = basis_from(compression, gene_names, prepared.matrix)
    applied = prepared.applied
    del prepared  # the normalised copy is the largest thing alive; the vectors need only the compression
    if progress is not None:
        progress(0.9)
    if mode == "cell":
        stored = cell_vectors(compression, cells)
    else:
        stored = cluster_vectors(compression, cells, n_clusters, seed)
    if not stored.ids:  # possible only when the expression varies by tiny amounts (e.g. counts of 1e-200)
        raise MatrixError(
            "the values vary too little to give any cell a vector with a "
            "direction: every vector would be too close to zero to store"
        )
    if progress is not None:
        progress(1.0)
    stats = {
        **compression.stats(),
        "normalize": applied,
        "normalize_requested": normalize,
        "runtime_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    summary = {
        "mode": mode,
        "cell_count": n_cells,
        "gene_count": n_genes,
        "clusters": stored.clusters,
        "skipped_zero_vectors": stored.skipped_zero,
        "dimensions": compression.achieved_dimensions,
        "requested_dimensions": target,
        "original_dimensions": n_genes,
        "explained_variance_total": compression.explained_variance_total,
        "rank_cap_reason": compression.rank_cap_reason,
        "normalize": applied,
        "stats": stats,
    }
    return PreparedBuild(compression, basis, stored, applied, summary)
