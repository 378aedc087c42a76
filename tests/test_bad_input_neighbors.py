"""Bad input to HammingNeighbors and HammingKNeighborsClassifier (issue 11).

Every bad input gives a clear error (ValueError, TypeError or NotFittedError
naming the problem) or a correct result, and an operation that fails leaves
the estimator exactly as it was.
"""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from sklearn.exceptions import NotFittedError

import skhash._neighbors._base as neighbors_base
from skhash import HammingKNeighborsClassifier, HammingNeighbors
from tests.neighbors_helpers import reference_knn

CLEAR = (ValueError, TypeError, NotFittedError)
ESTIMATORS = [HammingNeighbors, HammingKNeighborsClassifier]
RNG = np.random.default_rng(0)
BITS = RNG.integers(0, 2, (10, 16), dtype=np.uint8)
LABELS = np.arange(10) % 2


def fit(estimator, X=BITS, y=LABELS):
    if isinstance(estimator, HammingKNeighborsClassifier):
        return estimator.fit(X, y)
    return estimator.fit(X)


def snapshot(estimator):
    """Every attribute, with a copy of array values and the object's identity."""
    return {
        key: (id(value), copy.deepcopy(value) if isinstance(value, np.ndarray) else value)
        for key, value in vars(estimator).items()
    }


def assert_unchanged(estimator, before):
    after = snapshot(estimator)
    assert after.keys() == before.keys()
    for key, (identity, value) in before.items():
        assert after[key][0] == identity, key
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key][1], value)


@pytest.fixture(params=ESTIMATORS, ids=lambda cls: cls.__name__)
def fitted_small(request):
    return fit(request.param(n_neighbors=3)), BITS


# Parameters


BAD_PARAMS = [
    ("n_neighbors", [0, -1, 2.5, True, "5", None]),
    ("algorithm", ["kd_tree", None, 1]),
    ("packed", [1, "yes", None]),
    ("binarize", [np.nan, np.inf, "0.5", True]),
    ("n_neighbors_graph", [1, 0, 2.5, None]),
    ("ef_search", [0, "fast", 2.5, None]),
    ("n_trees", [-1, 0, 1.5, "auto"]),
    ("n_iters", [-1, 0, 1.5]),
    ("n_jobs", [0, 1.5, "all"]),
    ("random_state", ["seed", 1.5]),
]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("name, values", BAD_PARAMS, ids=[name for name, _ in BAD_PARAMS])
def test_bad_parameters_are_named_and_change_nothing(cls, name, values):
    good = fit(cls(n_neighbors=3))
    before = snapshot(good)
    for value in values:
        with pytest.raises(ValueError, match=f"'{name}' parameter of {cls.__name__}"):
            fit(cls(**{name: value}))
        with pytest.raises(ValueError, match=f"'{name}' parameter"):
            fit(good.set_params(**{name: value}))
        good.set_params(**{name: cls().get_params()[name]}).set_params(n_neighbors=3)
        assert_unchanged(good, before)


def test_nndescent_with_negative_trees_is_rejected_before_building():
    with pytest.raises(ValueError, match="'n_trees' parameter.*range \\[1, inf\\)"):
        HammingNeighbors(algorithm="nndescent", n_trees=-1).fit(BITS)


@pytest.mark.parametrize("name, value", [("ef_search", 0), ("n_jobs", 0), ("n_neighbors", 0)])
def test_query_parameters_set_after_fit_are_checked(fitted_small, name, value):
    nn, bits = fitted_small
    broken = copy.copy(nn).set_params(**{name: value})
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        broken.kneighbors(bits)


