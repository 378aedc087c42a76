"""HashIndex: two-stage search, ids, add/remove, bad input, estimator checks."""

import copy
import pickle
import threading

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhash import PCAITQ, BinaryHashEncoder, HammingNeighbors, SimHash
from skhash._index import HashIndex
from tests.helpers import FAST


def blobs(n=240, d=12, seed=0):
    """Clustered float rows: neighbours are meaningful, ties rare."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d)) * 3
    return (centres[rng.integers(0, 8, n)] + rng.standard_normal((n, d))).astype(np.float32)


def exact_cosine(Q, V, k, ids=None):
    """Exact cosine top-k by (distance, id)."""
    Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    ids = np.arange(len(V)) if ids is None else np.asarray(ids)
    dist = 1 - Q @ V.T
    order = np.lexsort((np.broadcast_to(ids, dist.shape), dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, 1), ids[order]


@pytest.fixture(scope="module")
def X():
    return blobs()


@pytest.fixture(scope="module")
def encoder(X):
    return BinaryHashEncoder(random_state=0, **FAST).fit(X)


@pytest.fixture
def index(X, encoder):
    return HashIndex(encoder=FrozenEstimator(encoder), rescore="float32").fit(X)


def same_state(index, before):
    assert index._state is before


# -- search -------------------------------------------------------------------------------------


def test_rescoring_over_all_items_is_exact_cosine_search(X, encoder):
    Q = blobs(30, seed=1)
    ids = np.arange(len(X)) * 7 + 3
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore="float32", n_candidates=1e9)
    dist, got = index.fit(X, ids=ids).kneighbors(Q, n_neighbors=5)
    want_dist, want = exact_cosine(Q, X, 5, ids)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(dist, want_dist, atol=1e-5)
    assert dist.dtype == np.float32 and np.all(np.diff(dist, axis=1) >= 0)


def test_candidates_are_the_hamming_top_and_rescoring_reorders_them(X, encoder, index):
    Q = blobs(20, seed=2)
    k, m = 5, 4
    index.set_params(n_candidates=m)
    _, got = index.kneighbors(Q, n_neighbors=k)
    codes = encoder.packbits(Q)
    _, cand = HammingNeighbors(packed=True).fit(index.codes_).kneighbors(codes, n_neighbors=k * m)
    for q in range(len(Q)):
        # the answer is the exact top k among the Hamming candidates
        _, want = exact_cosine(Q[q : q + 1], X[cand[q]], k, cand[q])
        np.testing.assert_array_equal(got[q], want[0])


def test_hamming_only_mode_matches_hamming_neighbors(X, encoder):
    Q = blobs(25, seed=3)
    ids = np.arange(len(X))[::-1] * 2  # descending ids: rows get sorted by id
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X, ids=ids)
    assert index.vectors_ is None and np.all(np.diff(index.ids_) > 0)
    dist, got = index.kneighbors(Q, n_neighbors=6)
    nn = HammingNeighbors(packed=True).fit(index.codes_)
    want_dist, rows = nn.kneighbors(encoder.packbits(Q), n_neighbors=6)
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(got, index.ids_[rows])
    assert dist.dtype == np.int32


@pytest.mark.parametrize("prefix_bits", [8, 13])
def test_prefix_bits_index_the_first_bits_of_the_codes(X, encoder, prefix_bits):
    Q = blobs(20, seed=5)
    kw = dict(encoder=FrozenEstimator(encoder), rescore=None, prefix_bits=prefix_bits)
    index = HashIndex(**kw).fit(X[:200])
    want = np.packbits(encoder.transform(X[:200])[:, :prefix_bits], axis=1)
    assert index.n_bits_ == prefix_bits and index.codes_.shape == want.shape
    assert (index.codes_ == want).mean() > 0.999  # numpy forward vs torch: rounding of 0
    index.add(X[200:])  # added rows are cut to the same prefix
    assert index.codes_.shape == (len(X), want.shape[1])
    dist, ids = index.kneighbors(Q, n_neighbors=5)
    nn = HammingNeighbors(packed=True).fit(index.codes_)
    query_codes = np.packbits(encoder.transform(Q)[:, :prefix_bits], axis=1)
    want_dist, rows = nn.kneighbors(query_codes, n_neighbors=5)
    assert (dist == want_dist).mean() > 0.99 and dist.max() <= prefix_bits
    # with rescoring: the prefix's candidates, then exact cosine
    for asymmetric in (False, True):
        params = {**kw, "rescore": "float32", "n_candidates": 1e9, "asymmetric": asymmetric}
        rescored = HashIndex(**params).fit(X)
        np.testing.assert_array_equal(rescored.kneighbors(Q, 5)[1], exact_cosine(Q, X, 5)[1])
    # the fitted length governs: set_params without a refit changes no query
    index.set_params(prefix_bits=4)
    np.testing.assert_array_equal(index.kneighbors(Q, n_neighbors=5)[0], dist)


def test_prefix_bits_longer_than_the_code_raise_and_keep_the_index(index, X, encoder):
    before, n_bits = index._state, encoder.n_bits
    with pytest.raises(ValueError, match=f"prefix_bits={n_bits + 1} exceeds the {n_bits} bits"):
        index.set_params(prefix_bits=n_bits + 1).fit(X)
    same_state(index, before)
    index.set_params(prefix_bits=None)


def test_codes_are_the_encoders_packbits(X, encoder, index):
    # numpy forward pass: equal to torch except bits within rounding of 0
    agree = index.codes_ == encoder.packbits(X)
    assert agree.mean() > 0.999


@pytest.mark.parametrize("rescore, atol", [("float16", 2e-3), ("int8", 2e-2)])
def test_compressed_rescoring_is_close_to_float32(X, encoder, rescore, atol):
    Q = blobs(20, seed=4)
    kw = dict(encoder=FrozenEstimator(encoder), n_candidates=1e9)
    ref_dist, ref = HashIndex(rescore="float32", **kw).fit(X).kneighbors(Q, 5)
    index = HashIndex(rescore=rescore, **kw).fit(X)
    assert index.vectors_.dtype == np.dtype(rescore)
    dist, got = index.kneighbors(Q, 5)
    np.testing.assert_allclose(dist, ref_dist, atol=atol)
    assert (got == ref).mean() > 0.8
    if rescore == "int8":
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        assert index.vector_scale_ == pytest.approx(np.abs(U).max())
        assert np.abs(index.vectors_).max() == 127


def weighted_hamming(index, Q, H=None):
    """Reference: sum over the bits where the query's sign and the stored bit differ of |h|."""
    from skhash._inference import forward

    if H is None:
        _, H = forward(index._network_state, Q, pre_activation=True)
    H = H[:, : index.n_bits_]
    bits = np.unpackbits(index.codes_, axis=1)[:, : index.n_bits_].astype(bool)
    return (np.abs(H)[:, None, :] * ((H[:, None, :] > 0) != bits[None])).sum(axis=2)


