"""Exact Hamming-distance kernels on packed binary codes.

Codes are stored as ``np.packbits(bits, axis=1)`` rows. The kernels view each
row as 64-bit words (rows are zero padded to a multiple of 8 bytes; zero
padding on both sides does not change a distance) and count differing bits
with the hardware ``popcnt`` instruction through an LLVM ``ctpop`` intrinsic.
The weighted distance of real-valued queries to codes (asymmetric ranking) scans
the same way, with one table look-up per code byte.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = [
    "as_words",
    "hamming_knn",
    "hamming_radius",
    "pack_bits",
    "pairwise_hamming",
    "weighted_hamming_knn",
    "weighted_hamming_tables",
]


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of a uint64 (LLVM ``ctpop``, one ``popcnt``)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


def pack_bits(bits):
    """Pack a 2-D array of 0/1 values into C-contiguous uint8 rows."""
    return np.ascontiguousarray(np.packbits(np.asarray(bits, dtype=np.uint8), axis=1))


def as_words(packed):
    """View packed uint8 rows as C-contiguous uint64 words.

    Rows are zero padded to a multiple of 8 bytes first when needed; the view
    shares memory with ``packed`` otherwise.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n_samples, n_bytes = packed.shape
    n_words = max(1, -(-n_bytes // 8))
    if n_bytes != 8 * n_words:
        padded = np.zeros((n_samples, 8 * n_words), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        packed = padded
    return packed.view(np.uint64).reshape(n_samples, n_words)


@njit(inline="always")
def _distance(query, database, j, n_words):
    d = np.uint64(0)
    for w in range(n_words):
        d += _popcount(query[w] ^ database[j, w])
    return np.int32(d)


@njit(inline="always")
def _sift_down_from(dist, idx, i, k):
    # Max-heap on (distance, index) over the first k entries, restored below entry i.
    while True:
        left = 2 * i + 1
        if left >= k:
            break
        child = left
        right = left + 1
        if right < k and (
            dist[right] > dist[left] or (dist[right] == dist[left] and idx[right] > idx[left])
        ):
            child = right
        if dist[child] > dist[i] or (dist[child] == dist[i] and idx[child] > idx[i]):
            dist[i], dist[child] = dist[child], dist[i]
            idx[i], idx[child] = idx[child], idx[i]
            i = child
        else:
            break


@njit(inline="always")
def _sift_down(dist, idx, k):
    # The root is the worst neighbour kept: after replacing it, restore the heap.
    _sift_down_from(dist, idx, 0, k)


@njit(inline="always")
def _sort_pairs(dist, idx):
    # Ascending by (distance, index): insertion sort for the usual small k, heap sort
    # (O(k log k)) for the thousand-candidate lists of a rescoring first stage.
    k = dist.shape[0]
    if k <= 32:
        for i in range(1, k):
            d = dist[i]
            j_ = idx[i]
            m = i - 1
            while m >= 0 and (dist[m] > d or (dist[m] == d and idx[m] > j_)):
                dist[m + 1] = dist[m]
                idx[m + 1] = idx[m]
                m -= 1
            dist[m + 1] = d
            idx[m + 1] = j_
        return
    for i in range(k // 2 - 1, -1, -1):
        _sift_down_from(dist, idx, i, k)
    for end in range(k - 1, 0, -1):
        dist[0], dist[end] = dist[end], dist[0]
        idx[0], idx[end] = idx[end], idx[0]
        _sift_down_from(dist, idx, 0, end)


# The scans take a block view and loop over ``range(block.shape[0])``: with a
# loop start LLVM cannot prove non-negative, every index pays numba's
# negative-index wraparound, which cost 40% of the QPS on 64-bit codes.
# Rows arrive in increasing index order, so a tie with the heap root never
# displaces it: ties are broken by index without comparing indices.


# Distances of this many codes are computed into a buffer by a branch-free
# (vectorisable) loop before the rarely taken heap test.
_TILE = 512


@njit(inline="always")
def _admit_tile(buffer, n, first, dist, idx, k):
    """Push the tile's codes closer than the worst kept into the heap; rows from ``first``."""
    worst = dist[0]
    # a vectorisable minimum first: most tiles hold no code closer than the worst kept
    m = buffer[0]
    for j in range(1, n):
        m = min(m, buffer[j])
    if m >= worst:
        return
    for j in range(n):
        if buffer[j] < worst:
            dist[0] = buffer[j]
            idx[0] = j + first
            _sift_down(dist, idx, k)
            worst = dist[0]


@njit(inline="always")
def _scan_1word(w0, block, offset, dist, idx, k):
    buffer = np.empty(_TILE, dtype=np.int32)
    for start in range(0, block.shape[0], _TILE):
        tile = block[start : start + _TILE]
        for j in range(tile.shape[0]):
            buffer[j] = np.int32(_popcount(w0 ^ tile[j, 0]))
        _admit_tile(buffer, tile.shape[0], start + offset, dist, idx, k)


@njit(inline="always")
def _scan_4words(query, block, offset, dist, idx, k):
    w0, w1, w2, w3 = query[0], query[1], query[2], query[3]
    buffer = np.empty(_TILE, dtype=np.int32)
    for start in range(0, block.shape[0], _TILE):
        tile = block[start : start + _TILE]
        for j in range(tile.shape[0]):
            buffer[j] = np.int32(
                _popcount(w0 ^ tile[j, 0])
                + _popcount(w1 ^ tile[j, 1])
                + _popcount(w2 ^ tile[j, 2])
                + _popcount(w3 ^ tile[j, 3])
            )
        _admit_tile(buffer, tile.shape[0], start + offset, dist, idx, k)


@njit(inline="always")
def _scan_words(query, block, offset, dist, idx, k):
    n_words = block.shape[1]
    worst = dist[0]
    for j in range(block.shape[0]):
        d = _distance(query, block, j, n_words)
        if d < worst:
            dist[0] = d
            idx[0] = j + offset
            _sift_down(dist, idx, k)
            worst = dist[0]


@njit(inline="always")
def _scan(query, block, offset, dist, idx, k):
    n_words = block.shape[1]
    if n_words == 1:
        _scan_1word(query[0], block, offset, dist, idx, k)
    elif n_words == 4:
        _scan_4words(query, block, offset, dist, idx, k)
    else:
        _scan_words(query, block, offset, dist, idx, k)


@njit(parallel=True, cache=True, nogil=True)
def _knn_kernel(queries, database, k, exclude_self, out_dist, out_idx):
    # One task per query over the whole database, heap of size k per query;
    # scanning database blocks per group of queries measured no faster, even
    # for 10**6 1024-bit codes (benchmarks/neighbors.py).
    out_dist[:] = np.int32(2**31 - 1)
    out_idx[:] = -1
    n_database = database.shape[0]
    for q in prange(queries.shape[0]):
        dist = out_dist[q]
        idx = out_idx[q]
        if exclude_self:
            # Two scans around row q keep the index order and the loop branch-free.
            _scan(queries[q], database[:q], 0, dist, idx, k)
            _scan(queries[q], database[q + 1 : n_database], q + 1, dist, idx, k)
        else:
            _scan(queries[q], database, 0, dist, idx, k)
        _sort_pairs(dist, idx)


@njit(parallel=True, cache=True, nogil=True)
def _radius_count_kernel(queries, database, radius, exclude_self, counts):
    n_words = database.shape[1]
    for q in prange(queries.shape[0]):
        query = queries[q]
        n = 0
        for j in range(database.shape[0]):
            if _distance(query, database, j, n_words) <= radius and not (exclude_self and j == q):
                n += 1
        counts[q] = n


@njit(parallel=True, cache=True, nogil=True)
def _radius_fill_kernel(queries, database, radius, exclude_self, offsets, out_dist, out_idx):
    n_words = database.shape[1]
    for q in prange(queries.shape[0]):
        query = queries[q]
        lo = offsets[q]
        # Counting sort by distance: stable, so equal distances keep index order.
        hist = np.zeros(radius + 2, dtype=np.int64)
        for j in range(database.shape[0]):
            d = _distance(query, database, j, n_words)
            if d <= radius and not (exclude_self and j == q):
                hist[d + 1] += 1
        for r in range(1, radius + 2):
            hist[r] += hist[r - 1]
        for j in range(database.shape[0]):
            d = _distance(query, database, j, n_words)
            if d <= radius and not (exclude_self and j == q):
                pos = lo + hist[d]
                hist[d] += 1
                out_dist[pos] = d
                out_idx[pos] = j


@njit(parallel=True, cache=True, nogil=True)
def _pairwise_kernel(queries, database, out):
    n_words = database.shape[1]
    for q in prange(queries.shape[0]):
        query = queries[q]
        for j in range(database.shape[0]):
            out[q, j] = _distance(query, database, j, n_words)


def _check_words(queries, database):
    if queries.dtype != np.uint64 or database.dtype != np.uint64:
        raise TypeError("queries and database must be uint64 word arrays (see as_words).")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} words per row, database has {database.shape[1]}."
        )
    return np.ascontiguousarray(queries), np.ascontiguousarray(database)


def hamming_knn(queries, database, k, exclude_self=False):
    """Exact k nearest neighbours in Hamming distance.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_words), dtype uint64
        Query codes as 64-bit words (see :func:`as_words`).
    database : ndarray of shape (n_database, n_words), dtype uint64
        Database codes as 64-bit words.
    k : int
        Number of neighbours, ``1 <= k <= n_database`` (``< n_database`` with
        ``exclude_self``).
    exclude_self : bool, default=False
        If True, ``queries`` is ``database`` and row ``i`` is not returned as
        a neighbour of query ``i``.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), dtype int32
        Numbers of differing bits, ascending.
    indices : ndarray of shape (n_queries, k), dtype int64
        Database rows; ties in distance are ordered by index.
    """
    queries, database = _check_words(queries, database)
    k = int(k)
    n_available = database.shape[0] - int(bool(exclude_self))
    if not 1 <= k <= n_available:
        raise ValueError(f"k must be in [1, {n_available}], got {k}.")
    out_dist = np.empty((queries.shape[0], k), dtype=np.int32)
    out_idx = np.empty((queries.shape[0], k), dtype=np.int64)
    if queries.shape[0] == 0:
        return out_dist, out_idx
    _knn_kernel(queries, database, k, bool(exclude_self), out_dist, out_idx)
    return out_dist, out_idx


def hamming_radius(queries, database, radius, exclude_self=False):
    """All database rows within a Hamming radius, exactly.

    Parameters
    ----------
    queries, database : ndarray of dtype uint64
        Codes as 64-bit words (see :func:`as_words`).
    radius : int
        Largest Hamming distance included (the ball is closed).
    exclude_self : bool, default=False
        If True, ``queries`` is ``database`` and row ``i`` is not returned for
        query ``i``.

    Returns
    -------
    distances : ndarray of dtype int32
        Concatenated distances, ascending within each query.
    indices : ndarray of dtype int64
        Concatenated rows; ties in distance are ordered by index.
    offsets : ndarray of shape (n_queries + 1,), dtype int64
        Query ``i`` owns ``distances[offsets[i]:offsets[i + 1]]``.
    """
    queries, database = _check_words(queries, database)
    radius = int(radius)
    n_queries = queries.shape[0]
    offsets = np.zeros(n_queries + 1, dtype=np.int64)
    if radius < 0 or n_queries == 0:
        return np.empty(0, np.int32), np.empty(0, np.int64), offsets
    # Distances never exceed the number of bits, so larger radii are equal.
    radius = min(radius, 64 * database.shape[1])
    counts = np.empty(n_queries, dtype=np.int64)
    _radius_count_kernel(queries, database, radius, bool(exclude_self), counts)
    np.cumsum(counts, out=offsets[1:])
    out_dist = np.empty(offsets[-1], dtype=np.int32)
    out_idx = np.empty(offsets[-1], dtype=np.int64)
    _radius_fill_kernel(queries, database, radius, bool(exclude_self), offsets, out_dist, out_idx)
    return out_dist, out_idx, offsets


def pairwise_hamming(queries, database):
    """Dense matrix of Hamming distances, shape (n_queries, n_database), int32."""
    queries, database = _check_words(queries, database)
    out = np.empty((queries.shape[0], database.shape[0]), dtype=np.int32)
    _pairwise_kernel(queries, database, out)
    return out


# -- weighted Hamming distance (asymmetric ranking: real-valued queries, binary codes) ---------

# MSB-first bit t of byte value v, 0/1: np.packbits' order
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)
# Largest weight of one bit (a float32 sum over thousands of bits stays finite).
_MAX_WEIGHT = np.float32(1e30)


def weighted_hamming_tables(H, n_bytes):
    """Per-query look-up tables of the weighted Hamming distance to packed codes.

    The distance of a query with real values ``h`` (one per bit) to a code ``b``
    is ``sum_j |h_j| [sign(h_j) != b_j]``: a disagreeing bit costs how far the
    query is from that bit's boundary, 0 for the query's own code (the Hamming
    distance when every ``|h_j|`` is 1). ``tables[q, p, v]`` is the part of it
    that byte ``p`` of a code contributes when its value is ``v``, so a code's
    distance is one look-up per byte (as product quantisation's asymmetric
    distance).

    Parameters
    ----------
    H : ndarray of shape (n_queries, n_bits)
        The queries' values; NaN weighs 0, magnitudes are capped at 1e30 (an
        overflowing network's bit weighs nothing, and no sum can overflow).
    n_bytes : int
        Bytes per packed code, at least ``ceil(n_bits / 8)``; bits past
        ``n_bits`` (the zero padding of ``np.packbits``) weigh 0.

    Returns
    -------
    tables : ndarray of shape (n_queries, n_bytes, 256), float32
        ``tables[q, p, v]``: what byte ``p`` of value ``v`` adds to query ``q``'s
        distance.
    """
    H = np.asarray(H, dtype=np.float32)
    n_bits = H.shape[1]
    if 8 * n_bytes < n_bits:
        raise ValueError(f"{n_bits} bits do not fit in {n_bytes} bytes.")
    padded = np.zeros((H.shape[0], 8 * n_bytes), dtype=np.float32)
    padded[:, :n_bits] = np.clip(np.nan_to_num(H, nan=0.0), -_MAX_WEIGHT, _MAX_WEIGHT)
    weight = np.abs(padded).reshape(H.shape[0], n_bytes, 8)
    positive = (padded > 0).reshape(weight.shape)
    # each term >= 0, exactly 0 for the query's own byte
    tables = np.where(positive, 0.0, weight) @ _BYTE_BITS.T
    tables += np.where(positive, weight, 0.0) @ (1.0 - _BYTE_BITS).T
    return np.ascontiguousarray(tables, dtype=np.float32)


@njit(parallel=True, cache=True, nogil=True)
def _weighted_knn_kernel(tables, codes, out_dist, out_idx):
    # the k = out_dist.shape[1] codes of smallest sum_p tables[q, p, codes[j, p]] for each
    # query q, ascending by (distance, j): a tile of sums at a time into the bounded heap
    # of the Hamming scan (rows in index order, so ties go to the smaller index), no
    # (n_queries, n) score matrix. Rows past the last code stay (inf, -1).
    out_dist[:] = np.inf
    out_idx[:] = -1
    k = out_dist.shape[1]
    n_bytes = codes.shape[1]
    for q in prange(tables.shape[0]):
        table = tables[q]
        dist = out_dist[q]
        idx = out_idx[q]
        buffer = np.empty(_TILE, dtype=np.float32)
        for start in range(0, codes.shape[0], _TILE):
            tile = codes[start : start + _TILE]
            for j in range(tile.shape[0]):
                s = np.float32(0.0)
                for p in range(n_bytes):
                    s += table[p, tile[j, p]]
                buffer[j] = s
            _admit_tile(buffer, tile.shape[0], start, dist, idx, k)
        _sort_pairs(dist, idx)


def weighted_hamming_knn(tables, codes, k):
    """Exact k nearest packed codes by weighted Hamming distance.

    Parameters
    ----------
    tables : ndarray of shape (n_queries, n_bytes, 256), float32
        From :func:`weighted_hamming_tables`.
    codes : ndarray of shape (n_codes, n_bytes), uint8
        Packed codes (``np.packbits`` rows).
    k : int
        Neighbours per query, >= 1; rows past the last code are ``(inf, -1)``.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), float32
        Ascending.
    indices : ndarray of shape (n_queries, k), int64
        Rows of ``codes``; ties in distance are ordered by row.
    """
    tables = np.ascontiguousarray(tables, dtype=np.float32)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if tables.ndim != 3 or tables.shape[2] != 256 or codes.ndim != 2:
        raise ValueError("tables must be (n_queries, n_bytes, 256) and codes 2-D.")
    if tables.shape[1] != codes.shape[1]:
        raise ValueError(
            f"tables are for {tables.shape[1]}-byte codes, the codes have {codes.shape[1]}."
        )
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    out_dist = np.empty((tables.shape[0], k), dtype=np.float32)
    out_idx = np.empty((tables.shape[0], k), dtype=np.int64)
    if tables.shape[0]:
        _weighted_knn_kernel(tables, codes, out_dist, out_idx)
    return out_dist, out_idx