def test_queries_check_only_the_parameters_they_read():
    # as scikit-learn's NearestNeighbors: a parameter set after fit that a query does
    # not read (n_neighbors for a radius query or an explicit k) does not fail it
    nn = HammingNeighbors(n_neighbors=3).fit(BITS)
    expected = nn.radius_neighbors(BITS, radius=5)
    k_expected = nn.kneighbors(BITS, n_neighbors=2)
    nn.set_params(n_neighbors=0, ef_search=0)
    for result, reference in zip(nn.radius_neighbors(BITS, radius=5), expected, strict=True):
        for row, reference_row in zip(result, reference, strict=True):
            np.testing.assert_array_equal(row, reference_row)
    assert nn.radius_neighbors_graph(radius=5).shape == (10, 10)
    with pytest.raises(ValueError, match="'ef_search' parameter"):
        nn.kneighbors(BITS, n_neighbors=2)
    nn.set_params(ef_search="auto")
    for result, reference in zip(nn.kneighbors(BITS, n_neighbors=2), k_expected, strict=True):
        np.testing.assert_array_equal(result, reference)
    with pytest.raises(ValueError, match="'n_neighbors' parameter"):
        nn.kneighbors(BITS)
    with pytest.raises(ValueError, match="'n_jobs' parameter"):
        nn.set_params(n_neighbors=3, n_jobs=0).radius_neighbors(BITS, radius=5)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_packed_changed_after_fit_is_an_error_not_wrong_neighbours(cls):
    # 8 bits are one byte either way: queries read with the other format would be
    # compared with the fitted codes without any error
    bits = BITS[:, :8]
    unpacked = fit(cls(n_neighbors=3), bits)
    unpacked.set_params(packed=True)
    with pytest.raises(ValueError, match="packed=True.*fitted with packed=False"):
        unpacked.kneighbors(bits)
    packed = fit(cls(n_neighbors=3, packed=True), np.packbits(bits, axis=1))
    packed.set_params(packed=False)
    with pytest.raises(ValueError, match="packed=False.*fitted with packed=True"):
        packed.kneighbors(bits[:, :1])
    packed.set_params(packed=True, binarize=0.5)
    with pytest.raises(ValueError, match="'binarize' parameter must be None when packed=True"):
        packed.kneighbors(np.packbits(bits, axis=1))
    # the fitted format still answers, and None queries read no format
    packed.set_params(binarize=None)
    assert packed.kneighbors(np.packbits(bits, axis=1))[1].shape == (10, 3)
    assert unpacked.kneighbors()[1].shape == (10, 3)


def test_binarize_with_packed_is_rejected():
    with pytest.raises(ValueError, match="'binarize' parameter must be None when packed=True"):
        HammingNeighbors(packed=True, binarize=0.5).fit([[0, 1]])


def test_constructor_arguments_are_keyword_only():
    for cls in ESTIMATORS:
        with pytest.raises(TypeError):
            cls(3)


# Data


def test_non_binary_values_raise():
    with pytest.raises(ValueError, match="only 0/1 bits"):
        HammingNeighbors().fit([[0, 1, 2], [1, 0, 0]])
    with pytest.raises(ValueError, match="only 0/1 bits"):
        HammingNeighbors().fit([[0.0, 0.5], [1.0, 0.0]])


def test_packed_input_checks():
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        HammingNeighbors(packed=True).fit([[0, 256], [1, 2]])
    with pytest.raises(ValueError, match="integer bytes"):
        HammingNeighbors(packed=True).fit([[0.0, 1.0], [1.0, 2.0]])


def test_width_mismatch_names_both_widths(fitted_small):
    nn, bits = fitted_small
    with pytest.raises(ValueError, match="X has 8 features.*expecting 16 features"):
        nn.kneighbors(bits[:, :8])
    if isinstance(nn, HammingNeighbors):
        with pytest.raises(ValueError, match="X has 8 features.*expecting 16 features"):
            nn.radius_neighbors(bits[:, :8], radius=1)
    else:
        with pytest.raises(ValueError, match="X has 8 features.*expecting 16 features"):
            nn.predict(bits[:, :8])


