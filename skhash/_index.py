"""HashIndex: a retrieval index of binary codes with exact rescoring, ids, add and remove."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import math
import numbers
import threading
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from ._hamming import weighted_hamming_knn, weighted_hamming_tables
from ._threads import numba_threads
from ._validation import Interval, Options, check_query_params, fit_context, validate_params

__all__ = ["HashIndex"]

# Candidates per neighbour asked for (the oversampling factor); see docs/retrieval.md and
# `python benchmarks/retrieval.py`: on the fortunes and man-page embeddings with 64-bit
# codes and float16 rescoring, recall@10 reaches 0.90 at 100x, not yet at 50x (fortunes).
_DEFAULT_N_CANDIDATES = 100
# Bound on the candidates held per query chunk while rescoring (n_queries * candidates).
_RESCORE_BLOCK = 1 << 23
# rows per block of the norms of _unit_rows: bounds np.linalg.norm's temporaries
_NORM_BLOCK_ROWS = 1 << 16

# add/remove/save of every index are serialised by this lock: two writers never
# interleave, and readers never need it (they read one immutable state).
_WRITE_LOCK = threading.RLock()


@dataclass(frozen=True)
class _State:
    """Everything a query reads, replaced as a whole by add/remove.

    Never mutated: ``add`` writes only rows of ``vector_buffer`` past every row
    a state reads (``vectors`` is a view of its first n rows). The one exception is
    the searcher's ``n_jobs``, which a query sets to the index's (a thread count,
    not a result).
    """

    ids: np.ndarray  # (n,) int64, strictly increasing
    codes: np.ndarray  # (n, n_bytes) uint8, packbits order
    vectors: np.ndarray | None  # (n, d) unit rows, float32/float16/int8, or None
    searcher: object  # fitted HammingNeighbors over codes, or None when empty
    # the array ``vectors`` is the first n rows of, with room for more (add appends there;
    # rows past n belong to no state yet), or None: ``vectors`` is exactly n rows
    vector_buffer: np.ndarray | None = None


# every float16 bit pattern as float32: a table look-up converts stored float16 rescoring
# vectors far faster than numpy's float16 cast, and without a float32 copy of the candidates
_FLOAT16_TO_FLOAT32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _gather_dot_float16(vectors, candidates, queries, table, out):
    # out[q, c] = <vectors[candidates[q, c]], queries[q]>, vectors float16 viewed as uint16
    for q in prange(candidates.shape[0]):
        query = queries[q]
        for c in range(candidates.shape[1]):
            row = vectors[candidates[q, c]]
            s = np.float32(0.0)
            for t in range(query.shape[0]):
                s += table[row[t]] * query[t]
            out[q, c] = s


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _gather_dot(vectors, candidates, queries, out):
    # the same for float32 or int8 vectors (int8 scaled by the caller)
    for q in prange(candidates.shape[0]):
        query = queries[q]
        for c in range(candidates.shape[1]):
            row = vectors[candidates[q, c]]
            s = np.float32(0.0)
            for t in range(query.shape[0]):
                s += np.float32(row[t]) * query[t]
            out[q, c] = s


def _weighted_hamming_top_k(state, H, k, n_jobs):
    """The ``k`` codes of smallest weighted Hamming distance to each query (see
    :func:`skhash._hamming.weighted_hamming_knn`): ``(distances, rows)``."""
    tables = weighted_hamming_tables(H, state.codes.shape[1])
    with numba_threads(n_jobs):
        return weighted_hamming_knn(tables, state.codes, k)


def _inner_encoder(encoder):
    """The estimator behind a FrozenEstimator, else the encoder itself."""
    from sklearn.frozen import FrozenEstimator

    return encoder.estimator if isinstance(encoder, FrozenEstimator) else encoder


def _with_feature_names(encoder, X, names):
    """Validated rows ``X`` as the encoder was fitted: a DataFrame with the index's
    column ``names`` when the encoder knows feature names (a frozen one fitted on a
    DataFrame), so that it checks them and does not warn; else ``X`` itself."""
    if names is None or getattr(encoder, "feature_names_in_", None) is None:
        return X
    try:
        import pandas as pd
    except ImportError:  # names from another dataframe library: the encoder warns
        return X
    return pd.DataFrame(X, columns=names, copy=False)


def _check_values_before_threshold(encoder, network_state):
    """Raise unless asymmetric ranking can read ``encoder``'s values before thresholding."""
    if network_state is None and not callable(getattr(_inner_encoder(encoder), "embed", None)):
        raise ValueError(
            "asymmetric=True needs the encoder's values before thresholding: a "
            "BinaryHashEncoder, or an encoder with an embed method whose sign gives "
            f"its bits (PCAITQ, SimHash); {type(_inner_encoder(encoder)).__name__} has neither."
        )


