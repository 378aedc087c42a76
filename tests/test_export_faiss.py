"""Export to faiss binary indexes: ids kept, Hamming distances equal to skhash's kernel."""

import sys

import faiss  # the faiss extra is part of the test extras: never skipped
import numpy as np
import pytest

from skhash._hamming import as_words, hamming_knn
from skhash.export import to_faiss


def _data(n, n_bits, seed=0):
    rng = np.random.default_rng(seed)
    codes = np.packbits(rng.integers(0, 2, (n, n_bits), dtype=np.uint8), axis=1)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    return codes, ids


def _true_distance(a, b):
    return int(np.unpackbits(a ^ b).sum())


def _assert_same_topk_tie_aware(dist, got, ref_dist, ref_ids, codes, ids, queries):
    """faiss orders equal distances arbitrarily: compare up to ties at the k-th distance.

    Distances must be equal; ids strictly closer than the k-th distance must be
    the same set; every returned id must be at the distance faiss reports.
    """
    np.testing.assert_array_equal(dist, ref_dist)
    by_id = dict(zip(ids.tolist(), codes, strict=True))
    for i in range(len(queries)):
        assert len(set(got[i].tolist())) == got.shape[1]
        kth = ref_dist[i, -1]
        assert set(got[i][dist[i] < kth]) == set(ref_ids[i][ref_dist[i] < kth])
        true = [_true_distance(by_id[j], queries[i]) for j in got[i]]
        np.testing.assert_array_equal(true, dist[i])


@pytest.mark.parametrize("n_bits", [20, 64, 100])
def test_flat_equals_exact_kernel(n_bits):
    codes, ids = _data(500, n_bits, seed=n_bits)
    index = to_faiss(codes, ids, n_bits)
    assert index.ntotal == 500 and index.d == 8 * codes.shape[1]
    queries = np.vstack([codes[:5], _data(5, n_bits, seed=1)[0]])
    dist, got = index.search(queries, 8)
    order = np.argsort(ids)
    ref_dist, rows = hamming_knn(as_words(queries), as_words(codes[order]), 8)
    _assert_same_topk_tie_aware(dist, got, ref_dist, ids[order][rows], codes, ids, queries)
    # a query finds its own code first, under its own id
    np.testing.assert_array_equal(dist[:5, 0], 0)


def test_ids_survive_reconstruct_and_remove():
    codes, ids = _data(50, 32, seed=2)
    index = to_faiss(codes, ids, 32)
    np.testing.assert_array_equal(index.reconstruct(int(ids[7])), codes[7])
    index.remove_ids(np.array([ids[0]], dtype=np.int64))
    _, got = index.search(codes[:1], 3)
    assert ids[0] not in got[0]


def test_bit_order_inside_a_byte_does_not_change_distances():
    # faiss' own packer (fvecs2bitvecs) is least significant bit first, np.packbits
    # most significant first; a per-byte bit order applied to codes and queries
    # alike leaves every Hamming distance unchanged
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, (200, 40), dtype=np.uint8)
    msb = np.packbits(bits, axis=1)
    lsb = np.packbits(bits, axis=1, bitorder="little")
    assert not np.array_equal(msb, lsb)
    signs = np.where(bits == 1, 1.0, -1.0).astype(np.float32)
    faiss_packed = np.empty_like(lsb)
    faiss.fvecs2bitvecs(faiss.swig_ptr(signs), faiss.swig_ptr(faiss_packed), 40, 200)
    np.testing.assert_array_equal(faiss_packed, lsb)
    ids = np.arange(200)
    d_msb, _ = to_faiss(msb, ids, 40).search(msb[:10], 200)
    d_lsb, _ = to_faiss(lsb, ids, 40).search(lsb[:10], 200)
    np.testing.assert_array_equal(d_msb, d_lsb)


def test_hnsw_keeps_ids_and_finds_neighbours():
    codes, ids = _data(400, 64, seed=4)
    index = to_faiss(codes, ids, 64, kind="hnsw", M=16, ef_search=64)
    assert faiss.downcast_IndexBinary(index.index).hnsw.efSearch == 64
    queries = codes[:20]
    dist, got = index.search(queries, 5)
    assert np.isin(got, ids).all()
    by_id = dict(zip(ids.tolist(), codes, strict=True))
    for i in range(20):
        true = [_true_distance(by_id[j], queries[i]) for j in got[i]]
        np.testing.assert_array_equal(true, dist[i])
    order = np.argsort(ids)
    ref_dist, _ = hamming_knn(as_words(queries), as_words(codes[order]), 5)
    assert np.all(dist >= ref_dist)
    # each query is in the index: its own id comes back at distance 0
    np.testing.assert_array_equal(got[:, 0], ids[:20])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((5, 3), np.uint8), np.arange(5), 16), {}, "bytes per row"),
        ((np.zeros((5, 2), np.int32), np.arange(5), 16), {}, "packed uint8"),
        ((np.zeros((5, 2), np.uint8), np.arange(4), 16), {}, "one id per code"),
        ((np.zeros((5, 2), np.uint8), [0, 1, 1, 2, 3], 16), {}, "unique"),
        ((np.zeros((5, 2), np.uint8), np.arange(5.0), 16), {}, "integers"),
        ((np.zeros((5, 2), np.uint8), np.array([2**63] * 5, np.uint64), 16), {}, "int64"),
        ((np.full((5, 2), 1, np.uint8), np.arange(5), 12), {}, "beyond n_bits"),
        ((np.zeros((5, 2), np.uint8), np.arange(5), 16), {"kind": "ivf"}, "'kind'"),
        ((np.zeros((5, 2), np.uint8), np.arange(5), 16), {"M": 1}, "'M'"),
        ((np.zeros((5, 2), np.uint8), np.arange(5), 16), {"ef_search": 0}, "'ef_search'"),
        ((np.zeros((5, 2), np.uint8), np.arange(5), True), {}, "n_bits"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_faiss(*args, **kwargs)


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"skhash\[faiss\]"):
        to_faiss(np.zeros((2, 1), np.uint8), [0, 1], 8)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_empty_codes_give_an_empty_index(kind):
    # an index whose items were all removed exports as an empty faiss index
    index = to_faiss(np.zeros((0, 2), np.uint8), np.arange(0), 16, kind=kind)
    assert index.ntotal == 0 and index.d == 16
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (5, 16), dtype=np.uint8), axis=1)
    index.add_with_ids(codes, np.arange(5, dtype=np.int64) + 100)
    _, ids = index.search(codes[:1], 1)
    assert ids[0, 0] == 100


def test_ids_are_checked_as_the_index_checks_them():
    # the same rules as HashIndex: Python ints held as objects are ids, values beyond
    # int64 (bigint, idx_t) and repeats are named
    codes, _ = _data(3, 16)
    index = to_faiss(codes, np.array([7, 2**62, 3], dtype=object), 16)
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == [3, 7, 2**62]
    for ids, pattern in [
        (np.array([2**64, 1, 2], dtype=object), r"fit in int64; got 18446744073709551616"),
        (np.array([2**63, 1, 2], dtype=np.uint64), r"fit in int64"),
        ([1, 1, 2], r"unique; repeated: \[1\]"),
        ([1.0, 2.0, 3.0], r"integers"),
        ([1, 2], r"one id per code \(3\)"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            to_faiss(codes, ids, 16)
