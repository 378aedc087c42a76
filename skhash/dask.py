"""Encode, index and search binary codes on a Dask cluster.

Needs the ``dask`` extra (``pip install skhash[dask]``: ``dask[array,dataframe]``,
``distributed``, ``dask-ml``); ``import skhash`` never imports this module.

- :func:`transform` and :func:`packbits` encode a row-chunked dask array or a
  dask DataFrame block by block, with the right output chunks, dtype and (for
  DataFrames) column names. ``dask_ml.wrappers.ParallelPostFit(encoder)`` works
  too, but labels its dask-array output with the input's width (see
  ``docs/dask.md``).
- :class:`DaskHashIndex` keeps packed codes, global int64 ids and optional
  rescoring vectors as row-chunked dask arrays persisted on the workers (one
  chunk = one shard) and answers exact Hamming k-NN queries (or, with
  ``asymmetric=True``, weighted Hamming ones) by sending the queries to every
  shard and merging the shards' top-k in a tree.

Workers that only search never import torch: a shard holds codes, ids and
vectors, and the search runs the numba kernels of :mod:`skhash._hamming`.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
import threading
from concurrent.futures import CancelledError

import numpy as np

try:
    import dask
    import dask.array as da
    import pandas as pd
    from dask.base import tokenize
except ImportError as exc:  # an optional part: name the extra that brings it
    raise ImportError(
        f"skhash.dask needs dask and pandas ({exc}): pip install 'skhash[dask]'."
    ) from exc
from sklearn.base import BaseEstimator
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._hamming import as_words, hamming_knn, weighted_hamming_knn, weighted_hamming_tables
from ._threads import numba_threads
from ._validation import (
    Interval,
    fit_context,
    validate_parameter_constraints,
    validate_params,
)

__all__ = ["DaskHashIndex", "ShardLostError", "packbits", "partial_fit", "transform"]

# numba's workqueue threading layer aborts on concurrent launches from two
# threads, and a launch already uses every thread the worker has: one at a time.
_KERNEL_LOCK = threading.Lock()
# add and compact read the index's arrays (and the next default id) and replace them:
# one at a time, or an add running beside another would reuse its ids or drop its rows
_WRITE_LOCK = threading.RLock()
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Bound on the weighted-Hamming look-up table entries a shard builds at once.
_TABLE_ENTRIES = 1 << 23


class ShardLostError(RuntimeError):
    """A shard's data was lost with its worker and Dask cannot recompute it."""


# ---------------------------------------------------------------------------
# encoding


def _is_dask_dataframe(X):
    return hasattr(X, "map_partitions") and hasattr(X, "columns")


def _check_encoder(encoder):
    if not hasattr(encoder, "transform") or not hasattr(encoder, "n_bits"):
        raise TypeError(
            f"encoder must be a fitted skhash encoder with transform and n_bits, "
            f"got {type(encoder).__name__}."
        )
    check_is_fitted(encoder)
    return int(encoder.n_bits)


