"""HammingNeighbors and HammingKNeighborsClassifier side by side with scikit-learn.

Where scikit-learn answers, ours answers the same on the same codes; where it
raises, or where ours does not support what it does, ours raises an error that
names the problem.
"""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from skhash import HammingKNeighborsClassifier, HammingNeighbors

BITS = np.array(
    [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]],
    dtype=np.uint8,
)
LABELS = np.array([1, 0, 1, 0, 1, 0])


@pytest.mark.parametrize(
    "weights, match",
    [
        (lambda d: np.zeros_like(d), "zero weights"),
        (lambda d: np.divide(1.0, d, where=d > 0, out=np.full_like(d, np.inf)), "finite"),
        (lambda d: np.full_like(d, np.nan), "finite"),
        (lambda d: -np.ones_like(d), "negative"),
    ],
    ids=["zeros", "inf", "nan", "negative"],
)
def test_callable_weights_without_a_vote_are_errors(weights, match):
    # scikit-learn raises for rows of zero weights (and returns NaN probabilities
    # for infinite ones); a row of zeros must not become "the first class" silently
    ref = KNeighborsClassifier(n_neighbors=3, weights=lambda d: np.zeros_like(d))
    with pytest.raises(ValueError, match="zero weights"):
        ref.fit(BITS, LABELS).predict_proba(BITS)
    clf = HammingKNeighborsClassifier(n_neighbors=3, weights=weights).fit(BITS, LABELS)
    for method in (clf.predict_proba, clf.predict):
        with pytest.raises(ValueError, match=match):
            method(BITS)
    # a row with some zero weights still votes with the others
    ok = HammingKNeighborsClassifier(n_neighbors=3, weights=lambda d: (d > 0).astype(float))
    proba = ok.fit(BITS, LABELS).predict_proba(BITS[2:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_multi_output_targets_are_named_as_unsupported():
    y = np.c_[LABELS, 1 - LABELS]
    # scikit-learn votes per output; ours does not, and says so
    assert KNeighborsClassifier(n_neighbors=3).fit(BITS, y).predict(BITS).shape == (6, 2)
    clf = HammingKNeighborsClassifier(n_neighbors=3)
    with pytest.raises(ValueError, match=r"multi-output.*\(6, 2\).*MultiOutputClassifier"):
        clf.fit(BITS, y)
    assert not hasattr(clf, "classes_")
    # a column vector is one output: raveled with scikit-learn's warning
    with pytest.warns(UserWarning, match="column-vector y"):
        clf.fit(BITS, LABELS[:, None])
    np.testing.assert_array_equal(clf.classes_, [0, 1])


def test_classifier_neighbour_queries_do_not_read_weights():
    # as scikit-learn's: kneighbors reads no weights, so a bad one set after fit
    # fails the vote, not the search
    clf = HammingKNeighborsClassifier(n_neighbors=3).fit(BITS, LABELS)
    expected = clf.kneighbors(BITS)
    clf.set_params(weights="bogus")
    for result, reference in zip(clf.kneighbors(BITS), expected, strict=True):
        np.testing.assert_array_equal(result, reference)
    assert clf.kneighbors_graph().shape == (6, 6)
    for method in (clf.predict_proba, clf.predict):
        with pytest.raises(ValueError, match="'weights' parameter"):
            method(BITS)
    with pytest.raises(NotFittedError):
        HammingKNeighborsClassifier(weights="bogus").predict(BITS)


@pytest.mark.parametrize("cls", [HammingNeighbors, HammingKNeighborsClassifier])
def test_docstring_lists_every_fitted_attribute(cls):
    doc = inspect.getdoc(cls)
    section = doc.split("Attributes\n----------\n")[1].split("See Also\n")[0]
    documented = set()
    for line in section.splitlines():
        if line and not line.startswith(" ") and " : " in line:
            documented.update(name.strip() for name in line.split(" : ")[0].split(","))
    X = pd.DataFrame(BITS, columns=[f"bit{i}" for i in range(4)])
    estimator = cls(n_neighbors=2).fit(X, LABELS)
    fitted = {name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")}
    assert "feature_names_in_" in fitted
    assert fitted <= documented, fitted - documented


@pytest.mark.parametrize("algorithm", ["brute", "nndescent"])
def test_training_queries_match_scikit_learn_with_duplicates(algorithm):
    # X=None: a code is not its own neighbour, its duplicates are (at distance 0);
    # scikit-learn's "hamming" is our distance over n_bits
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (40, 12), dtype=np.uint8)[rng.integers(0, 40, 300)]
    ref = NearestNeighbors(n_neighbors=6, metric="hamming", algorithm="brute").fit(X)
    nn = HammingNeighbors(n_neighbors=6, algorithm=algorithm, n_neighbors_graph=8, random_state=0)
    nn.fit(X)
    assert nn.fit_method_ == algorithm
    distances, indices = nn.kneighbors()
    np.testing.assert_array_equal(distances, np.rint(ref.kneighbors()[0] * 12))
    assert not (indices == np.arange(300)[:, None]).any()
    graph = nn.kneighbors_graph(mode="distance")
    assert graph.nnz == 300 * 6 and graph.diagonal().sum() == 0
    radius = nn.radius_neighbors_graph(radius=3, mode="distance")
    ref_radius = ref.radius_neighbors_graph(radius=3 / 12 + 1e-9, mode="distance")
    assert radius.nnz == ref_radius.nnz  # explicit zeros included, self excluded
    np.testing.assert_array_equal(radius.toarray(), np.rint(ref_radius.toarray() * 12))
    np.testing.assert_array_equal(radius.indptr, ref_radius.indptr)


def test_bad_targets_fail_before_the_graph_is_built(monkeypatch):
    # a continuous or multi-output y must not cost an index build first
    built = []
    monkeypatch.setattr(
        HammingKNeighborsClassifier, "_build_graph", lambda self: built.append(self)
    )
    X = np.random.default_rng(0).integers(0, 2, (60, 8), dtype=np.uint8)
    clf = HammingKNeighborsClassifier(algorithm="nndescent", n_neighbors_graph=4)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, np.linspace(0, 1, 60))
    with pytest.raises(ValueError, match="multi-output"):
        clf.fit(X, np.zeros((60, 2), dtype=int))
    assert built == []
    clf.fit(X, np.arange(60) % 2)
    assert len(built) == 1