def test_n_neighbors_checks(fitted_small):
    nn, bits = fitted_small
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        nn.kneighbors(bits, n_neighbors=11)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        nn.kneighbors(n_neighbors=10)
    with pytest.raises(ValueError, match="n_neighbors > 0"):
        nn.kneighbors(bits, n_neighbors=0)
    with pytest.raises(TypeError, match="n_neighbors must be an int"):
        nn.kneighbors(bits, n_neighbors=2.5)
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        fit(copy.copy(nn).set_params(n_neighbors=11)).kneighbors(bits)


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        HammingNeighbors().kneighbors([[0, 1]])
    with pytest.raises(NotFittedError):
        HammingNeighbors().radius_neighbors([[0, 1]], radius=1)
    with pytest.raises(NotFittedError):
        HammingKNeighborsClassifier().predict([[0, 1]])
    with pytest.raises(NotFittedError):
        HammingKNeighborsClassifier().predict_proba([[0, 1]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_empty_and_non_finite_queries_raise(fitted_small, bad):
    nn, bits = fitted_small
    with pytest.raises(ValueError, match="0 sample"):
        nn.kneighbors(bits[:0])
    query = bits[:1].astype(float)
    query[0, 0] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        nn.kneighbors(query)
    with pytest.raises(ValueError, match="NaN|infinity"):
        HammingNeighbors(binarize=0.0).fit(query)


def test_values_beyond_float32_are_bits_or_errors():
    big = np.where(BITS == 1, 1e39, -1e39)  # finite in float64, inf in float32
    nn = HammingNeighbors(binarize=0.0, n_neighbors=3).fit(big)
    np.testing.assert_array_equal(nn.codes_, np.packbits(BITS, axis=1))
    with pytest.raises(ValueError, match="only 0/1 bits"):
        HammingNeighbors().fit(big)


def test_sparse_input_raises_type_error(fitted_small):
    nn, bits = fitted_small
    with pytest.raises(TypeError, match="[Ss]parse"):
        HammingNeighbors().fit(csr_matrix(bits))
    with pytest.raises(TypeError, match="[Ss]parse"):
        nn.kneighbors(csr_matrix(bits))


def test_bad_query_arguments(fitted_small):
    nn, bits = fitted_small
    with pytest.raises(TypeError, match="return_distance must be a bool"):
        nn.kneighbors(bits, return_distance="yes")
    with pytest.raises(ValueError, match="'mode' parameter"):
        nn.kneighbors_graph(mode="weights")
    if isinstance(nn, HammingNeighbors):
        with pytest.raises(TypeError, match="needs a radius"):
            nn.radius_neighbors(bits)
        for radius in (-1, np.nan, True, "3"):
            with pytest.raises(ValueError, match="radius must be"):
                nn.radius_neighbors(bits, radius=radius)


def test_classifier_rejects_continuous_targets():
    with pytest.raises(ValueError, match="Unknown label type"):
        HammingKNeighborsClassifier().fit(BITS, np.linspace(0, 1, 10))


# Transactional fit


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_failed_refit_keeps_the_previous_index(cls):
    estimator = fit(cls(n_neighbors=3))
    before = snapshot(estimator)
    expected = estimator.kneighbors(BITS[:4])
    for bad in (BITS[:, :8] * 2, np.full((10, 16), np.nan), BITS[:0], csr_matrix(BITS)):
        with pytest.raises(CLEAR):
            fit(estimator, bad)
        assert_unchanged(estimator, before)
    for result, reference in zip(estimator.kneighbors(BITS[:4]), expected, strict=True):
        np.testing.assert_array_equal(result, reference)


def test_failed_first_fit_leaves_the_estimator_unfitted():
    nn = HammingNeighbors()
    with pytest.raises(ValueError):
        nn.fit([[0, 2]])
    assert vars(nn) == vars(HammingNeighbors())
    with pytest.raises(NotFittedError):
        nn.kneighbors([[0, 1]])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_interrupted_graph_build_keeps_the_previous_index(cls, monkeypatch):
    codes = RNG.integers(0, 2, (200, 32), dtype=np.uint8)
    estimator = fit(cls(n_neighbors=3, algorithm="nndescent", random_state=0), codes, codes[:, 0])
    assert estimator.fit_method_ == "nndescent"
    before = snapshot(estimator)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(neighbors_base, "build_search_graph", interrupted)
    other = RNG.integers(0, 2, (100, 32), dtype=np.uint8)
    with pytest.raises(KeyboardInterrupt):
        fit(estimator, other, other[:, 0])
    assert_unchanged(estimator, before)
    assert estimator.n_samples_fit_ == 200


def test_queries_do_not_change_the_estimator(fitted_small):
    nn, bits = fitted_small
    before = snapshot(nn)
    nn.kneighbors()
    nn.kneighbors(bits, n_neighbors=2)
    nn.kneighbors_graph(bits)
    with pytest.raises(ValueError):
        nn.kneighbors(bits[:, :8])
    if isinstance(nn, HammingNeighbors):
        nn.radius_neighbors(bits, radius=3)
        nn.radius_neighbors_graph(radius=2)
    else:
        nn.predict(bits)
        nn.predict_proba()
        nn.score(bits, LABELS)
    assert_unchanged(nn, before)


# Generated bad input

DTYPES = ["float64", "float32", "int8", "int64", "uint8", "bool", "complex128", "U1", "object"]
VALUES = [0, 1, 2, -1, 0.5, np.nan, np.inf, -np.inf, 1e39, 255, 256]


@st.composite
def arrays(draw):
    """Small arrays of any rank, mostly 2-D, with a mix of good and bad values."""
    ndim = draw(st.sampled_from([2, 2, 2, 1, 3]))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    if ndim == 2 and draw(st.booleans()):
        shape = (draw(st.integers(0, 5)), 16)  # right width, maybe wrong values
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3))
    flat = np.resize(np.array(values, dtype=object), int(np.prod(shape)))
    with np.errstate(all="ignore"):
        try:
            return np.array(flat.reshape(shape).tolist(), dtype=dtype).reshape(shape)
        except (ValueError, OverflowError, TypeError):
            return flat.reshape(shape)


