"""Retrieval metrics for binary codes, and scorers for model selection.

* :func:`mean_average_precision` -- mAP@k against class labels (relevance is
  a shared label), the standard measure of the hashing literature.
* :func:`recall_at_k` -- fraction of given true neighbours retrieved in the
  top k, for evaluation against exact neighbours of the original features.
* :func:`distance_recall_at_k` -- tie-aware recall of an approximate k-NN
  search against the exact k-th distance.
* :func:`make_retrieval_scorer` -- a ``scorer(estimator, X, y)`` callable that
  encodes ``X`` and scores leave-one-out retrieval inside ``X``, so
  :class:`~sklearn.model_selection.GridSearchCV` can tune encoders, supervised
  or not.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers

import numpy as np
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import _num_samples, column_or_1d

__all__ = [
    "distance_recall_at_k",
    "make_retrieval_scorer",
    "mean_average_precision",
    "recall_at_k",
]

# Queries per block of the pairwise comparisons in recall_at_k.
_CHUNK = 1024


def _check_k(k, n_columns, name):
    """Return ``k`` (``n_columns`` if None) after checking 0 < k <= n_columns."""
    if k is None:
        k = n_columns
    if not isinstance(k, numbers.Integral) or isinstance(k, bool):
        raise TypeError(f"k must be an int or None, got {k!r}.")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if k > n_columns:
        raise ValueError(f"k={k} exceeds the {n_columns} columns of {name}.")
    return int(k)


def _check_indices(array, name, n_rows=None):
    array = check_array(array, dtype=None, ensure_min_features=1, input_name=name)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {array.dtype}.")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        # the cast below would wrap them to negatives, which read as missing results
        raise ValueError(f"{name} must fit in int64; got {array.max()}.")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {array.shape[0]} rows (queries), expected {n_rows} as in the "
            "other arguments."
        )
    return array.astype(np.int64, copy=False)


def recall_at_k(true_neighbors, retrieved, k=None):
    """Mean fraction of each query's true neighbours found in its top ``k``.

    For query ``i``, ``|set(true_neighbors[i]) & set(retrieved[i, :k])| /
    n_true``, averaged over queries. With ``n_true == k`` this is the usual
    "recall@k" of approximate nearest-neighbour search; with ``n_true < k``
    it is "recall n_true@k" of the hashing literature.

    Parameters
    ----------
    true_neighbors : array-like of shape (n_queries, n_true)
        Indices of the true neighbours of each query (e.g. exact neighbours
        in the original features), distinct within a row.

    retrieved : array-like of shape (n_queries, n_retrieved)
        Indices retrieved for each query, best first. Negative values mark
        missing results and never count.

    k : int, default=None
        Number of leading retrieved columns taken; all if None.

    Returns
    -------
    recall : float
        Mean recall, in [0, 1].

    Examples
    --------
    >>> from skhash.metrics import recall_at_k
    >>> recall_at_k([[0, 1], [2, 3]], [[1, 5, 0], [4, 2, 3]], k=2)
    0.5
    """
    retrieved = _check_indices(retrieved, "retrieved")
    true_neighbors = _check_indices(true_neighbors, "true_neighbors", retrieved.shape[0])
    if (true_neighbors < 0).any():
        raise ValueError("true_neighbors must be non-negative indices.")
    k = _check_k(k, retrieved.shape[1], "retrieved")
    top = retrieved[:, :k]
    hits = 0
    for start in range(0, top.shape[0], _CHUNK):
        block = slice(start, start + _CHUNK)
        found = (true_neighbors[block, :, None] == top[block, None, :]).any(axis=2)
        hits += found.sum()
    return float(hits / true_neighbors.size)


def distance_recall_at_k(true_distances, distances, k=None):
    """Tie-aware recall of an approximate k-nearest-neighbour search.

    A returned neighbour counts when its distance is at most the exact
    ``k``-th nearest distance of its query, so any of several equally distant
    codes is a correct answer; with Hamming distances ties are the rule.

    Parameters
    ----------
    true_distances : array-like of shape (n_queries, n_true)
        Exact nearest distances of each query, ascending; ``n_true >= k``.

    distances : array-like of shape (n_queries, n_returned)
        Distances of the neighbours returned for each query; the first ``k``
        columns are scored.

    k : int, default=None
        Number of neighbours scored; all columns of ``distances`` if None.

    Returns
    -------
    recall : float
        Fraction of the ``n_queries * k`` returned neighbours that are within
        the exact ``k``-th distance, in [0, 1].

    Examples
    --------
    >>> from skhash.metrics import distance_recall_at_k
    >>> distance_recall_at_k([[0, 1, 1]], [[0, 1, 2]])
    0.666...
    """
    distances = check_array(distances, input_name="distances")
    true_distances = check_array(true_distances, input_name="true_distances")
    if true_distances.shape[0] != distances.shape[0]:
        raise ValueError(
            f"true_distances has {true_distances.shape[0]} rows (queries), distances "
            f"has {distances.shape[0]}."
        )
    k = _check_k(k, distances.shape[1], "distances")
    if k > true_distances.shape[1]:
        raise ValueError(f"k={k} exceeds the {true_distances.shape[1]} exact distances given.")
    if (np.diff(true_distances[:, :k], axis=1) < 0).any():
        # the k-th column is read as the k-th nearest distance
        raise ValueError("true_distances must be ascending along each row.")
    kth = true_distances[:, k - 1 : k]
    return float((distances[:, :k] <= kth).mean())


def _check_labels(labels, name):
    """1-D class labels, or a 2-D multi-label indicator matrix."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = check_array(labels, dtype=None, input_name=name)
        if labels.dtype != bool and not np.isin(labels, (0, 1)).all():
            raise ValueError(f"{name} as a 2-D indicator matrix must hold only 0/1 values.")
        return labels.astype(bool)
    return column_or_1d(labels, warn=False)


