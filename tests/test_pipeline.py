"""The encoder and the neighbours together, as users wire them."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skhash import BinaryHashEncoder, HammingKNeighborsClassifier, HammingNeighbors
from tests.helpers import FAST


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_pipeline_scores_far_above_chance(split):
    X_train, X_test, y_train, y_test = split
    pipe = Pipeline(
        [
            ("enc", BinaryHashEncoder(random_state=0, **{**FAST, "n_bits": 32, "max_epochs": 8})),
            ("knn", HammingKNeighborsClassifier(n_neighbors=5, algorithm="brute")),
        ]
    )
    accuracy = pipe.fit(X_train, y_train).score(X_test, y_test)
    # chance is 0.1, and the untrained network's codes already score 0.86: trained, 0.95
    assert accuracy > 0.9


def test_packed_codes_give_the_same_neighbours(split):
    X_train, X_test, y_train, _ = split
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(X_train)
    bits = HammingNeighbors(n_neighbors=4, algorithm="brute").fit(enc.transform(X_train))
    packed = HammingNeighbors(n_neighbors=4, algorithm="brute", packed=True).fit(
        enc.packbits(X_train)
    )
    d1, i1 = bits.kneighbors(enc.transform(X_test))
    d2, i2 = packed.kneighbors(enc.packbits(X_test))
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(i1, i2)


def test_grid_search_over_reg_weight(split):
    X_train, _, y_train, _ = split
    pipe = Pipeline(
        [
            ("enc", BinaryHashEncoder(random_state=0, **FAST)),
            ("knn", HammingKNeighborsClassifier(n_neighbors=5, algorithm="brute")),
        ]
    )
    search = GridSearchCV(pipe, {"enc__reg_weight": [0.1, 1.0]}, cv=2).fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores > 0.3)  # chance is 0.1
    # each candidate trained with its own reg_weight (fold 0: 0.793 and 0.790), not one value
    folds = [search.cv_results_[f"split{i}_test_score"] for i in range(2)]
    assert any(fold[0] != fold[1] for fold in folds)
    # the refitted winner is the best-scoring candidate, refitted on every row
    assert search.best_params_["enc__reg_weight"] == [0.1, 1.0][int(np.argmax(scores))]
    knn = search.best_estimator_.named_steps["knn"]
    assert knn.n_samples_fit_ == len(X_train)
    np.testing.assert_array_equal(knn.classes_, np.unique(y_train))


def test_unsupervised_index_in_a_pipeline(split):
    X_train, X_test, _, _ = split
    pipe = Pipeline(
        [
            ("enc", BinaryHashEncoder(random_state=0, **FAST)),
            ("index", HammingNeighbors(n_neighbors=3, algorithm="brute")),
        ]
    ).fit(X_train)
    distances, indices = pipe[-1].kneighbors(pipe[:-1].transform(X_test))
    # the index holds the encoder's codes of the training rows
    codes = pipe[:-1].transform(X_train)
    query_codes = pipe[:-1].transform(X_test)
    recomputed = np.count_nonzero(codes[indices] != query_codes[:, None, :], axis=2)
    np.testing.assert_array_equal(distances, recomputed)
    assert (np.diff(distances, axis=1) >= 0).all()
