"""Nested (Matryoshka) codes: ``nested_bits`` trains every prefix as a code of its own."""

import numpy as np
import pytest
import torch

from skhash import BinaryHashEncoder
from skhash._batch import Batch
from skhash._objective import TERM_NAMES, HashingLoss, auto_temperature, level_weights
from tests.helpers import FAST


def settings(**changes):
    enc = BinaryHashEncoder(**changes)
    return enc._objective_settings(enc._teacher_temperature(None))


def batch(n=16, d=5):
    g = torch.Generator().manual_seed(0)
    return Batch(
        torch.randn(n, d, generator=g), torch.arange(n) % 3, torch.randn(n, d, generator=g)
    )


@pytest.mark.parametrize(
    "nested, match",
    [
        ((16,), "each below n_bits=16"),
        ((12, 8), "increasing"),
        ((8, 8), "increasing"),
        ((0, 8), ">= 1"),
        ((), "non-empty"),
        ((8.0,), "tuple of increasing ints"),
        ((True, 8), "tuple of increasing ints"),
        ("8", "'nested_bits' parameter of BinaryHashEncoder must be"),
        (8, "'nested_bits' parameter of BinaryHashEncoder must be"),
        ((4, 8), "active_dims=8 exceeds the shortest prefix"),
    ],
)
def test_bad_nested_bits_raise_and_leave_the_encoder_as_it_was(nested, match, fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        BinaryHashEncoder(**{**FAST, "nested_bits": nested}).fit(X[:20])
    before = fitted.embed(X[:50])
    params = fitted.get_params()
    with pytest.raises(ValueError, match=match):
        fitted.set_params(nested_bits=nested).fit(X[:20])
    fitted.set_params(**params)
    np.testing.assert_array_equal(fitted.embed(X[:50]), before)


def test_active_dims_within_the_shortest_prefix_is_fine(digits):
    X, _ = digits
    enc = BinaryHashEncoder(**{**FAST, "nested_bits": [4, 8], "active_dims": 4}, random_state=0)
    assert enc.fit(X[:100]).transform(X[:3]).shape == (3, 16)
    enc = BinaryHashEncoder(**{**FAST, "nested_bits": (4,), "projection": "sphere"})
    assert enc.fit(X[:100]).transform(X[:3]).shape == (3, 16)


def test_default_is_the_same_training_as_without_the_parameter(fitted, digits):
    X, _ = digits
    explicit = BinaryHashEncoder(**FAST, nested_bits=None, random_state=0).fit(X[:300])
    np.testing.assert_array_equal(explicit.embed(X), fitted.embed(X))
    np.testing.assert_array_equal(explicit.transform(X), fitted.transform(X))


def test_level_weights_are_proportional_to_length():
    np.testing.assert_allclose(level_weights([32, 64, 128]), [1 / 7, 2 / 7, 4 / 7])
    np.testing.assert_allclose(level_weights([64]), [1.0])


def test_each_term_is_the_length_weighted_sum_over_prefixes_with_auto_temperature_per_length():
    # terms without random draws can be recomputed level by level
    b = batch()
    g = torch.Generator().manual_seed(1)
    out = torch.tanh(torch.randn(len(b.inputs), 256, generator=g))
    nested = HashingLoss(settings(n_bits=256, nested_bits=(64, 128)), seed=0)(out, b)
    levels = [HashingLoss(settings(n_bits=p), seed=0)(out[:, :p], b) for p in (64, 128, 256)]
    for name in ("centroid", "anticollapse", "neighbor"):
        # weights 64 / 448, 128 / 448, 256 / 448: each bit counts once per length it is in
        expected = (lv[name] * p / 448 for lv, p in zip(levels, (64, 128, 256), strict=True))
        torch.testing.assert_close(nested[name], sum(expected))
    assert set(nested) == {*TERM_NAMES, "loss"}
    torch.testing.assert_close(nested["loss"], sum(nested[n] for n in TERM_NAMES))
    # "auto" is resolved per length: the full code's temperature for every prefix differs
    assert auto_temperature(256) < auto_temperature(128) < auto_temperature(64) == 0.1
    fixed = settings(n_bits=256, nested_bits=(64, 128), temperature=auto_temperature(256))
    assert not torch.allclose(HashingLoss(fixed, seed=0)(out, b)["neighbor"], nested["neighbor"])


def test_nested_fit_is_deterministic(digits):
    X, _ = digits
    params = {**FAST, "nested_bits": (8,)}
    a = BinaryHashEncoder(**params, random_state=0).fit(X[:300])
    b = BinaryHashEncoder(**params, random_state=0).fit(X[:300])
    c = BinaryHashEncoder(**params, random_state=1).fit(X[:300])
    np.testing.assert_array_equal(a.embed(X), b.embed(X))
    assert not np.array_equal(a.transform(X), c.transform(X))
    # and it is another training than the flat one
    flat = BinaryHashEncoder(**FAST, random_state=0).fit(X[:300])
    assert not np.array_equal(a.transform(X), flat.transform(X))
    assert set(TERM_NAMES) - {"centroid"} <= set(a.history_[-1])


def test_nested_partial_fit_and_save_load(digits, tmp_path):
    X, _ = digits
    enc = BinaryHashEncoder(**FAST, nested_bits=(8,), max_steps=6, random_state=0)
    enc.partial_fit(X[:300]).partial_fit(X[300:600])
    assert enc.n_steps_ == 4  # two batches of each chunk of 300 rows
    enc.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc")
    assert tuple(loaded.nested_bits) == (8,)
    np.testing.assert_array_equal(loaded.transform(X[:50]), enc.transform(X[:50]))


def prefix_recall(enc, X, n_bits, k=10, depth=50):
    """Recall of each row's k cosine neighbours among its ``depth`` nearest prefix codes."""
    codes = enc.transform(X)[:, :n_bits].astype(np.float32) * 2 - 1
    hamming = (n_bits - codes @ codes.T) / 2
    np.fill_diagonal(hamming, np.inf)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    true = np.argsort(-cos, axis=1)[:, :k]
    ranked = np.argsort(hamming, axis=1, kind="stable")[:, :depth]
    return np.mean([len(np.intersect1d(t, r)) for t, r in zip(true, ranked, strict=True)]) / k


def test_nested_prefix_retrieves_better_than_a_flat_codes_prefix(digits):
    X = digits[0][:800]
    params = dict(
        n_bits=64, hidden_layer_sizes=(64,), max_epochs=8, n_projections=32, random_state=0
    )
    flat = BinaryHashEncoder(**params).fit(X)
    nested = BinaryHashEncoder(**params, nested_bits=(16,)).fit(X)
    # measured: 0.81 against 0.71 (seed 0), 0.79 against 0.67 (seed 1)
    assert prefix_recall(nested, X, 16) > prefix_recall(flat, X, 16) + 0.05
    # and the full code stays about as good (0.966 against 0.971)
    assert prefix_recall(nested, X, 64) > prefix_recall(flat, X, 64) - 0.03


def test_auto_width_is_wider_for_codes_longer_than_64_bits_and_nested_ones(digits):
    X = digits[0][:100]
    params = dict(n_projections=8, max_steps=1, random_state=0)

    def width(**changes):
        enc = BinaryHashEncoder(**params, **changes).fit(X)
        widths = {v.shape for k, v in enc.module_state_.items() if k.endswith("weight")}
        assert (enc.hidden_layer_sizes_[0], X.shape[1]) in widths  # the network built
        return enc.hidden_layer_sizes_

    assert width(n_bits=64) == (256,)
    assert width(n_bits=128) == (2048,)
    assert width(n_bits=128, nested_bits=(32, 64)) == (4096,)  # one network, several lengths
    assert width(n_bits=64, nested_bits=(32,)) == (256,)
    assert width(n_bits=128, nested_bits=(32,), hidden_layer_sizes=(64,)) == (64,)


def test_auto_budget_doubles_for_codes_longer_than_64_bits(digits):
    X = digits[0][:100]  # one batch per pass
    params = dict(n_projections=8, max_epochs=3, random_state=0)

    def steps(**changes):
        return BinaryHashEncoder(**params, **changes).fit(X).n_steps_

    assert steps(n_bits=64) == 3
    assert steps(n_bits=128) == 6
    assert steps(n_bits=128, nested_bits=(32, 64)) == 6
    assert steps(n_bits=64, nested_bits=(32,)) == 3
    assert steps(n_bits=128, nested_bits=(32,), max_steps=4) == 4
    # partial_fit's "auto" budget: passes over max_samples rows, doubled alike
    enc = BinaryHashEncoder(**params, n_bits=128, nested_bits=(32,), max_samples=100)
    for _ in range(6):
        enc.partial_fit(X)
    with pytest.raises(ValueError, match=r"\(6 steps\) is spent"):
        enc.partial_fit(X)
