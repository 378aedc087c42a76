"""skhash.dask on a real two-process LocalCluster (the ``dask_client`` fixture)."""

import os
import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import torch
from dask_ml import wrappers
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from skhash import PCAITQ, BinaryHashEncoder, HashIndex, SimHash
from skhash._hamming import as_words, hamming_knn, pairwise_hamming
from skhash.dask import DaskHashIndex, ShardLostError, packbits, transform
from tests.helpers import FAST

CHUNKS = (300, 300, 250, 150)


def _random_codes(block_info=None):
    """Packed 16-bit codes, seeded by block: many ties, recomputable on any worker."""
    info = block_info[None]
    rng = np.random.default_rng(info["chunk-location"][0])
    return rng.integers(0, 256, size=info["chunk-shape"], dtype=np.uint8)


def _codes():
    return da.map_blocks(_random_codes, chunks=(CHUNKS, (2,)), dtype=np.uint8)


def _exact(queries, codes, ids, k):
    """Single-process reference: all distances, sorted by (distance, id)."""
    dist = pairwise_hamming(as_words(queries), as_words(codes))
    order = np.lexsort((np.broadcast_to(ids, dist.shape), dist), axis=-1)[:, :k]
    return np.take_along_axis(dist, order, 1), ids[order]


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _two_stage(queries, codes, vectors, query_vectors, k, n_candidates):
    """Single-process two-stage search: Hamming top-n_candidates, then cosine top-k."""
    _, rows = hamming_knn(as_words(queries), as_words(codes), n_candidates)
    cos_dist = 1 - np.einsum("qd,qcd->qc", _unit(query_vectors), _unit(vectors)[rows])
    order = np.lexsort((rows, cos_dist), axis=-1)[:, :k]
    return np.take_along_axis(cos_dist, order, 1), np.take_along_axis(rows, order, 1)


def _recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])


# --------------------------------------------------------------------------- encoding


def test_packbits_blocks_equal_local_bits(dask_client, fitted, digits):
    X, _ = digits
    # column chunks are merged; each row chunk is encoded on a worker (one torch thread)
    dX = da.from_array(X, chunks=(400, 32))
    codes = packbits(fitted, dX)
    assert codes.dtype == np.uint8
    assert codes.chunks == ((400, 400, 400, 400, 197), (2,))
    remote = codes.compute()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = fitted.packbits(X)
        z = fitted.embed(X)
    finally:
        torch.set_num_threads(threads)
    differ = np.unpackbits(remote, axis=1) != np.unpackbits(local, axis=1)
    # a bit may only differ where the output is within float rounding of 0
    assert not differ[np.abs(z) > 1e-5].any()
    assert differ.mean() < 1e-3


def test_transform_keeps_chunks_and_equals_local(dask_client, fitted, digits):
    X, _ = digits
    bits = transform(fitted, da.from_array(X, chunks=500))
    assert bits.shape == (len(X), fitted.n_bits)
    assert bits.chunks == ((500, 500, 500, 297), (fitted.n_bits,))
    np.testing.assert_array_equal(
        np.packbits(bits.compute(), axis=1), packbits(fitted, da.from_array(X, chunks=500))
    )


def test_dataframe_columns_index_and_parallel_post_fit(dask_client, digits):
    X, _ = digits
    frame = pd.DataFrame(X[:600], columns=[f"pixel{i}" for i in range(64)])
    frame.index = frame.index + 1000
    encoder = BinaryHashEncoder(random_state=0, **FAST).fit(frame.iloc[:300])
    ddf = dd.from_pandas(frame, npartitions=3)
    local = encoder.transform(frame)

    out = transform(encoder, ddf)
    assert list(out.columns) == list(encoder.get_feature_names_out())
    assert set(out.dtypes) == {np.dtype(np.uint8)}
    computed = out.compute()
    np.testing.assert_array_equal(computed.index, frame.index)
    np.testing.assert_array_equal(computed.to_numpy(), local)

    # a DataFrame has unknown partition lengths: kept, not guessed
    packed = packbits(encoder, ddf)
    assert np.isnan(packed.shape[0]) and packed.shape[1] == 2
    np.testing.assert_array_equal(packed.compute(), np.packbits(local, axis=1))

    # dask-ml's wrapper: DataFrames keep the encoder's column names with pandas output
    encoder.set_output(transform="pandas")
    wrapped = wrappers.ParallelPostFit(encoder).transform(ddf)
    assert list(wrapped.columns) == list(encoder.get_feature_names_out())
    assert set(wrapped.dtypes) == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(wrapped.compute().to_numpy(), local)


def test_parallel_post_fit_on_dask_array(dask_client, fitted, digits):
    X, _ = digits
    out = wrappers.ParallelPostFit(fitted).transform(da.from_array(X, chunks=600))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.compute(), fitted.transform(X))