def _as_row_chunked(X, encoder, name):
    """A 2-D float dask array chunked along rows only, of the encoder's width."""
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask array or a dask DataFrame, got {type(X).__name__}; "
            "use the encoder itself for in-memory data."
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D.")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ValueError(f"{name} must have a numeric dtype, got {X.dtype}.")
    if X.shape[1] != encoder.n_features_in_:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the encoder was fitted on "
            f"{encoder.n_features_in_}."
        )
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _check_frame(X, encoder, name):
    names = getattr(encoder, "feature_names_in_", None)
    columns = list(X.columns)
    if len(columns) != encoder.n_features_in_:
        raise ValueError(
            f"{name} has {len(columns)} columns, but the encoder was fitted on "
            f"{encoder.n_features_in_} features."
        )
    if names is not None and columns != list(names):
        raise ValueError(
            f"{name} columns differ from the encoder's feature_names_in_ (same names in "
            "the same order are required)."
        )
    bad = [c for c, t in X.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
    if bad:
        raise ValueError(f"{name} has non-numeric columns: {bad[:5]}.")


def _pack_block(block, encoder):
    if block.shape[0] == 0:  # an empty chunk or partition; the encoders refuse 0 rows
        return np.zeros((0, -(-int(encoder.n_bits) // 8)), dtype=np.uint8)
    if hasattr(encoder, "packbits"):
        return np.ascontiguousarray(encoder.packbits(block))
    return np.ascontiguousarray(np.packbits(encoder.transform(block), axis=1))


def _cut_prefix(packed, n_bits):
    """The first ``n_bits`` bits of packed rows, packed (trailing bits of the last byte zero)."""
    n_bytes = -(-n_bits // 8)
    out = np.array(packed[:, :n_bytes], dtype=np.uint8, order="C")
    if n_bits % 8:
        out[:, -1] &= np.uint8((0xFF << (8 - n_bits % 8)) & 0xFF)
    return out


def _transform_block(block, encoder):
    if block.shape[0] == 0:  # see _pack_block
        return np.zeros((0, int(encoder.n_bits)), dtype=np.uint8)
    return np.asarray(encoder.transform(block), dtype=np.uint8)


def _transform_partition(part, encoder, columns):
    return pd.DataFrame(_transform_block(part, encoder), index=part.index, columns=columns)


def _encode(encoder, X, block_fn, width, name):
    # One task holds the encoder; blocks fetch it as a dependency rather than
    # each carrying a pickled copy of the network.
    shared = dask.delayed(encoder, pure=False)
    meta = np.empty((0, width), dtype=np.uint8)
    if _is_dask_dataframe(X):
        _check_frame(X, encoder, "X")
        out = X.map_partitions(block_fn, shared, meta=meta, enforce_metadata=False)
        return out
    X = _as_row_chunked(X, encoder, "X")
    return X.map_blocks(
        block_fn,
        shared,
        dtype=np.uint8,
        chunks=(X.chunks[0], (width,)),
        meta=meta,
        name=f"skhash-{name}-" + tokenize(X, shared),
    )


def packbits(encoder, X):
    """Packed binary codes of a dask array or DataFrame, computed block by block.

    Parameters
    ----------
    encoder : fitted encoder
        :class:`~skhash.BinaryHashEncoder`, :class:`~skhash.SimHash` or
        :class:`~skhash.PCAITQ`; sent to the workers once, as one task.
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        Column chunks of an array are merged (``rechunk({1: -1})``). Unknown
        row chunk sizes (NaN, e.g. from a DataFrame or a boolean mask) are kept:
        the result has unknown row chunk sizes too; call
        ``codes.compute_chunk_sizes()`` before indexing it.

    Returns
    -------
    codes : dask.array.Array of shape (n_samples, ceil(n_bits / 8)), uint8
        One block per input block, equal to ``encoder.packbits(block)``
        (``np.packbits(encoder.transform(block), axis=1)`` for the baselines).
        The bits equal those of ``encoder.packbits`` on the whole array in
        memory when torch uses the same number of threads (``docs/dask.md``).
    """
    n_bits = _check_encoder(encoder)
    return _encode(encoder, X, _pack_block, -(-n_bits // 8), "packbits")


def transform(encoder, X):
    """0/1 codes of a dask array or DataFrame, computed block by block.

    Parameters
    ----------
    encoder : fitted encoder
        See :func:`packbits`.
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        See :func:`packbits`.

    Returns
    -------
    codes : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_bits)
        uint8. A DataFrame input gives a DataFrame with the input's index and
        the encoder's ``get_feature_names_out()`` as columns.
    """
    n_bits = _check_encoder(encoder)
    if _is_dask_dataframe(X):
        _check_frame(X, encoder, "X")
        columns = [str(c) for c in encoder.get_feature_names_out()]
        meta = pd.DataFrame(
            {c: np.empty(0, dtype=np.uint8) for c in columns},
            index=X._meta.index[:0],
        )
        shared = dask.delayed(encoder, pure=False)
        return X.map_partitions(_transform_partition, shared, columns, meta=meta)
    return _encode(encoder, X, _transform_block, n_bits, "transform")


def partial_fit(encoder, X, y=None):
    """Train an encoder on a dask array one row block at a time, in order.

    What ``dask_ml.wrappers.Incremental(encoder, shuffle_blocks=False).fit(X, y)``
    does, also without labels: dask-ml 2025.1 hands ``partial_fit`` the tuple
    ``("", i)`` as ``y`` when ``y`` is None (with recent dask a missing key is no
    longer resolved), which the encoder rightly rejects as labels. Each block is
    computed on the cluster and passed to ``encoder.partial_fit`` in this
    process, so at most one block is in memory here.

    Parameters
    ----------
    encoder : BinaryHashEncoder
        Trained in place by ``partial_fit`` (each call transactional: a failing
        block leaves the encoder as it was after the previous block).
    X : dask.array.Array of shape (n_samples, n_features)
        Rows in row chunks; column chunks are merged. Row chunk sizes may be
        unknown (NaN, e.g. ``DataFrame.to_dask_array()``) when ``y`` is None.
    y : dask.array.Array of shape (n_samples,) or None, default=None
        Labels chunked like the rows of ``X`` (both of known chunk sizes).

    Returns
    -------
    encoder : BinaryHashEncoder
        The same object.
    """
    if not hasattr(encoder, "partial_fit"):
        raise TypeError(f"{type(encoder).__name__} has no partial_fit.")
    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError(f"X must be a 2-D dask array, got {type(X).__name__}.")
    X = X.rechunk({1: -1})
    if y is not None:
        if not isinstance(y, da.Array) or y.ndim != 1:
            raise TypeError(f"y must be a 1-D dask array or None, got {type(y).__name__}.")
        # each block is computed anyway: row counts are needed only to align the labels
        _check_known_chunks(X, "X", "partial_fit needs its row counts to align the labels")
        _check_known_chunks(y, "y", "partial_fit needs its row counts to align the labels")
        if y.chunks[0] != X.chunks[0]:
            raise ValueError(
                f"y must be chunked like the rows of X: {y.chunks[0]} != {X.chunks[0]}."
            )
    for i in range(X.numblocks[0]):
        block = X.blocks[i].compute()
        labels = None if y is None else y.blocks[i].compute()
        encoder.partial_fit(block, labels)
    return encoder


# ---------------------------------------------------------------------------
# shards


def _check_known_chunks(X, name, why="every shard needs its row count to give global ids"):
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (NaN), e.g. from a DataFrame or a boolean "
            f"mask; {why}. Call {name}.compute_chunk_sizes() first (or "
            "DataFrame.to_dask_array(lengths=True))."
        )


def _sort_rows(block, ids):
    """Rows of ``block`` in increasing id order (the order ``_sort_ids`` gives the ids)."""
    return np.ascontiguousarray(block[np.argsort(ids[:, 0].astype(np.int64), kind="stable")])


def _sort_ids(ids):
    if ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers, got dtype {ids.dtype}.")
    if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
        raise ValueError(f"ids must fit in int64; got {ids.max()}.")
    ids = np.sort(ids.astype(np.int64), kind="stable")
    # neighbours compared, not subtracted: ids 2**63 apart overflow a difference
    repeated = ids[1:] == ids[:-1]
    if repeated.any():
        raise ValueError(f"ids must be unique; id {ids[1:][repeated][0]} appears more than once.")
    return ids


def _as_float32(block):
    """A feature block in float32, the precision HashIndex encodes in (same bits)."""
    if block.dtype.kind == "f" and block.size and np.nanmax(np.abs(block)) > _FLOAT32_MAX:
        raise ValueError(
            f"X contains values beyond the float32 range (|x| > {_FLOAT32_MAX:.3g}), in "
            "which rows are encoded; rescale X."
        )
    return block.astype(np.float32)


def _unit_vectors(vectors, name="vectors"):
    """Checked rescoring vectors scaled to unit length (zero rows stay zero), float32."""
    from ._index import _unit_rows

    if not np.issubdtype(vectors.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {vectors.dtype}.")
    vectors = vectors.astype(np.float64, copy=False)
    if not np.isfinite(vectors).all() or (np.abs(vectors) > _FLOAT32_MAX).any():
        raise ValueError(f"{name} contain NaN, infinity or values beyond float32.")
    return _unit_rows(vectors, np.float64).astype(np.float32)


def _shard_summary(ids, *arrays):
    # min id, max id, rows; depends on every array of the shard, so that computing
    # it waits for all of them and raises their errors (NaN vectors, duplicate ids)
    if ids.size == 0:
        return np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0], dtype=np.int64)
    return np.array([ids[0], ids[-1], ids.size], dtype=np.int64)


def _check_ids_disjoint(ranges, ids_arrays, what):
    """Raise if two shards share an id (ids are sorted and unique within a shard)."""
    ranges = ranges[ranges[:, 2] > 0]
    order = np.argsort(ranges[:, 0], kind="stable")
    lo, hi = ranges[order, 0], ranges[order, 1]
    if lo.size < 2 or (lo[1:] > np.maximum.accumulate(hi)[:-1]).all():
        return
    # Overlapping id ranges (interleaved ids): a global check, all ids on one worker;
    # only the first repeated ids come back, to name them (as HashIndex does)
    unique, counts = da.unique(da.concatenate(ids_arrays), return_counts=True)
    repeated = _compute(dask.delayed(_first_repeated, pure=True)(unique, counts), what)
    if repeated.size:
        raise ValueError(
            f"ids must be unique across the whole index; repeated: {repeated.tolist()}."
        )


def _first_repeated(unique, counts):
    return unique[counts > 1][:5]


def _build_shards(codes, ids, vectors):
    """Shards sorted by id (lazy): codes, ids and vectors chunked alike."""
    column = ids[:, None]
    codes = da.map_blocks(_sort_rows, codes, column, dtype=np.uint8)
    if vectors is not None:
        vectors = da.map_blocks(_sort_rows, vectors, column, dtype=vectors.dtype)
    return codes, ids.map_blocks(_sort_ids, dtype=np.int64), vectors


def _persist_shards(codes, ids, vectors, what):
    """Persist the shards and wait for them; returns them and per-shard id ranges."""
    if vectors is None:
        codes, ids = dask.persist(codes, ids)
    else:
        codes, ids, vectors = dask.persist(codes, ids, vectors)
    args = [ids, "i", codes, "ij"] + ([] if vectors is None else [vectors, "ik"])
    summary = da.blockwise(_shard_summary, "i", *args, adjust_chunks={"i": 3}, dtype=np.int64)
    ranges = _compute(summary, what).reshape(-1, 3)
    return codes, ids, vectors, ranges


def _compute(collection, what="query"):
    """Compute ``collection`` for the call ``what`` ("query", "fit", "add", "compact")."""
    try:
        return dask.compute(collection)[0]
    except CancelledError as exc:
        # distributed cancels a computation whose inputs died with a worker and
        # have no task to recompute them from: data scattered from the client.
        reason = getattr(exc, "reason", None) or "cancelled"
        outcome = "No partial answer is returned" if what == "query" else "The index is unchanged"
        raise ShardLostError(
            f"The {what} was cancelled ({reason}): shard data was lost with its worker "
            "and cannot be recomputed, because it was scattered from the client rather "
            f"than computed on the cluster. {outcome}. Rebuild the "
            "index (fit) from a source the cluster can read again (e.g. "
            "dask.array.from_zarr, dask.dataframe.read_parquet)."
        ) from exc


# ---------------------------------------------------------------------------
# search kernels (run on the workers)


def _worker_threads():
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return None


def _shard_search(codes, ids, vectors, queries, query_vectors, k, n_candidates, weighted):
    """Top-k of one shard: (distance, ids int64, cosine distance float32 or None).

    ``queries`` are uint64 code words (Hamming distance, int32) or, when
    ``weighted``, the queries' values before thresholding (weighted Hamming
    distance, float32; the look-up tables are built here: 1/32 of their size
    crosses the network).
    """
    n_rows = codes.shape[0]
    n_q = queries.shape[0]
    dist_dtype = np.float32 if weighted else np.int32
    if n_rows == 0:
        empty = np.empty((n_q, 0))
        score = None if query_vectors is None else empty.astype(np.float32)
        return empty.astype(dist_dtype), empty.astype(np.int64), score
    n_first = min(k if query_vectors is None else n_candidates, n_rows)
    with _KERNEL_LOCK, numba_threads(_worker_threads()):
        if weighted:
            dist, rows = _weighted_search(queries, codes, n_first)
        else:
            dist, rows = hamming_knn(queries, as_words(codes), n_first)
    # ids are sorted within the shard: ties by row are ties by id
    found = ids[rows]
    if query_vectors is None:
        return dist, found, None
    score = _cosine_distance(query_vectors, vectors, rows)
    keep = min(k, n_first)
    order = np.lexsort((found, score), axis=-1)[:, :keep]
    take = np.take_along_axis
    return take(dist, order, 1), take(found, order, 1), take(score, order, 1)


def _weighted_search(values, codes, k):
    """Weighted Hamming top-k of ``codes`` for each row of ``values``, the look-up
    tables built a block of queries at a time (at most 2**23 entries: 32 MiB)."""
    n_bytes = codes.shape[1]
    step = max(1, _TABLE_ENTRIES // (256 * n_bytes))
    parts = [
        weighted_hamming_knn(weighted_hamming_tables(values[i : i + step], n_bytes), codes, k)
        for i in range(0, values.shape[0], step)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cosine_distance(query_vectors, vectors, rows):
    """``1 - cos`` of unit query rows against unit ``vectors[rows]``, float32."""
    out = np.empty(rows.shape, dtype=np.float32)
    # gather a few queries' candidates at a time: bounded memory
    step = max(1, 2**22 // max(1, rows.shape[1] * vectors.shape[1]))
    for start in range(0, rows.shape[0], step):
        stop = start + step
        gathered = vectors[rows[start:stop]]
        sims = np.einsum("qd,qcd->qc", query_vectors[start:stop], gathered)
        # clipped as HashIndex's: rounding can take a row's distance to itself below 0
        out[start:stop] = np.clip(np.float32(1) - sims, 0.0, 2.0)
    return out


def _merge(parts, k):
    """Top-k of several shard answers, by (score, id)."""
    dist = np.concatenate([p[0] for p in parts], axis=1)
    found = np.concatenate([p[1] for p in parts], axis=1)
    rescored = parts[0][2] is not None
    if rescored:
        score = np.concatenate([p[2] for p in parts], axis=1)
        order = np.lexsort((found, score), axis=-1)[:, :k]
    else:
        score = None
        order = np.lexsort((found, dist), axis=-1)[:, :k]
    take = np.take_along_axis
    return (
        take(dist, order, 1),
        take(found, order, 1),
        None if score is None else take(score, order, 1),
    )


def _merge_many(k, *parts):
    return _merge(parts, k)


# ---------------------------------------------------------------------------
# the index


class DaskHashIndex(BaseEstimator):
    """Exact (weighted) Hamming k-NN over binary codes sharded across a Dask cluster.

    Codes (``np.packbits`` rows), global int64 ids and optional unit-normalised
    rescoring vectors are row-chunked dask arrays persisted on the workers;
    each chunk is a *shard*, sorted by id. :meth:`kneighbors` sends the queries
    to every shard, takes each shard's top ``n_neighbors`` there with the exact
    popcount kernel (ties by id) and merges the answers in a tree of
    ``split_every``-way merges, so the result is the single-process exact
    answer. With ``n_candidates``, each shard takes its ``n_candidates``
    Hamming-nearest rows and rescores them by cosine against its own vectors
    (floats never cross the network); the merged candidates contain the
    single-process two-stage search's, so its recall is at least as high.
    With ``asymmetric=True`` the shards rank by the queries' values before
    thresholding instead of their bits, as :class:`~skhash.HashIndex` does.

    The computation runs on the current Dask scheduler (the default
    ``distributed.Client`` if one exists). Shards computed on the cluster from
    a source Dask can read again are recomputed if a worker is lost; shards
    scattered from the client raise :class:`ShardLostError` instead. A query
    never returns a partial answer.

    Parameters
    ----------
    encoder : fitted encoder or None, default=None
        If given, :meth:`fit`, :meth:`add` and :meth:`kneighbors` take
        features and encode them (:func:`packbits`; queries are encoded on the
        client); otherwise they take packed uint8 codes. Used as is, never
        fitted or copied: each call reads it. ``sklearn.base.clone`` (as in
        ``GridSearchCV``) gives an unfitted copy of a plain encoder; wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted there.
    n_candidates : int or None, default=None
        Candidates per shard (Hamming-nearest, or weighted-Hamming-nearest with
        ``asymmetric=True``) rescored by cosine (at least ``n_neighbors`` are
        taken); None ranks by the (weighted) Hamming distance only.
        Needs vectors: given to :meth:`fit`, or the unit-normalised features
        when ``encoder`` is set.
    split_every : int, default=8
        Fan-in of the merge tree.
    prefix_bits : int or None, default=None
        Index and search only the first ``prefix_bits`` bits of each code (the
        encoder's, or the packed codes given): the way to serve a prefix of
        nested codes (``BinaryHashEncoder(nested_bits=...)``) with
        ``prefix_bits / 8`` bytes per item. Queries are cut the same way
        (packed query codes have the width of the codes given to :meth:`fit`).
        At most the code length; None keeps the whole code. Read at
        :meth:`fit`: :meth:`add` and :meth:`kneighbors` keep the fitted length.
    asymmetric : bool, default=False
        Rank the codes by the query's values before thresholding ``h`` rather
        than by its bits: the weighted Hamming distance ``sum_j |h_j|
        [sign(h_j) != b_j]`` (a disagreeing bit costs how far the query is from
        that bit's boundary), as ``HashIndex(asymmetric=True)``. Needs
        ``encoder``: a :class:`~skhash.BinaryHashEncoder` (its network's
        pre-activations) or an encoder with an ``embed`` method
        (:class:`~skhash.PCAITQ`, :class:`~skhash.SimHash`). ``h`` is computed
        on the client and sent to the shards (4 bytes per bit and query); each
        shard scans all its codes. It chooses the candidates for rescoring or,
        without ``n_candidates``, is the ranking returned. Its recall per
        candidate and its cost are measured in ``docs/dask.md`` (one process:
        ``docs/retrieval.md``, section "Asymmetric ranking").

    Attributes
    ----------
    codes_ : dask.array.Array of shape (n_samples, n_bytes), uint8
        Packed codes, persisted; its row chunks are the shards.
    ids_ : dask.array.Array of shape (n_samples,), int64
        Global ids, sorted within each shard, unique.
    vectors_ : dask.array.Array of shape (n_samples, n_dims), float32, or None
        Unit-normalised rescoring vectors, chunked like ``codes_``.
    n_bits_ : int
        Length of the indexed codes: ``prefix_bits`` when set, else the
        encoder's ``n_bits`` (``8 * n_bytes`` for codes given without one).
    id_ranges_ : ndarray of shape (n_shards, 3), int64
        Smallest id, largest id and row count of each shard.

    Examples
    --------
    >>> import dask.array as da, numpy as np  # doctest: +SKIP
    >>> from skhash.dask import DaskHashIndex, packbits  # doctest: +SKIP
    >>> X = da.from_zarr("embeddings.zarr")  # doctest: +SKIP
    >>> index = DaskHashIndex(encoder=encoder, n_candidates=100).fit(X)  # doctest: +SKIP
    >>> distances, ids = index.kneighbors(queries, n_neighbors=10)  # doctest: +SKIP
    """

    _parameter_constraints = {
        "encoder": [None, object],
        "n_candidates": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "split_every": [Interval(numbers.Integral, 2, None, closed="left")],
        "prefix_bits": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "asymmetric": ["boolean"],
    }

    def __init__(
        self, *, encoder=None, n_candidates=None, split_every=8, prefix_bits=None, asymmetric=False
    ):
        self.encoder = encoder
        self.n_candidates = n_candidates
        self.split_every = split_every
        self.prefix_bits = prefix_bits
        self.asymmetric = asymmetric

    def _validate_params(self):
        # fit validates through fit_context; set_params may change them later
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False), type(self).__name__
        )

    def _network_state(self):
        """The encoder's network state for asymmetric ranking (None: its ``embed``)."""
        from ._index import _check_values_before_threshold, _inner_encoder, _module_state

        if self.encoder is None:
            raise ValueError(
                "asymmetric=True needs encoder=: packed codes carry no values before thresholding."
            )
        state = _module_state(_inner_encoder(self.encoder))
        _check_values_before_threshold(self.encoder, state)
        return state

    # -- building -----------------------------------------------------------

    def _prepare(self, X, ids, vectors, first_id, want_vectors, prefix, source_bytes=None):
        """Lazy, validated ``(n_bits, source_bytes, (codes, ids, vectors))`` for new rows.

        Codes are cut to their first ``prefix`` bits (None: whole codes); with
        ``source_bytes`` (``add``), new codes must have that width before the cut.
        """
        if not isinstance(X, da.Array) and not _is_dask_dataframe(X):
            # not packbits' advice (a DataFrame, or the encoder itself): neither applies here
            raise TypeError(
                f"X must be a dask array, got {type(X).__name__}: wrap in-memory rows with "
                "da.from_array(X, chunks=...), or search them in one process "
                "(skhash.HashIndex for features, skhash.HammingNeighbors for codes)."
            )
        if self.encoder is not None:
            n_bits = _check_encoder(self.encoder)
            if _is_dask_dataframe(X):
                raise TypeError(
                    "X must be a dask array with known chunk sizes; convert a DataFrame "
                    "with X.to_dask_array(lengths=True)."
                )
            X = _as_row_chunked(X, self.encoder, "X")
            _check_known_chunks(X, "X")
            # encoded in float32, as HashIndex encodes: bits near 0 come out the same
            codes = packbits(self.encoder, X.map_blocks(_as_float32, dtype=np.float32))
            if vectors is None and want_vectors:
                vectors = X
        else:
            codes = X
            if not isinstance(codes, da.Array):
                raise TypeError(
                    f"X must be a dask array of packed uint8 codes, got {type(X).__name__}."
                )
            if codes.ndim != 2 or codes.dtype != np.uint8:
                raise ValueError(
                    "X must be 2-D packed codes of dtype uint8 (np.packbits(bits, axis=1)), "
                    f"got {codes.ndim}-D {codes.dtype}; or set encoder= to index features."
                )
            _check_known_chunks(codes, "X")
            if codes.numblocks[1] > 1:
                codes = codes.rechunk({1: -1})
            n_bits = 8 * codes.shape[1]
        if source_bytes is not None and int(codes.shape[1]) != source_bytes:
            raise ValueError(
                f"new codes have {int(codes.shape[1])} bytes per row, the codes given to fit "
                f"{source_bytes}."
            )
        source_bytes = int(codes.shape[1])
        if prefix is not None and prefix != n_bits:
            if prefix > n_bits:
                raise ValueError(f"prefix_bits={prefix} exceeds the {n_bits} bits of the codes.")
            codes = codes.map_blocks(
                _cut_prefix, prefix, dtype=np.uint8, chunks=(codes.chunks[0], (-(-prefix // 8),))
            )
            n_bits = prefix
        if want_vectors and vectors is None:
            raise ValueError(
                "rescoring vectors are needed (n_candidates is set, or the index holds "
                "vectors): pass vectors=, or set encoder= so that the features are the vectors."
            )
        if not want_vectors and vectors is not None:
            raise ValueError("this index holds no rescoring vectors; do not pass vectors=.")
        if ids is None:
            n = codes.shape[0]
            if first_id + n - 1 > np.iinfo(np.int64).max:
                raise ValueError(
                    f"The default ids of {n} rows would follow the largest id, {first_id - 1}, "
                    "beyond int64; pass ids."
                )
            ids = da.arange(first_id, first_id + n, chunks=(codes.chunks[0],), dtype=np.int64)
        else:
            if not isinstance(ids, da.Array) or ids.ndim != 1:
                raise TypeError("ids must be a 1-D dask array chunked like X.")
            if ids.dtype.kind not in "iu":
                raise ValueError(f"ids must be integers, got dtype {ids.dtype}.")
            _check_known_chunks(ids, "ids")
            if ids.chunks[0] != codes.chunks[0]:
                raise ValueError(
                    f"ids are chunked differently from X: {ids.chunks[0]} rows per chunk "
                    f"against {codes.chunks[0]}; rechunk ids to X.chunks[0]."
                )
        if vectors is not None:
            if not isinstance(vectors, da.Array) or vectors.ndim != 2:
                raise TypeError("vectors must be a 2-D dask array chunked like X.")
            _check_known_chunks(vectors, "vectors")
            if vectors.chunks[0] != codes.chunks[0]:
                raise ValueError(
                    f"vectors are chunked differently from the codes: {vectors.chunks[0]} "
                    f"rows per chunk against {codes.chunks[0]}. Each shard must hold its "
                    "own rows' vectors; rechunk vectors to the codes' row chunks."
                )
            if vectors.numblocks[1] > 1:
                vectors = vectors.rechunk({1: -1})
            vectors = vectors.map_blocks(_unit_vectors, dtype=np.float32)
        return n_bits, source_bytes, _build_shards(codes, ids, vectors)

    @fit_context()
    def fit(self, X, y=None, *, ids=None, vectors=None):
        """Build the shards and persist them on the workers.

        Parameters
        ----------
        X : dask.array.Array
            Features of shape (n_samples, n_features) when ``encoder`` is set,
            else packed codes of shape (n_samples, n_bytes), uint8. Row chunk
            sizes must be known; each row chunk becomes a shard.
        y : None
            Ignored.
        ids : dask.array.Array of shape (n_samples,), int, default=None
            Unique global ids, chunked like ``X``; default ``0 .. n_samples - 1``.
        vectors : dask.array.Array of shape (n_samples, n_dims), default=None
            Rescoring vectors, chunked like ``X`` along rows; normalised to unit
            length on the workers. Default: ``X`` when ``encoder`` and
            ``n_candidates`` are set.

        Returns
        -------
        self : DaskHashIndex
        """
        if self.asymmetric:
            self._network_state()  # fails before anything is computed
        want = vectors is not None or self.n_candidates is not None
        n_bits, source_bytes, (codes, ids_, vectors_) = self._prepare(
            X, ids, vectors, 0, want, self.prefix_bits
        )
        codes, ids_, vectors_, ranges = _persist_shards(codes, ids_, vectors_, "fit")
        _check_ids_disjoint(ranges, [ids_], "fit")
        self.codes_, self.ids_, self.vectors_ = codes, ids_, vectors_
        self.n_bits_ = n_bits
        self._source_bytes = source_bytes  # width of packed query codes (before the cut)
        self.id_ranges_ = ranges
        return self

    def add(self, X, *, ids=None, vectors=None):
        """Add rows as new shards (one per row chunk of ``X``).

        Parameters
        ----------
        X, ids, vectors
            As in :meth:`fit`; default ids continue after the largest id. Vectors
            are required exactly when the index holds vectors.

        Returns
        -------
        self : DaskHashIndex
            Unchanged if anything fails.
        """
        check_is_fitted(self)
        self._validate_params()
        with _WRITE_LOCK:
            return self._add(X, ids, vectors)

    def _add(self, X, ids, vectors):
        first = int(self.id_ranges_[:, 1].max()) + 1 if self.id_ranges_[:, 2].any() else 0
        want = self.vectors_ is not None
        n_bits, source_bytes, (codes, ids_, vectors_) = self._prepare(
            X, ids, vectors, first, want, self.n_bits_, source_bytes=self._source_bytes
        )
        if codes.shape[0] == 0:  # validated, and nothing to add: no empty shard
            return self
        if source_bytes != self._source_bytes or n_bits != self.n_bits_:
            raise ValueError(
                f"new codes have {source_bytes} bytes per row, the codes given to fit "
                f"{self._source_bytes}."
            )
        if vectors_ is not None and vectors_.shape[1] != self.vectors_.shape[1]:
            raise ValueError(
                f"new vectors have {vectors_.shape[1]} dimensions, the index "
                f"{self.vectors_.shape[1]}."
            )
        codes, ids_, vectors_, ranges = _persist_shards(codes, ids_, vectors_, "add")
        ranges = np.concatenate([self.id_ranges_, ranges])
        _check_ids_disjoint(ranges, [self.ids_, ids_], "add")
        self._swap_in(
            codes_=da.concatenate([self.codes_, codes]),
            ids_=da.concatenate([self.ids_, ids_]),
            vectors_=None if vectors_ is None else da.concatenate([self.vectors_, vectors_]),
            id_ranges_=ranges,
        )
        return self

    def _swap_in(self, **attributes):
        """Replace fitted attributes in one assignment: a query running in another
        thread reads the old index or the new one, never a mix (see ``kneighbors``)."""
        self.__dict__ = {**vars(self), **attributes}

    def _snapshot(self):
        """A shallow copy of the index as it is now: one consistent state to query."""
        snapshot = object.__new__(type(self))
        snapshot.__dict__ = dict(vars(self))  # one copy: add/compact swap in one assignment
        return snapshot

    def compact(self, target_rows=None):
        """Merge runs of adjacent small shards into shards of at most ``target_rows``.

        Parameters
        ----------
        target_rows : int, default=None
            Largest merged shard; default the largest current shard. Shards
            already at least this large are left alone.

        Returns
        -------
        self : DaskHashIndex
        """
        check_is_fitted(self)
        with _WRITE_LOCK:
            return self._compact(target_rows)

    def _compact(self, target_rows):
        sizes = [int(s) for s in self.codes_.chunks[0]]
        if target_rows is None:
            target_rows = max(max(sizes), 1)  # an empty index: nothing to merge, not an error
        validate_params(
            {"target_rows": [Interval(numbers.Integral, 1, None, closed="left")]},
            "DaskHashIndex.compact",
            target_rows=target_rows,
        )
        merged = []
        for size in sizes:
            if size == 0:
                continue
            if merged and merged[-1] + size <= target_rows:
                merged[-1] += size
            else:
                merged.append(size)
        merged = tuple(merged) or (0,)
        if merged == tuple(sizes):
            return self
        chunks = {0: merged}
        codes = self.codes_.rechunk(chunks)
        ids = self.ids_.rechunk(chunks)
        vectors = None if self.vectors_ is None else self.vectors_.rechunk(chunks)
        # merged shards may interleave ids: sort again within each
        codes, ids, vectors = _build_shards(codes, ids, vectors)
        codes, ids, vectors, ranges = _persist_shards(codes, ids, vectors, "compact")
        self._swap_in(codes_=codes, ids_=ids, vectors_=vectors, id_ranges_=ranges)
        return self

    # -- searching ----------------------------------------------------------

    def _queries(self, X, query_vectors):
        """``(queries, query_vectors)``: code words, or values before thresholding
        with ``asymmetric=True``; unit float32 rescoring vectors or None."""
        if query_vectors is not None and (self.vectors_ is None or self.n_candidates is None):
            raise ValueError(
                "query_vectors= were given, but this index does not rescore ("
                + (
                    "it holds no vectors: fit it with vectors= or with n_candidates set"
                    if self.vectors_ is None
                    else "n_candidates is None: set it to rescore"
                )
                + ")."
            )
        if isinstance(X, da.Array):
            X = X.compute()
        names = None
        if self.encoder is not None and isinstance(X, pd.DataFrame):
            from ._index import _inner_encoder

            # the encoder's columns, in its order (check_array drops the names), and
            # the names passed on with the rows so that the encoder sees them
            _check_frame(X, _inner_encoder(self.encoder), "X")
            names = np.asarray(X.columns, dtype=object)
        if self.asymmetric:
            from ._index import _inner_encoder, _values_before_threshold

            state = self._network_state()
            # float32 as the network: values beyond its range are an error
            X = check_array(X, dtype=np.float32, ensure_all_finite=True)
            n_features = getattr(_inner_encoder(self.encoder), "n_features_in_", X.shape[1])
            if X.shape[1] != n_features:
                raise ValueError(
                    f"X has {X.shape[1]} features, but the encoder was fitted on {n_features}."
                )
            words = _values_before_threshold(self.encoder, state, X, self.n_bits_, names)
            words = np.ascontiguousarray(words, dtype=np.float32)
            if self.vectors_ is not None and query_vectors is None:
                query_vectors = X
        elif self.encoder is not None:
            from ._index import _inner_encoder, _with_feature_names

            # float32 as the shards were encoded (and HashIndex encodes)
            X = check_array(X, dtype=np.float32, ensure_all_finite=True)
            # _pack_block: encoders without packbits (PCAITQ, SimHash) too
            rows = _with_feature_names(_inner_encoder(self.encoder), X, names)
            packed = _pack_block(rows, self.encoder)
            if packed.shape[1] != self._source_bytes:  # an encoder swapped or refitted
                raise ValueError(
                    f"The encoder gives codes of {packed.shape[1]} bytes per row, but the "
                    f"index was built from codes of {self._source_bytes}: fit the index "
                    "again after changing or refitting its encoder."
                )
            words = as_words(_cut_prefix(packed, self.n_bits_))
            if self.vectors_ is not None and query_vectors is None:
                query_vectors = X
        else:
            X = np.asarray(X)
            if X.ndim != 2 or X.dtype != np.uint8:
                raise ValueError(
                    f"X must be 2-D packed uint8 query codes, got {X.ndim}-D {X.dtype}."
                )
            if X.shape[1] != self._source_bytes:
                raise ValueError(
                    f"X has {X.shape[1]} bytes per row, but the codes given to fit have "
                    f"{self._source_bytes}."
                )
            words = as_words(_cut_prefix(X, self.n_bits_))
        if self.vectors_ is None or self.n_candidates is None:
            return words, None
        if query_vectors is None:
            raise ValueError("this index rescores by cosine: pass query_vectors=.")
        qv = np.asarray(query_vectors)
        if qv.ndim != 2 or qv.shape != (words.shape[0], self.vectors_.shape[1]):
            raise ValueError(
                f"query_vectors must have shape ({words.shape[0]}, {self.vectors_.shape[1]}), "
                f"got {qv.shape}."
            )
        return words, np.ascontiguousarray(_unit_vectors(qv, "query_vectors"))

    def kneighbors(self, X, n_neighbors=10, return_distance=True, *, query_vectors=None):
        """The ``n_neighbors`` nearest indexed rows of each query, over all shards.

        Parameters
        ----------
        X : array-like
            Queries, in memory: features when ``encoder`` is set (encoded on the
            client; a pandas DataFrame must have the encoder's ``feature_names_in_``,
            in its order), else packed uint8 codes of the index's width.
        n_neighbors : int, default=10
            Neighbours per query, at most the number of indexed rows.
        return_distance : bool, default=True
            Return the distances too.
        query_vectors : array-like of shape (n_queries, n_dims), default=None
            Rescoring vectors of the queries; default ``X`` when ``encoder``
            is set.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Hamming distances (int32), weighted Hamming distances (float32) with
            ``asymmetric=True``, or cosine distances ``1 - cos`` (float32) when
            rescoring. Only with ``return_distance=True``.
        ids : ndarray of shape (n_queries, n_neighbors), int64
            Global ids, nearest first; ties by id.
        """
        # the index as it is now: an add or compact in another thread swaps in a new
        # state in one assignment, which this query does not see half-way
        return self._snapshot()._kneighbors(X, n_neighbors, return_distance, query_vectors)

    def _kneighbors(self, X, n_neighbors, return_distance, query_vectors):
        check_is_fitted(self)
        self._validate_params()
        if self.n_candidates is not None and self.vectors_ is None:  # set after fit
            raise ValueError(
                f"n_candidates={self.n_candidates} asks for rescoring, but this index holds "
                "no rescoring vectors: fit it again with vectors= (or encoder=), or set "
                "n_candidates=None."
            )
        n_total = int(self.id_ranges_[:, 2].sum())
        if n_total == 0 and n_neighbors in Interval(numbers.Integral, 1, None, closed="left"):
            # the range check below would say "in the range [1, 0]"
            raise ValueError(
                f"n_neighbors={n_neighbors} exceeds the 0 rows in the index: add rows first."
            )
        validate_params(
            {
                "n_neighbors": [Interval(numbers.Integral, 1, n_total, closed="both")],
                "return_distance": ["boolean"],
            },
            "DaskHashIndex.kneighbors",
            n_neighbors=n_neighbors,
            return_distance=return_distance,
        )
        words, qv = self._queries(X, query_vectors)
        k = int(n_neighbors)
        rescore = qv is not None
        n_cand = max(int(self.n_candidates), k) if rescore else None
        q_words = dask.delayed(words, pure=True)
        q_vecs = dask.delayed(qv, pure=True) if rescore else None
        codes = self.codes_.to_delayed().ravel()
        ids = self.ids_.to_delayed().ravel()
        vectors = self.vectors_.to_delayed().ravel() if rescore else [None] * len(codes)
        search = dask.delayed(_shard_search, pure=True)
        weighted = bool(self.asymmetric)
        level = [
            search(c, i, v, q_words, q_vecs, k, n_cand, weighted)
            for c, i, v in zip(codes, ids, vectors, strict=True)
        ]
        merge = dask.delayed(_merge_many, pure=True)
        while len(level) > 1:
            level = [
                merge(k, *level[start : start + self.split_every])
                for start in range(0, len(level), self.split_every)
            ]
        dist, found, score = _compute(level[0] if len(level) == 1 else merge(k, *level))
        distances = score if rescore else dist
        return (distances, found) if return_distance else found
