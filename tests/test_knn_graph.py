"""Tests of the shared k-nearest-neighbour graph helper."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from skhash._knn_graph import knn_graph


def reference(X, k, metric):
    """Brute force by scipy, self excluded by index, ties by index (stable sort)."""
    dist = cdist(X, X, metric)
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_float_matches_scipy(metric):
    X = np.random.default_rng(0).normal(size=(150, 12))
    indices, distances = knn_graph(X, 7, metric=metric)
    ref_ind, ref_dist = reference(X, 7, metric)
    assert indices.dtype == np.int64 and distances.dtype == np.float32
    np.testing.assert_array_equal(indices, ref_ind)
    np.testing.assert_allclose(distances, ref_dist, rtol=1e-4, atol=1e-4)


def test_exact_bit_hamming_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (120, 10), dtype=np.uint8)  # 10 bits: many ties
    indices, distances = knn_graph(np.packbits(bits, axis=1), 9, metric="bit_hamming")
    dist = np.rint(cdist(bits, bits, "hamming") * 10)
    np.fill_diagonal(dist, 99)
    order = np.argsort(dist, axis=1, kind="stable")[:, :9]
    assert distances.dtype == np.int32
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(distances, np.take_along_axis(dist, order, axis=1))


@pytest.mark.parametrize(
    "metric, exact_max_samples",
    [
        ("euclidean", 60_000),
        ("cosine", 60_000),
        ("bit_hamming", 60_000),
        # approximate: each metric compiles pynndescent, so two of them
        ("euclidean", 0),
        ("bit_hamming", 0),
    ],
)
def test_duplicate_rows_list_each_other_never_themselves(metric, exact_max_samples):
    rng = np.random.default_rng(2)
    if metric == "bit_hamming":
        X = rng.integers(0, 256, (300, 8), dtype=np.uint8)
    else:
        X = rng.normal(size=(300, 16)).astype(np.float32)
    # rows 0-2 are triplets, 10 and 11 twins, placed apart in index order
    X[[150, 299]] = X[0]
    X[11] = X[10]
    indices, distances = knn_graph(
        X, 5, metric=metric, random_state=0, exact_max_samples=exact_max_samples
    )
    assert indices.shape == (300, 5)
    assert not (indices == np.arange(300)[:, None]).any()
    assert all(len(set(row)) == 5 for row in indices.tolist())
    for i, twins in [(0, {150, 299}), (150, {0, 299}), (299, {0, 150}), (10, {11}), (11, {10})]:
        assert set(indices[i, : len(twins)].tolist()) == twins
        np.testing.assert_allclose(distances[i, : len(twins)], 0, atol=1e-5)


def test_all_rows_identical():
    X = np.ones((6, 3))
    indices, distances = knn_graph(X, 10, metric="euclidean")
    # k is clipped to n - 1; every other row, by index
    expected = [[j for j in range(6) if j != i] for i in range(6)]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(distances, 0)


def test_cosine_ignores_row_scale():
    X = np.random.default_rng(3).normal(size=(80, 8))
    scales = np.logspace(-30, 30, 80)[:, None]
    np.testing.assert_array_equal(
        knn_graph(X * scales, 5, metric="cosine")[0], knn_graph(X, 5, metric="cosine")[0]
    )


def test_euclidean_survives_extreme_magnitudes():
    X = np.random.default_rng(4).normal(size=(60, 5))
    expected = knn_graph(X, 4)[0]
    for scale in (1e-30, 1e30):
        np.testing.assert_array_equal(knn_graph(X * scale, 4)[0], expected)


def test_approximate_graph_is_close_to_exact():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 8))[rng.integers(0, 20, 1500)] + 0.1 * rng.normal(size=(1500, 8))
    exact, _ = knn_graph(X, 10)
    approx, distances = knn_graph(X, 10, random_state=0, exact_max_samples=100)
    assert approx.shape == (1500, 10) and distances.dtype == np.float32
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9


def test_single_row_and_bad_input():
    indices, distances = knn_graph(np.zeros((1, 3)), 5)
    assert indices.shape == (1, 0) and distances.shape == (1, 0)
    with pytest.raises(ValueError, match="metric"):
        knn_graph(np.zeros((3, 3)), 1, metric="manhattan")
    with pytest.raises(ValueError, match="finite"):
        knn_graph(np.array([[0.0], [np.nan]]), 1)
    with pytest.raises(TypeError, match="uint8"):
        knn_graph(np.zeros((3, 2)), 1, metric="bit_hamming")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_far_from_the_origin_the_graph_is_still_exact(metric):
    # float32's expansion cannot tell these rows' neighbours apart; float64 decides
    X = np.random.default_rng(0).normal(size=(200, 16)) + 1000.0
    indices, _ = knn_graph(X, 10, metric=metric)
    np.testing.assert_array_equal(indices, reference(X, 10, metric)[0])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_twin_beats_twenty_near_twins(metric):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 16))
    X[150] = X[199] = X[0]
    X[1:21] = X[0] + 1e-6 * rng.normal(size=(20, 16))
    indices, distances = knn_graph(X, 1, metric=metric)
    assert indices[150, 0] == 0 and indices[199, 0] == 0 and indices[0, 0] == 150
    assert distances[150, 0] == 0.0


def test_cosine_puts_zero_rows_at_distance_one():
    X = np.random.default_rng(2).normal(size=(10, 4))
    X[[3, 5]] = 0.0
    indices, distances = knn_graph(X, 9, metric="cosine")
    assert np.all(distances[3] == 1.0)
    zero = np.isin(indices[0], [3, 5])
    np.testing.assert_array_equal(distances[0][zero], [1.0, 1.0])
    want = 1.0 - X[0] @ X[indices[0]].T / np.linalg.norm(X[0]) / np.linalg.norm(
        np.where(zero[:, None], 1.0, X[indices[0]]), axis=1
    )
    np.testing.assert_allclose(distances[0], np.where(zero, 1.0, want), atol=1e-6)
    assert np.all(np.diff(distances[0]) >= 0)  # ranked where distance 1 belongs


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_more_twins_than_candidates_are_listed_by_index(metric):
    # 30 copies of one row, scattered, and k=5: every copy lists the five lowest-index
    # other copies, as the scan breaks ties (the float64 re-search picked any five)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10))
    twins = np.sort(rng.choice(400, 30, replace=False))
    X[twins] = X[twins[0]]
    indices, distances = knn_graph(X, 5, metric=metric)
    for i in twins:
        np.testing.assert_array_equal(indices[i], [j for j in twins if j != i][:5])
    np.testing.assert_array_equal(distances[twins], 0.0)
