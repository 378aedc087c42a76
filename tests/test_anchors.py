"""Smoothed codes: ``BinaryHashEncoder(n_anchors=...)`` and the anchors in the network state."""

import numpy as np
import pytest

from skhash import BinaryHashEncoder, HashIndex
from skhash._inference import ANCHOR_KEYS, forward, smooth
from tests.helpers import FAST

N_ANCHORS = 40


def network_state(encoder):
    """The encoder's network state without the anchors."""
    return {k: v for k, v in encoder.module_state_.items() if k not in ANCHOR_KEYS}


@pytest.fixture(scope="module")
def plain(digits):
    X, _ = digits
    return BinaryHashEncoder(random_state=0, **FAST).fit(X[:300])


@pytest.fixture(scope="module")
def smoothed(digits):
    X, _ = digits
    return BinaryHashEncoder(random_state=0, n_anchors=N_ANCHORS, **FAST).fit(X[:300])


def brute_force_smoothing(encoder, X):
    """The definition, computed without the library's helpers: network output plus
    ``anchor_weight`` times the mean value of the ``k`` anchors of largest cosine."""
    state = encoder.module_state_
    Z = forward(network_state(encoder), X).astype(np.float64)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    cosines = unit @ state["anchors.centres"].astype(np.float64).T
    nearest = np.argsort(-cosines, axis=1, kind="stable")[:, : encoder.anchor_neighbors]
    values = state["anchors.values"].astype(np.float64)
    return Z + encoder.anchor_weight * values[nearest].mean(axis=1), np.sort(cosines, axis=1)


def test_anchors_are_unit_kmeans_centres_of_the_training_rows(smoothed, digits):
    X, _ = digits
    state = smoothed.module_state_
    assert smoothed.n_anchors_ == N_ANCHORS
    assert state["anchors.centres"].shape == (N_ANCHORS, X.shape[1])
    assert state["anchors.values"].shape == (N_ANCHORS, FAST["n_bits"])
    np.testing.assert_allclose(np.linalg.norm(state["anchors.centres"], axis=1), 1, atol=1e-5)
    # an anchor's value is the mean network output of the training rows nearest its centre
    unit = X[:300] / np.linalg.norm(X[:300], axis=1, keepdims=True)
    members = np.argmax(unit @ state["anchors.centres"].T, axis=1)
    Z = forward(network_state(smoothed), X[:300])
    assert np.array_equal(np.unique(members), np.arange(N_ANCHORS))  # no anchor without rows
    for j in range(N_ANCHORS):
        np.testing.assert_allclose(state["anchors.values"][j], Z[members == j].mean(0), atol=1e-4)
    assert not state["anchors.values"].flags.writeable


def test_smoothing_adds_the_anchors_mean_to_the_same_network(plain, smoothed, digits):
    X, _ = digits
    # the anchors come after training: the network is the plain encoder's, bit for bit
    for key, value in plain.module_state_.items():
        np.testing.assert_array_equal(smoothed.module_state_[key], value)
    expected, sorted_cosines = brute_force_smoothing(smoothed, X)
    got = smoothed.embed(X)  # the torch path (net_)
    # where the k-th and (k+1)-th anchors tie in cosine either may be taken
    k = smoothed.anchor_neighbors
    clear = ~np.isclose(sorted_cosines[:, -k], sorted_cosines[:, -k - 1], atol=1e-6)
    assert clear.mean() > 0.9
    np.testing.assert_allclose(got[clear], expected[clear], atol=1e-4)
    # a bit may differ from the definition only within float rounding of 0
    differ = (got[clear] > 0) != (expected[clear] > 0)
    assert np.all(np.abs(expected[clear][differ]) < 1e-4)
    np.testing.assert_array_equal(smoothed.transform(X), got > 0)
    np.testing.assert_array_equal(smoothed.packbits(X), np.packbits(got > 0, axis=1))
    # and it changes codes: smoothing is not a no-op on these rows
    assert (smoothed.transform(X) != plain.transform(X)).any()


