"""Property tests: every entry point of the encoder and the baselines, driven with bad input.

For generated bad arrays (NaN, infinity, values beyond float32, wrong widths,
wrong dimensions, no rows, strings, complex numbers) and bad parameter values,
each call must either raise a clear ``ValueError``/``TypeError`` (or the
``FloatingPointError`` of a diverged fit) naming the problem, or return the
correct result, and an estimator whose call failed must be exactly as before.
Kept fast: tiny data, one epoch, few examples.
"""

import copy
import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skhash import PCAITQ, BinaryHashEncoder, SimHash

N_FEATURES = 4
TINY = dict(n_bits=8, hidden_layer_sizes=(8,), max_epochs=1, n_projections=8, random_state=0)
FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
REFERENCE = np.random.default_rng(1).standard_normal((10, N_FEATURES))

# the message must name the problem
EXPECTED = {
    "nan": "NaN",
    "inf": "infinity",
    "big": "float32 range",
    "width": "features",
    "1d": "2D array",
    "3d": "dim",
    "empty": "0 sample",
    "str": "string|could not convert",
    "complex": "[Cc]omplex",
}


@functools.cache
def fitted(name):
    X = np.random.default_rng(0).standard_normal((24, N_FEATURES))
    if name == "encoder":
        return BinaryHashEncoder(**TINY).fit(X)
    return {"simhash": SimHash, "pcaitq": PCAITQ}[name](n_bits=8, random_state=0).fit(X)


def snapshot(est):
    """What a caller can observe: the fitted attributes and the outputs."""
    attrs = {k: id(v) for k, v in vars(est).items() if k.endswith("_")}
    out = est.embed(REFERENCE) if hasattr(est, "embed") else est.transform(REFERENCE)
    arrays_ = {k: v.tobytes() for k, v in vars(est).items() if isinstance(v, np.ndarray)}
    return attrs, out.tobytes(), arrays_


@st.composite
def bad_arrays(draw):
    kind = draw(st.sampled_from(sorted(EXPECTED)))
    n = draw(st.integers(2, 6))
    X = draw(arrays(np.float64, (n, N_FEATURES), elements=st.floats(-1e3, 1e3, allow_nan=False)))
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, N_FEATURES - 1))
    if kind == "nan":
        X[i, j] = np.nan
    elif kind == "inf":
        X[i, j] = draw(st.sampled_from([np.inf, -np.inf]))
    elif kind == "big":
        X[i, j] = draw(st.sampled_from([1e39, -1e300, 4e38]))
    elif kind == "width":
        X = X[:, : draw(st.sampled_from([1, 2, 3]))] if draw(st.booleans()) else np.hstack([X, X])
    elif kind == "1d":
        X = X[:, 0]
    elif kind == "3d":
        X = X[:, :, None]
    elif kind == "empty":
        X = X[:0]
    elif kind == "str":
        X = X.astype(str)
        X[i, j] = "abc"
    elif kind == "complex":
        X = X + 1j
    return kind, X


def check_bad_call(est, call, kind, X, correct=None):
    """``call()`` raises naming the problem, or returns ``correct(X)``; state unchanged."""
    before = snapshot(est)
    try:
        result = call()
    except (ValueError, TypeError) as exc:
        assert re.search(EXPECTED[kind], str(exc)), f"{kind}: {exc}"
    else:
        assert correct is not None, f"{kind} accepted"
        np.testing.assert_array_equal(result, correct(X))
    assert snapshot(est) == before


def linear_codes(est):
    return lambda X: ((np.asarray(X, dtype=np.float64) - est.mean_) @ est.projection_ > 0).astype(
        np.uint8
    )


@FEW
@given(case=bad_arrays(), method=st.sampled_from(["transform", "packbits", "embed"]))
def test_encoder_inference_rejects_bad_arrays(case, method):
    kind, X = case
    enc = fitted("encoder")
    check_bad_call(enc, lambda: getattr(enc, method)(X), kind, X)


def linear_projections(est):
    return lambda X: (np.asarray(X, dtype=np.float64) - est.mean_) @ est.projection_


