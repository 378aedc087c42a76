"""Shared machinery of the Hamming neighbours estimators (as ``sklearn/neighbors/_base.py``).

:class:`HammingNeighborsBase` holds the parameters, their constraints, input
packing and the index build; :class:`KNeighborsMixin` and
:class:`RadiusNeighborsMixin` add the queries. The public estimators combine
them: :class:`~skhash.HammingNeighbors` (an unsupervised index) and
:class:`~skhash.HammingKNeighborsClassifier` (a k-NN vote).
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._graph import build_search_graph, choose_entry_points, graph_knn
from .._hamming import as_words, hamming_knn, hamming_radius
from .._knn_graph import drop_self, knn_graph
from .._threads import numba_threads
from .._validation import Interval, Options, check_query_params, validate_parameter_constraints

__all__ = ["HammingNeighborsBase", "KNeighborsMixin", "RadiusNeighborsMixin"]

# `python benchmarks/neighbors_crossover.py`: NN-descent QPS 1.7x brute at 3e5, 5.6x at 1e6
_AUTO_BRUTE_MAX_SAMPLES = 1_000_000
# Up to this many codes the search graph is the exact k-NN graph from the
# cached popcount kernel, so a fresh process compiles nothing; PyNNDescent
# builds it above. Measured on random 64-bit codes, 23 neighbours, 2 shared
# cores: exact 12 s at 1e5 and 47 s at 2e5 (quadratic); pynndescent 19 s and
# 42 s once compiled, plus ~100 s of compilation in every new process.
_EXACT_GRAPH_MAX_SAMPLES = 200_000
# From this many codes on, walks start from an upper layer, the k-NN graph of
# one code in _UPPER_LAYER_STRIDE (HNSW's next level, one step), not from the
# nearest of 4 * sqrt(n) scanned entry codes: on 10^6 codes of real embeddings
# (2 threads) QPS at distance-recall 0.95 went from 0.43x to 1.41x faiss HNSW's
# at 64 bits and from 0.24x to 1.15x at 256 (docs/benchmarks.md).
_UPPER_LAYER_MIN_SAMPLES = 100_000
_UPPER_LAYER_STRIDE = 16

_POSITIVE_INT = Interval(numbers.Integral, 1, None, closed="left")
_MODES = Options(str, {"connectivity", "distance"})


class HammingNeighborsBase(BaseEstimator):
    """Parameters, validation, packing and index build of the Hamming estimators.

    Not for direct use; see :class:`~skhash.HammingNeighbors`.
    """

    _parameter_constraints = {
        "n_neighbors": [_POSITIVE_INT],
        "algorithm": [Options(str, {"auto", "brute", "nndescent"})],
        "packed": ["boolean"],
        # finite: None bounds exclude infinity and NaN
        "binarize": [None, Interval(numbers.Real, None, None, closed="neither")],
        "n_neighbors_graph": [Interval(numbers.Integral, 2, None, closed="left")],
        "ef_search": [Options(str, {"auto"}), _POSITIVE_INT],
        "n_trees": [None, _POSITIVE_INT],
        "n_iters": [None, _POSITIVE_INT],
        "n_jobs": [
            None,
            Interval(numbers.Integral, None, -1, closed="right"),
            _POSITIVE_INT,
        ],
        "random_state": ["random_state"],
    }
    # Parameters a k-neighbours query reads: checked again there, as set_params may
    # follow fit (n_neighbors only without the argument; a radius query reads n_jobs).
    _query_parameters = ("n_neighbors", "ef_search", "n_jobs")

    def __init__(
        self,
        *,
        n_neighbors=5,
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

    def __getstate__(self):
        state = super().__getstate__().copy()  # may be self.__dict__ itself
        # Views (or copies) of codes_; pickling them would store the codes twice.
        state.pop("_words", None)
        state.pop("_upper_words", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "codes_" in self.__dict__:
            self._words = as_words(self.codes_)
        if self.__dict__.get("upper_rows_") is not None:
            self._upper_words = as_words(self.codes_[self.upper_rows_])

    # -- input ---------------------------------------------------------------------------

    def _validate_X(self, X, reset):
        """Check ``X`` and return its codes packed, C-contiguous uint8."""
        if not reset:
            self._check_query_format()
        X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=True)
        return self._pack(X)

    def _check_query_format(self):
        """Raise if ``set_params`` changed the input format since :meth:`fit`.

        Queries read with another format than the fitted codes' would be
        compared with them silently (8 bits are one byte either way).
        """
        fitted_packed = self.n_bits_ == 8 * self.n_features_in_  # else one column per bit
        if bool(self.packed) != fitted_packed:
            raise ValueError(
                f"packed={self.packed} was set after the estimator was fitted with "
                f"packed={fitted_packed}: queries must have the format of the fitted "
                "codes; set it back or fit again."
            )
        if self.packed and self.binarize is not None:
            raise ValueError("The 'binarize' parameter must be None when packed=True.")

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

    # -- fit -----------------------------------------------------------------------------

    def _fit(self, X, y=None):
        """Validate and pack ``X`` (and ``y``, class labels), index the codes; return ``y``."""
        if self.binarize is not None and self.packed:
            raise ValueError("The 'binarize' parameter must be None when packed=True.")
        if y is None:
            codes = self._validate_X(X, reset=True)
        else:
            X, y = validate_data(
                self, X, y, multi_output=True, dtype="numeric", ensure_all_finite=True
            )
            # scikit-learn's k-NN votes per output; this one would only say "1d array"
            if y.ndim == 2 and y.shape[1] > 1:
                raise ValueError(
                    f"{type(self).__name__} does not support multi-output targets: y must "
                    f"be 1-D, got shape {y.shape}. Wrap it in "
                    "sklearn.multioutput.MultiOutputClassifier to fit one per output."
                )
            y = column_or_1d(y, warn=True)
            # y comes only from the classifier: reject other targets before the build
            check_classification_targets(y)
            codes = self._pack(X)
        # Packed input may come back from validation as the caller's own array.
        self.codes_ = codes.copy() if self.packed else codes
        self.n_samples_fit_ = codes.shape[0]
        self.n_bits_ = 8 * codes.shape[1] if self.packed else self.n_features_in_
        # The exact kernel's view of the codes, made once: queries must not
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
        self.upper_rows_ = self.upper_indptr_ = self.upper_indices_ = None
        self.__dict__.pop("_upper_words", None)
        if algorithm == "nndescent":
            self._build_graph()
        return y

    def _search_graph(self, codes, random_state):
        """CSR adjacency of the symmetrised k-NN graph of ``codes``."""
        seed = random_state.randint(np.iinfo(np.int32).max)
        # n_neighbors_graph counts the code itself, as pynndescent's n_neighbors does
        neighbor_indices, neighbor_distances = knn_graph(
            codes,
            self.n_neighbors_graph - 1,
            metric="bit_hamming",
            random_state=seed,
            exact_max_samples=_EXACT_GRAPH_MAX_SAMPLES,
            n_jobs=self.n_jobs,
            nndescent_params={"n_trees": self.n_trees, "n_iters": self.n_iters},
        )
        return build_search_graph(neighbor_indices, neighbor_distances, 2 * self.n_neighbors_graph)

    def _build_graph(self):
        random_state = check_random_state(self.random_state)
        self.graph_indptr_, self.graph_indices_ = self._search_graph(self.codes_, random_state)
        n = self.n_samples_fit_
        if n < _UPPER_LAYER_MIN_SAMPLES:
            self.entry_points_ = choose_entry_points(
                self.graph_indptr_, self.graph_indices_, int(4 * np.sqrt(n)), random_state
            )
            return
        # The upper layer holds a code of every component of the graph, so a
        # walk can still reach each; its own entry codes start every walk.
        rows = choose_entry_points(
            self.graph_indptr_, self.graph_indices_, n // _UPPER_LAYER_STRIDE, random_state
        )
        self.upper_indptr_, self.upper_indices_ = self._search_graph(
            self.codes_[rows], random_state
        )
        entries = choose_entry_points(
            self.upper_indptr_, self.upper_indices_, int(4 * np.sqrt(len(rows))), random_state
        )
        self.upper_rows_, self.entry_points_ = rows, rows[entries]
        self._upper_words = as_words(self.codes_[rows])

    # -- queries -------------------------------------------------------------------------

    def _queries(self, X, parameters):
        """The query codes (the fitted ones if ``X`` is None) and their words.

        ``parameters``: the names of the parameters the query reads, checked
        again (``set_params`` may follow ``fit``); as in scikit-learn, one it
        does not read, set to a bad value after ``fit``, does not fail it.
        """
        check_is_fitted(self)
        check_query_params(self, parameters)
        if X is None:
            return self.codes_, self._words
        queries = self._validate_X(X, reset=False)
        return queries, as_words(queries)

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
                "n_neighbors < n_samples_fit" if query_is_train else "n_neighbors <= n_samples_fit"
            )
            raise ValueError(
                f"Expected {inequality}, but n_neighbors = {n_neighbors}, "
                f"n_samples_fit = {self.n_samples_fit_}, n_samples = {n_queries}"
            )
        return int(n_neighbors)

    def _query_index(self, query_words, k):
        with numba_threads(self.n_jobs) as n_threads:
            entries, upper = self.entry_points_, None
            if getattr(self, "upper_rows_", None) is not None:  # None or absent (older pickle)
                # the kernel walks the upper layer by its own row numbers
                entries = np.searchsorted(self.upper_rows_, self.entry_points_)
                upper = (
                    self.upper_rows_,
                    self._upper_words,
                    self.upper_indptr_,
                    self.upper_indices_,
                )
            distances, indices = graph_knn(
                query_words,
                self._words,
                self.graph_indptr_,
                self.graph_indices_,
                entries,
                k,
                self._ef_search(),
                n_threads,
                upper=upper,
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


def _check_mode(mode):
    validate_parameter_constraints({"mode": [_MODES]}, {"mode": mode}, "the graph method")


def _check_return_distance(return_distance):
    if not isinstance(return_distance, bool | np.bool_):
        raise TypeError(f"return_distance must be a bool, got {return_distance!r}.")


def _check_sort_results(sort_results, return_distance):
    if not isinstance(sort_results, bool | np.bool_):
        raise TypeError(f"sort_results must be a bool, got {sort_results!r}.")
    if sort_results and not return_distance:
        raise ValueError("return_distance must be True if sort_results is True.")


class KNeighborsMixin:
    """:meth:`kneighbors` and :meth:`kneighbors_graph` over the fitted codes."""

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
        _check_return_distance(return_distance)
        # self.n_neighbors is read only without the argument
        read = [
            name for name in self._query_parameters if name != "n_neighbors" or n_neighbors is None
        ]
        queries, query_words = self._queries(X, read)
        query_is_train = X is None
        k = self._check_n_neighbors(n_neighbors, query_is_train, queries.shape[0])
        if self.fit_method_ == "brute":
            with numba_threads(self.n_jobs):
                distances, indices = hamming_knn(
                    query_words, self._words, k, exclude_self=query_is_train
                )
        else:
            distances, indices = self._query_index(query_words, k + int(query_is_train))
            if query_is_train:
                indices, distances = drop_self(indices, distances)
        return (distances, indices) if return_distance else indices

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
        _check_mode(mode)
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


class RadiusNeighborsMixin:
    """:meth:`radius_neighbors` and :meth:`radius_neighbors_graph`, always exact."""

    def radius_neighbors(self, X=None, radius=None, return_distance=True, sort_results=False):
        """Find every code within a Hamming radius of each query, exactly.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, in the format of :meth:`fit`. If None, the fitted codes
            are the queries and a code is not its own neighbour.

        radius : int or float
            Largest Hamming distance returned (the ball is closed; a float is
            floored). Required.

        return_distance : bool, default=True
            Whether to return the distances.

        sort_results : bool, default=False
            Accepted for scikit-learn's signature: the results are always
            sorted by distance, then index. As in scikit-learn, ``True``
            needs ``return_distance=True``.

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
        _check_return_distance(return_distance)
        _check_sort_results(sort_results, return_distance)
        if radius is None:
            raise TypeError("radius_neighbors() needs a radius (a Hamming distance).")
        if (
            not isinstance(radius, numbers.Real)
            or isinstance(radius, bool | np.bool_)
            or not radius >= 0
        ):
            raise ValueError(f"radius must be a number >= 0, got {radius!r}.")
        queries, query_words = self._queries(X, ("n_jobs",))
        # Distances are integers: d <= radius iff d <= floor(radius).
        radius = int(min(np.floor(radius), self.n_bits_))
        with numba_threads(self.n_jobs):
            dist, ind, offsets = hamming_radius(
                query_words, self._words, radius, exclude_self=X is None
            )
        n_queries = queries.shape[0]
        indices = np.empty(n_queries, dtype=object)
        indices[:] = np.split(ind, offsets[1:-1])
        if not return_distance:
            return indices
        distances = np.empty(n_queries, dtype=object)
        distances[:] = np.split(dist, offsets[1:-1])
        return distances, indices

    def radius_neighbors_graph(self, X=None, radius=None, mode="connectivity", sort_results=False):
        """Graph of the codes within a Hamming radius of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, as in :meth:`radius_neighbors`.

        radius : int
            Largest Hamming distance included. Required.

        mode : {"connectivity", "distance"}, default="connectivity"
            Entries are ones, or Hamming distances as floats (a code at
            distance 0 is then an explicitly stored zero).

        sort_results : bool, default=False
            Accepted for scikit-learn's signature: each row's entries are
            always stored by distance, then index.

        Returns
        -------
        A : scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
            Row ``i`` holds the codes within ``radius`` of query ``i``.
        """
        _check_mode(mode)
        _check_sort_results(sort_results, True)
        distances, indices = self.radius_neighbors(X, radius, return_distance=True)
        counts = np.fromiter((len(row) for row in indices), dtype=np.int64, count=len(indices))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        ind = np.concatenate(list(indices))
        if mode == "connectivity":
            data = np.ones(ind.shape[0])
        else:
            data = np.concatenate(list(distances)).astype(np.float64)
        return csr_matrix((data, ind, indptr), shape=(len(indices), self.n_samples_fit_))