def test_numpy_forward_applies_the_anchors_like_the_torch_path(smoothed, digits):
    X, _ = digits
    np.testing.assert_allclose(forward(smoothed.module_state_, X), smoothed.embed(X), atol=1e-4)
    Z, H = forward(smoothed.module_state_, X, pre_activation=True)
    # asymmetric ranking weighs bits by the smoothed outputs: their sign is the code
    np.testing.assert_array_equal(H, Z)


def test_zero_row_keeps_the_networks_code(plain, smoothed, digits):
    X, _ = digits
    rows = np.vstack([np.zeros((1, X.shape[1]), dtype=X.dtype), X[:3]])
    np.testing.assert_array_equal(smoothed.embed(rows)[0], plain.embed(rows)[0])
    Z = plain.embed(rows)
    np.testing.assert_array_equal(smooth(smoothed.module_state_, rows, Z)[0], Z[0])


def test_weight_zero_gives_the_plain_codes(plain, digits):
    X, _ = digits
    enc = BinaryHashEncoder(random_state=0, n_anchors=10, anchor_weight=0.0, **FAST)
    np.testing.assert_array_equal(enc.fit(X[:300]).transform(X), plain.transform(X))


def test_same_random_state_same_codes(smoothed, digits):
    X, _ = digits
    again = BinaryHashEncoder(random_state=0, n_anchors=N_ANCHORS, **FAST).fit(X[:300])
    np.testing.assert_array_equal(again.transform(X), smoothed.transform(X))


def test_anchors_capped_by_distinct_rows_and_k_by_anchors(digits):
    X, _ = digits
    rows = np.repeat(X[:6], 20, axis=0)  # 6 distinct rows, 120 in all
    enc = BinaryHashEncoder(random_state=0, n_anchors=50, anchor_neighbors=10, **FAST).fit(rows)
    assert enc.n_anchors_ == 6
    assert int(enc.module_state_["anchors.k"][0]) == 6
    assert np.isfinite(enc.embed(X[:50])).all()


def test_all_zero_training_rows_raise_and_leave_the_encoder_as_it_was(plain, digits):
    X, _ = digits
    import copy

    enc = BinaryHashEncoder(random_state=0, n_anchors=4, **FAST)
    with pytest.raises(ValueError, match="every row of X is zero"):
        enc.fit(np.zeros((20, 5)))
    assert "module_state_" not in vars(enc)
    fitted = copy.deepcopy(plain).set_params(n_anchors=4)
    with pytest.raises(ValueError, match="every row of X is zero"):
        fitted.fit(np.zeros((20, X.shape[1])))
    assert fitted.module_state_ is not plain.module_state_  # the copy's own, unchanged
    np.testing.assert_array_equal(fitted.transform(X), plain.transform(X))
    assert fitted.n_features_in_ == X.shape[1]


def test_auto_smooths_codes_over_64_bits_only(digits):
    X, _ = digits
    long_code = dict(FAST, n_bits=72, max_steps=10)
    # "auto", the default: a third of the non-zero training rows (zero rows have no direction)
    rows = np.vstack([X[:90], np.zeros((30, X.shape[1]))])
    enc = BinaryHashEncoder(random_state=0, **long_code).fit(rows)
    assert enc.n_anchors == "auto" and enc.n_anchors_ == 30
    explicit = BinaryHashEncoder(random_state=0, n_anchors=30, **long_code).fit(rows)
    np.testing.assert_array_equal(enc.transform(X), explicit.transform(X))
    # off at 64 bits and below, and off for fewer than three non-zero rows
    short = BinaryHashEncoder(random_state=0, **dict(long_code, n_bits=64)).fit(X[:90])
    assert "n_anchors_" not in vars(short)
    assert not any(key in short.module_state_ for key in ANCHOR_KEYS)
    few = BinaryHashEncoder(random_state=0, **long_code).fit(np.vstack([X[:2], np.zeros((8, 64))]))
    assert "n_anchors_" not in vars(few)
    # n_anchors=0 turns it off whatever the length
    off = BinaryHashEncoder(random_state=0, n_anchors=0, **long_code).fit(rows)
    assert "n_anchors_" not in vars(off)
    assert (off.transform(X) != enc.transform(X)).any()


