"""Hamming-distance nearest neighbours on binary codes."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
import sys
from contextlib import contextmanager

import numba
import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._graph import build_search_graph, choose_entry_points, graph_knn
from ._hamming import as_words, hamming_knn, hamming_radius

__all__ = ["HammingNeighbors"]

# `python benchmarks/neighbors.py --crossover`: NN-descent QPS 1.7x brute at 3e5, 5.6x at 1e6
_AUTO_BRUTE_MAX_SAMPLES = 1_000_000


@contextmanager
def _numba_threads(n_jobs):
    """Run numba parallel code on ``n_jobs`` threads (None or -1: all).

    numba's OpenMP threading layer sets the process-wide OpenMP thread count,
    which torch shares: a query would otherwise change how many threads (and so
    which floating-point reduction order) a later ``fit`` of an encoder uses.
    torch's count is restored on exit.
    """
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    previous = numba.get_num_threads()
    if n_jobs is None or n_jobs == -1:
        n_threads = numba.config.NUMBA_NUM_THREADS
    elif n_jobs < 0:
        n_threads = max(1, numba.config.NUMBA_NUM_THREADS + 1 + n_jobs)
    else:
        n_threads = min(n_jobs, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        numba.set_num_threads(previous)
        if torch_threads is not None and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


def _drop_self(indices, distances, rows=None):
    """Remove each query's own row from its k + 1 neighbours.

    ``rows[i]`` is the fitted row that query ``i`` is (``arange`` if None).
    As in scikit-learn, a query without itself among its neighbours (many
    duplicates, or an approximate search) loses its farthest one instead.
    """
    n_queries, k_plus_one = indices.shape
    if rows is None:
        rows = np.arange(n_queries)
    mask = indices == np.asarray(rows)[:, None]
    # At most one column per row: indices are distinct within a row.
    mask[~mask.any(axis=1), -1] = True
    keep = ~mask
    return (
        indices[keep].reshape(n_queries, k_plus_one - 1),
        distances[keep].reshape(n_queries, k_plus_one - 1),
    )


class HammingNeighbors(ClassifierMixin, BaseEstimator):
    """Nearest neighbours of binary codes in Hamming distance.

    Stores bit-packed codes and answers k-nearest-neighbour and Hamming-ball
    queries, either exactly with a compiled popcount kernel (``"brute"``) or
    approximately by walking a k-nearest-neighbour graph of the codes built
    with PyNNDescent (``"nndescent"``). Fitted with labels it is a
    k-nearest-neighbour classifier (majority vote), so a ``Pipeline`` of an
    encoder and ``HammingNeighbors`` can be scored by
    :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours for :meth:`kneighbors` and the vote of
        :meth:`predict`.

    algorithm : {"auto", "brute", "nndescent"}, default="auto"
        ``"brute"`` is exact: it compares each query with every code, 64 bits
        per ``popcnt``, in parallel over queries, keeping the ``k`` best in a
        bounded heap (memory ``O(n_queries * k)``), and breaks distance ties
        by index. ``"nndescent"`` builds the codes' k-nearest-neighbour graph
        with :class:`pynndescent.NNDescent` (``metric="bit_hamming"``) in
        :meth:`fit`; a query starts from the nearest of about
        ``4 * sqrt(n_samples_fit)`` entry codes, at least one in every
        connected component of the graph, and walks the graph best-first
        (see ``ef_search``). ``"auto"`` uses ``"nndescent"`` from 1,000,000
        fitted codes on, ``"brute"`` below (see ``docs/benchmarks.md``).
        :meth:`radius_neighbors` is always exact.

    packed : bool, default=False
        If False, ``X`` holds one 0/1 value per bit, as
        ``BinaryHashEncoder.transform`` returns. If True, ``X`` holds bytes of
        packed bits, as ``np.packbits(bits, axis=1)`` returns, and
        ``n_features_in_`` counts bytes.

    binarize : float or None, default=None
        As in :class:`~sklearn.naive_bayes.BernoulliNB`: if None, ``X`` must
        already be 0/1 bits (other values raise a ValueError); otherwise the
        bits are ``X > binarize``. Only with ``packed=False``.

    n_neighbors_graph : int, default=24
        Neighbours per code in the NN-descent graph (pynndescent's
        ``n_neighbors``). The search graph adds the reverse edges and keeps
        each code's ``2 * n_neighbors_graph`` nearest links. Larger graphs
        raise recall, build time and memory.

    ef_search : int or "auto", default="auto"
        Codes kept while walking the graph (HNSW's ``efSearch``; raised to
        the number of neighbours asked for). Larger is slower and more
        accurate. ``"auto"`` is 16 for codes of up to 64 bits and 32 for
        longer ones, whose distances tie less and need a wider walk (on the
        codes of the fortunes embeddings, distance-recall@10 at 16 / 32: 0.978
        / 0.994 at 64 bits, 0.915 / 0.965 at 256 bits; ``docs/benchmarks.md``).

    n_trees : int or None, default=None
        Random-projection trees initialising NN-descent; None lets
        pynndescent choose from the data size.

    n_iters : int or None, default=None
        Maximum NN-descent iterations; None lets pynndescent choose.

    n_jobs : int or None, default=None
        Threads for the exact kernel, the index build and batched
        approximate queries. None and -1 use all of numba's threads.

    random_state : int, RandomState instance or None, default=None
        Seed of the NN-descent graph build and of the choice of entry codes.

    Attributes
    ----------
    codes_ : ndarray of shape (n_samples_fit, ceil(n_bits_ / 8)), dtype uint8
        The fitted codes, bit-packed, C-contiguous.

    n_bits_ : int
        Code length in bits (``8 * n_features_in_`` when ``packed=True``).

    n_samples_fit_ : int
        Number of fitted codes.

    n_features_in_ : int
        Number of columns of ``X`` seen in :meth:`fit`.

    fit_method_ : {"brute", "nndescent"}
        The backend used by :meth:`kneighbors`: ``algorithm``, resolved for
        ``"auto"``; ``"brute"`` when ``n_samples_fit_ <= n_neighbors_graph``,
        too few codes for an NN-descent graph.

    graph_indptr_ : ndarray of shape (n_samples_fit + 1,), int64, or None
        With ``graph_indices_``, the CSR adjacency of the search graph when
        ``fit_method_ == "nndescent"``, else None.

    graph_indices_ : ndarray of int32 or None
        Graph neighbours of code ``i``:
        ``graph_indices_[graph_indptr_[i]:graph_indptr_[i + 1]]``, nearest
        first.

    entry_points_ : ndarray of int64 or None
        Rows every graph search starts from.

    classes_ : ndarray of shape (n_classes,)
        Class labels, only when fitted with ``y``.

    See Also
    --------
    sklearn.neighbors.KNeighborsClassifier : The same vote on real vectors.
    skhash.metrics.mean_average_precision : Retrieval quality of the codes.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash import HammingNeighbors
    >>> bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    >>> nn = HammingNeighbors(n_neighbors=2).fit(bits)
    >>> distances, indices = nn.kneighbors([[0, 0, 1, 1]])
    >>> distances
    array([[1, 2]], dtype=int32)
    >>> indices
    array([[1, 0]])
    """

    def __init__(
        self,
        n_neighbors=5,
        *,
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
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.packed = packed
        self.binarize = binarize
        self.n_neighbors_graph = n_neighbors_graph
        self.ef_search = ef_search
        self.n_trees = n_trees
        self.n_iters = n_iters
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Without y it is a plain neighbours index.
        tags.target_tags.required = False
        return tags

    def __getstate__(self):
        state = super().__getstate__().copy()  # may be self.__dict__ itself
        # A view (or padded copy) of codes_; pickling it would store the codes twice.
        state.pop("_words", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "codes_" in self.__dict__:
            self._words = as_words(self.codes_)

    def _check_params(self):
        if not isinstance(self.n_neighbors, numbers.Integral) or isinstance(
            self.n_neighbors, bool
        ):
            raise TypeError(f"n_neighbors must be an int, got {self.n_neighbors!r}.")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}.")
        if self.algorithm not in ("auto", "brute", "nndescent"):
            raise ValueError(
                f"algorithm must be 'auto', 'brute' or 'nndescent', got {self.algorithm!r}."
            )
        if self.binarize is not None:
            if self.packed:
                raise ValueError("binarize must be None when packed=True.")
            if not isinstance(self.binarize, numbers.Real) or not np.isfinite(self.binarize):
                raise ValueError(
                    f"binarize must be None or a finite float, got {self.binarize!r}."
                )
        if not isinstance(self.n_neighbors_graph, numbers.Integral) or self.n_neighbors_graph < 2:
            raise ValueError(
                f"n_neighbors_graph must be an int >= 2, got {self.n_neighbors_graph!r}."
            )
        if not (isinstance(self.ef_search, str) and self.ef_search == "auto") and (
            not isinstance(self.ef_search, numbers.Integral)
            or isinstance(self.ef_search, bool)
            or self.ef_search < 1
        ):
            raise ValueError(f'ef_search must be "auto" or an int >= 1, got {self.ef_search!r}.')
        if self.n_jobs is not None and (
            not isinstance(self.n_jobs, numbers.Integral) or self.n_jobs == 0
        ):
            raise ValueError(f"n_jobs must be None or a non-zero int, got {self.n_jobs!r}.")

    def _validate_X(self, X, reset):
        """Check ``X`` and return its codes packed, C-contiguous uint8."""
        X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=True)
        return self._pack(X)

    def _pack(self, X):
        """Packed, C-contiguous uint8 codes of a validated ``X``."""
        if self.packed:
            if X.dtype != np.uint8:
                if X.dtype.kind not in "iu":
                    raise ValueError(
                        "With packed=True, X must hold integer bytes as np.packbits "
                        f"returns, got dtype {X.dtype}."
                    )
                if X.size and (X.min() < 0 or X.max() > 255):
                    raise ValueError(
                        "With packed=True, X must hold bytes in [0, 255], got values in "
                        f"[{X.min()}, {X.max()}]."
                    )
            # a private writeable copy when needed: numba (pynndescent) rejects
            # read-only buffers such as memory-mapped arrays
            return np.require(X, dtype=np.uint8, requirements=["C", "W"])
        if self.binarize is None:
            if X.dtype != np.bool_:
                invalid = (X != 0) & (X != 1)
                if invalid.any():
                    raise ValueError(
                        "X must contain only 0/1 bits (got e.g. "
                        f"{X[invalid][0]!r}); pass binarize=threshold to binarize "
                        "real values, or packed=True for np.packbits rows."
                    )
            bits = X.astype(np.uint8, copy=False)
        else:
            bits = X > self.binarize
        return np.ascontiguousarray(np.packbits(bits, axis=1))

    def fit(self, X, y=None):
        """Index the codes ``X``, with class labels ``y`` if given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            0/1 bits, bytes of packed bits if ``packed=True``, or real values
            if ``binarize`` is set.

        y : array-like of shape (n_samples,), default=None
            Class labels, needed for :meth:`predict`, :meth:`predict_proba`
            and :meth:`score`.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        self._check_params()
        if y is None:
            codes = self._validate_X(X, reset=True)
            for attr in ("classes_", "_y"):
                self.__dict__.pop(attr, None)
        else:
            X, y = validate_data(self, X, y, dtype="numeric", ensure_all_finite=True)
            check_classification_targets(y)
            codes = self._pack(X)
            self.classes_, self._y = np.unique(y, return_inverse=True)

        # Packed input may come back from validation as the caller's own array.
        self.codes_ = codes.copy() if self.packed else codes
        self.n_samples_fit_ = codes.shape[0]
        self.n_bits_ = 8 * codes.shape[1] if self.packed else self.n_features_in_
        # The exact kernel's view of the codes, made once: methods must not
        # change the estimator.
        self._words = as_words(self.codes_)

        algorithm = self.algorithm
        if algorithm == "auto":
            large = self.n_samples_fit_ >= _AUTO_BRUTE_MAX_SAMPLES
            algorithm = "nndescent" if large else "brute"
        # NN-descent needs more codes than graph neighbours; so few codes are
        # searched exactly faster anyway.
        if algorithm == "nndescent" and self.n_samples_fit_ <= self.n_neighbors_graph:
            algorithm = "brute"
        self.fit_method_ = algorithm
        self.graph_indptr_ = self.graph_indices_ = self.entry_points_ = None
        if algorithm == "nndescent":
            self._build_graph()
        return self

    def _build_graph(self):
        from pynndescent import NNDescent

        random_state = check_random_state(self.random_state)
        seed = random_state.randint(np.iinfo(np.int32).max)
        with _numba_threads(self.n_jobs) as n_threads:
            index = NNDescent(
                self.codes_,
                metric="bit_hamming",
                n_neighbors=self.n_neighbors_graph,
                n_trees=self.n_trees,
                n_iters=self.n_iters,
                random_state=seed,
                n_jobs=n_threads,
            )
            neighbor_indices, neighbor_distances = index.neighbor_graph
        self.graph_indptr_, self.graph_indices_ = build_search_graph(
            neighbor_indices, neighbor_distances, 2 * self.n_neighbors_graph
        )
        n_entry_points = int(4 * np.sqrt(self.n_samples_fit_))
        self.entry_points_ = choose_entry_points(
            self.graph_indptr_, self.graph_indices_, n_entry_points, random_state
        )

    def _check_n_neighbors(self, n_neighbors, query_is_train, n_queries):
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        if not isinstance(n_neighbors, numbers.Integral) or isinstance(n_neighbors, bool):
            raise TypeError(f"n_neighbors must be an int, got {n_neighbors!r}.")
        if n_neighbors < 1:
            raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}.")
        n_available = self.n_samples_fit_ - int(query_is_train)
        if n_neighbors > n_available:
            inequality = (
                "n_neighbors < n_samples_fit"
                if query_is_train
                else ("n_neighbors <= n_samples_fit")
            )
            raise ValueError(
                f"Expected {inequality}, but n_neighbors = {n_neighbors}, "
                f"n_samples_fit = {self.n_samples_fit_}, n_samples = {n_queries}"
            )
        return int(n_neighbors)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest codes of each query in Hamming distance.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, in the format of :meth:`fit`. If None, the fitted codes
            are the queries and a code is not its own neighbour (other codes
            equal to it are).

        n_neighbors : int, default=None
            Number of neighbours; ``self.n_neighbors`` if None.

        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), dtype int32
            Hamming distances (numbers of differing bits), ascending. Only
            if ``return_distance=True``.

        indices : ndarray of shape (n_queries, n_neighbors), dtype int64
            Rows of the fitted codes. Equal distances are ordered by index
            (among the neighbours found, for ``"nndescent"``).
        """
        check_is_fitted(self)
        query_is_train = X is None
        queries = self.codes_ if query_is_train else self._validate_X(X, reset=False)
        k = self._check_n_neighbors(n_neighbors, query_is_train, queries.shape[0])

        if self.fit_method_ == "brute":
            words = self._words
            query_words = words if query_is_train else as_words(queries)
            with _numba_threads(self.n_jobs):
                distances, indices = hamming_knn(
                    query_words, words, k, exclude_self=query_is_train
                )
        else:
            distances, indices = self._query_index(queries, k + int(query_is_train))
            if query_is_train:
                indices, distances = _drop_self(indices, distances)
        return (distances, indices) if return_distance else indices

    def _query_index(self, queries, k):
        query_words = as_words(queries)
        with _numba_threads(self.n_jobs) as n_threads:
            distances, indices = graph_knn(
                query_words,
                self._words,
                self.graph_indptr_,
                self.graph_indices_,
                self.entry_points_,
                k,
                self._ef_search(),
                n_threads,
            )
            # A walk confined to a component smaller than k comes back short (-1):
            # complete those rows exactly rather than return invalid indices.
            short = np.flatnonzero((indices < 0).any(axis=1))
            if short.size:
                distances[short], indices[short] = hamming_knn(query_words[short], self._words, k)
        return distances, indices

    def _ef_search(self):
        if isinstance(self.ef_search, str):
            return 16 if self.n_bits_ <= 64 else 32
        return self.ef_search

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Graph of the k nearest codes of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`kneighbors`.

        n_neighbors : int, default=None
            Number of neighbours; ``self.n_neighbors`` if None.

        mode : {"connectivity", "distance"}, default="connectivity"
            Entries are ones, or Hamming distances as floats (a neighbour at
            distance 0 is then an explicitly stored zero).

        Returns
        -------
        A : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
            Row ``i`` holds the neighbours of query ``i``.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f'mode must be "connectivity" or "distance", got {mode!r}.')
        distances, indices = self.kneighbors(X, n_neighbors, return_distance=True)
        n_queries, k = indices.shape
        if mode == "connectivity":
            data = np.ones(n_queries * k)
        else:
            data = distances.ravel().astype(np.float64)
        return csr_matrix(
            (data, indices.ravel(), np.arange(0, n_queries * k + 1, k)),
            shape=(n_queries, self.n_samples_fit_),
        )

    def radius_neighbors(self, X=None, radius=None, return_distance=True):
        """Find every code within a Hamming radius of each query, exactly.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, in the format of :meth:`fit`. If None, the fitted codes
            are the queries and a code is not its own neighbour.

        radius : int
            Largest Hamming distance returned (the ball is closed). Required.

        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        distances : ndarray of shape (n_queries,), dtype object
            Per query, an int32 array of distances, ascending. Only if
            ``return_distance=True``.

        indices : ndarray of shape (n_queries,), dtype object
            Per query, an int64 array of rows of the fitted codes, ordered by
            distance, then index.
        """
        check_is_fitted(self)
        if radius is None:
            raise TypeError("radius_neighbors() needs a radius (a Hamming distance).")
        if not isinstance(radius, numbers.Real) or not radius >= 0:
            raise ValueError(f"radius must be a number >= 0, got {radius!r}.")
        query_is_train = X is None
        queries = self.codes_ if query_is_train else self._validate_X(X, reset=False)
        words = self._words
        query_words = words if query_is_train else as_words(queries)
        # Distances are integers: d <= radius iff d <= floor(radius).
        radius = int(min(np.floor(radius), self.n_bits_))
        with _numba_threads(self.n_jobs):
            dist, ind, offsets = hamming_radius(
                query_words, words, radius, exclude_self=query_is_train
            )
        n_queries = queries.shape[0]
        indices = np.empty(n_queries, dtype=object)
        indices[:] = np.split(ind, offsets[1:-1])
        if not return_distance:
            return indices
        distances = np.empty(n_queries, dtype=object)
        distances[:] = np.split(dist, offsets[1:-1])
        return distances, indices

    def radius_neighbors_graph(self, X=None, radius=None, mode="connectivity"):
        """Graph of the codes within a Hamming radius of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`radius_neighbors`.

        radius : int
            Largest Hamming distance included. Required.

        mode : {"connectivity", "distance"}, default="connectivity"
            Entries are ones, or Hamming distances as floats.

        Returns
        -------
        A : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
            Row ``i`` holds the codes within ``radius`` of query ``i``.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f'mode must be "connectivity" or "distance", got {mode!r}.')
        distances, indices = self.radius_neighbors(X, radius, return_distance=True)
        counts = np.fromiter((len(row) for row in indices), dtype=np.int64, count=len(indices))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        ind = np.concatenate(list(indices))
        if mode == "connectivity":
            data = np.ones(ind.shape[0])
        else:
            data = np.concatenate(list(distances)).astype(np.float64)
        return csr_matrix((data, ind, indptr), shape=(len(indices), self.n_samples_fit_))

    def _check_labels(self):
        check_is_fitted(self)
        if not hasattr(self, "classes_"):
            raise ValueError(
                "This HammingNeighbors was fitted without y, so it has no labels to "
                "predict; call fit(X, y) with class labels to use predict, "
                "predict_proba or score."
            )

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
        self._check_labels()
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