def _values_before_threshold(encoder, network_state, X, n_bits, feature_names=None):
    """What asymmetric ranking weighs the bits of validated rows ``X`` by: the
    network's pre-activations (``network_state``, see :func:`_module_state`) or
    the encoder's ``embed`` (of ``X`` with its ``feature_names``, if any); float32,
    the first ``n_bits``."""
    from ._inference import forward

    inner = _inner_encoder(encoder)
    if network_state is not None:
        H, what = forward(network_state, X, pre_activation=True)[1], "network"
    else:
        rows = _with_feature_names(inner, X, feature_names)
        H, what = np.asarray(inner.embed(rows), dtype=np.float32), "embed"
    if H.ndim != 2 or H.shape[0] != X.shape[0] or H.shape[1] < n_bits:
        raise ValueError(
            f"{type(inner).__name__}'s {what} must give one value per bit of the "
            f"{n_bits}-bit codes indexed, ({X.shape[0]}, >= {n_bits}); got shape {H.shape}."
        )
    return H[:, :n_bits]


def _module_state(encoder):
    """The encoder network's numpy state, or None for encoders without one (SimHash...)."""
    state = getattr(encoder, "module_state_", None)
    if state is None and getattr(encoder, "net_", None) is not None:
        # an encoder fitted by an skhash without module_state_: torch is loaded already
        module = encoder.net_.module_
        state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return state


def _linear_state(encoder):
    """Copies of a SimHash's or PCAITQ's arrays (None for other encoders): the index
    encodes with them, as with a network's weights, so that refitting a shared
    encoder later changes neither its queries nor what :meth:`HashIndex.save` writes
    (it refuses then)."""
    from ._baselines import PCAITQ, SimHash

    if type(encoder) not in (SimHash, PCAITQ):
        return None
    return {"mean": encoder.mean_.copy(), "projection": encoder.projection_.copy()}


def _unit_rows(X, dtype=np.float32):
    """Rows scaled to unit length, in ``dtype``; zero rows stay zero (cosine distance 1 to all).

    The library's one normalisation (HashIndex, DaskHashIndex, the exports). Each
    row is first scaled by a power of two (exact) that brings its largest
    magnitude into [0.5, 1): the norm of rows near the dtype's limits would
    otherwise overflow to infinity or underflow to zero.
    """
    X = np.asarray(X, dtype=dtype)
    peak = np.abs(X).max(axis=1, keepdims=True, initial=0.0)
    _, exponent = np.frexp(peak)
    U = np.ldexp(X, -exponent).astype(dtype, copy=False)  # the one full-size copy
    norms = np.empty((U.shape[0], 1), dtype=dtype)
    for start in range(0, U.shape[0], _NORM_BLOCK_ROWS):  # norm's temporaries per block
        block = slice(start, start + _NORM_BLOCK_ROWS)
        norms[block] = np.linalg.norm(U[block], axis=1, keepdims=True)
    return np.divide(U, norms, out=U, where=norms > 0)  # zero rows are zero already


def _read_only(array):
    """A read-only view of ``array`` (None stays None)."""
    if array is None:
        return None
    view = array.view()
    view.flags.writeable = False
    return view


