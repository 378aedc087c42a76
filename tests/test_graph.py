"""Tests of the graph search kernels (skhash._graph)."""

import numpy as np

from skhash._graph import build_search_graph, choose_entry_points, graph_knn
from skhash._hamming import as_words, hamming_knn, pack_bits
from tests.neighbors_helpers import clustered_data


def exact_search_graph(words, k, n_entry_points):
    """The exact k-NN search graph of ``words`` (degree cap 2k) and its entry codes."""
    graph_dist, graph_ind = hamming_knn(words, words, k, exclude_self=True)
    indptr, indices = build_search_graph(graph_ind, graph_dist, max_degree=2 * k)
    entries = choose_entry_points(indptr, indices, n_entry_points, np.random.RandomState(0))
    return indptr, indices, entries


def test_graph_search_with_full_beam_is_exact():
    """With ef = n every code reachable from an entry is kept: the walk is exact."""
    database, queries = clustered_data()
    database, queries = database[:300], queries[:20]
    words, query_words = as_words(pack_bits(database)), as_words(pack_bits(queries))
    exact_dist, exact_ind = hamming_knn(query_words, words, 10)
    # a 3-NN graph of 40 clusters: many components, each needs its entry
    graph_dist, graph_ind = hamming_knn(words, words, 3, exclude_self=True)
    indptr, indices = build_search_graph(graph_ind, graph_dist, max_degree=6)
    entries = choose_entry_points(indptr, indices, 4, np.random.RandomState(0))
    distances, found = graph_knn(query_words, words, indptr, indices, entries, 10, ef=300)
    np.testing.assert_array_equal(distances, exact_dist)
    np.testing.assert_array_equal(found, exact_ind)


def test_build_search_graph_adds_reverse_edges_and_caps_degree():
    # 0 -> 1, 1 -> 0 (a duplicate once reversed), 2 -> 0, 3 -> 0
    neighbor_indices = np.array([[1], [0], [0], [0]])
    neighbor_distances = np.array([[1.0], [1.0], [2.0], [3.0]])
    indptr, indices = build_search_graph(neighbor_indices, neighbor_distances, max_degree=2)
    lists = [indices[indptr[i] : indptr[i + 1]].tolist() for i in range(4)]
    assert lists == [[1, 2], [0], [0], [0]]  # 0 keeps its two nearest of 1, 2, 3


def test_full_candidate_heap_drops_only_candidates_past_the_worst_kept():
    from skhash._graph import _push_candidate

    cand_dist = np.array([1, 5, 6, 2], dtype=np.int32)  # a full min-heap of 4
    cand_idx = np.array([10, 50, 60, 20], dtype=np.int64)
    # full: 5 and 6 lie past the worst kept distance 3 and can never be expanded
    n = _push_candidate(cand_dist, cand_idx, 4, 0, 7, 3)
    assert n == 3
    assert sorted(zip(cand_dist[:n].tolist(), cand_idx[:n].tolist(), strict=True)) == [
        (0, 7), (1, 10), (2, 20)
    ]  # fmt: skip
    assert cand_dist[0] == 0  # the nearest on top
    # every slot still useful (ties with the worst kept): the new candidate is dropped
    cand_dist = np.array([3, 3, 3, 3], dtype=np.int32)
    assert _push_candidate(cand_dist, cand_idx, 4, 2, 8, 3) == 4
    assert 8 not in cand_idx


def test_walk_on_tied_codes_with_a_tiny_beam_returns_true_distances():
    # 8-bit codes: thousands of ties, the candidate heap (4 * ef slots) fills and compacts
    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (3000, 8), dtype=np.uint8)
    queries = rng.integers(0, 2, (300, 8), dtype=np.uint8)
    words, query_words = as_words(pack_bits(database)), as_words(pack_bits(queries))
    graph = exact_search_graph(words, 24, 4)
    distances, found = graph_knn(query_words, words, *graph, 2, ef=2, n_threads=2)
    recomputed = np.bitwise_count(words[found] ^ query_words[:, None, :]).sum(-1)
    np.testing.assert_array_equal(distances, recomputed)
    assert (np.diff(distances, axis=1) >= 0).all()


def test_visited_set_is_cleared_between_queries_even_after_long_walks():
    """Queries answered in one batch equal the same queries answered one by one,
    including walks that visit more codes than the list of touched words holds."""
    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (40_000, 64), dtype=np.uint8)
    queries = rng.integers(0, 2, (3, 64), dtype=np.uint8)
    words, query_words = as_words(pack_bits(database)), as_words(pack_bits(queries))
    indptr, indices, entries = exact_search_graph(words, 8, 100)
    batch = np.concatenate([query_words, query_words[::-1]])  # 6 queries, one chunk
    for ef in (20, 20_000):  # a short walk, and one past the 16,384 touched codes
        together = graph_knn(batch, words, indptr, indices, entries, 10, ef)
        for q in range(len(batch)):
            alone = graph_knn(batch[q : q + 1], words, indptr, indices, entries, 10, ef)
            np.testing.assert_array_equal(together[1][q], alone[1][0])
    # with ef near n the walk is exact
    np.testing.assert_array_equal(together[0][:3], hamming_knn(query_words, words, 10)[0])