def test_encoding_rejects_bad_input(dask_client, fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="features"):
        packbits(fitted, da.from_array(X[:, :10], chunks=100))
    with pytest.raises(TypeError, match="dask array or a dask DataFrame"):
        packbits(fitted, X)
    with pytest.raises(NotFittedError):
        packbits(BinaryHashEncoder(**FAST), da.from_array(X, chunks=100))
    bad = X[:200].copy()
    bad[150, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        packbits(fitted, da.from_array(bad, chunks=100)).compute()
    named = SimHash(n_bits=8, random_state=0).fit(
        pd.DataFrame(X, columns=[f"a{i}" for i in range(64)])
    )
    wrong = dd.from_pandas(pd.DataFrame(X, columns=[f"b{i}" for i in range(64)]), npartitions=2)
    with pytest.raises(ValueError, match="feature_names_in_"):
        transform(named, wrong)


def test_empty_blocks_and_partitions_encode_to_no_rows(dask_client, fitted, digits):
    # a filter leaves empty partitions (and a mask empty chunks); the encoders refuse 0
    # rows in memory, as scikit-learn does, but a block of none is not an error here
    X, _ = digits
    X = X[:300].copy()
    X[100:200, 0] = 99.0  # the whole second partition is filtered away
    keep = X[:, 0] < 50
    for encoder in (fitted, SimHash(n_bits=12, random_state=0).fit(X)):
        frame = dd.from_pandas(pd.DataFrame(X, columns=[f"p{i}" for i in range(64)]), 3)
        filtered = frame[frame["p0"] < 50]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # names the encoder was not fitted with
            bits = transform(encoder, filtered).compute()
            packed = packbits(encoder, filtered).compute()
        expected = np.asarray(encoder.transform(X[keep]))
        np.testing.assert_array_equal(bits.to_numpy(), expected)
        np.testing.assert_array_equal(bits.index, np.flatnonzero(keep))
        np.testing.assert_array_equal(packed, np.packbits(expected, axis=1))
        dX = da.from_array(X, chunks=100)
        masked = dX[da.from_array(keep, chunks=100)]
        np.testing.assert_array_equal(packbits(encoder, masked).compute(), packed)
        index = DaskHashIndex(encoder=encoder).fit(masked.compute_chunk_sizes())
        assert index.codes_.chunks[0] == (100, 0, 100)
        np.testing.assert_array_equal(index.codes_.compute(), packed)


def test_partial_fit_takes_blocks_of_unknown_size_without_labels(digits):
    # a DataFrame's to_dask_array() has unknown row counts: each block is computed
    # anyway, so partial_fit needs them only to align labels (and says so)
    import dask

    from skhash.dask import partial_fit

    X, _ = digits
    params = dict(n_bits=8, hidden_layer_sizes=(16,), n_projections=16, random_state=0)
    frame = dd.from_pandas(pd.DataFrame(X[:240]), npartitions=3)
    unknown = frame.to_dask_array()
    assert np.isnan(unknown.chunks[0]).all()
    with dask.config.set(scheduler="synchronous"):
        got = partial_fit(BinaryHashEncoder(**params, max_steps=6), unknown)
        want = partial_fit(
            BinaryHashEncoder(**params, max_steps=6), frame.to_dask_array(lengths=True)
        )
    np.testing.assert_array_equal(got.embed(X[:50]), want.embed(X[:50]))
    labels = da.from_array(np.arange(240) % 3, chunks=80)
    encoder = BinaryHashEncoder(**params, max_steps=6)
    with pytest.raises(ValueError, match="unknown chunk sizes.*align the labels"):
        partial_fit(encoder, unknown, labels)
    assert not hasattr(encoder, "n_steps_")


# --------------------------------------------------------------------------- index


@pytest.mark.parametrize("split_every", [2, 8])
def test_hamming_search_equals_single_process(dask_client, split_every):
    codes = _codes()
    full = codes.compute()
    index = DaskHashIndex(split_every=split_every).fit(codes)
    assert index.codes_.chunks[0] == CHUNKS
    assert index.n_bits_ == 16
    queries = full[::37]
    dist, ids = index.kneighbors(queries, n_neighbors=25)
    ref_dist, ref_ids = hamming_knn(as_words(queries), as_words(full), 25)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(index.kneighbors(queries, 25, return_distance=False), ref_ids)


def test_user_ids_interleaved_across_shards_tie_by_id(dask_client):
    codes = _codes()
    full = codes.compute()
    ids = np.random.default_rng(1).permutation(5 * len(full))[: len(full)].astype(np.int64)
    index = DaskHashIndex(split_every=3).fit(codes, ids=da.from_array(ids, chunks=CHUNKS))
    queries = full[::50]
    dist, found = index.kneighbors(queries, n_neighbors=40)
    ref_dist, ref_ids = _exact(queries, full, ids, 40)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(found, ref_ids)


def test_rescoring_recall_at_least_single_process(dask_client, fitted, digits):
    X, _ = digits
    database, queries = X[300:1500], X[1500:1560]
    n_candidates = 20
    index = DaskHashIndex(encoder=fitted, n_candidates=n_candidates, split_every=2)
    index.fit(da.from_array(database, chunks=300))
    assert index.vectors_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(index.vectors_.compute(), axis=1), 1, rtol=1e-6)
    dist, ids = index.kneighbors(queries, n_neighbors=10)

    single_dist, single_ids = _two_stage(
        fitted.packbits(queries), fitted.packbits(database), database, queries, 10, n_candidates
    )
    truth = np.argsort(-_unit(queries) @ _unit(database).T, axis=1, kind="stable")[:, :10]
    assert _recall(ids, truth) >= _recall(single_ids, truth)
    # the shards' candidates contain the single-process ones: the k-th best is never worse
    assert (dist <= single_dist + 1e-6).all()
    assert (np.diff(dist, axis=1) >= 0).all()