def as_bits_or_none(X):
    """The 0/1 matrix ``X`` stands for, or None if it is not one."""
    if np.iscomplexobj(X):
        return None  # scikit-learn rejects complex data
    try:
        values = np.asarray(X, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if values.ndim != 2 or values.shape[0] == 0 or not np.isin(values, (0, 1)).all():
        return None
    return values.astype(np.uint8)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(X=arrays(), cls=st.sampled_from(ESTIMATORS))
def test_generated_fit_input(X, cls):
    estimator = fit(cls(n_neighbors=1))
    before = snapshot(estimator)
    bits = as_bits_or_none(X)
    try:
        fit(estimator, X, np.arange(len(X)) % 2 if np.ndim(X) else None)
    except CLEAR:
        assert_unchanged(estimator, before)
        return
    # accepted: exactly the 0/1 matrices, packed as np.packbits does
    assert bits is not None
    np.testing.assert_array_equal(estimator.codes_, np.packbits(bits, axis=1))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(X=arrays(), cls=st.sampled_from(ESTIMATORS), k=st.integers(-1, 12))
def test_generated_queries(X, cls, k):
    estimator = fit(cls(n_neighbors=3))
    before = snapshot(estimator)
    bits = as_bits_or_none(X)
    try:
        distances, indices = estimator.kneighbors(X, n_neighbors=k)
    except CLEAR:
        assert_unchanged(estimator, before)
    else:
        assert bits is not None and bits.shape[1] == 16 and 1 <= k <= 10
        ref_dist, ref_ind = reference_knn(bits, BITS, k)
        np.testing.assert_array_equal(distances, ref_dist)
        np.testing.assert_array_equal(indices, ref_ind)
    method = (
        estimator.predict if cls is HammingKNeighborsClassifier else estimator.radius_neighbors
    )
    try:
        method(X) if cls is HammingKNeighborsClassifier else method(X, radius=k)
    except CLEAR:
        assert_unchanged(estimator, before)
    else:
        assert bits is not None and bits.shape[1] == 16


def test_interrupted_upper_layer_build_keeps_the_previous_index(monkeypatch):
    codes = RNG.integers(0, 2, (400, 32), dtype=np.uint8)
    monkeypatch.setattr(neighbors_base, "_UPPER_LAYER_MIN_SAMPLES", 100)
    nn = HammingNeighbors(n_neighbors=3, algorithm="nndescent", random_state=0).fit(codes)
    assert nn.upper_rows_ is not None
    before = snapshot(nn)
    build = neighbors_base.build_search_graph
    calls = []

    def interrupted_second_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the upper layer's graph
            raise KeyboardInterrupt
        return build(*args, **kwargs)

    monkeypatch.setattr(neighbors_base, "build_search_graph", interrupted_second_call)
    with pytest.raises(KeyboardInterrupt):
        nn.fit(RNG.integers(0, 2, (300, 32), dtype=np.uint8))
    assert len(calls) == 2
    assert_unchanged(nn, before)
    assert nn.n_samples_fit_ == 400