def test_auto_caps_the_anchors_at_4096():
    # the resolved number only: a k-means of 4,096 clusters is a benchmark's cost, not a test's
    rows = np.ones((12_300, 3))
    assert BinaryHashEncoder(n_bits=65)._n_anchors(rows) == 4096
    assert BinaryHashEncoder(n_bits=65)._n_anchors(rows[:12_000]) == 4000
    assert BinaryHashEncoder(n_bits=64)._n_anchors(rows) == 0
    assert BinaryHashEncoder(n_bits=65, n_anchors=7)._n_anchors(rows) == 7


def test_auto_fits_no_anchors_in_partial_fit_and_follows_the_trained_width(digits):
    X, _ = digits
    # a call cannot know it is the last: "auto" would pay a k-means per call for nothing
    enc = BinaryHashEncoder(random_state=0, **dict(FAST, n_bits=72, max_steps=10))
    enc.partial_fit(X[:60]).partial_fit(X[60:150])
    assert "n_anchors_" not in vars(enc)
    # fit resolves "auto" for the trained network's width, not a pending set_params(n_bits)
    enc.fit(X[:90])
    assert enc.n_anchors_ == 30
    short = BinaryHashEncoder(random_state=0, **dict(FAST, n_bits=8, max_steps=10)).fit(X[:90])
    short.set_params(n_bits=72)
    assert short._n_anchors(X[:90]) == 0
    enc.set_params(n_bits=8)
    assert enc._n_anchors(X[:90]) == 30


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_anchors": -1}, "n_anchors"),
        ({"n_anchors": 2.5}, "n_anchors"),
        ({"n_anchors": "many"}, "n_anchors"),
        ({"n_anchors": 4, "anchor_neighbors": 0}, "anchor_neighbors"),
        ({"n_anchors": 4, "anchor_weight": -1.0}, "anchor_weight"),
        ({"n_anchors": 4, "anchor_weight": "heavy"}, "anchor_weight"),
    ],
)
def test_bad_anchor_parameters_raise_and_change_nothing(plain, digits, params, name):
    X, _ = digits
    import copy

    enc = copy.deepcopy(plain).set_params(**params)
    with pytest.raises(ValueError, match=f"The '{name}' parameter of BinaryHashEncoder must be"):
        enc.fit(X[:300])
    np.testing.assert_array_equal(enc.transform(X), plain.transform(X))


def test_set_params_changes_codes_only_at_the_next_fit(smoothed, plain, digits):
    X, _ = digits
    import copy

    enc = copy.deepcopy(smoothed)
    before = enc.transform(X)
    enc.set_params(anchor_weight=0.0, anchor_neighbors=1)
    np.testing.assert_array_equal(enc.transform(X), before)
    enc.set_params(n_anchors=0).fit(X[:300])
    assert not any(key in enc.module_state_ for key in ANCHOR_KEYS)
    assert "n_anchors_" not in vars(enc)
    np.testing.assert_array_equal(enc.transform(X), plain.transform(X))


def test_partial_fit_fits_the_anchors_on_each_calls_chunk(digits):
    X, _ = digits
    enc = BinaryHashEncoder(random_state=0, n_anchors=N_ANCHORS, max_steps=20, **FAST)
    enc.partial_fit(X[:200])
    first = enc.module_state_["anchors.values"]
    enc.partial_fit(X[200:400])
    assert enc.n_anchors_ == N_ANCHORS
    assert not np.array_equal(enc.module_state_["anchors.values"], first)
    # the last call's chunk: anchors of its rows (nearest centre) hold their mean output
    unit = X[200:400] / np.linalg.norm(X[200:400], axis=1, keepdims=True)
    members = np.argmax(unit @ enc.module_state_["anchors.centres"].T, axis=1)
    Z = forward(network_state(enc), X[200:400])
    for j in range(enc.n_anchors_):
        np.testing.assert_allclose(
            enc.module_state_["anchors.values"][j], Z[members == j].mean(0), atol=1e-4
        )
    np.testing.assert_array_equal(enc.transform(X), forward(enc.module_state_, X) > 0)
    # without anchors the next call drops them, and n_anchors_ with them
    enc.set_params(n_anchors=0).partial_fit(X[400:600])
    assert not any(key in enc.module_state_ for key in ANCHOR_KEYS)
    assert "n_anchors_" not in vars(enc)