def test_rescoring_with_every_row_a_candidate_is_exact_cosine(dask_client, digits):
    X, _ = digits
    rng = np.random.default_rng(0)
    database, queries = X[:900], X[900:930]
    codes = np.packbits(rng.integers(0, 2, (900, 8), dtype=np.uint8), axis=1)
    index = DaskHashIndex(n_candidates=300).fit(
        da.from_array(codes, chunks=300), vectors=da.from_array(database, chunks=300)
    )
    query_codes = np.packbits(rng.integers(0, 2, (30, 8), dtype=np.uint8), axis=1)
    dist, ids = index.kneighbors(query_codes, 5, query_vectors=queries)
    cos = _unit(queries) @ _unit(database).T
    truth = np.argsort(-cos, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, truth)
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(cos, truth, 1), atol=1e-5)


def _prefix(packed, n_bits):
    return np.packbits(np.unpackbits(packed, axis=1)[:, :n_bits], axis=1)


def test_prefix_bits_index_and_search_the_first_bits(dask_client):
    codes = _codes()
    full = codes.compute()
    index = DaskHashIndex(prefix_bits=11, split_every=2).fit(codes[:700])
    assert index.n_bits_ == 11 and index.codes_.shape == (700, 2)
    np.testing.assert_array_equal(index.codes_.compute(), _prefix(full[:700], 11))
    index.add(codes[700:])  # added rows are cut to the same prefix
    index.set_params(prefix_bits=4)  # read at fit only: the index keeps 11 bits
    queries = full[::41]  # packed queries have the width given to fit, cut like the codes
    dist, ids = index.kneighbors(queries, n_neighbors=30)
    q_words, db_words = as_words(_prefix(queries, 11)), as_words(_prefix(full, 11))
    ref_dist, ref_ids = hamming_knn(q_words, db_words, 30)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(ids, ref_ids)
    assert dist.max() <= 11
    with pytest.raises(ValueError, match="bytes per row"):
        index.kneighbors(_prefix(queries, 11)[:, :1])


def test_prefix_bits_of_the_encoders_codes_with_rescoring(dask_client, fitted, digits):
    X, _ = digits
    database, queries = X[300:1500], X[1500:1560]
    index = DaskHashIndex(encoder=fitted, n_candidates=1200, prefix_bits=6)
    index.fit(da.from_array(database, chunks=400))
    np.testing.assert_array_equal(
        index.codes_.compute(), np.packbits(fitted.transform(database)[:, :6], axis=1)
    )
    # every row a candidate: the exact cosine answer, whatever the prefix
    dist, ids = index.kneighbors(queries, n_neighbors=10)
    cos = _unit(queries) @ _unit(database).T
    np.testing.assert_array_equal(ids, np.argsort(-cos, axis=1, kind="stable")[:, :10])
    hamming = DaskHashIndex(encoder=fitted, prefix_bits=6).fit(da.from_array(database, chunks=400))
    dist, ids = hamming.kneighbors(queries, n_neighbors=10)
    prefix_codes = np.packbits(fitted.transform(np.r_[database, queries])[:, :6], axis=1)
    db_words, q_words = as_words(prefix_codes[:1200]), as_words(prefix_codes[1200:])
    ref_dist, ref_ids = hamming_knn(q_words, db_words, 10)
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(ids, ref_ids)
    before = (hamming.codes_, hamming.ids_, hamming.n_bits_)
    hamming.set_params(prefix_bits=17)
    with pytest.raises(ValueError, match="prefix_bits=17 exceeds the 16 bits"):
        hamming.fit(da.from_array(database, chunks=400))
    # the index as it was
    assert hamming.codes_ is before[0] and hamming.ids_ is before[1] and hamming.n_bits_ == 6
    with pytest.raises(ValueError, match="prefix_bits"):
        DaskHashIndex(prefix_bits=0).fit(_codes())


def test_add_and_compact_keep_exact_answers(dask_client):
    codes = _codes()
    full = codes.compute()
    index = DaskHashIndex().fit(codes[:600])
    index.add(codes[600:850].rechunk(125))
    index.add(codes[850:].rechunk(50))
    assert index.codes_.chunks[0] == (300, 300, 125, 125, 50, 50, 50)
    np.testing.assert_array_equal(index.id_ranges_[:, 2], index.codes_.chunks[0])
    queries = full[::41]
    ref = hamming_knn(as_words(queries), as_words(full), 30)
    before = index.kneighbors(queries, 30)
    np.testing.assert_array_equal(before[0], ref[0])
    np.testing.assert_array_equal(before[1], ref[1])

    index.compact()
    # adjacent small shards merge greedily up to the largest shard (300 rows)
    assert index.codes_.chunks[0] == (300, 300, 300, 100)
    after = index.kneighbors(queries, 30)
    np.testing.assert_array_equal(after[0], ref[0])
    np.testing.assert_array_equal(after[1], ref[1])


