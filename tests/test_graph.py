"""Tests of the graph search kernels (skhash._graph)."""

import numpy as np

from skhash._graph import build_search_graph, choose_entry_points, graph_knn
from skhash._hamming import as_words, hamming_knn, pack_bits
from tests.neighbors_helpers import clustered_data


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
