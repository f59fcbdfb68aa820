"""genomics.normalize and the sparse compress (implicit centring) against the dense exact path; pure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from genomics import normalize as normalize_module
from genomics.build import prepare_build
from genomics.normalize import detect, normalize
from genomics.pca import CompressionParams, MatrixError, basis_from, compress, compress_normalized, encode_markers
from genomics.sparse_stats import column_high
from genomics.truncated_svd import compress_sparse

FIXED = CompressionParams("fixed_k", 0.9, 256)


def planted(n_per_type: int = 60, n_genes: int = 80, seed: int = 0) -> np.ndarray:
    """Sparse-ish counts with three planted types, each with ten marker genes: a clear spectral gap."""
    rng = np.random.default_rng(seed)
    x = rng.poisson(0.4, (3 * n_per_type, n_genes)) * (rng.random((3 * n_per_type, n_genes)) < 0.4)
    for t in range(3):
        rows = slice(t * n_per_type, (t + 1) * n_per_type)
        x[rows, 10 * t : 10 * t + 10] += rng.poisson(6, (n_per_type, 10))
    return x.astype(float)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0, 3], [2, 0]], "counts"),
        ([[0, 0.5], [1.2, 0]], "log"),
        ([[0, -0.5], [1.2, 0]], "none"),
        ([[0, 0]], "counts"),
    ],
)
@pytest.mark.parametrize("make", [np.asarray, sp.csr_matrix], ids=["dense", "sparse"])
def test_auto_detects_counts_log_and_scaled(values, expected, make):
    matrix = make(np.asarray(values, dtype=float))
    assert detect(matrix) == expected and normalize(matrix).applied == expected


def test_detection_scans_in_chunks(monkeypatch):
    monkeypatch.setattr(normalize_module, "CHUNK", 3)
    x = np.zeros((4, 4))
    x[3, 3] = 0.5  # the only non-integer, in the last chunk
    assert detect(x) == "log" and detect(sp.csr_matrix(x)) == "log"


def test_counts_are_library_size_normalised_then_log1p():
    x = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 5.0]])
    expected = np.log1p(np.array([[2500.0, 7500.0, 0.0], [0.0, 0.0, 0.0], [5000.0, 0.0, 5000.0]]))
    np.testing.assert_allclose(normalize(x, "counts").matrix, expected)
    sparse = normalize(sp.csr_matrix(x.astype(np.float32)), "counts")
    assert sparse.matrix.dtype == np.float32 and sp.isspmatrix_csr(sparse.matrix)
    np.testing.assert_allclose(sparse.matrix.toarray(), expected, rtol=1e-6)


def test_log_none_and_log1p_and_the_input_is_left_alone():
    x = planted()
    before = x.copy()
    np.testing.assert_array_equal(normalize(x, "log").matrix, x)
    np.testing.assert_array_equal(normalize(x, "none").matrix, x)
    np.testing.assert_allclose(normalize(x, "log1p").matrix, np.log1p(x))
    s = sp.csr_matrix(x)
    np.testing.assert_allclose(normalize(s, "log1p").matrix.toarray(), np.log1p(x))
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(s.toarray(), before)


@pytest.mark.parametrize("how", ["counts", "log1p"])
def test_forcing_counts_on_negative_values_is_refused(how):
    with pytest.raises(MatrixError) as caught:
        normalize(np.array([[1.0, -1.0]]), how)
    assert caught.value.field == "normalize"


def test_unknown_setting():
    with pytest.raises(MatrixError) as caught:
        normalize(np.ones((2, 2)), "zscore")
    assert caught.value.field == "normalize"


@pytest.mark.parametrize("how", ["counts", "log1p"])
def test_sparse_compress_equals_the_dense_exact_one(how):
    x = planted()
    dense = normalize(x, how).matrix
    sparse = normalize(sp.csr_matrix(x), how).matrix
    exact = compress_normalized(dense, 8, FIXED, seed=0)
    truncated = compress_normalized(sparse, 8, FIXED, seed=0)
    assert exact.solver == "exact" and truncated.solver != "exact"
    # The same sign convention, so the vectors agree as they are, not just up to sign.
    np.testing.assert_allclose(truncated.vectors, exact.vectors, atol=1e-8)
    np.testing.assert_allclose(truncated.components, exact.components, atol=1e-10)
    np.testing.assert_allclose(truncated.singular_values, exact.singular_values, rtol=1e-10)
    np.testing.assert_allclose(truncated.explained_variance_ratio, exact.explained_variance_ratio, rtol=1e-9)
    assert truncated.explained_variance_total == pytest.approx(exact.explained_variance_total, rel=1e-9)
    assert truncated.rank_cap_reason == exact.rank_cap_reason == "compression_target"


def test_float32_sparse_stays_close_to_the_exact_float64():
    x = planted()
    exact = compress_normalized(normalize(x, "counts").matrix, 3, FIXED)
    single = compress_normalized(normalize(sp.csr_matrix(x.astype(np.float32)), "counts").matrix, 3, FIXED)
    np.testing.assert_allclose(single.vectors, exact.vectors, atol=1e-4 * np.abs(exact.vectors).max())
    np.testing.assert_allclose(single.explained_variance_ratio, exact.explained_variance_ratio, rtol=1e-4)


def test_sparse_auto_evr_reaches_the_target_like_the_dense_path():
    x = np.log1p(planted())
    params = CompressionParams("auto_evr", 0.5, 40)
    exact = compress_normalized(x, 40, params)
    truncated = compress_normalized(sp.csr_matrix(x), 40, params)
    assert truncated.achieved_dimensions == exact.achieved_dimensions
    assert truncated.rank_cap_reason == "evr_target" and truncated.explained_variance_total >= 0.5


@pytest.mark.parametrize("solver", ["arpack", "randomized"])
def test_same_input_and_seed_give_the_same_output(solver):
    x = sp.csr_matrix(np.log1p(planted()))
    a = compress_sparse(x, 3, FIXED, seed=5, solver=solver)
    b = compress_sparse(x.copy(), 3, FIXED, seed=5, solver=solver)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.stats() == b.stats() and a.stats()["solver"] == solver


def test_randomized_finds_the_planted_components():
    x = sp.csr_matrix(np.log1p(planted()))
    exact = compress_normalized(x.toarray(), 2, FIXED)
    fast = compress_sparse(x, 2, FIXED, seed=0, solver="randomized")
    np.testing.assert_allclose(fast.vectors, exact.vectors, atol=1e-6 * np.abs(exact.vectors).max())


def test_compress_still_means_log1p_for_sparse_too():
    x = planted()
    np.testing.assert_allclose(compress(sp.csr_matrix(x), 4, FIXED).vectors, compress(x, 4, FIXED).vectors, atol=1e-8)


def test_sparse_without_variance():
    with pytest.raises(MatrixError, match="no variance"):
        compress_normalized(sp.csr_matrix(np.ones((5, 4))), 2, FIXED)


def test_target_at_the_full_rank_still_works_sparse():
    x = np.log1p(planted(4, 30)[:, :6])  # 12 cells × 6 genes: 6 components are every one there is
    exact = compress_normalized(x, 6, FIXED)
    truncated = compress_normalized(sp.csr_matrix(x), 6, FIXED)
    np.testing.assert_allclose(truncated.vectors, exact.vectors, atol=1e-8)


def test_sparse_basis_high_values_equal_the_dense_ones():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(41, 30))
    x[rng.random(x.shape) < 0.6] = 0.0  # zeros among negatives and positives
    x[:, 0] = 0.0
    x[5, 0] = 2.0  # expressed in one cell: p95 0 ≤ mean → the maximum
    dense = compress_normalized(x, 4, FIXED)
    sparse = compress_normalized(sp.csr_matrix(x), 4, FIXED)
    genes = [f"g{j}" for j in range(30)]
    a, b = basis_from(dense, genes, x), basis_from(sparse, genes, sp.csr_matrix(x))
    np.testing.assert_allclose(b.gene_high, a.gene_high, atol=1e-12)
    assert a.gene_high[0] == b.gene_high[0] == 2.0
    np.testing.assert_allclose(column_high(sp.csr_matrix(x), np.full(30, -np.inf)), np.percentile(x, 95, axis=0))


def cells_of(n: int) -> list[dict]:
    return [{"barcode": f"c{i}", "cell_type": f"t{i // 60}", "cell_index": i} for i in range(n)]


@pytest.mark.parametrize("mode", ["cell", "cluster"])
def test_prepare_build_gives_the_same_vectors_dense_or_sparse(mode):
    x = planted()
    genes = [f"g{j}" for j in range(x.shape[1])]
    options = {"mode": mode, "target": 5, "n_clusters": 3 if mode == "cluster" else None, "seed": 2}
    dense = prepare_build(x, genes, cells_of(len(x)), normalize="counts", params=FIXED, **options)
    sparse = prepare_build(sp.csr_matrix(x), genes, cells_of(len(x)), normalize="auto", params=FIXED, **options)
    assert dense.normalization == sparse.normalization == "counts"
    assert dense.stored.ids == sparse.stored.ids
    np.testing.assert_allclose(sparse.stored.vectors, dense.stored.vectors, atol=1e-5)
    assert sparse.summary["normalize"] == "counts" and sparse.summary["stats"]["normalize_requested"] == "auto"
    # The basis matches the normalisation applied: a marker query points at its own type.
    vector, _ = encode_markers(sparse.basis, [f"g{j}" for j in range(10, 20)])
    if mode == "cell":
        scores = sparse.stored.vectors @ vector
        assert np.argsort(scores)[-30:].min() >= 60 and np.argsort(scores)[-30:].max() < 120


def test_prepare_build_reports_progress_and_blames_fields():
    x = planted()
    genes = [f"g{j}" for j in range(x.shape[1])]
    seen: list[float] = []
    prepare_build(sp.csr_matrix(x), genes, cells_of(len(x)), mode="cell", target=3, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    with pytest.raises(MatrixError) as caught:
        prepare_build(-x, genes, cells_of(len(x)), mode="cell", target=3, normalize="counts")
    assert caught.value.field == "normalize"
