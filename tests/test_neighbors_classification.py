"""Tests of HammingKNeighborsClassifier, the k-NN vote on binary codes."""

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer

from skhash import HammingKNeighborsClassifier, HammingNeighbors
from tests.neighbors_helpers import clustered_data

BITS = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=np.uint8)
LABELS = np.array(["b", "a", "b", "a"])


def test_predict_majority_vote_and_ties():
    clf = HammingKNeighborsClassifier(n_neighbors=3).fit(BITS, LABELS)
    assert is_classifier(clf)
    np.testing.assert_array_equal(clf.classes_, ["a", "b"])
    # Neighbours of 0000: rows 0, 1, 2 -> b, a, b.
    np.testing.assert_allclose(clf.predict_proba([[0, 0, 0, 0]]), [[1 / 3, 2 / 3]])
    assert clf.predict([[0, 0, 0, 0]])[0] == "b"
    # A 1-1 vote goes to the first class of classes_, as KNeighborsClassifier.
    tie = HammingKNeighborsClassifier(n_neighbors=2).fit(BITS, LABELS)
    np.testing.assert_array_equal(tie.predict_proba([[0, 0, 0, 0]]), [[0.5, 0.5]])
    assert tie.predict([[0, 0, 0, 0]])[0] == "a"


def test_leave_one_out_and_score():
    clf = HammingKNeighborsClassifier(n_neighbors=3).fit(BITS, LABELS)
    # X=None: each code votes without itself. 0011's neighbours are 0001 (1),
    # then 0000 and 1111 tied at 2, taken by index: a, b, a.
    np.testing.assert_array_equal(clf.predict(), ["a", "b", "a", "b"])
    # With the codes as queries each one is its own nearest: only 0001 is wrong
    # (itself a, then 0000 and 0011, both b).
    assert clf.score(BITS, LABELS) == 0.75


@pytest.mark.parametrize("algorithm", ["brute", "nndescent"])
def test_same_neighbours_as_the_index(algorithm):
    database, queries = clustered_data()
    y = np.arange(len(database)) % 3
    params = dict(n_neighbors=7, algorithm=algorithm, random_state=0)
    clf = HammingKNeighborsClassifier(**params).fit(database, y)
    nn = HammingNeighbors(**params).fit(database)
    assert clf.fit_method_ == nn.fit_method_ == algorithm
    for a, b in zip(clf.kneighbors(queries), nn.kneighbors(queries), strict=True):
        np.testing.assert_array_equal(a, b)
    # the vote is over exactly those neighbours
    expected = np.stack(
        [np.bincount(row, minlength=3) / 7 for row in y[nn.kneighbors(queries)[1]]]
    )
    np.testing.assert_allclose(clf.predict_proba(queries), expected)


def test_needs_labels():
    with pytest.raises(ValueError, match="requires y to be passed"):
        HammingKNeighborsClassifier().fit(BITS, None)
    with pytest.raises(TypeError):
        HammingKNeighborsClassifier().fit(BITS)
    with pytest.raises(ValueError, match="Unknown label type"):
        HammingKNeighborsClassifier(n_neighbors=1).fit(BITS, [0.5, 1.5, 2.5, 3.5])


def test_grid_search_pipeline():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = rng.normal(size=(120, 16)) + 2.0 * rng.normal(size=(3, 16))[y]
    pipe = Pipeline([("enc", Binarizer()), ("knn", HammingKNeighborsClassifier())])
    search = GridSearchCV(pipe, {"knn__n_neighbors": [1, 5, 9]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.8
    assert search.best_score_ == search.cv_results_["mean_test_score"].max()
    assert np.mean(search.predict(X) == y) > 0.8


def test_weights_distance_and_callable_as_scikit_learn():
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=np.uint8)
    y = ["a", "a", "b", "b"]
    queries = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], dtype=np.uint8)
    uniform = HammingKNeighborsClassifier(n_neighbors=3).fit(bits, y)
    # first query: rows 2 (d 0), 1 (d 1), 0 (d 2, before row 3 by index); second: 2, 3 (d 1), 1
    np.testing.assert_allclose(uniform.predict_proba(queries), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]])
    distance = HammingKNeighborsClassifier(n_neighbors=3, weights="distance").fit(bits, y)
    # an exact match votes alone; else 1/d: b 1 + 1, a 1/2
    np.testing.assert_allclose(distance.predict_proba(queries), [[0, 1], [0.2, 0.8]])
    np.testing.assert_array_equal(distance.predict(queries), ["b", "b"])
    assert uniform.predict(queries[:1])[0] == "a"
    gauss = HammingKNeighborsClassifier(n_neighbors=3, weights=lambda d: np.exp(-d))
    proba = gauss.fit(bits, y).predict_proba(queries)
    e = np.exp(-np.array([[0.0, 1, 2], [1, 1, 2]]))
    expected_b = np.array([e[0, 0] / e[0].sum(), (e[1, 0] + e[1, 1]) / e[1].sum()])
    np.testing.assert_allclose(proba[:, 1], expected_b)
    # as scikit-learn's KNeighborsClassifier on the same neighbours
    from sklearn.neighbors import KNeighborsClassifier

    ref = KNeighborsClassifier(n_neighbors=3, weights="distance", metric="hamming")
    np.testing.assert_allclose(ref.fit(bits, y).predict_proba(queries), [[0, 1], [0.2, 0.8]])


def test_bad_weights_are_clear_errors():
    bits = np.random.default_rng(0).integers(0, 2, (20, 8), dtype=np.uint8)
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="'weights'"):
        HammingKNeighborsClassifier(weights="inverse").fit(bits, y)
    clf = HammingKNeighborsClassifier(weights=lambda d: d[:, :1]).fit(bits, y)
    with pytest.raises(ValueError, match="one weight per neighbour"):
        clf.predict(bits[:3])
    clf.set_params(weights="bogus")  # after fit: the query checks it again
    with pytest.raises(ValueError, match="'weights'"):
        clf.predict(bits[:3])