def mean_average_precision(query_labels, database_labels, retrieved, k=None):
    """Mean average precision of the top ``k`` retrieved items (mAP@k).

    Item ``j`` of the database is relevant to query ``i`` when they share a
    label. With ``rel_r`` the relevance of the item at rank ``r`` (1-based)
    and ``P@r`` the precision of the first ``r`` items, the average precision
    of a query is::

        AP@k = sum_{r <= k} P@r * rel_r / sum_{r <= k} rel_r

    normalised by the number of relevant items *retrieved in the top k* (the
    convention of the hashing literature, e.g. HashNet and DSH code), and 0
    when none is. mAP@k is the mean over queries. Ties in Hamming distance are
    ranked as the retrieval returned them.

    Parameters
    ----------
    query_labels : array-like of shape (n_queries,) or (n_queries, n_classes)
        Class of each query, or a multi-label 0/1 indicator matrix (relevant
        then means at least one shared label).

    database_labels : array-like of shape (n_database,) or (n_database, n_classes)
        Labels of the database items, in the same format.

    retrieved : array-like of shape (n_queries, n_retrieved)
        Database indices retrieved for each query, best first, e.g. from
        :meth:`HammingNeighbors.kneighbors`. Negative values mark missing
        results and are not relevant.

    k : int, default=None
        Number of leading retrieved columns taken; all if None.

    Returns
    -------
    score : float
        mAP@k, in [0, 1].

    Examples
    --------
    >>> from skhash.metrics import mean_average_precision
    >>> # relevant at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    >>> mean_average_precision([0], [0, 1, 0], [[0, 1, 2]])
    0.833...
    """
    query_labels = _check_labels(query_labels, "query_labels")
    database_labels = _check_labels(database_labels, "database_labels")
    retrieved = _check_indices(retrieved, "retrieved", query_labels.shape[0])
    if query_labels.ndim != database_labels.ndim or (
        query_labels.ndim == 2 and query_labels.shape[1] != database_labels.shape[1]
    ):
        raise ValueError(
            "query_labels and database_labels must both be 1-D labels or both "
            "indicator matrices with the same number of columns, got shapes "
            f"{query_labels.shape} and {database_labels.shape}."
        )
    if (retrieved >= database_labels.shape[0]).any():
        raise ValueError(
            f"retrieved holds indices >= the {database_labels.shape[0]} database items."
        )
    k = _check_k(k, retrieved.shape[1], "retrieved")
    top = retrieved[:, :k]
    valid = top >= 0
    safe = np.where(valid, top, 0)
    if query_labels.ndim == 1:
        relevant = database_labels[safe] == query_labels[:, None]
    else:
        relevant = (database_labels[safe] & query_labels[:, None, :]).any(axis=2)
    relevant &= valid
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, k + 1)
    n_relevant = hits[:, -1]
    ap = np.divide(
        (precision * relevant).sum(axis=1),
        n_relevant,
        out=np.zeros(n_relevant.shape[0]),
        where=n_relevant > 0,
    )
    return float(ap.mean())


