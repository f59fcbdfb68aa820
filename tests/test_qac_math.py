"""genomics/qac.py: the kNN graph, the smoothing system and its metrics, on small planted clusters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from genomics import qac


def planted(n_per: int = 40, clusters: int = 4, dims: int = 8, noise: float = 1.6, seed: int = 0):
    """Well-separated centres with heavy noise: (embedding, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (clusters, dims))
    labels = np.repeat(np.arange(clusters), n_per)
    return centres[labels] + rng.normal(0, noise, (labels.size, dims)), labels


def knn_label_agreement(z: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The share of each cell's k nearest neighbours (in z) that carry its label."""
    _, neighbours = qac.nearest_neighbours(z, k)
    return float((labels[neighbours] == labels[:, None]).mean())


@pytest.mark.parametrize("weight", ["binary", "gaussian"])
def test_the_smoothed_embedding_solves_the_system(weight):
    z0, _ = planted()
    graph = qac.fit(z0, 8, weight)
    smoothed = qac.smooth(graph, z0, beta=0.7, lambda_entropy=0.05)
    a = qac.system(graph, 0.7, 0.05)
    residual = np.linalg.norm(a @ smoothed - z0) / np.linalg.norm(z0)
    assert residual < 1e-7
    dense = np.linalg.solve(a.toarray(), z0)
    np.testing.assert_allclose(smoothed, dense, rtol=1e-6, atol=1e-7)


def test_beta_zero_only_shrinks():
    z0, _ = planted()
    graph = qac.fit(z0, 5)
    np.testing.assert_allclose(qac.smooth(graph, z0, beta=0.0, lambda_entropy=0.25), z0 / 1.25)


def test_the_graph_is_symmetric_with_k_neighbours_per_cell_and_a_laplacian_whose_rows_sum_to_zero():
    z0, _ = planted(n_per=10)
    graph = qac.fit(z0, 4)
    w = graph.matrix()
    assert (w != w.T).nnz == 0
    assert w.diagonal().sum() == 0  # no cell is its own neighbour
    assert np.all(np.diff(graph.indptr) >= 4)
    assert set(np.unique(graph.weights)) <= {0.5, 1.0}  # binary: one-way edges weigh ½, mutual ones 1
    np.testing.assert_allclose(np.asarray(graph.laplacian().sum(axis=1)).ravel(), 0, atol=1e-12)


def test_gaussian_weights_use_the_median_kth_distance_or_the_given_sigma():
    z0, _ = planted(n_per=10)
    distances, _ = qac.nearest_neighbours(z0, 4)
    default = qac.fit(z0, 4, "gaussian")
    assert default.sigma == pytest.approx(float(np.median(distances[:, -1])))
    assert np.all((default.weights > 0) & (default.weights <= 1))
    given = qac.fit(z0, 4, "gaussian", sigma=0.5)
    assert given.sigma == 0.5 and given.weights.sum() < default.weights.sum()  # narrower σ, lighter edges
    binary = qac.fit(z0, 4, "binary")
    assert binary.sigma is None
    np.testing.assert_array_equal(binary.indices, default.indices)  # same edges, other weights


def test_smoothing_removes_graph_energy_on_noisy_planted_clusters():
    z0, _ = planted()
    for weight in ("binary", "gaussian"):
        graph = qac.fit(z0, 10, weight)
        smoothed = qac.smooth(graph, z0, 0.7, 0.05)
        result = qac.metrics(graph, z0, smoothed)
        assert 0 < result["coherence_gain"] < 1
        assert 0 < result["psi_fidelity"] < 1


def test_smoothing_raises_knn_label_agreement_on_noisy_planted_clusters():
    z0, labels = planted()
    graph = qac.fit(z0, 10)
    before = knn_label_agreement(z0, labels)
    after = knn_label_agreement(qac.smooth(graph, z0, 2.0, 0.05), labels)
    assert before < 0.9  # the noise really mixes the clusters…
    assert after > before + 0.05  # …and smoothing over the graph separates them again


def test_metrics_of_an_embedding_with_nothing_to_smooth_are_finite():
    z0 = np.ones((6, 3))
    graph = qac.fit(z0, 2, "gaussian")  # every distance 0: σ falls back to 1, weights are 1
    smoothed = qac.smooth(graph, z0, 0.7, 0.05)
    np.testing.assert_allclose(smoothed, z0 / 1.05)
    assert qac.metrics(graph, z0, smoothed)["coherence_gain"] == 0.0
    zeros = np.zeros((6, 3))
    assert qac.metrics(graph, zeros, qac.smooth(graph, zeros, 0.7, 0.05)) == {
        "psi_fidelity": 1.0,
        "coherence_gain": 0.0,
    }


def test_the_fit_is_deterministic():
    z0, _ = planted()
    a, b = qac.fit(z0, 7, "gaussian"), qac.fit(z0.copy(), 7, "gaussian")
    for left, right in [(a.indptr, b.indptr), (a.indices, b.indices), (a.weights, b.weights)]:
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize("k", [0, 6, 7])
def test_k_must_be_positive_and_less_than_the_cells(k):
    with pytest.raises(qac.EmbeddingError, match="k_nn"):
        qac.fit(np.arange(12.0).reshape(6, 2), k)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_embedding_is_refused(bad):
    z0 = np.zeros((5, 2))
    z0[3, 1] = bad
    with pytest.raises(qac.EmbeddingError, match="finite"):
        qac.fit(z0, 2)


def test_apply_refuses_another_row_count():
    z0, _ = planted(n_per=5)
    graph = qac.fit(z0, 3)
    with pytest.raises(qac.RowCountMismatch, match="20 cells"):
        qac.smooth(graph, z0[:-1], 0.7, 0.05)


def test_conjugate_gradients_matches_a_direct_solve_on_a_random_spd_system():
    rng = np.random.default_rng(3)
    m = sparse.random(60, 60, density=0.1, random_state=4)
    a = (m @ m.T + sparse.identity(60)).tocsr()
    b = rng.normal(size=(60, 3))
    np.testing.assert_allclose(qac.conjugate_gradients(a, b), np.linalg.solve(a.toarray(), b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("scale", [1e-300, 1e30])
def test_extreme_magnitudes_give_finite_answers_that_solve_the_system(scale):
    # Regression: with entries near 1e-300 the residual norms underflowed and CG stopped at its guess.
    z0, _ = planted(n_per=10)
    z0 = z0 * scale
    graph = qac.fit(z0, 4, "gaussian")
    smoothed = qac.smooth(graph, z0, 0.7, 0.05)
    assert np.isfinite(smoothed).all()
    expected = qac.smooth(qac.fit(z0 / scale, 4, "gaussian"), z0 / scale, 0.7, 0.05) * scale
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
    result = qac.metrics(graph, z0, smoothed)
    assert all(np.isfinite(v) for v in result.values())


def test_a_tiny_sigma_gives_zero_weights_not_nan():
    z0 = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # a duplicate: a distance of exactly 0
    graph = qac.fit(z0, 2, "gaussian", sigma=5e-324)
    assert np.isfinite(graph.weights).all() and set(np.unique(graph.weights)) <= {0.0, 0.5, 1.0}
    smoothed = qac.smooth(graph, z0, 0.7, 0.05)
    assert np.isfinite(smoothed).all()