def test_asymmetric_scores_and_candidates(X, encoder):
    Q = blobs(15, seed=5)
    kw = dict(encoder=FrozenEstimator(encoder), rescore="float32")
    full = HashIndex(asymmetric=True, n_candidates=1e9, **kw).fit(X).kneighbors(Q, 4)
    np.testing.assert_array_equal(full[1], exact_cosine(Q, X, 4)[1])
    index = HashIndex(asymmetric=True, n_candidates=3, **kw).fit(X)
    dist, got = index.kneighbors(Q, 4)
    # answers come from the 12 best by the weighted Hamming distance with the weights |h|,
    # h the pre-activations (not the saturated outputs tanh(beta * h), which tie about as
    # often as Hamming distances)
    W = weighted_hamming(index, Q)
    twelfth = np.sort(W, axis=1)[:, 11:12]
    assert np.all(np.take_along_axis(W, got, 1) <= twelfth + 1e-4)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    np.testing.assert_allclose(dist, 1 - np.einsum("qkd,qd->qk", U[got], Qn), atol=1e-5)
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.parametrize("prefix_bits", [None, 11])
def test_asymmetric_without_vectors_ranks_by_weighted_hamming_ties_by_id(X, encoder, prefix_bits):
    # duplicated rows under shuffled ids: equal codes, equal distances, answered by id
    rows = np.concatenate([X, X[:30]])
    ids = np.random.default_rng(1).permutation(len(rows)) * 3 + 1
    index = HashIndex(
        encoder=FrozenEstimator(encoder), rescore=None, asymmetric=True, prefix_bits=prefix_bits
    ).fit(rows, ids=ids)
    assert index.vectors_ is None
    Q = np.concatenate([blobs(25, seed=7), X[:5]])
    dist, got = index.kneighbors(Q, 12)
    W = weighted_hamming(index, Q)
    order = np.lexsort((np.broadcast_to(index.ids_, W.shape), W), axis=1)[:, :12]
    np.testing.assert_array_equal(got, index.ids_[order])
    np.testing.assert_allclose(dist, np.take_along_axis(W, order, 1), rtol=1e-5, atol=1e-4)
    assert dist.dtype == np.float32 and np.all(np.diff(dist, axis=1) >= 0)
    # a stored row's own code disagrees with its signs nowhere, nor does its copy's
    assert np.all(dist[-5:, :2] == 0)
    assert np.all(np.diff(got[-5:, :2], axis=1) > 0)
    # the Hamming-only ranking of the same index differs: the weights matter
    hamming = index.set_params(asymmetric=False).kneighbors(Q, 12)[1]
    assert not np.array_equal(hamming, got)