def test_add_and_compact_with_vectors_and_interleaved_ids(dask_client, digits):
    X, _ = digits
    rng = np.random.default_rng(3)
    codes = np.packbits(rng.integers(0, 2, (600, 8), dtype=np.uint8), axis=1)
    ids = rng.permutation(600).astype(np.int64)
    index = DaskHashIndex(n_candidates=600).fit(
        da.from_array(codes[:300], chunks=100),
        ids=da.from_array(ids[:300], chunks=100),
        vectors=da.from_array(X[:300], chunks=100),
    )
    index.add(
        da.from_array(codes[300:], chunks=100),
        ids=da.from_array(ids[300:], chunks=100),
        vectors=da.from_array(X[300:600], chunks=100),
    )
    index.compact(target_rows=300)
    assert index.codes_.chunks[0] == (300, 300)
    queries = X[1000:1010]
    dist, found = index.kneighbors(np.zeros((10, 1), np.uint8), 7, query_vectors=queries)
    cos = _unit(queries) @ _unit(X[:600]).T
    truth = np.argsort(-cos, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(found, ids[truth])


# --------------------------------------------------------------------------- bad input


def test_index_rejects_bad_input_and_stays_unchanged(dask_client, digits):
    X, _ = digits
    codes = _codes()
    masked = codes[codes[:, 0] > 100]
    index = DaskHashIndex()
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        index.fit(masked)
    assert not hasattr(index, "codes_")
    with pytest.raises(ValueError, match="uint8"):
        index.fit(codes.astype(np.int64))
    with pytest.raises(ValueError, match="chunked differently"):
        DaskHashIndex(n_candidates=5).fit(codes, vectors=da.from_array(X[:1000], chunks=500))
    with pytest.raises(ValueError, match="vectors are needed"):
        DaskHashIndex(n_candidates=5).fit(codes)
    with pytest.raises(ValueError, match="split_every"):
        DaskHashIndex(split_every=1).fit(codes)
    duplicated = da.from_array(np.r_[np.arange(999), 5].astype(np.int64), chunks=CHUNKS)
    with pytest.raises(ValueError, match="unique"):
        index.fit(codes, ids=duplicated)
    nan_vectors = X[:1000].copy()
    nan_vectors[700, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DaskHashIndex(n_candidates=5).fit(
            codes, vectors=da.from_array(nan_vectors, chunks=(CHUNKS, 64))
        )
    with pytest.raises(NotFittedError):
        index.kneighbors(codes[:2].compute())

    index.fit(codes)
    state = (index.codes_, index.ids_, index.id_ranges_.copy())
    full = codes.compute()
    with pytest.raises(ValueError, match="bytes per row"):
        index.kneighbors(np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        index.kneighbors(full[:2].astype(np.float32))
    with pytest.raises(ValueError, match="n_neighbors"):
        index.kneighbors(full[:2], n_neighbors=1001)
    index.set_params(split_every=1)
    with pytest.raises(ValueError, match="split_every"):
        index.kneighbors(full[:2])
    index.set_params(split_every=8)
    with pytest.raises(ValueError, match="unique"):
        index.add(codes[:300], ids=da.arange(0, 300, chunks=300))  # ids already taken
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        index.add(masked)
    assert index.codes_ is state[0] and index.ids_ is state[1]
    np.testing.assert_array_equal(index.id_ranges_, state[2])
    np.testing.assert_array_equal(
        index.kneighbors(full[:3], 5)[1], hamming_knn(as_words(full[:3]), as_words(full), 5)[1]
    )


def test_rescoring_queries_need_vectors_of_the_right_width(dask_client, digits):
    X, _ = digits
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (200, 8), np.uint8), axis=1)
    index = DaskHashIndex(n_candidates=10).fit(
        da.from_array(codes, chunks=100), vectors=da.from_array(X[:200], chunks=100)
    )
    with pytest.raises(ValueError, match="query_vectors"):
        index.kneighbors(codes[:2])
    with pytest.raises(ValueError, match="shape"):
        index.kneighbors(codes[:2], query_vectors=X[:2, :10])
    with pytest.raises(ValueError, match="NaN"):
        index.kneighbors(codes[:2], query_vectors=np.full((2, 64), np.nan))


def test_ids_far_apart_and_uint64_beyond_int64(dask_client):
    codes = np.packbits(np.eye(4, 16, dtype=np.uint8), axis=1)
    far = np.array([-(2**62) - 1, 2**62 + 1, 7, 8], dtype=np.int64)  # a difference overflows
    index = DaskHashIndex().fit(da.from_array(codes, chunks=2), ids=da.from_array(far, chunks=2))
    np.testing.assert_array_equal(index.kneighbors(codes, 1)[1][:, 0], far)
    big = np.array([2**63 + 5, 3, 2**64 - 1, 10], dtype=np.uint64)
    with pytest.raises(ValueError, match="fit in int64"):
        DaskHashIndex().fit(da.from_array(codes, chunks=4), ids=da.from_array(big, chunks=4))


def test_queries_and_shards_are_encoded_in_float32_like_hash_index(dask_client):
    # bits within float64 rounding of 0: encoded in float64 they would differ from
    # HashIndex, which encodes in float32
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 16))
    enc = SimHash(n_bits=16, random_state=0).fit(X)
    direction = enc.projection_[:, 0] / np.linalg.norm(enc.projection_[:, 0])
    X[::3] -= np.outer((X[::3] - enc.mean_) @ direction - 1e-12, direction)
    for asymmetric in (False, True):
        dask_index = DaskHashIndex(encoder=enc, asymmetric=asymmetric)
        dask_index.fit(da.from_array(X, chunks=100))
        local = HashIndex(encoder=FrozenEstimator(enc), rescore=None, asymmetric=asymmetric)
        local.fit(X)
        np.testing.assert_array_equal(
            np.sort(dask_index.codes_.compute(), axis=0), np.sort(local.codes_, axis=0)
        )
        for got, want in zip(
            dask_index.kneighbors(X[:40], 5), local.kneighbors(X[:40], 5), strict=True
        ):
            np.testing.assert_array_equal(got, want)


def test_rescored_distances_are_never_negative(dask_client, digits):
    X, _ = digits
    index = DaskHashIndex(encoder=SimHash(n_bits=16, random_state=0).fit(X), n_candidates=50)
    index.fit(da.from_array(X[:300], chunks=100))
    dist, _ = index.kneighbors(X[:300], n_neighbors=3)
    assert dist.min() >= 0.0