def test_upper_layer_seeds_the_walk():
    """A walk seeded by an upper layer (every 10th code) finds what a full walk finds."""
    database, queries = clustered_data()
    words, query_words = as_words(pack_bits(database)), as_words(pack_bits(queries))
    exact_dist, _ = hamming_knn(query_words, words, 10)
    indptr, indices, rows = exact_search_graph(words, 12, 400)
    upper_words = as_words(pack_bits(database[rows]))
    upper_indptr, upper_indices, entries = exact_search_graph(upper_words, 12, 20)
    upper = (rows, upper_words, upper_indptr, upper_indices)
    distances, found = graph_knn(query_words, words, indptr, indices, entries, 10, 32, upper=upper)
    assert (found >= 0).all()
    recomputed = np.bitwise_count(words[found] ^ query_words[:, None, :]).sum(-1)
    np.testing.assert_array_equal(distances, recomputed)
    np.testing.assert_array_equal(distances, exact_dist)


def reachable_from(indptr, indices, entries):
    """Codes a walk following the graph's edges can reach from ``entries``."""
    seen = np.zeros(len(indptr) - 1, dtype=bool)
    stack = list(entries)
    seen[stack] = True
    while stack:
        i = stack.pop()
        for j in indices[indptr[i] : indptr[i + 1]]:
            if not seen[j]:
                seen[j] = True
                stack.append(j)
    return seen


def test_codes_linked_from_nowhere_are_entries():
    """The degree cap drops reverse edges: a code whose neighbours all keep closer ones
    is linked from no code, and only an entry lets a walk reach it (ef = n is exact)."""
    # 40 copies of one code (a hub) and 10 outliers, 8 bits from it, 16 from each other
    codes = np.zeros((50, 128), dtype=np.uint8)
    for i in range(10):
        codes[40 + i, 8 * i : 8 * i + 8] = 1
    words = as_words(pack_bits(codes))
    graph_dist, graph_ind = hamming_knn(words, words, 2, exclude_self=True)
    indptr, indices = build_search_graph(graph_ind, graph_dist, max_degree=4)
    assert np.bincount(indices, minlength=50)[40:].max() == 0  # the outliers lost their links
    entries = choose_entry_points(indptr, indices, 4, np.random.RandomState(0))
    assert reachable_from(indptr, indices, entries).all()
    distances, found = graph_knn(words, words, indptr, indices, entries, 1, ef=50)
    np.testing.assert_array_equal(distances[:, 0], 0)
    np.testing.assert_array_equal(found[40:, 0], np.arange(40, 50))


def test_every_code_is_reachable_from_the_entries_on_near_duplicate_codes():
    # near-copies of a few centres: half the codes are exact copies, which link to the
    # lowest-index copies only, and the degree cap leaves many codes linked from nowhere
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (10, 64), dtype=np.uint8)
    codes = np.repeat(centres, 100, axis=0) ^ (rng.random((1000, 64)) < 0.01)
    words = as_words(pack_bits(codes))
    graph_dist, graph_ind = hamming_knn(words, words, 8, exclude_self=True)
    indptr, indices = build_search_graph(graph_ind, graph_dist, max_degree=8)
    for seed in range(3):
        entries = choose_entry_points(indptr, indices, 20, np.random.RandomState(seed))
        assert reachable_from(indptr, indices, entries).all()
        assert (np.diff(entries) > 0).all()  # sorted, distinct
    distances, _ = graph_knn(words, words, indptr, indices, entries, 5, ef=1000)
    np.testing.assert_array_equal(distances, hamming_knn(words, words, 5)[0])


def test_memory_of_a_walk_does_not_grow_with_ef_times_the_number_of_queries():
    """Only k neighbours per query are returned: a large beam (even past the number of
    codes, as a user asking for an exact search may set it) stays per thread."""
    import tracemalloc

    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (300, 64), dtype=np.uint8)
    queries = rng.integers(0, 2, (100, 64), dtype=np.uint8)
    words, query_words = as_words(pack_bits(database)), as_words(pack_bits(queries))
    graph = exact_search_graph(words, 8, 10)
    expected = graph_knn(query_words, words, *graph, 5, ef=300)
    np.testing.assert_array_equal(expected[0], hamming_knn(query_words, words, 5)[0])
    tracemalloc.start()
    try:
        found = graph_knn(query_words, words, *graph, 5, ef=50_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[1], expected[1])
    assert peak < 1_000_000  # 100 x 50,000 kept codes would be 60 MB
    # a beam past the number of codes is that number: no terabyte buffers per thread
    found = graph_knn(query_words, words, *graph, 5, ef=10**12, n_threads=2)
    np.testing.assert_array_equal(found[1], expected[1])
