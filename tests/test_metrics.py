"""Tests of skhash.metrics."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import GridSearchCV, cross_val_score

from skhash import HammingNeighbors
from skhash.metrics import (
    distance_recall_at_k,
    make_retrieval_scorer,
    mean_average_precision,
    recall_at_k,
)


class SignProjection(TransformerMixin, BaseEstimator):
    """Sign random projections (SimHash): a tiny unsupervised encoder."""

    def __init__(self, n_bits=8, random_state=0):
        self.n_bits = n_bits
        self.random_state = random_state

    def fit(self, X, y=None):
        rng = np.random.default_rng(self.random_state)
        self.mean_ = np.mean(X, axis=0)
        self.projection_ = rng.normal(size=(np.shape(X)[1], self.n_bits))
        return self

    def transform(self, X):
        return ((np.asarray(X) - self.mean_) @ self.projection_ > 0).astype(np.uint8)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    X = rng.normal(size=(120, 10)) + 4.0 * rng.normal(size=(4, 10))[y]
    return X, y


# recall_at_k


def test_recall_at_k_hand_computed():
    true = [[0, 1], [2, 3]]
    retrieved = [[1, 5, 0], [4, 2, 3]]
    # k=2: {1} of {0,1} and {2} of {2,3} -> (1/2 + 1/2) / 2
    assert recall_at_k(true, retrieved, k=2) == 0.5
    # k=3 (all): {0,1} and {2,3} -> 1
    assert recall_at_k(true, retrieved) == 1.0
    assert recall_at_k(true, retrieved, k=1) == 0.25
    # Padding (-1) never counts.
    assert recall_at_k([[0, 1]], [[-1, 1]]) == 0.5


def test_recall_at_k_validation():
    with pytest.raises(ValueError, match="k must be >= 1"):
        recall_at_k([[0]], [[0]], k=0)
    with pytest.raises(ValueError, match="exceeds"):
        recall_at_k([[0]], [[0, 1]], k=3)
    with pytest.raises(ValueError, match="rows"):
        recall_at_k([[0], [1]], [[0, 1]])
    with pytest.raises(ValueError, match="integer indices"):
        recall_at_k([[0.5]], [[0]])
    with pytest.raises(ValueError, match="non-negative"):
        recall_at_k([[-1]], [[0]])
    with pytest.raises(TypeError, match="k must be an int"):
        recall_at_k([[0]], [[0]], k=1.0)


# distance_recall_at_k


def test_distance_recall_hand_computed():
    true = [[0, 1, 1, 3], [2, 2, 2, 2]]
    found = [[0, 1, 2], [2, 2, 3]]
    # k=3: k-th true distances 1 and 2 -> [1, 1, 0] and [1, 1, 0]
    assert distance_recall_at_k(true, found) == pytest.approx(4 / 6)
    assert distance_recall_at_k(true, found, k=2) == 1.0
    with pytest.raises(ValueError, match="exceeds"):
        distance_recall_at_k([[0]], [[0, 1]])
    with pytest.raises(ValueError, match="rows"):
        distance_recall_at_k([[0, 1]], [[0, 1], [0, 1]])


# mean_average_precision


def test_map_hand_computed():
    database_labels = np.array([0, 1, 0, 2, 0, 1])
    retrieved = [[0, 1, 2, 3], [1, 3, 5, 0], [3, 0, 1, 2]]
    query_labels = [0, 1, 1]
    # q0 (label 0): ranks 1, 3 relevant -> (1/1 + 2/3) / 2 = 5/6
    # q1 (label 1): ranks 1, 3 relevant -> (1/1 + 2/3) / 2 = 5/6
    # q2 (label 1): rank 3 relevant -> (1/3) / 1 = 1/3
    expected = (5 / 6 + 5 / 6 + 1 / 3) / 3
    assert mean_average_precision(query_labels, database_labels, retrieved) == pytest.approx(
        expected
    )
    # k=2: q0 -> 1, q1 -> 1, q2 -> nothing relevant -> 0
    assert mean_average_precision(query_labels, database_labels, retrieved, k=2) == pytest.approx(
        2 / 3
    )
    # String labels; padding (-1) is never relevant.
    assert mean_average_precision(["a"], ["b", "a"], [[-1, 1]]) == pytest.approx(0.5)


def test_map_multilabel():
    database_labels = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]])
    # Query shares a label with items 1 and 2 (not 0): ranks 2, 3 -> (1/2 + 2/3) / 2
    score = mean_average_precision([[0, 1, 0]], database_labels, [[0, 1, 2]])
    assert score == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_map_validation():
    with pytest.raises(ValueError, match="rows"):
        mean_average_precision([0, 1], [0, 1], [[0, 1]])
    with pytest.raises(ValueError, match="database items"):
        mean_average_precision([0], [0, 1], [[0, 2]])
    with pytest.raises(ValueError, match="k must be >= 1"):
        mean_average_precision([0], [0, 1], [[0, 1]], k=0)
    with pytest.raises(ValueError, match="both"):
        mean_average_precision([0], [[0, 1], [1, 0]], [[0, 1]])


def test_metrics_refuse_inputs_they_would_misread():
    # uint64 indices beyond int64 used to wrap to negatives, read as "missing"; unsorted
    # exact distances gave a wrong k-th distance; a 0/1 indicator holding other values
    # was cast to bool
    big = np.array([[2**63 + 5]], dtype=np.uint64)
    with pytest.raises(ValueError, match="int64"):
        recall_at_k([[0]], big)
    with pytest.raises(ValueError, match="int64"):
        mean_average_precision([0], [0, 1], big)
    with pytest.raises(ValueError, match="ascending"):
        distance_recall_at_k([[3, 1]], [[1, 2]])
    assert distance_recall_at_k([[1, 3, 0]], [[1, 4]]) == 0.5  # columns past k are not read
    with pytest.raises(ValueError, match="0/1"):
        mean_average_precision([[0, 2]], [[1, 0], [0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="0/1"):
        mean_average_precision([[0, 1]], [[0.5, 0], [0, 1]], [[0, 1]])
    # bool and 0/1 float indicators are accepted
    assert mean_average_precision([[False, True]], [[1.0, 0.0], [0.0, 1.0]], [[1, 0]]) == 1.0


# Scorers


def test_scorer_map_by_hand(blobs):
    X, y = blobs
    encoder = SignProjection(n_bits=16).fit(X)
    scorer = make_retrieval_scorer("map", k=10)
    codes = encoder.transform(X)
    retrieved = HammingNeighbors(n_neighbors=10).fit(codes).kneighbors(return_distance=False)
    assert scorer(encoder, X, y) == pytest.approx(mean_average_precision(y, y, retrieved))
    assert scorer(encoder, X, y) > 0.9


def test_scorer_recall_unsupervised_grid_search(blobs):
    X, _ = blobs
    scorer = make_retrieval_scorer("recall", k=20, n_true=5)
    search = GridSearchCV(SignProjection(), {"n_bits": [2, 32]}, scoring=scorer, cv=3)
    search.fit(X)
    # Longer codes approximate the Euclidean neighbours better.
    assert search.best_params_ == {"n_bits": 32}
    assert 0 < search.best_score_ <= 1


def test_scorer_subsampled_queries(blobs):
    X, y = blobs
    scorer = make_retrieval_scorer("map", k=10, max_queries=15, random_state=0)
    scores = cross_val_score(SignProjection(n_bits=16), X, y, scoring=scorer, cv=2)
    assert scores.shape == (2,) and (scores > 0.8).all()


def test_scorer_errors(blobs):
    X, _ = blobs
    encoder = SignProjection().fit(X)
    with pytest.raises(ValueError, match="needs labels"):
        make_retrieval_scorer("map")(encoder, X)
    with pytest.raises(ValueError, match="metric"):
        make_retrieval_scorer("ndcg")
    with pytest.raises(ValueError, match="k must be"):
        make_retrieval_scorer(k=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        make_retrieval_scorer("recall")(encoder, X[:1])


def test_scorer_under_pandas_output_scores_as_under_numpy(blobs):
    # a DataFrame of codes must be indexed by row, not by column label
    import sklearn

    from skhash import SimHash

    X, y = blobs
    enc = SimHash(n_bits=32, random_state=0).fit(X)
    for metric in ("map", "recall"):
        scorer = make_retrieval_scorer(metric, k=20, max_queries=50, random_state=0)
        want = scorer(enc, X, y)
        with sklearn.config_context(transform_output="pandas"):
            assert scorer(enc, X, y) == want


def test_scorer_rejects_a_bool_max_queries():
    # Booleans are not integers (as for k and n_true): True must not mean one query
    with pytest.raises(ValueError, match="max_queries"):
        make_retrieval_scorer("map", max_queries=True)


def test_scorer_rejects_labels_of_another_length(blobs):
    # y must label the rows of X; extra labels would be taken as database labels
    X, y = blobs
    encoder = SignProjection(n_bits=16).fit(X)
    scorer = make_retrieval_scorer("map", k=10)
    for labels in (y[:-1], np.concatenate([y, y[:5]])):
        with pytest.raises(ValueError, match="labels"):
            scorer(encoder, X, labels)
    with pytest.raises(ValueError, match="y has a scalar"):
        scorer(encoder, X, np.int64(1))

    class Untransformable:  # the check comes before any encoding
        def transform(self, X):
            raise AssertionError("encoded before y was checked")

    with pytest.raises(ValueError, match="labels"):
        scorer(Untransformable(), X, y[:-1])
