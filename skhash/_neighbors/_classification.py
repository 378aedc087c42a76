"""k-nearest-neighbour vote on binary codes (scikit-learn's ``KNeighborsClassifier`` analogue)."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import Options, check_query_params, fit_context
from ._base import HammingNeighborsBase, KNeighborsMixin

__all__ = ["HammingKNeighborsClassifier"]


class HammingKNeighborsClassifier(KNeighborsMixin, ClassifierMixin, HammingNeighborsBase):
    """Classifier voting among the k nearest binary codes in Hamming distance.

    The index is the one of :class:`~skhash.HammingNeighbors` (same
    parameters, backends and neighbours); :meth:`predict` takes the majority
    class of the ``n_neighbors`` nearest codes (or their vote weighted by
    ``weights``), so a ``Pipeline`` of an encoder and this classifier can be
    scored and tuned by :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours voting, and returned by :meth:`kneighbors`.

    weights : {"uniform", "distance"}, callable or None, default="uniform"
        Weight of each neighbour's vote, as in
        :class:`~sklearn.neighbors.KNeighborsClassifier`: ``"uniform"`` (or
        None) one each; ``"distance"`` the inverse of its Hamming distance,
        and a query with codes at distance 0 takes its vote from those
        alone; a callable gets the ``(n_queries, n_neighbors)`` float array
        of Hamming distances and returns weights of the same shape: finite,
        ``>= 0``, and not all zero for a query (else a ValueError, as
        scikit-learn's for zeros).

    algorithm : {"auto", "brute", "nndescent"}, default="auto"
        Exact popcount search or graph search; see
        :class:`~skhash.HammingNeighbors`.

    packed : bool, default=False
        If True, ``X`` holds bytes of packed bits (``np.packbits`` rows),
        else one 0/1 value per bit.

    binarize : float or None, default=None
        If set, the bits are ``X > binarize``; only with ``packed=False``.

    n_neighbors_graph : int, default=24
        Neighbours per code in the search graph of ``"nndescent"``.

    ef_search : int or "auto", default="auto"
        Codes kept while walking the graph; larger is slower and more
        accurate.

    n_trees : int or None, default=None
        Random-projection trees initialising NN-descent.

    n_iters : int or None, default=None
        Maximum NN-descent iterations.

    n_jobs : int or None, default=None
        numba threads; None and -1 use all, 0 is not allowed.

    random_state : int, RandomState instance or None, default=None
        Seed of the graph build and of the choice of entry codes.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    codes_ : ndarray of shape (n_samples_fit, ceil(n_bits_ / 8)), dtype uint8
        The fitted codes, bit-packed, C-contiguous.

    n_bits_ : int
        Code length in bits.

    n_samples_fit_ : int
        Number of fitted codes.

    n_features_in_ : int
        Number of columns of ``X`` seen in :meth:`fit`.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the columns of ``X`` seen in :meth:`fit`; defined only when
        they are all strings (a DataFrame's).

    fit_method_ : {"brute", "nndescent"}
        The backend used, ``algorithm`` resolved.

    graph_indptr_, graph_indices_, entry_points_ : ndarray or None
        The search graph of ``"nndescent"``, as in
        :class:`~skhash.HammingNeighbors`.

    upper_rows_, upper_indptr_, upper_indices_ : ndarray or None
        Its upper layer (from 100,000 codes on), as in
        :class:`~skhash.HammingNeighbors`.

    See Also
    --------
    HammingNeighbors : The unsupervised index.
    sklearn.neighbors.KNeighborsClassifier : The same vote on real vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash import HammingKNeighborsClassifier
    >>> bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    >>> clf = HammingKNeighborsClassifier(n_neighbors=1).fit(bits, ["a", "a", "b"])
    >>> clf.predict([[0, 0, 1, 1], [1, 1, 1, 0]])
    array(['a', 'b'], dtype='<U1')
    """

    _parameter_constraints = {
        **HammingNeighborsBase._parameter_constraints,
        "weights": [Options(str, {"uniform", "distance"}), callable, None],
    }

    def __init__(
        self,
        *,
        n_neighbors=5,
        weights="uniform",
        algorithm="auto",
        packed=False,
        binarize=None,
        n_neighbors_graph=24,
        ef_search="auto",
        n_trees=None,
        n_iters=None,
        n_jobs=None,
        random_state=None,
    ):
        super().__init__(
            n_neighbors=n_neighbors,
            algorithm=algorithm,
            packed=packed,
            binarize=binarize,
            n_neighbors_graph=n_neighbors_graph,
            ef_search=ef_search,
            n_trees=n_trees,
            n_iters=n_iters,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        self.weights = weights

    @fit_context()
    def fit(self, X, y):
        """Index the codes ``X`` with their class labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            0/1 bits, bytes of packed bits if ``packed=True``, or real values
            if ``binarize`` is set.

        y : array-like of shape (n_samples,)
            Class labels. Multi-output (2-D) targets are not supported (a
            ValueError); a column vector is raveled with a warning.

        Returns
        -------
        self : HammingKNeighborsClassifier
            The fitted estimator.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None; use HammingNeighbors for an index without labels."
            )
        y = self._fit(X, y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        return self

    def predict_proba(self, X=None):
        """Class frequencies among the k nearest codes, weighted by ``weights``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`kneighbors`; if None, each fitted code
            without itself.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Share of the neighbours' (weighted) vote in each class, columns in
            the order of ``classes_``.
        """
        # the vote reads weights, checked again (set_params may follow fit); the
        # neighbour queries do not
        check_is_fitted(self)
        check_query_params(self, ("weights",))
        distances, indices = self.kneighbors(X)
        labels = self._y[indices]
        weights = self._vote_weights(distances.astype(np.float64))
        proba = np.zeros((labels.shape[0], self.classes_.shape[0]))
        rows = np.arange(labels.shape[0])
        for column, weight in zip(labels.T, weights.T, strict=True):
            proba[rows, column] += weight
        return proba / proba.sum(axis=1, keepdims=True)

    def _vote_weights(self, distances):
        """Each neighbour's vote, ``(n_queries, n_neighbors)`` floats."""
        if self.weights in (None, "uniform"):
            return np.ones_like(distances)
        if self.weights == "distance":
            with np.errstate(divide="ignore"):
                weights = 1.0 / distances
            # codes at distance 0 outvote every other: they alone vote, one each
            exact = np.isinf(weights)
            rows = exact.any(axis=1)
            weights[rows] = exact[rows]
            return weights
        weights = np.asarray(self.weights(distances), dtype=np.float64)
        if weights.shape != distances.shape:
            raise ValueError(
                f"weights={self.weights!r} returned an array of shape {weights.shape} for "
                f"distances of shape {distances.shape}; it must return one weight per neighbour."
            )
        # else NaN probabilities, or a query without a vote predicted as classes_[0]
        if not np.isfinite(weights).all():
            raise ValueError(
                f"weights={self.weights!r} returned weights that are not finite (e.g. 1 / d "
                "at distance 0); they must be finite numbers >= 0."
            )
        if (weights < 0).any():
            raise ValueError(
                f"weights={self.weights!r} returned negative weights; they must be >= 0."
            )
        if not weights.any(axis=1).all():
            # as scikit-learn's KNeighborsClassifier
            raise ValueError(
                f"weights={self.weights!r} gave all the neighbours of some query zero "
                "weights: no class gets a vote. Modify the function to avoid this case."
            )
        return weights

    def predict(self, X=None):
        """Majority class of the k nearest codes (their vote weighted by ``weights``).

        Ties go to the class listed first in ``classes_``, as in
        :class:`~sklearn.neighbors.KNeighborsClassifier`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`kneighbors`; if None, each fitted code
            without itself.

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