@pytest.mark.parametrize("linear", [PCAITQ(n_bits=20, random_state=0), SimHash(n_bits=20)])
def test_asymmetric_ranking_of_linear_codes_weighs_bits_by_their_projections(X, linear):
    index = HashIndex(encoder=linear, rescore=None, asymmetric=True, random_state=0).fit(X)
    Q = blobs(20, seed=9)
    dist, got = index.kneighbors(Q, 8)
    W = weighted_hamming(index, Q, index.encoder_.embed(Q))
    order = np.lexsort((np.broadcast_to(index.ids_, W.shape), W), axis=1)[:, :8]
    np.testing.assert_array_equal(got, index.ids_[order])
    np.testing.assert_allclose(dist, np.take_along_axis(W, order, 1), rtol=1e-4, atol=1e-4)


def test_asymmetric_needs_values_before_thresholding(X, encoder):
    from sklearn.preprocessing import FunctionTransformer

    def bits(A):
        return (np.asarray(A)[:, :8] > 0).astype(np.uint8)

    index = HashIndex(encoder=FunctionTransformer(bits), asymmetric=True)
    with pytest.raises(ValueError, match="asymmetric=True needs .* FunctionTransformer"):
        index.fit(X)
    assert not hasattr(index, "encoder_")
    index.set_params(asymmetric=False).fit(X)
    before = index._state
    index.set_params(asymmetric=True)  # after fit: refused at query time, index unchanged
    with pytest.raises(ValueError, match="asymmetric=True needs"):
        index.kneighbors(X[:2], 3)
    same_state(index, before)


def test_an_embed_of_the_wrong_shape_is_refused(X):
    class ShortEmbed(SimHash):
        def transform(self, X):
            return (super().embed(X) > 0).astype(np.uint8)  # 8 bits

        def embed(self, X):
            return super().embed(X)[:, :3]

    index = HashIndex(encoder=ShortEmbed(n_bits=8, random_state=0), asymmetric=True).fit(X)
    with pytest.raises(ValueError, match=r"ShortEmbed's embed must give one value per bit"):
        index.kneighbors(X[:2], 3)


def test_asymmetric_candidate_cut_is_ordered_by_id(X, encoder):
    # equal scores at the cut-off (duplicated rows): the kept candidates are those with
    # the smallest ids
    rows = np.concatenate([X[:40]] * 5)
    kw = dict(encoder=FrozenEstimator(encoder), rescore="float32", asymmetric=True)
    index = HashIndex(n_candidates=2, **kw).fit(rows)
    Q = blobs(40, seed=8)
    _, got = index.kneighbors(Q, 3)  # 6 candidates: a code's 5 copies and part of the next
    W = weighted_hamming(index, Q)
    cand = np.lexsort((np.broadcast_to(np.arange(len(rows)), W.shape), W), axis=1)[:, :6]
    cand.sort(axis=1)
    U = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    cos_dist = 1 - np.einsum("qkd,qd->qk", U[cand], Qn)
    want = np.take_along_axis(cand, np.argsort(cos_dist, axis=1, kind="stable")[:, :3], 1)
    np.testing.assert_array_equal(got, want)


