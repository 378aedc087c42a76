"""k-nearest-neighbour vote on binary codes (scikit-learn's ``KNeighborsClassifier`` analogue)."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from .._validation import fit_context
from ._base import HammingNeighborsBase, KNeighborsMixin

__all__ = ["HammingKNeighborsClassifier"]


class HammingKNeighborsClassifier(KNeighborsMixin, ClassifierMixin, HammingNeighborsBase):
    """Classifier voting among the k nearest binary codes in Hamming distance.

    The index is the one of :class:`~skhash.HammingNeighbors` (same
    parameters, backends and neighbours); :meth:`predict` takes the majority
    class of the ``n_neighbors`` nearest codes, so a ``Pipeline`` of an
    encoder and this classifier can be scored and tuned by
    :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours voting, and returned by :meth:`kneighbors`.

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

    @fit_context()
    def fit(self, X, y):
        """Index the codes ``X`` with their class labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            0/1 bits, bytes of packed bits if ``packed=True``, or real values
            if ``binarize`` is set.

        y : array-like of shape (n_samples,)
            Class labels.

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
        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        return self

    def predict_proba(self, X=None):
        """Class frequencies among the k nearest codes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`kneighbors`; if None, each fitted code
            without itself.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Fraction of the neighbours in each class, columns in the order
            of ``classes_``.
        """
        indices = self.kneighbors(X, return_distance=False)
        labels = self._y[indices]
        proba = np.zeros((labels.shape[0], self.classes_.shape[0]))
        rows = np.arange(labels.shape[0])
        for column in labels.T:
            proba[rows, column] += 1
        proba /= labels.shape[1]
        return proba

    def predict(self, X=None):
        """Majority class of the k nearest codes.

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
