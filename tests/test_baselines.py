"""SimHash and PCA-ITQ: declared parameters, transactional fit, what the codes are."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skhash import PCAITQ, SimHash


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((80, 6))


@pytest.mark.parametrize(
    "cls, params, name",
    [
        (SimHash, {"n_bits": True}, "n_bits"),
        (SimHash, {"n_bits": 0}, "n_bits"),
        (SimHash, {"n_bits": 2.0}, "n_bits"),
        (SimHash, {"random_state": "seed"}, "random_state"),
        (PCAITQ, {"n_iter": -1}, "n_iter"),
        (PCAITQ, {"n_iter": 1.5}, "n_iter"),
        (PCAITQ, {"n_bits": -3}, "n_bits"),
    ],
)
def test_bad_parameters_name_the_parameter(cls, params, name, X):
    with pytest.raises(ValueError, match=f"'{name}' parameter of {cls.__name__} must be"):
        cls(**params).fit(X)


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_keyword_only_constructor(cls):
    with pytest.raises(TypeError):
        cls(16)


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_failed_refit_keeps_the_previous_state(cls, X):
    est = cls(n_bits=8, random_state=0).fit(X)
    before = (est.mean_.copy(), est.projection_.copy(), est.transform(X))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    with pytest.raises(ValueError, match="'n_bits'"):
        est.set_params(n_bits=0).fit(X[:, :3])
    est.set_params(n_bits=8)
    np.testing.assert_array_equal(est.mean_, before[0])
    np.testing.assert_array_equal(est.projection_, before[1])
    np.testing.assert_array_equal(est.transform(X), before[2])
    assert est.n_features_in_ == 6


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_feature_names_out_needs_fit(cls, X):
    with pytest.raises(NotFittedError):
        cls().get_feature_names_out()
    names = cls(n_bits=3).fit(X).get_feature_names_out()
    assert list(names) == [f"{cls.__name__.lower()}{i}" for i in range(3)]


def test_simhash_codes_are_signs_of_centred_projections(X):
    est = SimHash(n_bits=5, random_state=0).fit(X)
    expected = ((X - X.mean(0)) @ est.projection_ > 0).astype(np.uint8)
    np.testing.assert_array_equal(est.transform(X), expected)


def test_itq_rotation_is_orthogonal_and_lowers_the_quantisation_error(X):
    est = PCAITQ(n_bits=4, n_iter=50, random_state=0).fit(X)
    none = PCAITQ(n_bits=4, n_iter=0, random_state=0).fit(X)

    def quantisation_error(e):
        V = (X - e.mean_) @ e.projection_
        return ((np.sign(V) - V / np.abs(V).mean()) ** 2).mean()

    # the basis times an orthogonal rotation: projection columns keep the basis' Gram matrix
    gram = est.projection_.T @ est.projection_
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(gram)), np.ones(4), atol=1e-10)
    assert quantisation_error(est) < quantisation_error(none)


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_same_seed_same_codes(cls, X):
    a = cls(n_bits=8, random_state=3).fit(X).transform(X)
    np.testing.assert_array_equal(a, cls(n_bits=8, random_state=3).fit(X).transform(X))


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_codes_are_the_signs_of_embed(cls, dtype, X):
    est = cls(n_bits=12, random_state=0).fit(X.astype(dtype))
    V = est.embed(X.astype(dtype))
    assert V.shape == (len(X), 12) and V.dtype == dtype
    np.testing.assert_allclose(V, (X.astype(dtype) - est.mean_) @ est.projection_, rtol=1e-6)
    np.testing.assert_array_equal(est.transform(X.astype(dtype)), (V > 0).astype(np.uint8))
    with pytest.raises(NotFittedError):
        cls().embed(X)


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_large_float32_rows_fit(cls):
    # a float32 sum of these rows overflows: the mean is taken in float64
    Z = np.random.default_rng(0).standard_normal((300, 6))
    X = (Z * 1e37 + 1e37).astype(np.float32)
    enc = cls(n_bits=8, random_state=0).fit(X)
    assert np.isfinite(enc.mean_).all() and enc.mean_.dtype == np.float32
    reference = cls(n_bits=8, random_state=0).fit(Z * 1e37 + 1e37)
    assert np.mean(enc.transform(X) == reference.transform(Z * 1e37 + 1e37)) > 0.95


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_rows_near_the_float64_limit_get_the_codes_of_scaled_rows(cls):
    # codes are signs of centred projections: rows times a power of two get the same
    # codes, though their sum (the mean) and products overflow float64
    Z = 1 + np.random.default_rng(0).standard_normal((500, 6))
    big = Z * 2.0**1016  # up to ~3e306
    reference = cls(n_bits=8, random_state=0).fit(Z)
    enc = cls(n_bits=8, random_state=0).fit(big)
    assert np.isfinite(enc.mean_).all() and np.isfinite(enc.projection_).all()
    np.testing.assert_array_equal(enc.mean_, reference.mean_ * 2.0**1016)
    np.testing.assert_array_equal(enc.transform(big), reference.transform(Z))
    V = enc.embed(big)
    assert np.isfinite(V).all()
    np.testing.assert_allclose(V, reference.embed(Z) * 2.0**1016, rtol=1e-10)


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
def test_embed_overflowing_the_dtype_is_infinite_not_nan(cls):
    # rows far from the mean project beyond float32: +-inf keeps the sign, NaN would
    # make every such bit 0
    Z = np.random.default_rng(1).standard_normal((200, 6))
    X = (Z * 2.0**126).astype(np.float32)
    enc = cls(n_bits=8, random_state=0).fit(X)
    V = enc.embed(X)
    assert V.dtype == np.float32 and not np.isnan(V).any()
    reference = (X.astype(np.float64) - enc.mean_) @ enc.projection_.astype(np.float64)
    np.testing.assert_array_equal(np.sign(V), np.sign(reference))
    np.testing.assert_array_equal(enc.transform(X), (reference > 0).astype(np.uint8))