def test_query_chunks_give_the_same_answers(X, index, monkeypatch):
    import skhash._index as module

    Q = blobs(50, seed=6)
    want = index.kneighbors(Q, 5)
    monkeypatch.setattr(module, "_RESCORE_BLOCK", 1)  # one query per chunk
    got = index.kneighbors(Q, 5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(index.kneighbors(Q, 5, return_distance=False), want[1])


def test_nndescent_backend(X, encoder):
    index = HashIndex(encoder=FrozenEstimator(encoder), algorithm="nndescent", random_state=0)
    dist, ids = index.fit(X).kneighbors(X[:10], 3)
    assert np.all(ids[:, 0] == np.arange(10)) and np.all(dist[:, 0] < 1e-3)


# -- the encoder --------------------------------------------------------------------------------


def test_frozen_encoder_is_used_as_is_and_never_modified(X, encoder):
    state = (
        {k: v.copy() for k, v in encoder.module_state_.items()}
        if hasattr(encoder, "module_state_")
        else None
    )
    history = len(encoder.history_)
    frozen = FrozenEstimator(encoder)
    index = HashIndex(encoder=frozen).fit(X[:100], np.arange(100) % 2)
    assert index.encoder_ is frozen and len(encoder.history_) == history
    if state is not None:
        for k, v in state.items():
            np.testing.assert_array_equal(encoder.module_state_[k], v)


class RecordingSimHash(SimHash):
    def fit(self, X, y=None):
        super().fit(X, y)
        self.y_seen_ = y  # after: SimHash's transactional fit replaces fitted attributes
        return self


def test_encoder_is_cloned_and_gets_y(X):
    given = RecordingSimHash(n_bits=24, random_state=0)
    y = np.arange(len(X)) % 3
    index = HashIndex(encoder=given).fit(X, y)
    assert not hasattr(given, "y_seen_") and index.encoder_ is not given
    np.testing.assert_array_equal(index.encoder_.y_seen_, y)
    assert index.n_bits_ == 24 and index.codes_.shape == (len(X), 3)


def test_default_encoder_is_64_bits(X):
    index = HashIndex().fit(X[:60])
    assert index.n_bits_ == 64 and index.codes_.shape == (60, 8)
    assert index.encoder is None and type(index.encoder_).__name__ == "BinaryHashEncoder"


# -- add and remove -----------------------------------------------------------------------------


def test_add_and_remove_equal_a_fresh_index(X, encoder):
    Q = blobs(20, seed=7)
    kw = dict(encoder=FrozenEstimator(encoder), n_candidates=8)
    index = HashIndex(**kw).fit(X[:150], ids=np.arange(150) + 1000)
    index.add(X[150:], ids=np.arange(len(X) - 150))
    ids = np.r_[np.arange(150) + 1000, np.arange(len(X) - 150)]
    fresh = HashIndex(**kw).fit(X, ids=ids)
    for a, b in zip(index.kneighbors(Q), fresh.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    gone = np.arange(1000, 1100)
    index.remove(gone)
    keep = ~np.isin(ids, gone)
    fresh = HashIndex(**kw).fit(X[keep], ids=ids[keep])
    for a, b in zip(index.kneighbors(Q), fresh.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(index) == keep.sum()


def test_adds_after_the_largest_id_append_and_earlier_states_stay_intact(X, encoder):
    kw = dict(encoder=FrozenEstimator(encoder), rescore="float32", n_candidates=8)
    index = HashIndex(**kw).fit(X[:150])
    held = index._state  # what a query running during the adds reads
    held_vectors = held.vectors.copy()
    index.add(X[150:160])  # copies the vectors once, into a buffer with room
    first = index._state
    index.add(X[160:190], ids=np.arange(189, 159, -1))  # unsorted, all after the largest
    index.add(X[190:200])  # 200 rows: the room the first add made (a quarter more)
    # appended into the same buffer, past every row an earlier state can read
    assert np.shares_memory(first.vectors, index._state.vectors)
    assert first.vector_buffer is index._state.vector_buffer
    assert held.vectors.shape == (150, X.shape[1]) and first.vectors.shape[0] == 160
    np.testing.assert_array_equal(held.vectors, held_vectors)
    ids = np.r_[np.arange(160), np.arange(189, 159, -1), np.arange(190, 200)]
    fresh = HashIndex(**kw).fit(X[:200], ids=ids)
    Q = blobs(20, seed=9)
    for name in ("ids_", "codes_", "vectors_"):
        np.testing.assert_array_equal(getattr(index, name), getattr(fresh, name))
    for a, b in zip(index.kneighbors(Q), fresh.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    # an id below the largest: new arrays (rows are kept in id order)
    index.remove([5])
    index.add(X[5:6], ids=[5])
    assert index._state.vector_buffer is None
    for a, b in zip(index.kneighbors(Q), fresh.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    # a pickle keeps the vectors, not the buffer's spare rows
    index.add(X[200:], ids=np.arange(200, len(X)))
    clone = pickle.loads(pickle.dumps(index))
    assert clone._state.vector_buffer is None
    np.testing.assert_array_equal(clone.vectors_, index.vectors_)
    clone.add(X[:2], ids=[1000, 1001])
    np.testing.assert_array_equal(clone.ids_[-3:], [len(X) - 1, 1000, 1001])


def test_add_without_ids_continues_after_the_largest(index, X):
    n = len(index)
    index.add(X[:3])
    np.testing.assert_array_equal(index.ids_[-3:], [n, n + 1, n + 2])


def test_int8_add_clips_to_the_fitted_scale(X, encoder):
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore="int8").fit(X)
    scale = index.vector_scale_
    spike = np.zeros((1, X.shape[1]), np.float32)
    spike[0, 0] = 1.0  # a coordinate of 1 > scale
    index.add(spike, ids=[10_000])
    assert index.vector_scale_ == scale and index.vectors_[-1, 0] == 127


@pytest.mark.parametrize("fitted, later", [("int8", "float32"), (None, "float16")])
def test_another_rescore_dtype_after_fit_is_an_error_until_refit(X, encoder, fitted, later):
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=fitted).fit(X[:200])
    before = index._state
    index.set_params(rescore=later)
    with pytest.raises(ValueError, match=f"rescore_={fitted!r}"):
        index.kneighbors(X[200:210], n_neighbors=5)
    same_state(index, before)
    index.fit(X[:200])
    assert index.rescore_ == later and index.vectors_.dtype == later


def test_rescore_none_after_fit_skips_rescoring_and_keeps_the_vectors(X, encoder):
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore="int8").fit(X[:200])
    hamming = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X[:200])
    Q = X[200:220]
    rescored = index.kneighbors(Q, n_neighbors=5)
    index.set_params(rescore=None)
    for got, want in zip(index.kneighbors(Q, 5), hamming.kneighbors(Q, 5), strict=True):
        np.testing.assert_array_equal(got, want)
    index.add(X[200:210])  # stored as fitted, for when rescoring is back on
    hamming.add(X[200:210])
    assert index.vectors_.dtype == np.int8 and len(index.vectors_) == 210
    index.set_params(rescore="int8").remove(np.arange(200, 210))
    for got, want in zip(index.kneighbors(Q, 5), rescored, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rescore", ["int8", None])
def test_an_index_pickled_before_rescore_existed_still_answers(X, encoder, rescore):
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=rescore).fit(X[:200])
    state = index.__getstate__()
    del state["rescore_"]  # what an older skhash pickled
    old = HashIndex.__new__(HashIndex)
    old.__setstate__(state)
    assert old.rescore_ == rescore
    for got, want in zip(
        old.kneighbors(X[200:210], 5), index.kneighbors(X[200:210], 5), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_removing_no_ids_changes_nothing(index):
    before = index._state
    for nothing in ([], (), np.array([]), np.array([], dtype=np.int64)):
        index.remove(nothing)
    same_state(index, before)


@pytest.mark.parametrize("name", ["ids_", "codes_", "vectors_"])
def test_fitted_arrays_are_read_only_views_of_the_state(index, X, name):
    # `ids = index.ids_; ids += 1000` (a copy meant) must not rewrite the index's ids,
    # its searcher's codes or the rows earlier states share
    before = index.kneighbors(X[:5], 5)
    array = getattr(index, name)
    with pytest.raises(ValueError, match="read-only"):
        array += 1
    for got, want in zip(index.kneighbors(X[:5], 5), before, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.sort(index.ids_ + 0), np.arange(len(X)))


def test_a_shallow_copy_is_one_consistent_snapshot(index, X):
    # documented (Notes): ids_, codes_, vectors_ of a copy agree whatever adds meanwhile
    snapshot = copy.copy(index)
    index.add(X[:3], ids=[-3, -2, -1]).remove([5, 6])
    assert snapshot.n_items_ == len(snapshot.codes_) == len(snapshot.vectors_) == len(X)
    np.testing.assert_array_equal(snapshot.ids_, np.arange(len(X)))
    assert index.n_items_ == len(X) + 1


@pytest.mark.parametrize("scale", [1e20, 1e-24])
def test_rows_near_the_float32_limits_rescore_like_their_direction(X, encoder, scale):
    # their float32 norm overflows (1e20) or underflows (1e-24)
    # candidates: every item, so that the answer is the rescoring's alone
    kw = dict(encoder=FrozenEstimator(encoder), rescore="float32", n_candidates=1e9)
    index = HashIndex(**kw).fit(X)
    far = HashIndex(**kw).fit(X * scale)
    np.testing.assert_allclose(far.vectors_, index.vectors_, atol=1e-6)
    _, ids = index.kneighbors(X[:5] * np.float32(scale), n_neighbors=1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(5))


def test_default_ids_beyond_int64_are_a_clear_error(X, encoder):
    top = np.iinfo(np.int64).max
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None)
    index.fit(X[:10], ids=top - np.arange(10))
    before = index._state
    with pytest.raises(ValueError, match="beyond int64; pass ids"):
        index.add(X[10:12])
    same_state(index, before)


def test_queries_during_add_and_remove_see_old_or_new(X, encoder):
    index = HashIndex(encoder=FrozenEstimator(encoder), n_candidates=4).fit(X[:200])
    Q = blobs(10, seed=8)
    old = index.kneighbors(Q, 5)[1]
    index.add(X[200:], ids=np.arange(200, len(X)))
    new = index.kneighbors(Q, 5)[1]
    index.remove(np.arange(200, len(X)))
    stop = threading.Event()
    seen, errors = [], []

    def writer():
        try:
            while not stop.is_set():
                index.add(X[200:], ids=np.arange(200, len(X)))
                index.remove(np.arange(200, len(X)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(30):
            seen.append(index.kneighbors(Q, 5)[1])
    finally:
        stop.set()
        thread.join()
    assert not errors
    for got in seen:
        assert np.array_equal(got, old) or np.array_equal(got, new)


# -- bad input: clear error, index unchanged ------------------------------------------------------


@pytest.mark.parametrize(
    "op, match",
    [
        (lambda ix, X: ix.add(X[:2], ids=[5, 6]), "already in the index"),
        (lambda ix, X: ix.add(X[:2], ids=[900, 900]), "unique"),
        (lambda ix, X: ix.add(X[:2], ids=[900]), "1-D array of 2"),
        (lambda ix, X: ix.add(X[:2], ids=[1.5, 2.5]), "integers"),
        (lambda ix, X: ix.add(X[:2, :5]), "features"),
        (lambda ix, X: ix.add(np.where(np.eye(2, X.shape[1]) > 0, np.nan, X[:2])), "NaN"),
        (lambda ix, X: ix.add(X[:2].astype(np.float64) * 1e39), "too large"),
        (lambda ix, X: ix.remove([0, 123456]), "not in the index"),
        (lambda ix, X: ix.remove([3, 3]), "unique"),
        (lambda ix, X: ix.kneighbors(X[:2, :5]), "features"),
        (lambda ix, X: ix.kneighbors(np.full((1, X.shape[1]), np.inf)), "infinity"),
        (lambda ix, X: ix.kneighbors(X[:2], n_neighbors=10**6), "exceeds"),
        (lambda ix, X: ix.kneighbors(X[:2], n_neighbors=0), "n_neighbors"),
    ],
)
def test_bad_input_raises_and_leaves_the_index_unchanged(index, X, op, match):
    before = index._state
    ids = before.ids.copy()
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        op(index, X)
    same_state(index, before)
    np.testing.assert_array_equal(index.ids_, ids)


def test_failed_refit_keeps_the_fitted_index(index, X):
    before = index._state
    with pytest.raises(ValueError, match="unique"):
        index.fit(X, ids=np.zeros(len(X), dtype=np.int64))
    with pytest.raises(ValueError, match="NaN"):
        index.fit(np.where(np.eye(len(X), X.shape[1]) > 0, np.nan, X))
    same_state(index, before)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(rescore="float64"), "rescore"),
        (dict(n_candidates=0.5), "n_candidates"),
        (dict(algorithm="kd_tree"), "algorithm"),
        (dict(asymmetric="yes"), "asymmetric"),
        (dict(n_jobs=0), "n_jobs"),
        (dict(prefix_bits=0), "prefix_bits"),
        (dict(prefix_bits="8"), "prefix_bits"),
        (dict(prefix_bits=8.0), "prefix_bits"),
    ],
)
def test_bad_parameters(X, encoder, params, match):
    index = HashIndex(encoder=FrozenEstimator(encoder), **params)
    with pytest.raises(ValueError, match=match):
        index.fit(X)
    assert not hasattr(index, "encoder_")


