"""The popcount kernels against np.unpackbits at every code width and input layout."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skhash._hamming import as_words, hamming_knn, hamming_radius, pack_bits, pairwise_hamming

# one word (1-64 bits), the four-word scan (193-256), the general scan, tile edges
WIDTHS = [1, 7, 8, 9, 63, 64, 65, 127, 129, 193, 200, 255, 256, 257, 511, 1024, 1031]


def unpackbits_distances(queries, database):
    """Numbers of differing bits of packed rows, by np.unpackbits."""
    return np.unpackbits(queries[:, None, :] ^ database[None, :, :], axis=2).sum(axis=2)


def by_distance_then_index(full):
    return np.argsort(full, axis=1, kind="stable")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    n_bits=st.sampled_from(WIDTHS),
    n_database=st.sampled_from([1, 2, 5, 40, 513, 1100]),
    n_distinct=st.sampled_from([1, 3, 1000]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_knn_and_radius_match_unpackbits(n_bits, n_database, n_distinct, seed, data):
    # codes drawn from n_distinct ones: all equal, heavy ties, or mostly distinct
    rng = np.random.default_rng(seed)
    distinct = rng.integers(0, 2, (n_distinct, n_bits), dtype=np.uint8)
    database = pack_bits(distinct[rng.integers(0, n_distinct, n_database)])
    queries = np.concatenate([database[:3], pack_bits(distinct[:2])])
    words, query_words = as_words(database), as_words(queries)
    full = unpackbits_distances(queries, database)
    order = by_distance_then_index(full)
    k = data.draw(st.sampled_from(sorted({1, min(n_database, 33), n_database})))
    dist, ind = hamming_knn(query_words, words, k)
    np.testing.assert_array_equal(ind, order[:, :k])
    np.testing.assert_array_equal(dist, np.take_along_axis(full, order[:, :k], axis=1))
    np.testing.assert_array_equal(pairwise_hamming(query_words, words), full)

    # the database as its own queries, each row left out of its own list
    self_full = unpackbits_distances(database, database)
    np.fill_diagonal(self_full, n_bits + 1)
    self_order = by_distance_then_index(self_full)
    if n_database > 1:
        k = data.draw(st.sampled_from(sorted({1, n_database - 1})))
        dist, ind = hamming_knn(words, words, k, exclude_self=True)
        np.testing.assert_array_equal(ind, self_order[:, :k])
        np.testing.assert_array_equal(dist, np.take_along_axis(self_full, ind, axis=1))

    # the closed ball: radius at a distance that occurs, one below it, and 0
    radius = int(data.draw(st.sampled_from(list(full.ravel()[:8]))))
    for r in {0, max(radius - 1, 0), radius}:
        for exclude_self, q, f, o in [(False, query_words, full, order)] + (
            [(True, words, self_full, self_order)] if n_database > 1 else []
        ):
            r_dist, r_ind, offsets = hamming_radius(q, words, r, exclude_self=exclude_self)
            for i in range(len(q)):
                keep = np.take_along_axis(f[i], o[i], axis=0) <= r
                np.testing.assert_array_equal(r_ind[offsets[i] : offsets[i + 1]], o[i][keep])
                np.testing.assert_array_equal(
                    r_dist[offsets[i] : offsets[i + 1]], f[i][o[i][keep]]
                )


def test_words_of_any_layout_give_the_same_neighbours():
    rng = np.random.default_rng(0)
    packed = pack_bits(rng.integers(0, 2, (60, 130), dtype=np.uint8))
    words = as_words(packed)
    expected = hamming_knn(words[::3], words, 7)
    # (read-only words work too, but compile a kernel of their own: 30 s)
    layouts = [
        (np.asfortranarray(words)[::3], np.asfortranarray(words)),  # column-major
        (words[::3], words.copy()),  # strided queries
        (as_words(np.asfortranarray(packed))[::3], as_words(packed[:, :])),
    ]
    for queries, database in layouts:
        for got, want in zip(hamming_knn(queries, database, 7), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    # packed rows that are a strided view of a wider buffer
    wide = np.zeros((60, 2 * packed.shape[1]), dtype=np.uint8)
    wide[:, ::2] = packed
    np.testing.assert_array_equal(as_words(wide[:, ::2]), words)
