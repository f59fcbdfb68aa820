"""An upload build's pure part at full size: read .h5ad → normalise → sparse PCA → vectors (not a test).

    python bench/h5ad_read.py [CELLS GENES] [--compare-solvers]   (default 100000 20000; 5 % non-zero)

The synthetic file (6 planted cell types with 40 marker genes each) is written once, by a child
process, and cached under /tmp; the build then runs in this process, stage by stage, exactly as
api.genomics_build.upload_build does, and this process's peak RSS is reported against 4 GiB.
Marker recall: for each planted type, the share of its cells among the top-N cells nearest to its
marker query (N = the type's size), by cosine as the service ranks them.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.genomics_build import build_record, upload_cells  # noqa: E402
from genomics.build import prepare_build  # noqa: E402
from genomics.h5ad import read_h5ad  # noqa: E402
from genomics.pca import CompressionParams, encode_markers  # noqa: E402

TARGET = 50
RSS_TARGET_GIB = 4.0


def cached_file(cells: int, genes: int) -> Path:
    return Path(f"/tmp/donr-bench-{cells}x{genes}-5pct.h5ad")


def write_file(cells: int, genes: int, path: Path) -> None:
    """Generate and write the synthetic file (run in a child, so its memory is not counted)."""
    import anndata as ad
    import pandas as pd

    from bench.synthetic_counts import synthetic_counts

    counts, labels, markers = synthetic_counts(cells, genes)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"type{t}" for t in labels]), "sample": [f"s{i % 4}" for i in range(cells)]},
        index=[f"cell-{i:06d}" for i in range(cells)],
    )
    var = pd.DataFrame(index=[f"G{j}" for j in range(genes)])
    partial = path.with_suffix(".partial")
    ad.AnnData(counts, obs=obs, var=var).write_h5ad(partial)
    np.save(path.with_suffix(".markers.npy"), np.stack([markers[t] for t in sorted(markers)]))
    partial.rename(path)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()]
    cells, genes = (sizes[0], sizes[1]) if len(sizes) == 2 else (100_000, 20_000)
    path = cached_file(cells, genes)
    if not path.exists():
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=write_file, args=(cells, genes, path))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"writing {path} failed")
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - started:.0f} s")
    markers = np.load(path.with_suffix(".markers.npy"))
    print(f"{cells} x {genes}, file {path.stat().st_size / 2**30:.2f} GiB; baseline RSS {peak_rss_gib():.2f} GiB")

    marks = {"start": time.perf_counter()}
    data = read_h5ad(path)
    marks["read"] = time.perf_counter()
    print(f"read: nnz {data.matrix.nnz} ({data.matrix.nnz / cells / genes:.2%}), peak RSS {peak_rss_gib():.2f} GiB")
    cell_records = upload_cells(data.cell_ids, data.cell_types, data.metadata)
    matrix, gene_names = data.matrix, data.gene_names
    labels = np.array([int(t.removeprefix("type")) for t in data.cell_types])
    del data
    marks["cells"] = time.perf_counter()
    stages = {0.05: "normalise", 0.8: "compress", 0.9: "basis", 1.0: "vectors"}

    def progress(fraction: float) -> None:
        for point, name in stages.items():
            if fraction >= point and name not in marks:
                marks[name] = time.perf_counter()

    prepared = prepare_build(
        matrix,
        gene_names,
        cell_records,
        mode="cell",
        target=TARGET,
        params=CompressionParams("fixed_k", 0.9, 2000),
        normalize="auto",
        progress=progress,
    )
    build, _ = build_record("bench", prepared)
    marks["record"] = time.perf_counter()
    previous = marks["start"]
    for name in ("read", "cells", "normalise", "compress", "basis", "vectors", "record"):
        print(f"  {name:10s} {marks[name] - previous:7.1f} s")
        previous = marks[name]
    total = marks["record"] - marks["start"]
    peak = peak_rss_gib()
    print(
        f"total {total:.1f} s; normalize={prepared.normalization}, solver={prepared.compression.solver}, "
        f"k={prepared.compression.achieved_dimensions}, EVR {prepared.compression.explained_variance_total:.3f}"
    )
    print(f"peak RSS {peak:.2f} GiB (target < {RSS_TARGET_GIB} GiB: {'met' if peak < RSS_TARGET_GIB else 'MISSED'})")

    vectors = prepared.stored.vectors.astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for t, genes_of_t in enumerate(markers):
        query, _ = encode_markers(prepared.basis, [gene_names[j] for j in genes_of_t])
        scores = unit @ (query / np.linalg.norm(query))
        size = int((labels == t).sum())
        top = np.argsort(-scores)[:size]
        print(f"  type{t}: {size} cells, marker recall {np.mean(labels[top] == t):.3f}")
    print(f"stored {len(build.ids)} vectors of {build.dimensions} dimensions")
    if "--compare-solvers" in sys.argv:
        compare_solvers(matrix, prepared.compression, marks["compress"] - marks["normalise"])


def compare_solvers(counts, arpack, arpack_seconds: float) -> None:
    """Randomized SVD on the same normalised matrix, against the ARPACK result the build used."""
    from genomics.normalize import normalize
    from genomics.sparse_stats import column_means
    from genomics.truncated_svd import OVERSAMPLES, POWER_ITERATIONS, centred_operator, randomized

    matrix = normalize(counts, "counts").matrix
    op = centred_operator(matrix, column_means(matrix))
    started = time.perf_counter()
    s, vt = randomized(op, TARGET, 0)
    seconds = time.perf_counter() - started
    reference = arpack.singular_values
    cosines = np.linalg.svd(vt @ arpack.components.T, compute_uv=False)
    print(
        f"randomized ({POWER_ITERATIONS} power iterations, {OVERSAMPLES} oversamples): {seconds:.1f} s "
        f"vs ARPACK's compress stage {arpack_seconds:.1f} s ({seconds / arpack_seconds:.2f}x); "
        f"singular values off by up to {np.max(np.abs(s - reference) / reference):.2e} "
        f"(top 10: {np.max(np.abs(s[:10] - reference[:10]) / reference[:10]):.2e}); "
        f"worst principal-angle cosine with ARPACK's subspace {cosines.min():.4f}"
    )


if __name__ == "__main__":
    main()
