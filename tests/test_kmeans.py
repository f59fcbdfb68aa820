"""Pure-maths tests for genomics.kmeans: seeded determinism, recovered blobs, caps, the default count."""

from __future__ import annotations

import numpy as np
import pytest

from genomics.kmeans import cluster, default_cluster_count

# --- clustering -------------------------------------------------------------------------------


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 5.0], [0.0, 20.0, -5.0]])
    truth = np.repeat(np.arange(3), 50)
    return centres[truth] + rng.normal(0, 1.0, (150, 3)), truth


def test_kmeans_is_deterministic_for_a_seed():
    x, _ = blobs()
    a_labels, a_centroids = cluster(x, 4, seed=11)
    b_labels, b_centroids = cluster(x.copy(), 4, seed=11)
    np.testing.assert_array_equal(a_labels, b_labels)
    np.testing.assert_array_equal(a_centroids, b_centroids)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kmeans_recovers_three_separated_blobs(seed):
    x, truth = blobs(seed)
    labels, centroids = cluster(x, 3, seed=seed)
    assert centroids.shape == (3, 3)
    # Same partition up to renaming: each true blob maps to exactly one label and vice versa.
    pairs = set(zip(truth.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 3 and len({p[1] for p in pairs}) == 3
    for label in range(3):
        np.testing.assert_allclose(centroids[label], x[labels == label].mean(axis=0))


def test_kmeans_caps_clusters_at_cell_count_and_handles_duplicates():
    x = np.array([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    labels, centroids = cluster(x, 10, seed=0)
    assert centroids.shape == (3, 2) and labels.shape == (3,)
    assert labels[0] == labels[1] or np.array_equal(centroids[labels[0]], centroids[labels[1]])
    assert np.isfinite(centroids).all()


@pytest.mark.parametrize("n_cells, expected", [(0, 1), (1, 1), (2, 1), (8, 2), (200, 10), (5000, 50), (10**6, 50)])
def test_default_cluster_count(n_cells, expected):
    assert default_cluster_count(n_cells) == expected