def test_unfitted_use_raises():
    from sklearn.exceptions import NotFittedError

    index = HashIndex()
    for call in (
        lambda: index.kneighbors([[0.0]]),
        lambda: index.add([[0.0]]),
        lambda: index.remove([0]),
        lambda: index.ids_,
    ):
        with pytest.raises((NotFittedError, AttributeError)):
            call()


# -- exports --------------------------------------------------------------------------------------


def test_to_faiss_keeps_ids_and_the_exact_top_k(X, encoder):
    ids = np.arange(len(X)) * 3 + 11
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X, ids=ids)
    Q = blobs(10, seed=9)
    want_dist, want = index.kneighbors(Q, 5)
    dist, got = index.to_faiss("flat").search(encoder.packbits(Q), 5)
    np.testing.assert_array_equal(dist, want_dist)
    assert set(np.unique(got)) <= set(ids)
    # faiss breaks distance ties its own way: compare (distance, id) sets
    for q in range(len(Q)):
        last = want_dist[q, -1]
        assert set(got[q][dist[q] < last]) == set(want[q][want_dist[q] < last])


def test_an_emptied_index_exports_to_faiss(X, encoder):
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X[:20])
    index.remove(index.ids_)
    exported = index.to_faiss("flat")
    assert exported.ntotal == 0 and exported.d == 8 * index.codes_.shape[1]