def test_save_load_round_trips_the_anchors(smoothed, digits, tmp_path):
    X, _ = digits
    smoothed.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc", verify=True)
    assert loaded.n_anchors_ == smoothed.n_anchors_
    assert sorted(loaded.module_state_) == sorted(smoothed.module_state_)
    for key, value in smoothed.module_state_.items():
        np.testing.assert_array_equal(loaded.module_state_[key], value)
    np.testing.assert_array_equal(loaded.transform(X), smoothed.transform(X))


def test_index_encodes_with_the_anchors(smoothed, digits, tmp_path):
    X, _ = digits
    index = HashIndex(encoder=smoothed, rescore=None).fit(X[:500])
    _, ind = index.kneighbors(X[:20], n_neighbors=1)
    np.testing.assert_array_equal(ind[:, 0], np.arange(20))
    # the index fits a clone of its encoder on the rows it indexes
    assert index.encoder_.n_anchors_ == N_ANCHORS
    np.testing.assert_array_equal(index._encode(X[:500]), index.encoder_.packbits(X[:500]))
    index.save(tmp_path / "index")
    loaded = HashIndex.load(tmp_path / "index")
    np.testing.assert_array_equal(loaded.kneighbors(X[:20], 5)[1], index.kneighbors(X[:20], 5)[1])
    asymmetric = HashIndex(encoder=smoothed, rescore=None, asymmetric=True).fit(X[:500])
    assert asymmetric.kneighbors(X[:20], 5)[1].shape == (20, 5)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.pop("anchors.k"), "not all of"),
        (lambda s: s.update({"anchors.values": s["anchors.values"][:, :3]}), "inconsistent"),
        (lambda s: s.update({"anchors.k": np.array([0.0], np.float32)}), "inconsistent"),
        (lambda s: s.update({"anchors.k": np.array([1.5], np.float32)}), "inconsistent"),
        (lambda s: s.update({"anchors.centres": s["anchors.centres"][:, :5]}), "inconsistent"),
    ],
)
def test_forward_rejects_inconsistent_anchors(smoothed, digits, change, match):
    X, _ = digits
    state = dict(smoothed.module_state_)
    change(state)
    with pytest.raises(ValueError, match=match):
        forward(state, X[:2])


def test_rows_of_large_values_are_smoothed_like_their_direction(smoothed, digits):
    X, _ = digits
    from skhash._inference import _nearest_anchors

    centres = smoothed.module_state_["anchors.centres"]
    large = X[1:20] * np.float32(1e30)  # their squares overflow float32
    np.testing.assert_array_equal(
        np.sort(_nearest_anchors(large, centres, 3), axis=1),
        np.sort(_nearest_anchors(X[1:20], centres, 3), axis=1),
    )


def test_smoothed_encoder_rejects_bad_rows_and_unfitted_use(smoothed, digits):
    X, _ = digits
    from sklearn.exceptions import NotFittedError

    bad = X[:3].copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        smoothed.transform(bad)
    bad[1, 4] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        smoothed.packbits(bad)
    with pytest.raises(ValueError, match="features"):
        smoothed.embed(X[:3, :10])
    with pytest.raises(ValueError, match="could not convert"):
        smoothed.transform(np.full((2, X.shape[1]), "a", dtype=object))
    with pytest.raises(NotFittedError):
        BinaryHashEncoder(n_anchors=4, **FAST).transform(X[:3])
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 64\)"):
        smooth(smoothed.module_state_, X[:3, :10], np.zeros((3, FAST["n_bits"])))