def test_query_vectors_without_rescoring_are_an_error(dask_client, digits):
    X, _ = digits
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (200, 8), np.uint8), axis=1)
    index = DaskHashIndex().fit(da.from_array(codes, chunks=100))
    with pytest.raises(ValueError, match="holds no vectors"):
        index.kneighbors(codes[:2], query_vectors=X[:2])
    index = DaskHashIndex().fit(
        da.from_array(codes, chunks=100), vectors=da.from_array(X[:200], chunks=100)
    )
    with pytest.raises(ValueError, match="n_candidates is None"):
        index.kneighbors(codes[:2], query_vectors=X[:2])


def test_add_checks_the_width_names_it_and_adds_nothing_empty(dask_client):
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (200, 16), np.uint8), axis=1)
    index = DaskHashIndex().fit(da.from_array(codes, chunks=100))
    with pytest.raises(ValueError, match="1 bytes per row, the codes given to fit 2"):
        index.add(da.from_array(codes[:, :1], chunks=100))
    ranges = index.id_ranges_.copy()
    index.add(da.from_array(codes[:0], chunks=100))
    np.testing.assert_array_equal(index.id_ranges_, ranges)
    assert len(index.id_ranges_) == index.codes_.numblocks[0]
    top = np.iinfo(np.int64).max
    index = DaskHashIndex().fit(
        da.from_array(codes[:2], chunks=2), ids=da.from_array(np.array([0, top]), chunks=2)
    )
    with pytest.raises(ValueError, match="beyond int64; pass ids"):
        index.add(da.from_array(codes[2:4], chunks=2))


def test_query_frames_must_have_the_encoders_columns(dask_client, digits):
    # an encoder fitted on a DataFrame: query frames are checked against its columns (as
    # HashIndex checks them), not encoded position by position whatever their order
    import warnings

    X, _ = digits
    columns = [f"p{i}" for i in range(64)]
    frame = pd.DataFrame(X[:930], columns=columns)
    queries = frame[900:]
    for encoder in (
        BinaryHashEncoder(random_state=0, **FAST).fit(frame[:300]),
        PCAITQ(n_bits=16, random_state=0).fit(frame[:600]),
    ):
        for asymmetric in (False, True):
            index = DaskHashIndex(encoder=encoder, asymmetric=asymmetric)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # arrays on the workers
                index.fit(da.from_array(X[:900], chunks=300))
            single = HashIndex(
                encoder=FrozenEstimator(encoder), rescore=None, asymmetric=asymmetric
            ).fit(frame[:900])
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # the names reach the encoder
                got = index.kneighbors(queries, 5)
            for a, b in zip(got, single.kneighbors(queries, 5), strict=True):
                np.testing.assert_array_equal(a, b)
            with pytest.raises(ValueError, match="feature_names_in_"):
                index.kneighbors(queries[columns[::-1]], 5)


def test_query_parameters_set_after_fit_are_checked_again(dask_client, digits):
    X, _ = digits
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (200, 16), np.uint8), axis=1)
    index = DaskHashIndex().fit(da.from_array(codes, chunks=100))
    # fit refuses n_candidates without vectors; set afterwards, it must not be ignored
    index.set_params(n_candidates=10)
    with pytest.raises(ValueError, match="n_candidates=10 .*no rescoring vectors"):
        index.kneighbors(codes[:2], 3)
    index.set_params(n_candidates=None)
    assert index.kneighbors(codes[:2], 3)[0].dtype == np.int32
    # an encoder swapped (or refitted) after fit must give codes of the indexed width
    encoder = SimHash(n_bits=16, random_state=0).fit(X)
    index = DaskHashIndex(encoder=encoder).fit(da.from_array(X[:600], chunks=200))
    expected = index.kneighbors(X[:3], 3)
    index.set_params(encoder=SimHash(n_bits=8, random_state=0).fit(X))
    with pytest.raises(ValueError, match="1 bytes per row.*2"):
        index.kneighbors(X[:3], 3)
    index.set_params(encoder=encoder)
    np.testing.assert_array_equal(index.kneighbors(X[:3], 3)[1], expected[1])


# --------------------------------------------------------------------------- asymmetric


@pytest.mark.parametrize("prefix_bits", [None, 6])
def test_asymmetric_search_equals_hash_index(dask_client, fitted, digits, prefix_bits):
    X, _ = digits
    database, queries = X[300:1500], X[1500:1560]
    index = DaskHashIndex(encoder=fitted, asymmetric=True, prefix_bits=prefix_bits, split_every=2)
    dist, ids = index.fit(da.from_array(database, chunks=300)).kneighbors(queries, 25)
    single = HashIndex(
        encoder=FrozenEstimator(fitted), rescore=None, asymmetric=True, prefix_bits=prefix_bits
    ).fit(database)
    ref_dist, ref_ids = single.kneighbors(queries, 25)
    assert dist.dtype == np.float32
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-6)
    # not the Hamming ranking: the weights order codes a Hamming distance ties
    _, hamming_ids = (
        DaskHashIndex(encoder=fitted, prefix_bits=prefix_bits)
        .fit(da.from_array(database, chunks=300))
        .kneighbors(queries, 25)
    )
    assert (ids != hamming_ids).any()