def _as_ids(ids, n, what="ids"):
    """``ids`` as a 1-D int64 array of length ``n`` with distinct values."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise ValueError(f"{what} must be a 1-D array of {n} integers, got shape {ids.shape}.")
    if ids.dtype == object and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids
    ):
        # Python ints (numpy keeps them as objects when one is beyond int64)
        info = np.iinfo(np.int64)
        outside = [int(i) for i in ids if not info.min <= int(i) <= info.max]
        if outside:
            raise ValueError(f"{what} must fit in int64; got {outside[0]}.")
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integers (int64), got dtype {ids.dtype}.")
    if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what} must fit in int64; got {ids.max()}.")
    ids = ids.astype(np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if unique.shape[0] != n:
        raise ValueError(f"{what} must be unique; repeated: {unique[counts > 1][:5].tolist()}.")
    return ids


def _find_ids(sorted_ids, ids):
    """Positions of ``ids`` in the sorted ``sorted_ids``, and which are there.

    A binary search per id: ``O(m log n)``, where a set operation (``np.isin``,
    ``np.intersect1d``) would hash all ``n`` indexed ids on every add or remove.
    """
    positions = np.searchsorted(sorted_ids, ids)
    found = positions < sorted_ids.shape[0]
    found[found] = sorted_ids[positions[found]] == ids[found]
    return positions, found


def _all_after(new_ids, sorted_ids):
    """Whether the sorted ``new_ids`` all follow every one of ``sorted_ids``."""
    return not (new_ids.size and sorted_ids.size) or bool(new_ids[0] > sorted_ids[-1])


def _appended_vectors(state, vectors, *, after_all):
    """``(vectors, vector_buffer)`` of ``state`` with ``vectors`` added after its rows.

    New rows whose ids all follow the indexed ones (``after_all``: the rows stay
    in id order) are written into the spare rows of the state's buffer, past
    every row a state can read, and the result is a longer view of it: ``add``
    copies the float vectors only when the buffer grows (by a quarter), so
    adding m rows costs O(m) amortised, not O(n). Otherwise, or for a
    memory-mapped state (never written), new arrays as ``np.concatenate``.
    """
    if vectors is None:
        return None, None
    n, m = state.ids.shape[0], vectors.shape[0]
    if not after_all:
        return np.concatenate([state.vectors, vectors]), None
    buffer = state.vector_buffer
    if buffer is None or buffer.shape[0] < n + m:
        buffer = np.empty((n + m + max(m, (n + m) // 4), vectors.shape[1]), vectors.dtype)
        buffer[:n] = state.vectors
    buffer[n : n + m] = vectors
    return buffer[: n + m], buffer


class HashIndex(BaseEstimator):
    """Nearest-neighbour index of binary codes with exact rescoring and stable ids.

    Searches in two stages, as binary quantisation does in sentence-transformers,
    Qdrant or Lucene: the query's code finds ``n_candidates * n_neighbors``
    candidates by Hamming distance (exact popcount scan or graph search), then the
    candidates are reranked by the exact cosine distance between the float query and
    the stored unit vectors. The codes live in RAM (``n_bits / 8`` bytes per item);
    the rescoring vectors can stay on disk, memory-mapped after :meth:`load`.

    Items carry int64 ids that survive :meth:`add`, :meth:`remove`, :meth:`save`
    and the exports; :meth:`kneighbors` returns ids, not rows.

    Parameters
    ----------
    encoder : estimator or None, default=None
        What maps float rows to bits: a :class:`~skhash.BinaryHashEncoder` (codes
        computed with its network in numpy, :mod:`skhash._inference`, the same
        before and after :meth:`save`/:meth:`load`), or any transformer whose
        ``transform`` returns 0/1 bits (:class:`~skhash.SimHash`,
        :class:`~skhash.PCAITQ`). It is cloned and fitted in :meth:`fit` unless
        wrapped in :class:`sklearn.frozen.FrozenEstimator`, which is used as is and
        never modified. None means ``BinaryHashEncoder(n_bits=64)``.

    algorithm : {"auto", "brute", "nndescent"}, default="auto"
        Candidate search, as in :class:`~skhash.HammingNeighbors`: ``"brute"``
        is exact (ties by id), ``"nndescent"`` walks a k-NN graph of the codes.
        ``"auto"`` is ``"brute"`` when rescoring (a thousand candidates per query
        are found faster by one exact scan than by a graph walk that wide: at
        10^6 items the graph gave 0.87x the QPS for 9x the RAM,
        ``docs/retrieval.md``) and, fitted with ``rescore=None``, picks ``"nndescent"``
        from 1,000,000 items on, as :class:`~skhash.HammingNeighbors` does
        (never with ``asymmetric=True``, which scans every code).

    n_candidates : float, default=100
        Candidates per neighbour asked for (the oversampling factor,
        ``rescore_multiplier`` in sentence-transformers); at most every item. 100 is
        the smallest of 1, 2, 5, 10, 20, 30, 50, 100 at which 64-bit codes with
        float16 rescoring reach recall@10 >= 0.9 on the fortunes and man-page
        embeddings (fortunes: 0.800 at 30, 0.863 at 50, 0.924 at 100;
        ``docs/retrieval.md``); with ``asymmetric=True`` (candidates by weighted
        Hamming distance) 50 reaches the same recall. Rescoring sets the cost:
        lower it for speed. Unused when ``rescore=None``.

    rescore : {"float16", "float32", "int8"} or None, default="float16"
        How the unit-normalised input rows are kept for rescoring: float16 (2
        bytes per dimension; cosine error below 2e-5 on the fortunes embeddings),
        float32, int8 (1 byte, scaled by ``vector_scale_``, see Notes), or None: no
        vectors, and :meth:`kneighbors` returns Hamming neighbours and distances
        (weighted Hamming ones with ``asymmetric=True``). The storage is fixed at
        :meth:`fit` (``rescore_``); after it, ``set_params(rescore=None)`` queries
        without rescoring (the vectors are kept, and :meth:`add` still stores them),
        and setting it back to ``rescore_`` rescores again. Another dtype takes
        effect at the next :meth:`fit`; queried before, it is an error.

    asymmetric : bool, default=False
        Rank the codes by the query's values before thresholding ``h`` rather than
        by its bits: the weighted Hamming distance ``sum_j |h_j| [sign(h_j) !=
        b_j]``, where a disagreeing bit costs how far the query is from that bit's
        boundary; an exact scan over all codes whatever ``algorithm``. ``h`` is a
        :class:`~skhash.BinaryHashEncoder`'s network pre-activations (batch-
        normalised, before ``tanh(beta * h)``; with ``n_anchors``, the smoothed
        outputs, whose sign is the code) or another encoder's ``embed``
        (:class:`~skhash.PCAITQ`, :class:`~skhash.SimHash`: the projections).
        It chooses the candidates for rescoring or, with ``rescore=None``, is the
        ranking returned. 64-bit codes of the fortunes and man-page embeddings:
        with rescoring, 50 candidates per neighbour reach the recall@10 of 100
        Hamming ones; without stored vectors, recall@10 rises from 0.264 to 0.333
        and from 0.405 to 0.473, at a quarter of the Hamming scan's QPS. Off by
        default: measured in ``benchmarks/retrieval.py`` (``docs/retrieval.md``,
        where PCA-ITQ gains more from it than skhash).

    prefix_bits : int or None, default=None
        Index and search only the first ``prefix_bits`` bits of the encoder's
        codes: the way to serve a prefix of nested codes
        (``BinaryHashEncoder(nested_bits=...)``, whose prefixes listed in
        ``nested_bits`` are trained as codes of their own) with
        ``prefix_bits / 8`` bytes per item. At most the encoder's code length;
        None keeps the whole code. (A cascade, prefix scan then rerank by the
        full code, was measured slower than one scan: ``docs/nested_codes.md``.)

    n_jobs : int or None, default=None
        Threads of the Hamming search (None: all of numba's threads).

    random_state : int, RandomState instance or None, default=None
        Seed of the NN-descent graph.

    Attributes
    ----------
    encoder_ : estimator
        The fitted encoder (the ``FrozenEstimator`` given, if one was).
    ids_ : ndarray of shape (n_items,), int64
        Item ids, ascending: row ``i`` of ``codes_`` and ``vectors_`` is item
        ``ids_[i]``. These three are read-only views (copy them to modify).
    codes_ : ndarray of shape (n_items, ceil(n_bits_ / 8)), uint8
        Packed codes, ``np.packbits`` order (the first bit is the most
        significant bit of byte 0).
    n_items_ : int
        Number of items indexed now (after any :meth:`add` and :meth:`remove`).
    vectors_ : ndarray of shape (n_items, n_features_in_) or None
        Unit-normalised rows for rescoring, of dtype ``rescore_``; a read-only
        memory map after :meth:`load`.
    rescore_ : {"float16", "float32", "int8"} or None
        The ``rescore`` the index was fitted with: how ``vectors_`` are stored
        (and :meth:`add` stores its rows).
    vector_scale_ : float or None
        With ``rescore="int8"``: a stored value ``v`` stands for
        ``v * vector_scale_ / 127``.
    n_bits_ : int
        Length of the indexed codes (``prefix_bits`` when set).
    n_features_in_ : int
        Width of the float rows.

    Notes
    -----
    **Atomicity.** Everything a query reads is one immutable state object;
    :meth:`add` and :meth:`remove` build the new arrays aside and replace the
    state in a single assignment, so a query running meanwhile (another thread)
    sees the old or the new items, never a mix. Writers are serialised by a lock
    in the module; :meth:`fit` replaces the whole index and must not run while
    the same object is queried. A failing operation changes nothing. Each of
    ``ids_``, ``codes_``, ``vectors_`` and ``n_items_`` reads the state of its
    moment: to read several that agree while another thread adds or removes,
    read them from a shallow copy, ``snapshot = copy.copy(index)``, which holds
    one state (and no copy of the arrays).

    **int8 calibration.** ``vector_scale_`` is the largest absolute coordinate of
    the unit rows given to :meth:`fit`; coordinates are stored as
    ``round(127 * x / vector_scale_)``, and rows added later are clipped to that
    range. The error on a cosine is at most about ``sqrt(d) * vector_scale_ /
    254``; on the fortunes embeddings (``vector_scale_`` 0.29) it measured 5e-4 on
    average and 2.3e-3 at most.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash import HashIndex, SimHash
    >>> X = np.random.default_rng(0).standard_normal((200, 16))
    >>> index = HashIndex(encoder=SimHash(n_bits=32, random_state=0)).fit(X)
    >>> distances, ids = index.kneighbors(X[:2], n_neighbors=3)
    >>> ids[:, 0]
    array([0, 1])
    """

    _parameter_constraints = {
        "encoder": [None, object],
        "algorithm": [Options(str, {"auto", "brute", "nndescent"})],
        "n_candidates": [Interval(numbers.Real, 1, None, closed="left")],
        "rescore": [Options(str, {"float16", "float32", "int8"}), None],
        "asymmetric": ["boolean"],
        "prefix_bits": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [
            None,
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    }

    # read again by every query: set_params after fit is caught there
    _query_parameters = ("n_candidates", "rescore", "asymmetric", "n_jobs")

    def __init__(
        self,
        *,
        encoder=None,
        algorithm="auto",
        n_candidates=_DEFAULT_N_CANDIDATES,
        rescore="float16",
        asymmetric=False,
        prefix_bits=None,
        n_jobs=None,
        random_state=None,
    ):
        self.encoder = encoder
        self.algorithm = algorithm
        self.n_candidates = n_candidates
        self.rescore = rescore
        self.asymmetric = asymmetric
        self.prefix_bits = prefix_bits
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        return tags

    # -- fitted state, read through one object -------------------------------------------

    # read-only views: the arrays are shared with the searcher, running queries and
    # earlier states, which an in-place write (``ids_ += 1``) would silently change
    @property
    def ids_(self):
        return _read_only(self._fitted_state().ids)

    @property
    def codes_(self):
        return _read_only(self._fitted_state().codes)

    @property
    def vectors_(self):
        return _read_only(self._fitted_state().vectors)

    @property
    def n_items_(self):
        return self._fitted_state().ids.shape[0]

    def __setstate__(self, state):
        # an index pickled before rescore_ existed: its vectors say what it stores
        fitted = state.get("_state")
        if fitted is not None and "rescore_" not in state:
            vectors = fitted.vectors
            state["rescore_"] = None if vectors is None else str(vectors.dtype)
        super().__setstate__(state)

    def __getstate__(self):
        # a pickle keeps the vectors, not the spare rows of the buffer add appends to
        state = super().__getstate__()
        if getattr(state.get("_state"), "vector_buffer", None) is not None:
            state["_state"] = replace(state["_state"], vector_buffer=None)
        return state

    def _fitted_state(self):
        try:
            return self.__dict__["_state"]
        except KeyError:
            raise AttributeError("This HashIndex is not fitted yet.") from None

    def __len__(self):
        check_is_fitted(self)
        return self.n_items_

    # -- encoding --------------------------------------------------------------------------

    def _check_X(self, X, *, reset=False):
        # float32 as the network and the vectors: values beyond its range are an error
        return validate_data(self, X, reset=reset, dtype=np.float32, ensure_all_finite=True)

    def _encode(self, X):
        """Packed codes of validated rows."""
        from ._inference import forward

        encoder = _inner_encoder(self.encoder_)
        state = self._network_state
        keep = slice(None, self.n_bits_)  # the fitted length: prefix_bits as at fit
        if state is not None:
            return np.packbits(forward(state, X)[:, keep] > 0, axis=1)
        linear = getattr(self, "_linear_state", None)  # absent from older pickles
        if linear is not None:  # SimHash's and PCAITQ's transform, with the fitted copies
            return np.packbits(self._linear_projections(X)[:, keep] > 0, axis=1)
        rows = _with_feature_names(encoder, X, getattr(self, "feature_names_in_", None))
        bits = np.asarray(encoder.transform(rows))
        if bits.ndim != 2 or not np.isin(bits, (0, 1)).all():
            raise ValueError(
                f"The encoder's transform must return 0/1 bits; {type(encoder).__name__} did not."
            )
        return np.packbits(bits[:, keep].astype(np.uint8), axis=1)

    def _linear_projections(self, X):
        """``(X - mean_) @ projection_`` of the linear hash as fitted (its ``embed``)."""
        return (X - self._linear_state["mean"]) @ self._linear_state["projection"]

    def _values_before_threshold(self, X):
        """What ``asymmetric=True`` weighs the bits of validated rows by."""
        self._check_asymmetric()  # asymmetric may have been set after fit
        if getattr(self, "_linear_state", None) is not None:
            H = self._linear_projections(X)
            return np.asarray(H, dtype=np.float32)[:, : self.n_bits_]
        return _values_before_threshold(
            self.encoder_,
            self._network_state,
            X,
            self.n_bits_,
            getattr(self, "feature_names_in_", None),
        )

    def _unit_vectors(self, X, *, calibrate=False):
        """Unit rows in the storage dtype (``vector_scale_`` set when ``calibrate``)."""
        if self.rescore_ is None:
            return None
        U = _unit_rows(X)
        if self.rescore_ == "int8":
            if calibrate:
                scale = float(np.abs(U).max()) if U.size else 1.0
                self.vector_scale_ = scale if scale > 0 else 1.0
            q = np.rint(U * (127.0 / self.vector_scale_))
            return np.clip(q, -127, 127).astype(np.int8)
        return U.astype(self.rescore_)

    def _make_state(self, ids, codes, vectors, vector_buffer=None):
        from ._neighbors import HammingNeighbors

        order = np.argsort(ids, kind="stable")
        if not np.array_equal(order, np.arange(ids.shape[0])):
            ids, codes = ids[order], codes[order]
            vectors = None if vectors is None else vectors[order]
            vector_buffer = None
        searcher = None
        if ids.shape[0]:
            algorithm = self.algorithm
            if algorithm == "auto" and (self.rescore_ is not None or self.asymmetric):
                # wide candidate lists: one exact scan beats a graph walk; the asymmetric
                # score scans every code and never walks a graph
                algorithm = "brute"
            searcher = HammingNeighbors(
                algorithm=algorithm,
                packed=True,
                n_jobs=self.n_jobs,
                random_state=self.random_state,
            ).fit(codes)
            codes = searcher.codes_  # one copy of the codes, shared with the searcher
        return _State(
            ids=ids, codes=codes, vectors=vectors, searcher=searcher, vector_buffer=vector_buffer
        )

    # -- fit, add, remove -------------------------------------------------------------------

    @fit_context()
    def fit(self, X, y=None, *, ids=None):
        """Fit the encoder (unless frozen) and index the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Float rows (embeddings); their cosine similarity is what rescoring
            measures.
        y : array-like of shape (n_samples,), default=None
            Passed to the encoder's ``fit`` (e.g. class labels for supervised
            codes); ignored with a frozen encoder.
        ids : array-like of shape (n_samples,), default=None
            Distinct int64 ids of the rows; ``arange(n_samples)`` if None.

        Returns
        -------
        self : HashIndex
            The fitted index.
        """
        from sklearn.frozen import FrozenEstimator

        if y is None:
            X = self._check_X(X, reset=True)
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, ensure_all_finite=True)
        ids = np.arange(X.shape[0], dtype=np.int64) if ids is None else _as_ids(ids, len(X))
        if isinstance(self.encoder, FrozenEstimator):
            self.encoder_ = self.encoder
        else:
            if self.encoder is None:
                from ._encoder import BinaryHashEncoder

                encoder = BinaryHashEncoder(n_bits=64)
            else:
                encoder = clone(self.encoder)
            self.encoder_ = encoder.fit(X) if y is None else encoder.fit(X, y)
        self._check_encoder_feature_names()
        self._network_state = _module_state(_inner_encoder(self.encoder_))
        self._linear_state = _linear_state(_inner_encoder(self.encoder_))
        self._check_asymmetric()
        code_bits = self._n_bits_of(X[:1])
        if self.prefix_bits is not None and self.prefix_bits > code_bits:
            raise ValueError(
                f"prefix_bits={self.prefix_bits} exceeds the {code_bits} bits of the "
                f"encoder's codes."
            )
        self.n_bits_ = code_bits if self.prefix_bits is None else int(self.prefix_bits)
        codes = self._encode(X)
        self.rescore_ = self.rescore
        self.vector_scale_ = None
        vectors = self._unit_vectors(np.asarray(X, dtype=np.float32), calibrate=True)
        self._state = self._make_state(ids, codes, vectors)
        return self

    def _check_encoder_feature_names(self):
        """A frozen encoder fitted on named columns must see the same columns, in order
        (its network would otherwise take one feature for another, silently)."""
        fitted = getattr(_inner_encoder(self.encoder_), "feature_names_in_", None)
        names = getattr(self, "feature_names_in_", None)
        if fitted is not None and names is not None and not np.array_equal(fitted, names):
            raise ValueError(
                f"X's {len(names)} feature names (first: {list(names[:5])}) are not those "
                f"the encoder was fitted with, in the same order ({len(fitted)}, first: "
                f"{list(fitted[:5])}); select the encoder's columns, in its order."
            )

    def _check_asymmetric(self):
        if self.asymmetric:
            _check_values_before_threshold(self.encoder_, self._network_state)

    def _n_bits_of(self, X):
        state = self._network_state
        if state is not None:
            return int(state["linear.weight"].shape[0])
        encoder = _inner_encoder(self.encoder_)
        rows = _with_feature_names(encoder, X, getattr(self, "feature_names_in_", None))
        return int(np.asarray(encoder.transform(rows)).shape[1])

    def add(self, X, ids=None):
        """Index more rows without refitting the encoder.

        Rows whose ids all follow the largest indexed id (the default ids) are
        appended to the rescoring vectors in amortised O(``n_samples``) time;
        other ids build new arrays, O(``n_items_``) (``docs/retrieval.md``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Float rows to add.
        ids : array-like of shape (n_samples,), default=None
            Their ids, distinct from each other and from the indexed ones; if
            None, ``max(ids_) + 1`` onwards.

        Returns
        -------
        self : HashIndex
            The index; on any error it is unchanged.
        """
        check_is_fitted(self)
        X = self._check_X(X)
        with _WRITE_LOCK:
            state = self._state
            if ids is None:
                start = int(state.ids[-1]) + 1 if state.ids.size else 0
                if start + X.shape[0] - 1 > np.iinfo(np.int64).max:
                    raise ValueError(
                        f"The default ids of {X.shape[0]} rows would follow the largest id, "
                        f"{int(state.ids[-1])}, beyond int64; pass ids."
                    )
                ids = np.arange(start, start + X.shape[0], dtype=np.int64)
            else:
                ids = _as_ids(ids, X.shape[0])
            _, present = _find_ids(state.ids, ids)
            taken = np.sort(ids[present])
            if taken.size:
                raise ValueError(
                    f"ids already in the index: {taken[:5].tolist()}; remove them first."
                )
            codes = self._encode(X)
            vectors = self._unit_vectors(np.asarray(X, dtype=np.float32))
            order = np.argsort(ids, kind="stable")
            ids, codes = ids[order], codes[order]
            vectors = None if vectors is None else vectors[order]
            new = self._make_state(
                np.concatenate([state.ids, ids]),
                np.concatenate([state.codes, codes]),
                *_appended_vectors(state, vectors, after_all=_all_after(ids, state.ids)),
            )
            self._state = new  # the one assignment a concurrent query can observe
        return self

    def remove(self, ids):
        """Remove items by id.

        Builds new arrays of the remaining items, O(``n_items_``).

        Parameters
        ----------
        ids : int or array-like of shape (n_ids,)
            Ids to remove, all in the index.

        Returns
        -------
        self : HashIndex
            The index; on any error (an unknown id) it is unchanged.
        """
        check_is_fitted(self)
        ids = np.asarray(ids)
        if ids.ndim > 1:
            raise ValueError(f"ids must be an int or a 1-D array of ints, got shape {ids.shape}.")
        if ids.size == 0:  # e.g. a computed list of stale ids that came out empty
            return self
        ids = _as_ids(ids.reshape(-1), ids.size)
        with _WRITE_LOCK:
            state = self._state
            positions, present = _find_ids(state.ids, ids)
            if not present.all():
                unknown = np.sort(ids[~present])
                raise KeyError(f"ids not in the index: {unknown[:5].tolist()}.")
            keep = np.ones(state.ids.shape[0], dtype=bool)
            keep[positions] = False
            self._state = self._make_state(
                state.ids[keep],
                state.codes[keep],
                None if state.vectors is None else np.asarray(state.vectors[keep]),
            )
        return self

    # -- queries ------------------------------------------------------------------------------

    def kneighbors(self, X, n_neighbors=10, *, return_distance=True):
        """Ids of the nearest items of each float query, nearest first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features_in_)
            Float queries (embeddings, like the indexed rows).
        n_neighbors : int, default=10
            Number of neighbours, at most the number of items.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Cosine distances ``1 - cos`` (float32) after rescoring; with
            ``rescore=None``, Hamming distances (int32), or weighted Hamming
            distances (float32, see ``asymmetric``) with ``asymmetric=True``.
            Ascending, ties by id.
        ids : ndarray of shape (n_queries, n_neighbors), int64
            Ids of the neighbours.
        """
        check_is_fitted(self)
        state = self._state  # read once: add/remove meanwhile do not affect this query
        validate_params(
            {"n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")]},
            "HashIndex.kneighbors",
            n_neighbors=n_neighbors,
        )
        check_query_params(self)
        X = self._check_X(X)
        n_items = state.ids.shape[0]
        if n_neighbors > n_items:
            raise ValueError(
                f"n_neighbors={n_neighbors} exceeds the {n_items} items in the index."
            )
        rescoring = self._rescoring()
        if not rescoring:
            k_cand = n_neighbors
        else:
            k_cand = min(n_items, math.ceil(self.n_candidates * n_neighbors))
        # bounds the candidate lists held per chunk (the rescoring kernel copies no vectors)
        chunk = max(1, min(4096, _RESCORE_BLOCK // k_cand))
        dist_dtype = np.int32 if not rescoring and not self.asymmetric else np.float32
        distances = np.empty((X.shape[0], n_neighbors), dtype=dist_dtype)
        rows = np.empty((X.shape[0], n_neighbors), dtype=np.int64)
        for start in range(0, X.shape[0], chunk):
            stop = start + chunk
            distances[start:stop], rows[start:stop] = self._search(
                state, X[start:stop], n_neighbors, k_cand, rescoring
            )
        ids = state.ids[rows]
        return (distances, ids) if return_distance else ids

    def _rescoring(self):
        """Whether queries rescore: ``rescore`` as fitted, or None to skip it."""
        if self.rescore is None:
            return False
        if self.rescore != self.rescore_:
            stored = "no vectors" if self.rescore_ is None else f"{self.rescore_} vectors"
            raise ValueError(
                f"rescore={self.rescore!r} was set after fit, but the index stores {stored} "
                f"(rescore_={self.rescore_!r}): fit again to store them as {self.rescore!r}, "
                f"or set rescore to {self.rescore_!r} (or None: no rescoring) to query."
            )
        return True

    def _search(self, state, X, k, k_cand, rescoring):
        if self.asymmetric:
            H = self._values_before_threshold(X)
            weighted, candidates = _weighted_hamming_top_k(state, H, k_cand, self.n_jobs)
            if not rescoring:
                return weighted, candidates
        else:
            codes = self._encode(X)
            # the searcher was built with the n_jobs of its time; set_params may follow
            state.searcher.n_jobs = self.n_jobs
            hamming, candidates = state.searcher.kneighbors(codes, n_neighbors=k_cand)
            if not rescoring:
                return hamming, candidates
        # candidates in row (= id) order, so a stable sort by distance breaks ties by id
        candidates = np.sort(candidates, axis=1)
        sims = self._similarities(state, X, candidates)
        dist = np.clip(1.0 - sims, 0.0, 2.0).astype(np.float32)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dist, order, 1), np.take_along_axis(candidates, order, 1)

    def _similarities(self, state, X, candidates):
        Q = _unit_rows(X)
        # gathering from a memory map reads only the candidates' pages
        candidates = np.ascontiguousarray(candidates, dtype=np.int64)
        sims = np.empty(candidates.shape, dtype=np.float32)
        with numba_threads(self.n_jobs):
            if state.vectors.dtype == np.float16:
                _gather_dot_float16(
                    state.vectors.view(np.uint16), candidates, Q, _FLOAT16_TO_FLOAT32, sims
                )
            else:
                _gather_dot(state.vectors, candidates, Q, sims)
        if self.rescore_ == "int8":
            sims *= np.float32(self.vector_scale_ / 127.0)
        return sims

    # -- persistence and export ---------------------------------------------------------------

    def save(self, path):
        """Save to a directory (atomically replacing it); see :func:`HashIndex.load`.

        Parameters
        ----------
        path : str or path-like
            The directory; an existing skhash index or encoder directory there is
            replaced only once the new one is complete. A symbolic link is
            followed: the directory it points to is replaced, the link kept.
        """
        from ._persistence import save_index

        with _WRITE_LOCK:
            save_index(self, path)

    @classmethod
    def load(cls, path, *, verify=False, mmap=True):
        """Load an index saved by :meth:`save`, without pickle or torch.

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.
        verify : bool, default=False
            Also check every file's SHA-256 (sizes are always checked).
        mmap : bool, default=True
            Memory-map the rescoring vectors read-only rather than read them.

        Returns
        -------
        index : HashIndex
            The index, giving the same results as the one saved.
        """
        from ._persistence import load_index

        return load_index(path, verify=verify, mmap=mmap, cls=cls)

    def to_faiss(self, kind="flat", **kwargs):
        """The codes and ids as a faiss binary index (``skhash.export.to_faiss``).

        Parameters
        ----------
        kind : {"flat", "hnsw"}, default="flat"
            ``IndexBinaryFlat`` or ``IndexBinaryHNSW``, wrapped so that searches
            return this index's ids.
        **kwargs
            Passed on (``M``, ``ef_search``).
        """
        from .export import to_faiss

        check_is_fitted(self)
        state = self._state
        return to_faiss(state.codes, state.ids, self.n_bits_, kind=kind, **kwargs)

    def to_pgvector(self, connection, table, *, with_vectors=True, **kwargs):
        """Write ids, ``bit(n)`` codes and ``halfvec`` vectors to PostgreSQL + pgvector.

        Parameters
        ----------
        connection : psycopg.Connection
            An open connection.
        table : str
            Table name.
        with_vectors : bool, default=True
            Also store the rescoring vectors (an index fitted with ``rescore``).
        **kwargs
            Passed on to ``skhash.export.to_pgvector`` (``hnsw``, ``m``,
            ``ef_construction``, ``if_exists``).
        """
        from .export import to_pgvector

        check_is_fitted(self)
        state = self._state
        vectors = None
        if with_vectors and state.vectors is not None:
            vectors = np.asarray(state.vectors, dtype=np.float32)
            if self.rescore_ == "int8":
                vectors *= np.float32(self.vector_scale_ / 127.0)
        return to_pgvector(
            connection,
            table,
            codes=state.codes,
            ids=state.ids,
            n_bits=self.n_bits_,
            vectors=vectors,
            **kwargs,
        )
