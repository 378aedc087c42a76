"""Property tests: every entry point of HashIndex, driven with bad input.

For generated bad arrays (NaN, infinity, values beyond float32, wrong widths and
dimensions, no rows, strings, complex numbers), bad ids (repeated, already
indexed, unknown, not integers, wrong length) and bad parameter values, each
call must raise a clear ``ValueError``/``TypeError`` (``KeyError`` for unknown ids)
naming the problem, and
the index must be exactly as before: same ids, codes, vectors and answers.
Kept fast: SimHash codes, tiny data, few examples.
"""

import copy
import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skhash import HashIndex, SimHash
from skhash._validation import validate_parameter_constraints
from tests.test_bad_input import EXPECTED, N_FEATURES, bad_arrays

FEW = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
QUERIES = np.random.default_rng(7).standard_normal((3, N_FEATURES))


@functools.cache
def _fitted(rescore):
    X = np.random.default_rng(0).standard_normal((30, N_FEATURES))
    index = HashIndex(encoder=SimHash(n_bits=16, random_state=0), rescore=rescore)
    return index.fit(X, ids=np.arange(30) * 10)


def fitted(rescore="float16"):
    # a shallow copy shares the immutable state: a failed call must not replace it
    return copy.copy(_fitted(rescore))


def snapshot(index):
    """Everything a caller can observe of a fitted index."""
    distances, ids = index.kneighbors(QUERIES, n_neighbors=3)
    vectors = None if index.vectors_ is None else np.asarray(index.vectors_).tobytes()
    return (
        index.ids_.tobytes(),
        index.codes_.tobytes(),
        vectors,
        distances.tobytes(),
        ids.tobytes(),
        {k: id(v) for k, v in vars(index).items() if k.endswith("_")},
    )


def check_rejected(index, call, pattern):
    before = snapshot(index)
    with pytest.raises((ValueError, TypeError, KeyError)) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)
    assert snapshot(index) == before


@FEW
@given(case=bad_arrays(), method=st.sampled_from(["kneighbors", "add", "fit"]))
def test_bad_arrays_are_rejected_and_change_nothing(case, method):
    kind, X = case
    index = fitted()
    if method == "fit" and kind == "width":
        return  # another width is a valid refit
    calls = {
        "kneighbors": lambda: index.kneighbors(X, n_neighbors=1),
        "add": lambda: index.add(X, ids=10_000 + np.arange(len(np.atleast_1d(X)))),
        "fit": lambda: index.fit(X),
    }
    # scikit-learn's own message for values beyond float32 names the dtype
    pattern = "float32" if kind == "big" else EXPECTED[kind]
    check_rejected(index, calls[method], pattern)


BAD_IDS = {
    "repeated": (lambda n: np.full(n, 5000, dtype=np.int64), "unique"),
    "taken": (lambda n: np.arange(n) * 10, "already in the index"),
    "float": (lambda n: np.arange(n) + 0.5, "integers"),
    "length": (lambda n: np.arange(n + 1) + 1000, "1-D array of"),
    "2d": (lambda n: (np.arange(n) + 1000)[:, None], "1-D array of"),
    "too big": (lambda n: np.full(n, 2**64 - 1, dtype=np.uint64), "int64|unique"),
}


@FEW
@given(kind=st.sampled_from(sorted(BAD_IDS)), n=st.integers(2, 4))
def test_add_rejects_bad_ids(kind, n):
    make, pattern = BAD_IDS[kind]
    index = fitted()
    X = np.random.default_rng(n).standard_normal((n, N_FEATURES))
    check_rejected(index, lambda: index.add(X, ids=make(n)), pattern)


@pytest.mark.parametrize("method", ["add", "remove"])
def test_python_ints_beyond_int64_are_named_as_such(method):
    # numpy holds [2**64, 1] as objects: the message is their range, not their dtype
    index = fitted()
    X = np.random.default_rng(0).standard_normal((2, N_FEATURES))
    call = {"add": lambda ids: index.add(X, ids=ids), "remove": index.remove}[method]
    for ids in ([2**64, 1], [-(2**63) - 1, 1]):
        check_rejected(index, lambda ids=ids: call(ids), r"fit in int64; got -?\d+")


def test_ids_held_as_python_int_objects_are_ids():
    index = fitted()
    X = np.random.default_rng(0).standard_normal((2, N_FEATURES))
    index.add(X, ids=np.array([7, 2**62], dtype=object)).remove(np.array([7], dtype=object))
    assert index.ids_[-1] == 2**62 and 7 not in index.ids_


@FEW
@given(
    ids=st.sampled_from(
        [np.array([5]), np.array([0, 5]), np.array([0.0]), np.array(["a"]), np.array([[0]])]
    )
)
def test_remove_rejects_unknown_or_malformed_ids(ids):
    index = fitted()
    check_rejected(index, lambda: index.remove(ids), r"not in the index|integer|1-D|ids")


@FEW
@given(n_neighbors=st.sampled_from([0, -1, 1.5, np.nan, "3", None, True, 31]))
def test_kneighbors_rejects_bad_n_neighbors(n_neighbors):
    index = fitted()
    check_rejected(
        index, lambda: index.kneighbors(QUERIES, n_neighbors=n_neighbors), "n_neighbors"
    )


@FEW
@given(
    param=st.sampled_from(["n_candidates", "rescore", "algorithm", "asymmetric", "n_jobs"]),
    value=st.sampled_from([-1, 0, 0.5, np.nan, np.inf, "x", (), True]),
)
def test_bad_parameters_name_themselves_and_change_nothing(param, value):
    index = fitted()
    if param not in index.get_params():
        return
    X = np.random.default_rng(3).standard_normal((12, N_FEATURES))
    before = snapshot(index)
    index.set_params(**{param: value})
    try:
        index.fit(X)
    except (ValueError, TypeError) as exc:
        assert param in str(exc), f"{param}={value!r}: {exc}"
        index.set_params(**{param: _fitted("float16").get_params()[param]})
        assert snapshot(index) == before
    else:
        # accepted values must give a working index
        distances, ids = index.kneighbors(X[:2], n_neighbors=2)
        assert set(np.unique(ids)) <= set(index.ids_.tolist())
        assert np.all(np.diff(distances, axis=1) >= 0)


@FEW
@given(
    param=st.sampled_from(["n_candidates", "asymmetric", "n_jobs"]),
    value=st.sampled_from([0, 0.5, np.nan, "x", "yes", 1.5, None]),
    rescore=st.sampled_from(["float16", None]),
)
def test_parameters_set_after_fit_are_checked_by_the_query(param, value, rescore):
    index = fitted(rescore)
    try:  # an allowed value (n_candidates=1.5, n_jobs=None) must give a working query
        validate_parameter_constraints(
            {param: HashIndex._parameter_constraints[param]}, {param: value}, "HashIndex"
        )
        allowed = True
    except ValueError:
        allowed = False
    index.set_params(**{param: value})
    if allowed:
        distances, ids = index.kneighbors(QUERIES, n_neighbors=2)
        assert np.all(np.diff(distances, axis=1) >= 0)
    else:
        with pytest.raises(ValueError, match=f"The '{param}' parameter of HashIndex"):
            index.kneighbors(QUERIES, n_neighbors=2)
