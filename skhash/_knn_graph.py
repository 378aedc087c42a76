"""The k-nearest-neighbour graph of a data set, one helper for the encoder and the index.

Row ``i`` of the graph lists the ``k`` rows nearest to row ``i`` other than
``i`` itself. Self is removed *by index*, never by dropping the first column:
with duplicated rows the first column may be a twin of ``i`` (at distance 0,
a genuine neighbour) and ``i`` itself may sit anywhere, or nowhere in an
approximate list.

Below ``exact_max_samples`` rows the graph is exact: a chunked scan, with
blocks of distances from one matrix product (euclidean, cosine) or the
popcount kernel of :mod:`skhash._hamming` (bit_hamming), and ties broken by
index. The float blocks are float32: they choose ``k + 4`` candidates, whose
distances are then computed in float64 to keep the ``k`` nearest; a row whose
``k``-th and last candidates lie within float32's rounding of each other
(near-duplicates, rows far from the origin) is searched again in float64, so
float32 never decides which rows are neighbours (float64's own expansion does:
distances closer than about 1e-7 of the rows' norms, measured from the mean
row, are ranked by its rounding). Above ``exact_max_samples``,
PyNNDescent builds an approximate graph in near-linear time.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from numba import njit, prange

from ._hamming import _sift_down, _sort_pairs, as_words, hamming_knn
from ._threads import numba_threads

__all__ = ["drop_self", "knn_graph"]

_METRICS = ("euclidean", "cosine", "bit_hamming")
# Distances held per block of the exact float search (float32 entries).
_BLOCK_ENTRIES = 2**23


@njit(parallel=True, cache=True, nogil=True)
def _block_topk(block, start, k, out_dist, out_idx):
    # Row r of ``block`` holds the distances of row ``start + r`` to every row.
    # Rows are scanned in index order and only a strictly closer one displaces
    # the worst kept, so ties are broken by index.
    for r in prange(block.shape[0]):
        dist = out_dist[r]
        idx = out_idx[r]
        dist[:] = np.inf
        idx[:] = -1
        row = block[r]
        me = start + r
        worst = dist[0]
        for j in range(row.shape[0]):
            d = row[j]
            if d < worst and j != me:
                dist[0] = d
                idx[0] = j
                _sift_down(dist, idx, k)
                worst = dist[0]
        _sort_pairs(dist, idx)


def _exact_float(X, k, metric):
    n = X.shape[0]
    X = np.asarray(X, dtype=np.float64)
    # float32 candidates with a margin, then float64 ranking (see the module docstring)
    k_cand = min(n - 1, k + 4)
    if metric == "cosine":
        # Scale each row by its largest magnitude first: the direction, not
        # the size, matters, even for norms beyond float32.
        peak = np.abs(X).max(axis=1, keepdims=True)
        X = X / np.where(peak > 0, peak, 1.0)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.where(norms > 0, norms, 1.0)
        scale = 1.0
    else:
        # One power-of-two scale for all rows keeps the order, avoids float32
        # overflow and underflow, and is undone exactly on the distances.
        peak = float(np.abs(X).max()) if X.size else 0.0
        scale = 2.0 ** np.floor(np.log2(peak)) if peak > 0 else 1.0
        # Then centred: distances do not change, and the float32 expansion
        # |a|^2 + |b|^2 - 2ab loses far less to rows far from the origin.
        X = X / scale
        X = X - X.mean(axis=0)
    unit = X.astype(np.float32)
    sq_norms = np.einsum("ij,ij->i", unit, unit)
    zero_rows = ~X.any(axis=1)
    # how far float32 rounding can move a block entry (cosine: unit rows; euclidean:
    # squared distances, relative to the rows' squared norms): rows whose k-th and
    # last candidate lie closer than that are searched again in float64
    eps = float(np.finfo(np.float32).eps) * 4 * X.shape[1]
    tolerance = eps if metric == "cosine" else eps * (sq_norms + sq_norms.max(initial=0.0))
    out_dist = np.empty((n, k), dtype=np.float64)
    out_idx = np.empty((n, k), dtype=np.int64)
    chunk = max(1, min(n, _BLOCK_ENTRIES // max(n, k_cand * X.shape[1], 1)))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        products = unit[start:stop] @ unit.T
        if metric == "cosine":
            block = 1.0 - products
        else:
            block = sq_norms[start:stop, None] + sq_norms[None, :] - 2.0 * products
        dist = np.empty((stop - start, k_cand), dtype=np.float32)
        idx = np.empty((stop - start, k_cand), dtype=np.int64)
        _block_topk(np.ascontiguousarray(block, dtype=np.float32), start, k_cand, dist, idx)
        if k_cand < n - 1:
            tol = tolerance if metric == "cosine" else tolerance[start:stop]
            unsure = np.flatnonzero(dist[:, -1] - dist[:, k - 1] <= tol)
            if unsure.size:
                idx[unsure] = _float64_candidates(X, start + unsure, k_cand, metric)
        # The float32 expansion cancels (a twin lands at ~1e-3, not 0): the
        # candidates' distances are recomputed directly in float64, the k nearest kept.
        diff = X[start:stop, None, :] - X[idx]
        exact = np.einsum("ijk,ijk->ij", diff, diff)
        if metric == "cosine":
            exact /= 2  # 1 - cos of unit rows
            # a zero row is at distance 1 from every row (|u - 0|^2 / 2 would say 0.5)
            exact[zero_rows[start:stop]] = 1.0
            exact[zero_rows[idx]] = 1.0
        else:
            exact = np.sqrt(exact) * scale
        order = np.lexsort((idx, exact), axis=1)[:, :k]
        out_idx[start:stop] = np.take_along_axis(idx, order, axis=1)
        out_dist[start:stop] = np.take_along_axis(exact, order, axis=1)
    return out_idx, out_dist.astype(np.float32)


def _float64_candidates(X, rows, k_cand, metric):
    """The ``k_cand`` rows nearest to each of ``rows`` (not itself), searched in float64."""
    products = X[rows] @ X.T
    if metric == "cosine":
        dist = 1.0 - products
    else:
        sq = np.einsum("ij,ij->i", X, X)
        dist = sq[rows, None] + sq[None, :] - 2.0 * products
    dist[np.arange(len(rows)), rows] = np.inf
    part = np.argpartition(dist, k_cand - 1, axis=1)[:, :k_cand]
    # ties by index, as in the scan: the rows at the k_cand-th distance (twins of a row
    # with many copies) fill the places left in index order, not argpartition's
    last = np.take_along_axis(dist, part, axis=1).max(axis=1, keepdims=True)
    closer = dist < last
    tied = dist == last
    places = k_cand - closer.sum(axis=1, keepdims=True)
    keep = closer | (tied & (np.cumsum(tied, axis=1) <= places))
    return np.nonzero(keep)[1].reshape(len(rows), k_cand)


def drop_self(indices, distances, rows=None):
    """Remove each query's own row from its ``k + 1`` neighbours, by index.

    ``rows[i]`` is the fitted row that query ``i`` is (``arange`` if None). As
    in scikit-learn, a list without its own row (many duplicates, an
    approximate search) loses its farthest entry instead.
    """
    n, k_plus_one = indices.shape
    if rows is None:
        rows = np.arange(n)
    mask = indices == np.asarray(rows)[:, None]
    # Only the first occurrence of the row goes (an approximate list may repeat one).
    first = mask & (np.cumsum(mask, axis=1) == 1)
    first[~mask.any(axis=1), -1] = True
    keep = ~first
    return (
        indices[keep].reshape(n, k_plus_one - 1),
        distances[keep].reshape(n, k_plus_one - 1),
    )


def _approximate(X, k, metric, random_state, n_jobs, nndescent_params):
    from pynndescent import NNDescent

    # numba (inside pynndescent) rejects read-only buffers such as memory maps
    data = np.require(X, requirements=["C", "W"])
    with numba_threads(n_jobs) as n_threads:
        index = NNDescent(
            data,
            metric=metric,
            n_neighbors=k + 1,
            random_state=random_state,
            n_jobs=n_threads,
            **(nndescent_params or {}),
        )
        indices, distances = index.neighbor_graph
    indices, distances = drop_self(np.asarray(indices, dtype=np.int64), distances)
    if metric == "bit_hamming":
        distances = np.rint(distances).astype(np.int32)
    else:
        distances = np.asarray(distances, dtype=np.float32)
    return indices, distances


def knn_graph(
    X,
    n_neighbors,
    *,
    metric="euclidean",
    random_state=None,
    exact_max_samples=60_000,
    n_jobs=None,
    nndescent_params=None,
):
    """Each row's nearest other rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite real rows (``"euclidean"``, ``"cosine"``), or packed uint8
        codes as ``np.packbits(bits, axis=1)`` returns (``"bit_hamming"``).
    n_neighbors : int
        Neighbours per row, clipped to ``n_samples - 1``.
    metric : {"euclidean", "cosine", "bit_hamming"}, default="euclidean"
        ``"cosine"`` ignores the rows' norms (a zero row is at distance 1 from
        every row).
    random_state : int or None, default=None
        Seed of the approximate search. PyNNDescent splits its work by
        thread, so its graph also depends on the number of threads
        (``n_jobs``, or the cores available for None).
    exact_max_samples : int, default=60_000
        Largest number of rows searched exactly; PyNNDescent above.
    n_jobs : int or None, default=None
        numba threads (None or -1: all).
    nndescent_params : dict or None, default=None
        Extra keyword arguments of :class:`pynndescent.NNDescent` (e.g.
        ``n_trees``, ``n_iters``), approximate search only.

    Returns
    -------
    indices : ndarray of shape (n_samples, k), int64
        ``k = min(n_neighbors, n_samples - 1)``; row ``i`` never contains
        ``i`` and lists identical rows of ``i`` (at distance 0) when there are
        at most ``k`` of them. Exact lists are ordered by distance (as
        computed in float64: rows at the same distance only in exact
        arithmetic, e.g. on an integer grid, may differ by rounding, and so
        may near-duplicates whose distances differ by less than about 1e-7
        of their norms from the mean row), then index.
    distances : ndarray of shape (n_samples, k)
        float32 (euclidean distance, or ``1 - cosine similarity``), int32
        numbers of differing bits for ``"bit_hamming"``.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}.")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array, got shape {X.shape}.")
    n = X.shape[0]
    if metric == "bit_hamming" and X.dtype != np.uint8:
        raise TypeError(f"bit_hamming needs packed uint8 codes, got dtype {X.dtype}.")
    if metric != "bit_hamming" and not np.isfinite(X).all():
        raise ValueError("X must be finite (no NaN or infinity).")
    k = max(0, min(int(n_neighbors), n - 1))
    if k == 0:
        empty = np.float32 if metric != "bit_hamming" else np.int32
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=empty)
    # NN-descent needs comfortably more rows than neighbours
    if n > exact_max_samples and n > 2 * (k + 1):
        return _approximate(X, k, metric, random_state, n_jobs, nndescent_params)
    with numba_threads(n_jobs):
        if metric == "bit_hamming":
            words = as_words(X)
            distances, indices = hamming_knn(words, words, k, exclude_self=True)
            return indices, distances
        return _exact_float(X, k, metric)