def test_smoothed_codes_encode_and_rank_on_workers_like_locally(dask_client, digits):
    X, _ = digits
    smoothed = BinaryHashEncoder(random_state=0, n_anchors=20, **FAST).fit(X[:300])
    remote = packbits(smoothed, da.from_array(X, chunks=500)).compute()
    np.testing.assert_array_equal(remote, smoothed.packbits(X))
    database, queries = X[300:1500], X[1500:1560]
    index = DaskHashIndex(encoder=smoothed, asymmetric=True, split_every=2)
    _, ids = index.fit(da.from_array(database, chunks=300)).kneighbors(queries, 25)
    single = HashIndex(encoder=FrozenEstimator(smoothed), rescore=None, asymmetric=True)
    np.testing.assert_array_equal(ids, single.fit(database).kneighbors(queries, 25)[1])


def test_asymmetric_with_embed_encoder_and_rescoring(dask_client, digits):
    X, _ = digits
    database, queries = X[300:1500], X[1500:1560]
    itq = PCAITQ(n_bits=16, random_state=0).fit(database)
    index = DaskHashIndex(encoder=itq, asymmetric=True)
    dist, ids = index.fit(da.from_array(database, chunks=400)).kneighbors(queries, 10)
    ref_dist, ref_ids = (
        HashIndex(encoder=FrozenEstimator(itq), rescore=None, asymmetric=True)
        .fit(database)
        .kneighbors(queries, 10)
    )
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-6)
    # the Hamming ranking with the same encoder (it has no packbits)
    index.set_params(asymmetric=False)
    dist, ids = index.kneighbors(queries, 10)
    ref_dist, ref_ids = (
        HashIndex(encoder=FrozenEstimator(itq), rescore=None).fit(database).kneighbors(queries, 10)
    )
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(dist, ref_dist)
    # rescoring: each shard's 20 weighted candidates contain the single process's 20 there
    rescoring = DaskHashIndex(encoder=itq, asymmetric=True, n_candidates=20, split_every=2)
    dist, ids = rescoring.fit(da.from_array(database, chunks=300)).kneighbors(queries, 10)
    single = HashIndex(
        encoder=FrozenEstimator(itq), rescore="float32", asymmetric=True, n_candidates=2.0
    ).fit(database)
    single_dist, _ = single.kneighbors(queries, 10)
    assert (dist <= single_dist + 1e-6).all()
    assert (np.diff(dist, axis=1) >= 0).all()
    cos = _unit(queries) @ _unit(database).T
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(cos, ids, 1), atol=1e-5)


def test_asymmetric_needs_an_encoder_with_values_and_loses_nothing(dask_client, fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="needs encoder="):
        DaskHashIndex(asymmetric=True).fit(_codes())
    index = DaskHashIndex(encoder=fitted).fit(da.from_array(X[:600], chunks=300))
    before = (index.codes_, index.ids_, index.n_bits_, index.id_ranges_.copy())
    codes_before = index.codes_.compute()
    index.set_params(asymmetric=True)  # read at every query
    dist, ids = index.kneighbors(X[600:610], 5)
    assert dist.dtype == np.float32
    with pytest.raises(ValueError, match="features"):
        index.kneighbors(X[600:610, :10], 5)
    with pytest.raises(ValueError, match="NaN|infinity"):
        index.kneighbors(np.full((2, 64), np.nan, np.float32), 5)
    assert index.codes_ is before[0] and index.ids_ is before[1] and index.n_bits_ == before[2]
    np.testing.assert_array_equal(index.id_ranges_, before[3])
    np.testing.assert_array_equal(index.codes_.compute(), codes_before)
    codes_only = DaskHashIndex().fit(_codes())
    codes_only.set_params(asymmetric=True)
    with pytest.raises(ValueError, match="needs encoder="):
        codes_only.kneighbors(_codes()[:3].compute(), 2)
    with pytest.raises(ValueError, match="asymmetric"):
        DaskHashIndex(encoder=fitted, asymmetric="yes").fit(da.from_array(X[:600], chunks=300))


def test_asymmetric_prefix_with_rescoring_keeps_the_single_process_candidates(
    dask_client, fitted, digits
):
    X, _ = digits
    database, queries = X[300:1500], X[1500:1560]
    kw = dict(asymmetric=True, prefix_bits=6)
    index = DaskHashIndex(encoder=fitted, n_candidates=20, split_every=2, **kw)
    dist, ids = index.fit(da.from_array(database, chunks=300)).kneighbors(queries, 10)
    single = HashIndex(
        encoder=FrozenEstimator(fitted), rescore="float32", n_candidates=2.0, **kw
    ).fit(database)
    single_dist, _ = single.kneighbors(queries, 10)
    assert (dist <= single_dist + 1e-6).all()
    cos = _unit(queries) @ _unit(database).T
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(cos, ids, 1), atol=1e-5)


class _BitsOnly(BaseEstimator):
    """An encoder with bits and nothing before thresholding."""

    n_bits = 8

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        self.directions_ = np.random.default_rng(0).normal(size=(X.shape[1], 8))
        return self

    def transform(self, X):
        return (np.asarray(X) @ self.directions_ > 0).astype(np.uint8)


class _WithEmbed(_BitsOnly):
    def embed(self, X):
        return np.asarray(X) @ self.directions_