# -- scikit-learn's estimator checks ---------------------------------------------------


# Every check that fits runs through the encoder; SimHash keeps them fast.
@parametrize_with_checks(
    [HashIndex(encoder=SimHash(n_bits=16, random_state=0), rescore="float16")],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_a_frozen_encoder_fitted_on_a_dataframe_gets_its_column_names(X, asymmetric):
    import warnings

    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    encoder = SimHash(n_bits=16, random_state=0).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        index = HashIndex(encoder=FrozenEstimator(encoder), asymmetric=asymmetric).fit(df)
        distances, ids = index.kneighbors(df.iloc[:5], 3)
    plain = HashIndex(encoder=SimHash(n_bits=16, random_state=0), asymmetric=asymmetric).fit(X)
    np.testing.assert_array_equal(ids, plain.kneighbors(X[:5], 3)[1])
    # columns in another order are an error, not silently other features
    for frozen in (encoder, BinaryHashEncoder(random_state=0, **FAST).fit(df)):
        with pytest.raises(ValueError, match="feature names.*the encoder was fitted with"):
            HashIndex(encoder=FrozenEstimator(frozen)).fit(df[df.columns[::-1]])


@pytest.mark.parametrize("rescore", [None, "float16"])
def test_n_jobs_set_after_fit_is_the_one_queries_use(monkeypatch, rescore):
    import skhash._threads

    X = np.random.default_rng(0).standard_normal((300, 12)).astype(np.float32)
    index = HashIndex(encoder=SimHash(n_bits=16, random_state=0), rescore=rescore, n_jobs=1)
    before = index.fit(X).kneighbors(X[:5], 3)
    used = []
    resolve = skhash._threads.resolve_n_jobs
    monkeypatch.setattr(skhash._threads, "resolve_n_jobs", lambda n: used.append(n) or resolve(n))
    after = index.set_params(n_jobs=-1).kneighbors(X[:5], 3)
    assert used and set(used) == {-1}
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
