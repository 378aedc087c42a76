"""Tests of the exact popcount kernels (skhash._hamming)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from skhash._hamming import (
    as_words,
    hamming_knn,
    hamming_radius,
    pack_bits,
    pairwise_hamming,
    weighted_hamming_knn,
    weighted_hamming_tables,
)
from tests.neighbors_helpers import reference_knn


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_bits=st.integers(1, 140),
    n_database=st.integers(1, 40),
    n_queries=st.integers(1, 8),
)
def test_exact_kernel_property(data, n_bits, n_database, n_queries):
    # Few distinct codes make many ties, exercising the index tie-break.
    bits = st.integers(0, 1)
    database = data.draw(arrays(np.uint8, (n_database, n_bits), elements=bits))
    queries = data.draw(arrays(np.uint8, (n_queries, n_bits), elements=bits))
    k = data.draw(st.integers(1, n_database))
    dist, ind = hamming_knn(as_words(pack_bits(queries)), as_words(pack_bits(database)), k)
    ref_dist, ref_ind = reference_knn(queries, database, k)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(ind, ref_ind)

    radius = data.draw(st.integers(0, n_bits))
    r_dist, r_ind, offsets = hamming_radius(
        as_words(pack_bits(queries)), as_words(pack_bits(database)), radius
    )
    full_dist, full_ind = reference_knn(queries, database, n_database)
    for i in range(n_queries):
        keep = full_dist[i] <= radius
        np.testing.assert_array_equal(r_dist[offsets[i] : offsets[i + 1]], full_dist[i][keep])
        np.testing.assert_array_equal(r_ind[offsets[i] : offsets[i + 1]], full_ind[i][keep])

    pairwise = pairwise_hamming(as_words(pack_bits(queries)), as_words(pack_bits(database)))
    np.testing.assert_array_equal(pairwise, np.rint(cdist(queries, database, "hamming") * n_bits))


def test_as_words_pads_with_zeros():
    packed = np.arange(1, 21, dtype=np.uint8).reshape(2, 10)
    words = as_words(packed)
    assert words.dtype == np.uint64 and words.shape == (2, 2)
    assert words.flags.c_contiguous
    np.testing.assert_array_equal(words.view(np.uint8).reshape(2, 16)[:, 10:], 0)
    # A multiple of 8 bytes is viewed, not copied.
    aligned = np.zeros((3, 16), dtype=np.uint8)
    assert np.shares_memory(as_words(aligned), aligned)


def test_long_candidate_lists_are_sorted_by_distance_then_index():
    # k above the insertion-sort cut-off: the heap sort path, on heavily tied 8-bit codes
    rng = np.random.default_rng(3)
    database = np.packbits(rng.integers(0, 2, (3000, 8), dtype=np.uint8), axis=1)
    queries = np.packbits(rng.integers(0, 2, (5, 8), dtype=np.uint8), axis=1)
    for k in (33, 257, 1000):
        distances, indices = hamming_knn(as_words(queries), as_words(database), k)
        full = pairwise_hamming(as_words(queries), as_words(database))
        for q in range(len(queries)):
            want = np.lexsort((np.arange(len(database)), full[q]))[:k]
            np.testing.assert_array_equal(indices[q], want)
            np.testing.assert_array_equal(distances[q], full[q, want])


def test_weighted_hamming_knn_is_the_brute_force_top_k_ties_by_row():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (300, 3)).astype(np.uint8)  # few distinct codes: many ties
    tables = rng.integers(0, 5, (7, 3, 256)).astype(np.float32)  # integer sums: exact ties
    full = np.stack([t[np.arange(3), codes].sum(axis=1) for t in tables])
    for k in (1, 4, 37, 150, 300, 350):
        dist, rows = weighted_hamming_knn(tables, codes, k)
        m = min(k, 300)
        want = np.lexsort((np.broadcast_to(np.arange(300), full.shape), full), axis=1)[:, :m]
        np.testing.assert_array_equal(rows[:, :m], want)
        np.testing.assert_array_equal(dist[:, :m], np.take_along_axis(full, want, 1))
        assert (rows[:, m:] == -1).all() and np.isinf(dist[:, m:]).all()


def test_weighted_hamming_tables_score_the_weighted_disagreement():
    rng = np.random.default_rng(1)
    H = rng.normal(size=(6, 13)).astype(np.float32)
    H[0, 0] = np.nan  # weighs nothing
    codes = rng.integers(0, 256, (50, 2), dtype=np.uint8)  # 16 bits, the last 3 padding
    tables = weighted_hamming_tables(H, 2)
    bits = np.unpackbits(codes, axis=1)[:, :13].astype(bool)
    Hw = np.nan_to_num(H)
    want = (np.abs(Hw)[:, None, :] * ((Hw[:, None, :] > 0) != bits[None])).sum(axis=2)
    got = np.stack([t[np.arange(2), codes].sum(axis=1) for t in tables])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    own = np.packbits(Hw > 0, axis=1)  # a query's own code is at distance 0
    assert np.allclose([t[np.arange(2), c].sum() for t, c in zip(tables, own, strict=True)], 0)
    H[1, 2], H[2, 3] = np.inf, -np.inf  # capped at 1e30: every sum stays finite
    assert np.isfinite(weighted_hamming_tables(H, 2)).all()
    with pytest.raises(ValueError, match="do not fit"):
        weighted_hamming_tables(H, 1)
    with pytest.raises(ValueError, match="2-byte codes"):
        weighted_hamming_knn(tables, codes[:, :1], 3)