def test_asymmetric_with_a_plain_encoder(dask_client, digits):
    X, _ = digits
    database, queries = X[:900], X[900:930]
    with pytest.raises(ValueError, match="values before thresholding"):
        DaskHashIndex(encoder=_BitsOnly().fit(database), asymmetric=True).fit(
            da.from_array(database, chunks=300)
        )
    encoder = _WithEmbed().fit(database)
    index = DaskHashIndex(encoder=encoder, asymmetric=True)
    dist, ids = index.fit(da.from_array(database, chunks=300)).kneighbors(queries, 7)
    H = encoder.embed(queries).astype(np.float32)
    bits = encoder.transform(database).astype(bool)
    full = (np.abs(H)[:, None, :] * ((H[:, None, :] > 0) != bits[None])).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(900), full.shape), full), axis=1)[:, :7]
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_allclose(dist, np.take_along_axis(full, order, 1), rtol=1e-5)
    with pytest.raises(ValueError, match="fitted on 64"):
        index.kneighbors(queries[:, :10], 3)
    # a refit that cannot rank asymmetrically fails before it changes the index
    state = (index.codes_, index.ids_, index.id_ranges_, index.n_bits_)
    index.set_params(encoder=_BitsOnly().fit(database))
    with pytest.raises(ValueError, match="values before thresholding"):
        index.fit(da.from_array(database[:600], chunks=300))
    assert (index.codes_, index.ids_, index.id_ranges_, index.n_bits_) == state
    index.set_params(encoder=encoder)
    np.testing.assert_array_equal(index.kneighbors(queries, 7)[1], ids)


def test_weighted_shard_search_builds_tables_in_blocks(monkeypatch):
    from skhash import dask as skdask
    from skhash._hamming import weighted_hamming_knn, weighted_hamming_tables

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (500, 2), dtype=np.uint8)
    values = rng.normal(size=(11, 16)).astype(np.float32)
    whole = weighted_hamming_knn(weighted_hamming_tables(values, 2), codes, 9)
    monkeypatch.setattr(skdask, "_TABLE_ENTRIES", 3 * 2 * 256)  # 3 queries per block
    blocks = skdask._weighted_search(values, codes, 9)
    np.testing.assert_array_equal(blocks[0], whole[0])
    np.testing.assert_array_equal(blocks[1], whole[1])


# --------------------------------------------------------------------------- clear errors


def test_repeated_ids_across_shards_are_named(dask_client):
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (40, 16), np.uint8), axis=1)
    index = DaskHashIndex().fit(da.from_array(codes[:20], chunks=10))
    ranges = index.id_ranges_.copy()
    # new ids 15..24 overlap the indexed 0..19: the repeated ones are named, as HashIndex does
    with pytest.raises(ValueError, match=r"repeated: \[15, 16, 17, 18, 19\]"):
        index.add(da.from_array(codes[20:30], chunks=5), ids=da.arange(15, 25, chunks=5))
    np.testing.assert_array_equal(index.id_ranges_, ranges)
    # repeated across two shards of one fit
    ids = da.from_array(np.r_[np.arange(10), np.arange(9, 19)], chunks=10)
    with pytest.raises(ValueError, match=r"repeated: \[9\]"):
        DaskHashIndex().fit(da.from_array(codes[:20], chunks=10), ids=ids)


def test_empty_index_errors_name_the_problem(dask_client):
    codes = np.packbits(np.random.default_rng(0).integers(0, 2, (10, 16), np.uint8), axis=1)
    index = DaskHashIndex().fit(da.from_array(codes[:0], chunks=5))
    # not "n_neighbors must be an int in the range [1, 0]"
    with pytest.raises(ValueError, match="n_neighbors=1 exceeds the 0 rows in the index"):
        index.kneighbors(codes[:2], 1)
    # compact() with its default target_rows has nothing to merge: not an error about 0
    assert index.compact() is index
    index.add(da.from_array(codes, chunks=5))
    reference = hamming_knn(as_words(codes[:3]), as_words(codes), 10)[1]
    np.testing.assert_array_equal(index.kneighbors(codes[:3], 10)[1], reference)


def test_fit_input_errors_name_what_is_accepted(dask_client, digits):
    X, _ = digits
    encoder = SimHash(n_bits=16, random_state=0).fit(X)
    # in memory: no advice to pass a DataFrame (refused by the index) or to use the encoder
    with pytest.raises(TypeError, match=r"X must be a dask array.*da\.from_array.*HashIndex"):
        DaskHashIndex(encoder=encoder).fit(X[:100])
    codes = np.packbits(encoder.transform(X[:100]), axis=1)
    ids = da.arange(100, chunks=50)
    with pytest.raises(ValueError, match="ids has unknown chunk sizes"):
        DaskHashIndex().fit(da.from_array(codes, chunks=50), ids=ids[ids >= 0])


