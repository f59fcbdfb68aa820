"""Pure-maths tests for genomics/ and the expression input checks: no database, no HTTP, no timing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genomics.pca import Basis, CompressionParams, MarkerError, MatrixError, basis_from, compress, encode_markers


def counts(n_cells: int = 60, n_genes: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.2, 6.0, n_genes)  # genes differ in depth, like real data
    return rng.poisson(rates, (n_cells, n_genes)).astype(np.float64)


def cell_types(per_type: int = 40, seed: int = 1) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Three cell types, each with its own 4 marker genes on top of 12 shared background genes."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(24)]
    rows, types = [], []
    for t in range(3):
        rates = np.full(24, 1.0)
        rates[12 + 4 * t : 16 + 4 * t] = 30.0
        rows.append(rng.poisson(rates, (per_type, 24)))
        types += [t] * per_type
    return genes, np.vstack(rows).astype(np.float64), np.array(types)


def fixed(k: int, max_k: int = 256) -> CompressionParams:
    return CompressionParams(mode="fixed_k", evr_target=0.9, max_k=max_k)


# --- compress ---------------------------------------------------------------------------------


def test_compress_is_deterministic_bit_for_bit():
    x = counts()
    a = compress(x, 10, fixed(10), seed=7)
    b = compress(x.copy(), 10, fixed(10), seed=7)
    for field in ("vectors", "components", "gene_means", "singular_values"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.stats() == b.stats()
    assert a.seed == 7


@pytest.mark.parametrize("k", [1, 3, 7, 24])
def test_fixed_k_returns_k_dimensions(k):
    result = compress(counts(), k, fixed(k))
    assert result.vectors.shape == (60, k)
    assert result.components.shape == (k, 25)
    assert result.achieved_dimensions == k
    assert result.requested_dimensions == k
    assert result.original_dimensions == 25
    assert result.rank_cap_reason == "compression_target"


@pytest.mark.parametrize("evr", [0.3, 0.6, 0.9, 1.0])
def test_auto_evr_reaches_target_with_fewest_components(evr):
    result = compress(counts(), 25, CompressionParams("auto_evr", evr, 256))
    assert result.rank_cap_reason == "evr_target"
    assert result.explained_variance_total >= evr - 1e-9
    assert sum(result.explained_variance_ratio[:-1]) < evr  # one component fewer would fall short


@pytest.mark.parametrize(
    "mode, target, evr, max_k, shape, reason, k",
    [
        ("fixed_k", 5, 0.9, 256, (40, 30), "compression_target", 5),
        ("fixed_k", 20, 0.9, 4, (40, 30), "max_k", 4),
        ("fixed_k", 50, 0.9, 256, (10, 30), "rank", 9),
        ("fixed_k", 50, 0.9, 256, (40, 6), "rank", 6),
        ("auto_evr", 30, 0.2, 256, (40, 30), "evr_target", None),
        ("auto_evr", 2, 1.0, 256, (40, 30), "compression_target", 2),
        ("auto_evr", 30, 1.0, 3, (40, 30), "max_k", 3),
        # Centred data has all its variance within the rank, so in auto_evr mode the rank bound can only tie
        # with evr_target, and ties go to evr_target (the target was met).
        ("auto_evr", 50, 1.0, 256, (8, 30), "evr_target", 7),
    ],
)
def test_each_cap_reason_is_reachable(mode, target, evr, max_k, shape, reason, k):
    result = compress(counts(*shape), target, CompressionParams(mode, evr, max_k))
    assert result.rank_cap_reason == reason
    if k is not None:
        assert result.achieved_dimensions == k


def test_rank_cap_with_fewer_cells_than_target():
    result = compress(counts(6, 50), 20, fixed(20))
    assert (result.achieved_dimensions, result.available_rank, result.rank_cap_reason) == (5, 5, "rank")


def test_numerical_rank_caps_k_for_low_rank_data():
    rng = np.random.default_rng(3)
    log = 2.0 + 0.5 * np.outer(rng.random(30), rng.random(12)) + 0.5 * np.outer(rng.random(30), rng.random(12))
    result = compress(np.expm1(log), 10, fixed(10))
    assert (result.achieved_dimensions, result.rank_cap_reason) == (2, "rank")


def test_full_rank_vectors_reconstruct_centred_log_data():
    x = counts(20, 12)
    result = compress(x, 12, fixed(12))
    assert result.achieved_dimensions == 12
    rebuilt = result.vectors @ result.components + result.gene_means
    np.testing.assert_allclose(rebuilt, np.log1p(x), atol=1e-10)
    np.testing.assert_allclose(result.gene_means, np.log1p(x).mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(result.components @ result.components.T, np.eye(12), atol=1e-10)


def test_sign_convention_largest_loading_positive_and_stable_under_cell_order():
    x = counts()
    a = compress(x, 6, fixed(6))
    rows = np.arange(6)
    assert (a.components[rows, np.abs(a.components).argmax(axis=1)] > 0).all()
    order = np.random.default_rng(5).permutation(x.shape[0])
    b = compress(x[order], 6, fixed(6))
    np.testing.assert_allclose(b.components, a.components, atol=1e-10)
    np.testing.assert_allclose(b.vectors, a.vectors[order], atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explained_variance_is_a_non_increasing_fraction(seed):
    result = compress(counts(seed=seed), 25, fixed(25))
    ratios = np.array(result.explained_variance_ratio)
    assert (ratios >= 0).all() and (np.diff(ratios) <= 1e-15).all()
    assert math.isclose(result.explained_variance_total, ratios.sum(), abs_tol=1e-12)
    assert result.explained_variance_total <= 1.0
    assert np.isfinite(result.vectors).all()
    json.dumps(result.stats())  # the summary must be JSON-serialisable as is


@pytest.mark.parametrize("matrix", [[[3, 1, 4]] * 5, [[2, 7]]], ids=["identical-rows", "single-cell"])
def test_zero_variance_is_rejected(matrix):
    with pytest.raises(MatrixError, match="no variance"):
        compress(np.array(matrix, dtype=float), 2, fixed(2))


# --- basis, projection, marker queries --------------------------------------------------------


def trained(x=None, genes=None, k=6):
    x = counts() if x is None else x
    genes = [f"G{i}" for i in range(x.shape[1])] if genes is None else genes
    result = compress(x, k, fixed(k))
    return x, genes, result, basis_from(result, genes, np.log1p(x))


def test_basis_json_round_trip_is_exact():
    _, _, _, basis = trained()
    again = Basis.from_json(json.loads(json.dumps(basis.to_json())))
    assert again.gene_names == basis.gene_names and again.dimensions == basis.dimensions == 6
    for field in ("gene_means", "components", "gene_high"):
        np.testing.assert_array_equal(getattr(again, field), getattr(basis, field))


def test_marker_query_points_at_the_cells_expressing_the_markers():
    genes, x, types = cell_types()
    _, _, result, basis = trained(x, genes, k=5)
    for t in range(3):
        vector, unknown = encode_markers(basis, genes[12 + 4 * t : 16 + 4 * t])
        assert unknown == []
        cosine = result.vectors @ vector / (np.linalg.norm(result.vectors, axis=1) * np.linalg.norm(vector))
        assert (types[np.argsort(-cosine)[:20]] == t).all()


def test_marker_query_for_a_rare_cell_type_points_at_it():
    rng = np.random.default_rng(4)
    x = rng.poisson(2.0, (200, 10)).astype(float)
    x[:4, 9] = 50.0  # gene G9 is expressed in 2% of cells only, so its 95th percentile is 0
    x[4:, 9] = 0.0
    _, genes, result, basis = trained(x, k=5)
    vector, _ = encode_markers(basis, ["G9"])
    assert set(np.argsort(-(result.vectors @ vector))[:4]) == {0, 1, 2, 3}


def test_marker_query_reports_unknown_genes_and_ignores_duplicates():
    _, _, _, basis = trained()
    vector, unknown = encode_markers(basis, ["G1", "NOPE", "G2", "G1", "ALSO_NOPE"])
    assert unknown == ["NOPE", "ALSO_NOPE"]
    np.testing.assert_array_equal(vector, encode_markers(basis, ["G1", "G2"])[0])
    assert vector.shape == (6,) and np.isfinite(vector).all()


@pytest.mark.parametrize("markers", [["NOPE"], ["NOPE", "ALSO_NOPE"]], ids=["unknown", "all-unknown"])
def test_unknown_marker_genes_are_rejected(markers):
    _, _, _, basis = trained()
    with pytest.raises(MarkerError, match="none of these genes"):
        encode_markers(basis, markers)


def test_markers_that_never_vary_are_rejected():
    x = counts()
    x[:, 4] = 3.0  # gene G4 is constant
    _, _, _, basis = trained(x)
    with pytest.raises(MarkerError, match="do not vary"):
        encode_markers(basis, ["G4"])


# --- tiny values: explained variance must not underflow to 0/0 ---------------------------------

TINY = (1e-200, 1e-300, 1e-310, 5e-324)


def tiny_matrices(v: float) -> list[np.ndarray]:
    return [
        np.array([[v, 0, v], [0, v, 0], [v, v, 0]]),  # only tiny values
        np.array([[v, 0], [0, v]]),
        np.array([[v, v, v], [0, 0, 0]]),
        np.array([[v, 5.0], [0, 3.0], [v, 1.0]]),  # tiny and normal values mixed
        np.vstack([counts(20, 6), np.full((1, 6), v)]),
    ]


def assert_finite_stats(result) -> None:
    stats = result.stats()
    assert all(math.isfinite(r) and 0 <= r <= 1 for r in stats["explained_variance_ratio"])
    assert 0 < stats["explained_variance_total"] <= 1
    assert all(math.isfinite(s) and s >= 0 for s in stats["singular_values"])
    assert np.isfinite(result.vectors).all()
    json.dumps(stats, allow_nan=False)


@pytest.mark.parametrize("v", TINY)
@pytest.mark.parametrize("mode", ["auto_evr", "fixed_k"])
def test_tiny_values_give_finite_explained_variance(v, mode):
    for matrix in tiny_matrices(v):
        with np.errstate(divide="raise", invalid="raise", over="raise"):  # no 0/0 or overflow on the way
            try:
                result = compress(matrix, 2, CompressionParams(mode=mode, evr_target=0.9, max_k=256))
            except MatrixError:  # denormal inputs can centre to exactly nothing
                continue
        assert_finite_stats(result)


def test_tiny_values_give_the_same_ratios_as_the_same_data_scaled_up():
    pattern = np.array([[1.0, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [2, 1, 1]])
    # log1p(x) = x for tiny x, so the centred matrix is pattern·1e-200 and the ratios are scale-free.
    tiny = compress(pattern * 1e-200, 3, fixed(3))
    reference = np.linalg.svd(pattern - pattern.mean(axis=0), compute_uv=False)[:3] ** 2
    np.testing.assert_allclose(tiny.explained_variance_ratio, reference / reference.sum(), rtol=1e-12)
    np.testing.assert_allclose(tiny.singular_values, np.sqrt(reference) * 1e-200, rtol=1e-12)


def test_cells_too_close_to_zero_for_cosine_are_skipped_like_zero_vectors():
    import dataclasses

    from genomics.project_vectors import cell_vectors

    base = compress(counts(4, 5), 2, fixed(2))
    vectors = np.array([[1.0, 0.0], [1e-20, 0.0], [0.0, 0.0], [4e-16, 4e-16], [8e-16, 8e-16]])
    cells = [{"barcode": f"c{i}", "cell_type": None} for i in range(5)]
    stored = cell_vectors(dataclasses.replace(base, vectors=vectors), cells)
    assert stored.ids == ["c0", "c4"] and stored.skipped_zero == 3
