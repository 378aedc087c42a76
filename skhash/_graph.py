"""Approximate Hamming search over a k-nearest-neighbour graph of the codes.

The k-NN graph of the codes (exact up to 200,000 codes, PyNNDescent's above:
:mod:`skhash._knn_graph`) becomes the search graph (:func:`build_search_graph`);
the search is ours.
pynndescent 0.7 seeds each query from one leaf of one random-projection tree,
and on clustered codes the k-NN graph falls apart into one component per
cluster, which a graph walk cannot leave: recall then depends on the seed
landing in the right cluster (0.61 distance-recall@10 with its defaults on
200,000 clustered 64-bit codes, ``docs/benchmarks.md``). Here every query
starts from the nearest of about ``4 * sqrt(n)`` entry codes from which
every code can be reached (one in every connected component, and one in
every group of codes the degree-capped graph links to from nowhere), then
walks the graph best-first (the layer-0 search of HNSW) keeping the ``ef``
best codes seen. For large collections the entry codes are replaced by an
upper layer (HNSW's next level, one step up): a k-NN graph over a sample of
the codes that holds one of every component, walked first from its own entry
codes; its ``ef`` best codes seed the walk of the full graph.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from numba import njit, prange
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ._hamming import _distance, _sift_down, _sort_pairs

__all__ = ["build_search_graph", "choose_entry_points", "graph_knn"]

_INT32_MAX = np.int32(2**31 - 1)


def build_search_graph(neighbor_indices, neighbor_distances, max_degree):
    """Symmetrised, degree-capped adjacency of a k-nearest-neighbour graph.

    Each code links to its ``k`` nearest codes and to the codes that have it
    among theirs (reverse edges let a walk reach codes that are nobody's near
    neighbour in one direction); each list keeps its ``max_degree`` nearest.

    Parameters
    ----------
    neighbor_indices : ndarray of shape (n_samples, k), int
        Row ``i``: the graph neighbours of code ``i``; negative entries are
        missing neighbours.
    neighbor_distances : ndarray of shape (n_samples, k)
        Their distances.
    max_degree : int
        Largest number of neighbours kept per code.

    Returns
    -------
    indptr : ndarray of shape (n_samples + 1,), int64
    indices : ndarray of shape (indptr[-1],), int32
        CSR adjacency: code ``i`` links to ``indices[indptr[i]:indptr[i + 1]]``,
        nearest first.
    """
    n, k = neighbor_indices.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = neighbor_indices.astype(np.int64).ravel()
    dist = np.asarray(neighbor_distances, dtype=np.float64).ravel()
    valid = (dst >= 0) & (dst != src)
    src, dst, dist = src[valid], dst[valid], dist[valid]
    src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    dist = np.concatenate([dist, dist])
    # By code, then distance, then neighbour: a duplicate edge (in both
    # directions) lands next to its twin.
    order = np.lexsort((dst, dist, src))
    src, dst = src[order], dst[order]
    keep = np.ones(len(src), dtype=bool)
    keep[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst = src[keep], dst[keep]
    counts = np.bincount(src, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(src)) - starts[src]
    keep = rank < max_degree
    src, dst = src[keep], dst[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst.astype(np.int32)


def choose_entry_points(indptr, indices, n_entry_points, random_state):
    """Random codes to start searches from, from which a walk reaches every code.

    Parameters
    ----------
    indptr, indices : ndarray
        CSR adjacency from :func:`build_search_graph`.
    n_entry_points : int
        Target number of entry codes, shared among components by size. Every
        component gets one, and so does every group of codes that no other
        code links to (the degree cap of :func:`build_search_graph` drops
        reverse edges): there may be more.
    random_state : numpy.random.RandomState

    Returns
    -------
    entries : ndarray of int64
        Sorted, distinct rows.
    """
    n = len(indptr) - 1
    graph = csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(n, n))
    n_components, component = connected_components(graph, directed=False)
    sizes = np.bincount(component, minlength=n_components)
    # Every component gets an entry; a walk could never reach it otherwise.
    quota = np.maximum(1, np.rint(sizes * (n_entry_points / n)).astype(np.int64))
    quota = np.minimum(quota, sizes)
    order = np.argsort(component, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    entries = [
        random_state.choice(order[start : start + size], size=count, replace=False)
        for start, size, count in zip(starts, sizes, quota, strict=True)
    ]
    entries = np.concatenate(entries)
    # A walk follows edges one way, and the degree cap drops reverse edges: a code
    # whose neighbours all keep closer ones is linked from no code (copies of a code
    # link to its lowest-index copies only). Every group of codes that no other code
    # links to (a source among the strongly connected components) needs an entry too.
    n_strong, strong = connected_components(graph, directed=True, connection="strong")
    target = strong[indices]
    reached = np.zeros(n_strong, dtype=bool)
    reached[target[np.repeat(strong, np.diff(indptr)) != target]] = True
    reached[strong[entries]] = True
    missing = np.flatnonzero(~reached)
    if missing.size:
        sizes = np.bincount(strong, minlength=n_strong)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        order = np.argsort(strong, kind="stable")
        picks = order[starts[missing] + random_state.randint(0, sizes[missing])]
        entries = np.concatenate([entries, picks])
    return np.sort(entries).astype(np.int64)


@njit(inline="always")
def _keep_if_closer(dist, idx, d, j, ef):
    # Replace the worst kept code (root of the max-heap on (distance, index))
    # when code j is closer, or as close with a smaller index; True if kept.
    if d < dist[0] or (d == dist[0] and j < idx[0]):
        dist[0] = d
        idx[0] = j
        _sift_down(dist, idx, ef)
        return True
    return False


@njit(inline="always")
def _sift_up(cand_dist, cand_idx, i):
    # Restore the min-heap on distance above entry i.
    while i > 0:
        parent = (i - 1) // 2
        if cand_dist[parent] <= cand_dist[i]:
            break
        cand_dist[i], cand_dist[parent] = cand_dist[parent], cand_dist[i]
        cand_idx[i], cand_idx[parent] = cand_idx[parent], cand_idx[i]
        i = parent


@njit(inline="always")
def _push_candidate(cand_dist, cand_idx, n_cand, d, j, worst):
    # Min-heap on distance, in fixed arrays (numba's parallel loops cannot
    # swap an array for a larger one). When full, drop the candidates farther
    # than the worst kept code (``worst``): the walk stops before reaching
    # them. Returns the new number of candidates; if every slot still holds a
    # useful candidate (long ties), the new one is dropped.
    if n_cand == cand_dist.shape[0]:
        m = 0
        for r in range(n_cand):
            if cand_dist[r] <= worst:
                cand_dist[m] = cand_dist[r]
                cand_idx[m] = cand_idx[r]
                _sift_up(cand_dist, cand_idx, m)
                m += 1
        n_cand = m
        if n_cand == cand_dist.shape[0]:
            return n_cand
    cand_dist[n_cand] = d
    cand_idx[n_cand] = j
    _sift_up(cand_dist, cand_idx, n_cand)
    return n_cand + 1


@njit(inline="always")
def _pop_candidate(cand_dist, cand_idx, n_cand):
    # Remove the root of the min-heap of n_cand items; n_cand - 1 remain.
    last = n_cand - 1
    cand_dist[0] = cand_dist[last]
    cand_idx[0] = cand_idx[last]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= last:
            break
        child = left
        if left + 1 < last and cand_dist[left + 1] < cand_dist[left]:
            child = left + 1
        if cand_dist[child] < cand_dist[i]:
            cand_dist[i], cand_dist[child] = cand_dist[child], cand_dist[i]
            cand_idx[i], cand_idx[child] = cand_idx[child], cand_idx[i]
            i = child
        else:
            break


@njit(inline="always")
def _mark_visited(visited, touched, n_touched, j):
    # Set code j's bit; False if it was set already. The touched codes are
    # listed (up to the list's size) so that only their words are cleared.
    word = j >> 6
    bit = np.uint64(1) << np.uint64(j & 63)
    if visited[word] & bit:
        return False
    visited[word] |= bit
    if n_touched < touched.shape[0]:
        touched[n_touched] = j
    return True


# Unvisited neighbours whose distances are computed together, before the heap
# updates: their memory loads are independent and overlap.
_BATCH = 64


@njit(inline="always")
def _visit_batch(query, database, n_words, batch, batch_dist, m, dist, idx, ef, heap, push):
    # Keep the batch's codes that beat the worst kept one; push them as candidates
    # (heap: the candidates' distances, rows and count). Returns the new count.
    cand_dist, cand_idx, n_cand = heap
    for t in range(m):
        batch_dist[t] = _distance(query, database, batch[t], n_words)
    for t in range(m):
        d = batch_dist[t]
        j = batch[t]
        if _keep_if_closer(dist, idx, d, j, ef) and push:
            n_cand = _push_candidate(cand_dist, cand_idx, n_cand, d, j, dist[0])
    return n_cand


@njit(parallel=True, cache=True, nogil=True)
def _walk_kernel(queries, database, indptr, indices, seeds, ef, n_chunks, res_dist, res_idx):
    # Each walk keeps ef codes in its chunk's buffers; the first res_dist.shape[1] of
    # them are copied out (not an (n_queries, ef) array: ef may be near n).
    n_queries = queries.shape[0]
    k = res_dist.shape[1]
    n_words = database.shape[1]
    chunk = (n_queries + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        # Visited codes as a bit set: 1/32 of an int32 stamp array, so it stays
        # in cache at 10^6 codes; cleared after each query word by word.
        visited = np.zeros((database.shape[0] + 63) // 64, dtype=np.uint64)
        touched = np.empty(1 << 14, dtype=np.int64)
        cand_dist = np.empty(4 * ef, dtype=np.int32)
        cand_idx = np.empty(4 * ef, dtype=np.int64)
        width = max(_BATCH, seeds.shape[1])
        batch = np.empty(width, dtype=np.int64)
        batch_dist = np.empty(width, dtype=np.int32)
        dist = np.empty(ef, dtype=np.int32)
        idx = np.empty(ef, dtype=np.int64)
        for q in range(c * chunk, min(n_queries, (c + 1) * chunk)):
            query = queries[q]
            # The ef best codes kept, as a max-heap on (distance, index).
            dist[:] = _INT32_MAX
            idx[:] = -1
            row = seeds[q] if seeds.shape[0] == n_queries else seeds[0]
            n_touched = 0
            m = 0
            for e in range(row.shape[0]):
                j = row[e]
                if j >= 0 and _mark_visited(visited, touched, n_touched, j):
                    n_touched += 1
                    batch[m] = j
                    m += 1
            seed_heap = (cand_dist, cand_idx, 0)
            _visit_batch(
                query, database, n_words, batch, batch_dist, m, dist, idx, ef, seed_heap, False
            )
            # the seeds kept become the first candidates
            n_cand = 0
            for r in range(ef):
                if idx[r] >= 0:
                    n_cand = _push_candidate(cand_dist, cand_idx, n_cand, dist[r], idx[r], dist[0])
            while n_cand > 0:
                d_c = cand_dist[0]
                i_c = cand_idx[0]
                _pop_candidate(cand_dist, cand_idx, n_cand)
                n_cand -= 1
                # Expand ties with the worst kept code too: Hamming distances
                # tie often and plateaus hide closer codes.
                if d_c > dist[0]:
                    break
                p = indptr[i_c]
                end = indptr[i_c + 1]
                while p < end:
                    m = 0
                    while p < end and m < _BATCH:
                        j = np.int64(indices[p])
                        p += 1
                        if _mark_visited(visited, touched, n_touched, j):
                            n_touched += 1
                            batch[m] = j
                            m += 1
                    heap = (cand_dist, cand_idx, n_cand)
                    n_cand = _visit_batch(
                        query, database, n_words, batch, batch_dist, m, dist, idx, ef, heap, True
                    )
            _sort_pairs(dist, idx)
            res_dist[q] = dist[:k]
            res_idx[q] = idx[:k]
            if n_touched <= touched.shape[0]:
                for t in range(n_touched):
                    visited[touched[t] >> 6] = np.uint64(0)
            else:
                visited[:] = 0


def _walk(queries, database, indptr, indices, seeds, ef, k, n_threads):
    """The ``k`` nearest of the ``ef`` codes each walk keeps (ascending), from ``seeds`` rows."""
    n_queries = queries.shape[0]
    res_dist = np.empty((n_queries, k), dtype=np.int32)
    res_idx = np.empty((n_queries, k), dtype=np.int64)
    if n_queries:
        # A few chunks per thread even out queries of unequal cost.
        n_chunks = min(n_queries, 8 * n_threads)
        seeds = np.ascontiguousarray(seeds, dtype=np.int64)
        _walk_kernel(queries, database, indptr, indices, seeds, ef, n_chunks, res_dist, res_idx)
    return res_dist, res_idx


def graph_knn(queries, database, indptr, indices, entries, k, ef, n_threads=1, upper=None):
    """Approximate k nearest neighbours by a best-first walk of the graph.

    Parameters
    ----------
    queries, database : ndarray of dtype uint64
        Codes as 64-bit words (see :func:`~skhash._hamming.as_words`).
    indptr, indices : ndarray
        CSR adjacency from :func:`build_search_graph`.
    entries : ndarray of int64
        Codes every walk starts from (:func:`choose_entry_points`): rows of
        ``database``, or of the upper layer when ``upper`` is given.
    k : int
        Number of neighbours, at most ``len(database)``.
    ef : int
        Codes kept during the walk (raised to ``k``, capped at the number of
        codes walked); larger is slower and more accurate.
    n_threads : int, default=1
        Threads the queries are spread over (the caller sets numba's count).
    upper : tuple or None, default=None
        ``(rows, words, indptr, indices)`` of an upper layer
        (the rows of ``database`` it holds, their words and its CSR adjacency,
        as ``HammingNeighbors`` builds it): the walk of the upper layer from
        ``entries`` gives each query its ``ef`` seeds in the full graph, as
        HNSW's upper levels do.

    Returns
    -------
    distances : ndarray of shape (n_queries, k), int32
        Ascending; ties ordered by index.
    indices : ndarray of shape (n_queries, k), int64
        Database rows; -1 where the walk found fewer than ``k`` codes.
    """
    k = int(k)
    ef = max(int(ef), k)
    seeds = np.asarray(entries, dtype=np.int64)[None, :]
    if upper is not None:
        rows, words, upper_indptr, upper_indices = upper
        # A walk never keeps more codes than there are: a larger ef only costs memory.
        upper_ef = max(1, min(ef, words.shape[0]))
        _, local = _walk(
            queries, words, upper_indptr, upper_indices, seeds, upper_ef, upper_ef, n_threads
        )
        seeds = np.where(local >= 0, rows[np.maximum(local, 0)], -1)
    ef = max(min(ef, database.shape[0]), k)
    return _walk(queries, database, indptr, indices, seeds, ef, k, n_threads)
