"""Synthetic sparse single-cell counts with planted cell types, for the benchmarks (not a test).

Each gene is detected in a cell with a gene-wise probability (density 5 % on average); each planted
type has its own marker genes, detected in most of its cells with higher counts.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MARKERS_PER_TYPE = 40
BLOCK_ROWS = 2048


def synthetic_counts(
    cells: int, genes: int, density: float = 0.05, types: int = 6, seed: int = 0
) -> tuple[sp.csr_matrix, np.ndarray, dict[int, np.ndarray]]:
    """(float32 CSR counts, each cell's type, each type's marker gene indices)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, types, size=cells)
    detection = np.clip(rng.gamma(0.6, density / 0.6, size=genes), 0.0, 0.9)
    markers = {t: rng.choice(genes, MARKERS_PER_TYPE, replace=False) for t in range(types)}
    is_marker = np.zeros((types, genes), dtype=bool)
    for t, genes_of_t in markers.items():
        is_marker[t, genes_of_t] = True
    blocks = []
    for start in range(0, cells, BLOCK_ROWS):
        rows = labels[start : start + BLOCK_ROWS]
        probability = np.broadcast_to(detection, (rows.size, genes)).copy()
        for t, genes_of_t in markers.items():
            probability[np.ix_(rows == t, genes_of_t)] = 0.8
        hit = rng.random(probability.shape, dtype=np.float32) < probability
        block = sp.csr_matrix(hit, dtype=np.float32)
        entry_rows = np.repeat(rows, np.diff(block.indptr))
        marker = is_marker[entry_rows, block.indices]  # markers: more counts in their own type
        block.data = (1.0 + rng.poisson(1.0 + 4.0 * marker)).astype(np.float32)
        blocks.append(block)
    return sp.vstack(blocks, format="csr"), labels, markers