class _RetrievalScorer:
    """Leave-one-out retrieval score of an encoder; see make_retrieval_scorer."""

    def __init__(self, metric, k, n_true, true_metric, max_queries, random_state):
        self.metric = metric
        self.k = k
        self.n_true = n_true
        self.true_metric = true_metric
        self.max_queries = max_queries
        self.random_state = random_state

    def __repr__(self):
        return (
            f"make_retrieval_scorer(metric={self.metric!r}, k={self.k}, "
            f"n_true={self.n_true}, true_metric={self.true_metric!r}, "
            f"max_queries={self.max_queries})"
        )

    def __call__(self, estimator, X, y=None):
        from ._knn_graph import drop_self
        from ._neighbors import HammingNeighbors

        if self.metric == "map" and y is None:
            raise ValueError(
                "metric='map' needs labels y; use metric='recall' for unlabelled data."
            )
        if self.metric == "map":  # before the work: one label (or indicator row) per row
            y = np.asarray(y)
            n_rows = _num_samples(X)
            if y.ndim == 0 or y.shape[0] != n_rows:
                n_labels = "a scalar" if y.ndim == 0 else f"{y.shape[0]} labels"
                raise ValueError(
                    f"y has {n_labels} for the {n_rows} rows of X; "
                    "give one label (or indicator row) per row."
                )
        # an array whatever scikit-learn's transform_output (a DataFrame is indexed by label)
        codes = np.asarray(estimator.transform(X))
        n_samples = codes.shape[0]
        k = min(self.k, n_samples - 1)
        if k < 1:
            raise ValueError("Scoring retrieval needs at least 2 samples.")
        queries = np.arange(n_samples)
        if self.max_queries is not None and n_samples > self.max_queries:
            rng = check_random_state(self.random_state)
            queries = np.sort(rng.choice(n_samples, self.max_queries, replace=False))
        index = HammingNeighbors(n_neighbors=k, algorithm="brute").fit(codes)
        # Leave-one-out: each query searches all the other samples.
        if queries.shape[0] == n_samples:
            retrieved = index.kneighbors(None, return_distance=False)
        else:
            distances, retrieved = index.kneighbors(codes[queries], n_neighbors=k + 1)
            retrieved, _ = drop_self(retrieved, distances, queries)
        if self.metric == "map":
            return mean_average_precision(y[queries], y, retrieved)

        from sklearn.neighbors import NearestNeighbors

        n_true = min(self.n_true, k)
        exact = NearestNeighbors(n_neighbors=n_true, metric=self.true_metric).fit(X)
        true_neighbors = exact.kneighbors(None, return_distance=False)[queries]
        return recall_at_k(true_neighbors, retrieved)


def make_retrieval_scorer(
    metric="map",
    *,
    k=100,
    n_true=10,
    true_metric="euclidean",
    max_queries=None,
    random_state=None,
):
    """Scorer of binary codes by leave-one-out retrieval, for model selection.

    The returned callable ``scorer(estimator, X, y=None)`` encodes ``X`` with
    ``estimator.transform`` (0/1 bits, as ``BinaryHashEncoder`` returns),
    uses every sample of ``X`` as a query against all the other samples of
    ``X`` (exact Hamming search, ties by index) and returns:

    * ``metric="map"``: :func:`mean_average_precision` of the top ``k``,
      relevance being a shared label in ``y``;
    * ``metric="recall"``: :func:`recall_at_k` of the ``n_true`` exact nearest
      neighbours of each sample in ``X`` itself (``true_metric``) within the
      top ``k`` by Hamming distance; ``y`` is ignored, so it scores
      unsupervised encoders.

    Pass it as ``scoring`` to :class:`~sklearn.model_selection.GridSearchCV`
    or :func:`~sklearn.model_selection.cross_val_score`: each validation fold
    is then scored as a retrieval database of its own. Both scores are in
    [0, 1], higher is better.

    Parameters
    ----------
    metric : {"map", "recall"}, default="map"
        Score to compute.

    k : int, default=100
        Number of retrieved neighbours scored (at most ``n_samples - 1``).

    n_true : int, default=10
        Number of exact neighbours per query for ``metric="recall"`` (at most
        ``k``).

    true_metric : str or callable, default="euclidean"
        Metric of :class:`~sklearn.neighbors.NearestNeighbors` defining the
        true neighbours for ``metric="recall"``.

    max_queries : int or None, default=None
        Score a random subset of this many queries (each still searching all
        other samples); all samples if None.

    random_state : int, RandomState instance or None, default=None
        Draws the query subset when ``max_queries`` is set.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> from skhash.metrics import make_retrieval_scorer
    >>> scorer = make_retrieval_scorer("recall", k=50, n_true=10)
    >>> # GridSearchCV(BinaryHashEncoder(), {"n_bits": [16, 32]}, scoring=scorer)
    """
    if metric not in ("map", "recall"):
        raise ValueError(f"metric must be 'map' or 'recall', got {metric!r}.")
    for name, value in (("k", k), ("n_true", n_true)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    if max_queries is not None and (
        not isinstance(max_queries, numbers.Integral)
        or isinstance(max_queries, bool)
        or max_queries < 1
    ):
        raise ValueError(f"max_queries must be None or an int >= 1, got {max_queries!r}.")
    return _RetrievalScorer(metric, int(k), int(n_true), true_metric, max_queries, random_state)
