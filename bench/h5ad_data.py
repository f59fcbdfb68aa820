"""A synthetic single-cell counts matrix as an .h5ad file (cached under /tmp): sparse counts with a few
planted cell types, each with its own marker genes, for bench/h5ad_jobs.py."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

CHUNK_CELLS = 10_000  # cells generated at once: bounds the generator's own memory
TYPE_SHARES = (0.30, 0.25, 0.20, 0.15, 0.10)
MARKERS_PER_TYPE = 40


@dataclass(frozen=True)
class Synthetic:
    path: Path
    cells: int
    genes: int
    density: float
    types: tuple[str, ...]

    def markers(self, cell_type: str) -> list[str]:
        t = self.types.index(cell_type)
        return [f"MARK{t}_{j}" for j in range(MARKERS_PER_TYPE)]


def gene_names(genes: int) -> list[str]:
    names = [f"MARK{t}_{j}" for t in range(len(TYPE_SHARES)) for j in range(MARKERS_PER_TYPE)]
    return names + [f"GENE{i}" for i in range(genes - len(names))]


def synthetic(cells: int, genes: int, density: float, seed: int = 7, directory: Path = Path("/tmp")) -> Synthetic:
    """The cached file for these figures, written first if it is not there yet."""
    types = tuple(f"type{t}" for t in range(len(TYPE_SHARES)))
    path = directory / f"don-bench-{cells}x{genes}-{density:g}-s{seed}.h5ad"
    if not path.exists():
        started = time.perf_counter()
        print(f"writing {path} ({cells:,} cells × {genes:,} genes, {density:.0%} non-zero) ...", flush=True)
        _write(path, cells, genes, density, seed, types)
        print(f"  {path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - started:.0f}s", flush=True)
    return Synthetic(path, cells, genes, density, types)


def _write(path: Path, cells: int, genes: int, density: float, seed: int, types: tuple[str, ...]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import anndata
        import pandas as pd

    rng = np.random.default_rng(seed)
    labels = rng.choice(len(types), size=cells, p=np.array(TYPE_SHARES))
    per_cell = max(1, int(genes * density) - MARKERS_PER_TYPE)
    blocks = []
    for start in range(0, cells, CHUNK_CELLS):
        n = min(CHUNK_CELLS, cells - start)
        # Background: per_cell random genes per cell with low counts.
        rows = np.repeat(np.arange(n), per_cell)
        cols = rng.integers(0, genes, size=n * per_cell)
        vals = (1 + rng.poisson(0.5, size=n * per_cell)).astype(np.float32)
        # Markers: each cell's own type's genes, with high counts.
        marker_cols = labels[start : start + n, None] * MARKERS_PER_TYPE + np.arange(MARKERS_PER_TYPE)
        rows = np.concatenate([rows, np.repeat(np.arange(n), MARKERS_PER_TYPE)])
        cols = np.concatenate([cols, marker_cols.ravel()])
        vals = np.concatenate([vals, (3 + rng.poisson(4.0, size=n * MARKERS_PER_TYPE)).astype(np.float32)])
        block = sp.csr_matrix((vals, (rows, cols)), shape=(n, genes), dtype=np.float32)
        block.sum_duplicates()
        blocks.append(block)
    matrix = sp.vstack(blocks, format="csr")
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([types[i] for i in labels])}, index=[f"cell{i}" for i in range(cells)]
    )
    var = pd.DataFrame(index=gene_names(genes))
    partial = path.with_suffix(".partial")
    anndata.AnnData(X=matrix, obs=obs, var=var).write_h5ad(partial)
    partial.rename(path)  # a killed run leaves no half-written cache behind