@FEW
@given(
    case=bad_arrays(),
    name=st.sampled_from(["simhash", "pcaitq"]),
    method=st.sampled_from(["transform", "embed"]),
)
def test_baseline_transform_rejects_bad_arrays(case, name, method):
    kind, X = case
    est = fitted(name)
    # baselines compute in float64: values beyond float32 are valid input there
    expected = {"transform": linear_codes, "embed": linear_projections}[method]
    correct = expected(est) if kind == "big" else None
    check_bad_call(est, lambda: getattr(est, method)(X), kind, X, correct)


@FEW
@given(case=bad_arrays(), name=st.sampled_from(["encoder", "simhash", "pcaitq"]))
def test_refit_on_bad_arrays_keeps_the_previous_state(case, name):
    kind, X = case
    est = copy.copy(fitted(name))
    if kind in ("width", "big") and name != "encoder":
        return  # a valid refit for the baselines (other width, float64 values)
    if kind == "width":
        return  # a valid refit for the encoder too
    check_bad_call(est, lambda: est.fit(X), kind, X)


BAD_VALUES = [-1, 0, 1, 2.5, np.nan, np.inf, -np.inf, 1e30, "auto", "x", None, True, (), (0,)]


@FEW
@given(
    name=st.sampled_from(sorted(BinaryHashEncoder._parameter_constraints)),
    value=st.sampled_from(BAD_VALUES),
)
def test_encoder_parameters_are_rejected_by_name_or_work(name, value):
    enc = copy.copy(fitted("encoder"))
    X = np.random.default_rng(2).standard_normal((12, N_FEATURES))
    before = snapshot(enc)
    enc.set_params(**{name: value})
    try:
        enc.fit(X)
    except (ValueError, TypeError, FloatingPointError) as exc:
        assert name in str(exc), f"{name}={value!r}: {exc}"
        assert snapshot(enc) == before
    else:
        codes = enc.transform(X)
        assert codes.shape == (12, enc.n_bits) and set(np.unique(codes)) <= {0, 1}


@FEW
@given(
    name=st.sampled_from(["simhash", "pcaitq"]),
    param=st.sampled_from(["n_bits", "n_iter", "random_state"]),
    value=st.sampled_from(BAD_VALUES),
)
def test_baseline_parameters_are_rejected_by_name_or_work(name, param, value):
    est = copy.copy(fitted(name))
    if param not in est.get_params():
        return
    X = np.random.default_rng(2).standard_normal((12, N_FEATURES))
    before = snapshot(est)
    est.set_params(**{param: value})
    try:
        est.fit(X)
    except ValueError as exc:
        assert f"'{param}' parameter of {type(est).__name__}" in str(exc)
        assert snapshot(est) == before
    else:
        np.testing.assert_array_equal(est.transform(X), linear_codes(est)(X))


@FEW
@given(batch_size=st.sampled_from([-1, 0, 1.5, np.nan, "8", None, True]))
def test_embed_rejects_bad_batch_sizes(batch_size):
    enc = fitted("encoder")
    before = snapshot(enc)
    with pytest.raises(ValueError, match="'batch_size' parameter"):
        enc.embed(REFERENCE, batch_size=batch_size)
    assert snapshot(enc) == before


@FEW
@given(
    y=st.sampled_from(
        [np.linspace(0, 1, 24), np.arange(23), np.zeros((24, 2)), np.array([np.nan] * 24)]
    )
)
def test_encoder_rejects_bad_labels(y):
    enc = copy.copy(fitted("encoder"))
    X = np.random.default_rng(0).standard_normal((24, N_FEATURES))
    before = snapshot(enc)
    with pytest.raises(ValueError, match="continuous|inconsistent|NaN|1d|column"):
        enc.fit(X, y)
    assert snapshot(enc) == before


def test_divergence_in_the_last_step_is_caught_by_fit():
    # 12 rows: the one step diverges after its loss and outputs were checked
    enc = copy.copy(fitted("encoder"))
    X = np.random.default_rng(2).standard_normal((12, N_FEATURES))
    before = snapshot(enc)
    enc.set_params(lr=1e30)
    with pytest.raises(FloatingPointError, match="after the last step.*Lower lr"):
        enc.fit(X)
    assert snapshot(enc) == before
