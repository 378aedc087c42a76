"""Hamming-distance nearest neighbours on binary codes."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._hamming import as_words, hamming_knn, hamming_radius

__all__ = ["HammingNeighbors"]

# Below this many fitted codes "auto" uses the exact kernel. Measured with
# benchmarks/neighbors.py on 2 cores (docs/benchmarks.md): at 200,000 64-bit codes
# the exact kernel answers ~9,000 queries/s with no build, while NN-descent needs
# 18-33 s to build, so exact search wins until the index serves far more queries
# than it holds codes.
_AUTO_BRUTE_MAX_SAMPLES = 1_000_000


@contextmanager
def _numba_threads(n_jobs):
    """Run numba parallel code on ``n_jobs`` threads (None or -1: all)."""
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


# GIL-free copies of NNDescent search functions, per index (see _threaded_search).
_THREADED_SEARCH = weakref.WeakKeyDictionary()
_SEARCH_ARGUMENTS = (
    "query_points",
    "tree_query_points",
    "query_inv_norms",
    "result",
    "k",
    "epsilon",
    "visited",
    "query_is_normalized",
    "rng_state",
)


def _threaded_search(index):
    """The index's compiled search recompiled with ``nogil=True``, or None.

    pynndescent 0.7.0 searches bit_hamming indexes on one thread: its
    ``parallel_batch_queries=True`` fails to compile for bit metrics (a numba
    typing error in the parallel search loop). The same search closure
    compiled without the GIL can search chunks of queries from several
    threads. This uses pynndescent internals, so anything unexpected returns
    None and queries go through the public, serial ``NNDescent.query``.
    """
    try:
        return _THREADED_SEARCH[index]
    except (KeyError, TypeError):
        pass
    search = None
    try:
        serial = index._search_function
        if (
            index.metric == "bit_hamming"
            and index.quantization is None
            and serial.py_func.__code__.co_varnames[: len(_SEARCH_ARGUMENTS)] == _SEARCH_ARGUMENTS
            and all(hasattr(index, name) for name in ("_visited", "_vertex_order"))
        ):
            options = {
                key: value
                for key, value in serial.targetoptions.items()
                if key in ("fastmath", "boundscheck")
            }
            search = numba.njit(nogil=True, locals=dict(serial.locals), **options)(serial.py_func)
            # Compile now, so that a failure falls back instead of surfacing in a query.
            _query_threads(index, search, index._raw_data[:1], 1, 0.1, 1)
    except Exception:  # any change of pynndescent's internals
        search = None
    _THREADED_SEARCH[index] = search
    return search


def _query_threads(index, search, queries, k, epsilon, n_threads):
    """Search chunks of ``queries`` on ``n_threads`` threads with ``search``.

    Returns unsorted (heap-ordered) rows; the caller sorts them.
    """
    from pynndescent.utils import make_heap

    def run(chunk):
        heap = make_heap(chunk.shape[0], k)
        # Each thread marks visited vertices in its own array.
        visited = np.zeros_like(index._visited)
        ones = np.ones(chunk.shape[0], dtype=np.float32)
        indices, distances, _ = search(
            chunk, chunk, ones, heap, k, float(epsilon), visited, False, index.search_rng_state
        )
        return indices, distances

    # A few chunks per thread even out queries of unequal cost.
    chunks = np.array_split(queries, min(queries.shape[0], 4 * n_threads))
    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(run, chunks))
    indices = np.concatenate([result[0] for result in results])
    distances = np.concatenate([result[1] for result in results])
    # The index reorders its data; map rows back to the order of fit.
    found = indices >= 0
    indices[found] = index._vertex_order[indices[found]]
    return indices, distances


class HammingNeighbors(ClassifierMixin, BaseEstimator):
    """Nearest neighbours of binary codes in Hamming distance.

    Stores bit-packed codes and answers k-nearest-neighbour and Hamming-ball
    queries, either exactly with a compiled popcount kernel (``"brute"``) or
    approximately with a PyNNDescent graph index (``"nndescent"``). Fitted
    with labels it is a k-nearest-neighbour classifier (majority vote), so a
    ``Pipeline`` of an encoder and ``HammingNeighbors`` can be scored by
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
        by index. ``"nndescent"`` builds and prepares a
        :class:`pynndescent.NNDescent` index (``metric="bit_hamming"``) in
        :meth:`fit` and searches it approximately. ``"auto"`` uses
        ``"nndescent"`` from 500,000 fitted codes on, ``"brute"`` below (see
        ``docs/benchmarks.md``). :meth:`radius_neighbors` is always exact.

    packed : bool, default=False
        If False, ``X`` holds one 0/1 value per bit, as
        ``BinaryHashEncoder.transform`` returns. If True, ``X`` holds bytes of
        packed bits, as ``np.packbits(bits, axis=1)`` returns, and
        ``n_features_in_`` counts bytes.

    binarize : float or None, default=None
        As in :class:`~sklearn.naive_bayes.BernoulliNB`: if None, ``X`` must
        already be 0/1 bits (other values raise a ValueError); otherwise the
        bits are ``X > binarize``. Only with ``packed=False``.

    n_neighbors_graph : int, default=16
        Degree of the NN-descent k-nearest-neighbour graph (pynndescent's
        ``n_neighbors``). Larger graphs raise recall and build time.

    search_tree_leaf_size : int, default=4096
        Codes per leaf of the search tree that seeds each NN-descent query;
        all codes of the query's leaf are compared with it. Clustered codes
        make a k-NN graph of disconnected clusters that a graph search cannot
        leave, so the seed must land in the right cluster: on 200,000
        clustered 64-bit codes pynndescent's default (30) gives a
        distance-recall@10 of 0.6 whatever ``epsilon``, 3,000 gives 0.95
        (``docs/benchmarks.md``). Smaller leaves are faster on less clustered
        codes.

    n_trees : int or None, default=None
        Random-projection trees initialising NN-descent; None lets
        pynndescent choose from the data size.

    n_iters : int or None, default=None
        Maximum NN-descent iterations; None lets pynndescent choose.

    diversify_prob : float, default=1.0
        Fraction of redundant edges pruned from the search graph.

    pruning_degree_multiplier : float, default=1.5
        The search graph keeps at most
        ``pruning_degree_multiplier * n_neighbors_graph`` edges per code.

    epsilon : float, default=0.1
        Search breadth of NN-descent queries: candidates up to
        ``(1 + epsilon)`` times the current ``k``-th distance are explored.
        Larger is slower and more accurate.

    n_jobs : int or None, default=None
        Threads for the exact kernel, the index build and batched
        approximate queries. None and -1 use all of numba's threads.

    random_state : int, RandomState instance or None, default=None
        Seed of the NN-descent index build.

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
        The backend used by :meth:`kneighbors`.

    index_ : pynndescent.NNDescent or None
        The prepared index when ``fit_method_ == "nndescent"``.

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
        n_neighbors_graph=16,
        search_tree_leaf_size=4096,
        n_trees=None,
        n_iters=None,
        diversify_prob=1.0,
        pruning_degree_multiplier=1.5,
        epsilon=0.1,
        n_jobs=None,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.packed = packed
        self.binarize = binarize
        self.n_neighbors_graph = n_neighbors_graph
        self.search_tree_leaf_size = search_tree_leaf_size
        self.n_trees = n_trees
        self.n_iters = n_iters
        self.diversify_prob = diversify_prob
        self.pruning_degree_multiplier = pruning_degree_multiplier
        self.epsilon = epsilon
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
        if (
            not isinstance(self.search_tree_leaf_size, numbers.Integral)
            or self.search_tree_leaf_size < 1
        ):
            raise ValueError(
                f"search_tree_leaf_size must be an int >= 1, got {self.search_tree_leaf_size!r}."
            )
        if not isinstance(self.epsilon, numbers.Real) or not self.epsilon >= 0:
            raise ValueError(f"epsilon must be a float >= 0, got {self.epsilon!r}.")
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
        self.index_ = None
        if algorithm == "nndescent":
            from pynndescent import NNDescent

            with _numba_threads(self.n_jobs) as n_threads:
                self.index_ = NNDescent(
                    self.codes_,
                    metric="bit_hamming",
                    n_neighbors=self.n_neighbors_graph,
                    search_tree_leaf_size=self.search_tree_leaf_size,
                    n_trees=self.n_trees,
                    n_iters=self.n_iters,
                    diversify_prob=self.diversify_prob,
                    pruning_degree_multiplier=self.pruning_degree_multiplier,
                    random_state=self.random_state,
                    n_jobs=n_threads,
                )
                self.index_.prepare()
        return self

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
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        with _numba_threads(self.n_jobs) as n_threads:
            search = None
            if n_threads > 1 and queries.shape[0] >= 2 * n_threads:
                search = _threaded_search(self.index_)
            if search is not None:
                indices, distances = _query_threads(
                    self.index_, search, queries, k, self.epsilon, n_threads
                )
            else:
                indices, distances = self.index_.query(queries, k=k, epsilon=self.epsilon)
        # bit_hamming distances are exact counts in float32.
        distances = np.rint(distances).astype(np.int32)
        indices = indices.astype(np.int64, copy=False)
        # A graph search can come back short of k codes (-1): complete those
        # rows exactly rather than return invalid indices.
        short = np.flatnonzero((indices < 0).any(axis=1))
        if short.size:
            distances[short], indices[short] = hamming_knn(
                as_words(queries[short]), self._words, k
            )
        # Same order as the exact kernel: by distance, then index.
        order = np.lexsort((indices, distances), axis=1)
        return (
            np.take_along_axis(distances, order, axis=1),
            np.take_along_axis(indices, order, axis=1),
        )

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