def test_cloned_index_with_a_frozen_encoder_fits(dask_client, digits):
    # clone (GridSearchCV, cross_validate) unfits a plain encoder; the docs advise
    # FrozenEstimator, whose clone stays fitted and indexes as the original
    from sklearn.base import clone

    X, _ = digits
    encoder = SimHash(n_bits=16, random_state=0).fit(X)
    with pytest.raises(NotFittedError):
        clone(DaskHashIndex(encoder=encoder)).fit(da.from_array(X[:200], chunks=100))
    index = DaskHashIndex(encoder=FrozenEstimator(encoder), n_candidates=50)
    dX = da.from_array(X[:200], chunks=100)
    got = clone(index).fit(dX).kneighbors(X[200:205], 4)
    want = index.fit(dX).kneighbors(X[200:205], 4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- no torch


def test_loaded_encoder_encodes_on_workers_like_locally(dask_client, fitted, digits, tmp_path):
    X, _ = digits
    fitted.save(tmp_path / "encoder")
    loaded = BinaryHashEncoder.load(tmp_path / "encoder")
    remote = packbits(loaded, da.from_array(X, chunks=500)).compute()
    z = loaded.embed(X)
    differ = np.unpackbits(remote, axis=1) != (z > 0)
    assert not differ[np.abs(z) > 1e-5].any()


_NO_TORCH = """
import sys
import dask, dask.array as da, numpy as np
from skhash import BinaryHashEncoder
from skhash.dask import DaskHashIndex, packbits
encoder = BinaryHashEncoder.load(sys.argv[1])
X = np.random.default_rng(0).normal(size=(400, 64)).astype(np.float32)
with dask.config.set(scheduler="synchronous"):
    codes = packbits(encoder, da.from_array(X, chunks=100)).compute()
    index = DaskHashIndex().fit(da.from_array(codes, chunks=150))
    index.add(da.from_array(codes[:50], chunks=50))
    index.kneighbors(codes[:5], 3)
    rescoring = DaskHashIndex(encoder=encoder, n_candidates=20).fit(da.from_array(X, chunks=150))
    rescoring.add(da.from_array(X[:50], chunks=50))
    rescoring.kneighbors(X[:5], 3)
    asymmetric = DaskHashIndex(encoder=encoder, asymmetric=True).fit(da.from_array(X, chunks=150))
    asymmetric.kneighbors(X[:5], 3)
assert "torch" not in sys.modules and "skorch" not in sys.modules, "torch was imported"
"""


def test_search_and_loaded_encoder_never_import_torch(fitted, tmp_path):
    import subprocess
    import sys

    fitted.save(tmp_path / "encoder")
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(tmp_path / "encoder")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------- faults


def _kill(client, address):
    """End a worker process abruptly (its nanny starts a fresh, empty one)."""
    try:
        client.run(os._exit, 1, workers=[address])
    except Exception:  # noqa: BLE001  (the connection dies with the process)
        pass


def test_lost_worker_recomputed_shards_answer_stays_exact(dask_client):
    codes = _codes()
    full = codes.compute()
    index = DaskHashIndex().fit(codes)
    queries = full[::53]
    ref = hamming_knn(as_words(queries), as_words(full), 12)
    holders = {addr for addrs in dask_client.who_has(index.codes_).values() for addr in addrs}
    _kill(dask_client, sorted(holders)[0])
    dist, ids = index.kneighbors(queries, 12)
    np.testing.assert_array_equal(dist, ref[0])
    np.testing.assert_array_equal(ids, ref[1])


def test_lost_worker_scattered_shards_raise(dask_client):
    dask_client.wait_for_workers(2, timeout=120)
    worker = sorted(dask_client.scheduler_info()["workers"])[0]
    full = _codes().compute()
    source = dask_client.scatter(full, workers=[worker])
    index = DaskHashIndex().fit(da.from_delayed(source, full.shape, np.uint8).rechunk(250))
    index.kneighbors(full[:3], 5)  # answers while the data lives
    # every copy of the scattered rows and of the shards made from them goes
    holders = set(dask_client.who_has([source]).get(source.key, ()))
    for addrs in dask_client.who_has(index.codes_).values():
        holders.update(addrs)
    for address in sorted(holders):
        _kill(dask_client, address)
    dask_client.wait_for_workers(1, timeout=120)
    with pytest.raises(ShardLostError, match="The query was cancelled.*scattered from the client"):
        index.kneighbors(full[:3], 5)
    # the error names the call that needed the lost shards, and that call changes nothing
    chunks = index.codes_.chunks
    with pytest.raises(ShardLostError, match="compact was cancelled"):
        index.compact(target_rows=1000)
    assert index.codes_.chunks == chunks


def test_a_query_during_add_sees_the_old_index_whole(dask_client, monkeypatch):
    # a query from another thread while add builds the new arrays: it must see the old
    # shards, ids and id ranges together (one swap), never new codes with old ids
    codes = _codes()
    full = codes.compute()
    index = DaskHashIndex().fit(codes)
    queries = full[::41]
    before = index.kneighbors(queries, n_neighbors=5)
    seen, concatenate = [], da.concatenate

    def concatenate_then_query(*args, **kwargs):
        out = concatenate(*args, **kwargs)
        seen.append(index.kneighbors(queries, n_neighbors=5))
        return out

    monkeypatch.setattr(da, "concatenate", concatenate_then_query)
    index.add(da.from_array(full[:40] ^ 0xFF, chunks=20))
    monkeypatch.undo()
    assert seen
    for dist, ids in seen:
        np.testing.assert_array_equal(dist, before[0])
        np.testing.assert_array_equal(ids, before[1])
    assert int(index.id_ranges_[:, 2].sum()) == len(full) + 40


def test_adds_from_two_threads_run_one_after_the_other(dask_client):
    from concurrent.futures import ThreadPoolExecutor

    full = _codes().compute()
    index = DaskHashIndex().fit(da.from_array(full[:20], chunks=20))

    def add_rows(thread):
        for _ in range(4):  # default ids: each add must see the rows the others added
            index.add(da.from_array(full[:10], chunks=10))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(add_rows, [0, 1]))
    assert int(index.id_ranges_[:, 2].sum()) == 20 + 2 * 4 * 10
    np.testing.assert_array_equal(np.sort(index.ids_.compute()), np.arange(100))


def test_without_dask_the_import_error_names_the_extra():
    import subprocess
    import sys

    code = "import sys; sys.modules['dask'] = None; import skhash.dask"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'skhash[dask]'" in result.stderr
