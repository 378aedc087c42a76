"""Failures that docs/guarantees.md promises to survive, injected by monkeypatching.

``MemoryError`` and Ctrl-C (``KeyboardInterrupt``) raised at a chosen step of
training or of a graph build: the exception propagates and a fitted estimator
keeps its previous state whole (also when Ctrl-C lands in the commit of the new
state). Also the documented behaviour of plotting an encoder without a training
history and of an encoder shared with a HashIndex.
"""

import copy
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skhash._knn_graph
from skhash import BinaryHashEncoder, HammingKNeighborsClassifier, HammingNeighbors, HashIndex
from skhash._neighbors import _base as neighbors_base
from skhash.callbacks import CosineLRSchedule

K = dict(
    n_bits=8,
    hidden_layer_sizes=(16,),
    max_epochs=2,
    n_projections=16,
    random_state=0,
    batch_size=16,
)
ERRORS = [MemoryError, KeyboardInterrupt]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((60, 6))


@pytest.fixture(scope="module")
def fitted(X):
    return BinaryHashEncoder(**K).fit(X)


@pytest.fixture(scope="module")
def trained(X):
    """An encoder trained by two partial_fit calls (optimizer state, cached chunk graphs)."""
    enc = BinaryHashEncoder(**K, max_steps=100)
    enc.partial_fit(X[:30])
    enc.partial_fit(X[30:])
    assert len(enc._chunk_graphs) == 2  # each chunk's graph kept for the next pass
    return enc


def _tensors(value):
    """Bytes of the tensors (and plain values) in a nested optimizer state."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().tobytes()
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tensors(v) for v in value]
    return value


def observed(enc, X):
    """Everything of a trained encoder a caller can see, by value and by identity."""
    net = enc.net_
    return {
        "attributes": {key: id(value) for key, value in vars(enc).items()},
        "codes": enc.transform(X).tobytes(),
        "embed": enc.embed(X).tobytes(),
        "n_steps": enc.n_steps_,
        "layers": enc.hidden_layer_sizes_,
        "teacher": enc.teacher_temperature_,
        "scaler": (enc.scaler_.mean_.tobytes(), enc.scaler_.scale_.tobytes()),
        "module_state": {k: v.tobytes() for k, v in enc.module_state_.items()},
        "weights": {k: _tensors(v) for k, v in net.module_.state_dict().items()},
        "optimizer": _tensors(net.optimizer_.state_dict()),
        "history": pickle.dumps(list(enc.history_)),
        "net_history": pickle.dumps(list(net.history)),
        "chunk_graphs": {k: v.tobytes() for k, v in getattr(enc, "_chunk_graphs", {}).items()},
    }


def fail_at_batch(monkeypatch, error, at):
    """Make the ``at``-th training batch (1-based) raise ``error``; return the call log."""
    original = CosineLRSchedule.on_batch_begin
    calls = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            calls.append(1)
            if len(calls) == at:
                raise error
        return original(self, net, training=training, **kwargs)

    monkeypatch.setattr(CosineLRSchedule, "on_batch_begin", on_batch_begin)
    return calls


# -- fit of a fitted encoder --------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS)
def test_error_during_a_refit_propagates_and_keeps_the_fitted_state(fitted, X, monkeypatch, error):
    enc = copy.deepcopy(fitted).set_params(random_state=1)  # a refit that would change it
    before = observed(enc, X)
    # batch 6 of 2 epochs x 4 batches: in the second epoch, after five steps were taken
    calls = fail_at_batch(monkeypatch, error, at=6)
    with pytest.raises(error):
        enc.fit(X[::-1])
    assert len(calls) == 6  # training stopped there: skorch did not swallow Ctrl-C
    assert observed(enc, X) == before
    monkeypatch.undo()
    fail_at_batch(monkeypatch, error, at=6)
    fresh = BinaryHashEncoder(**K)
    with pytest.raises(error):
        fresh.fit(X)
    assert vars(fresh) == vars(BinaryHashEncoder(**K))  # a never-fitted one stays unfitted


# -- partial_fit --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("where", ["pass", "graph"])
def test_error_in_a_partial_fit_call_keeps_the_state_before_the_call(
    trained, X, monkeypatch, error, where
):
    enc = copy.deepcopy(trained)
    before = observed(enc, X)
    if where == "pass":  # a chunk seen before: the call takes its cached graph
        chunk = X[30:]
        calls = fail_at_batch(monkeypatch, error, at=2)  # after the pass's first step
    else:
        chunk = X[10:50]  # not seen: its neighbour graph is built in the call

        def failing(*args, **kwargs):
            raise error

        monkeypatch.setattr(skhash._knn_graph, "knn_graph", failing)
    with pytest.raises(error):
        enc.partial_fit(chunk)
    if where == "pass":
        assert len(calls) == 2
    assert observed(enc, X) == before
    monkeypatch.undo()
    again = copy.deepcopy(trained).partial_fit(chunk)
    enc.partial_fit(chunk)  # and it trains on as if the failed call never happened
    assert observed(enc, X)["embed"] == observed(again, X)["embed"]
    assert enc.n_steps_ == trained.n_steps_ + -(-len(chunk) // 16)


@pytest.mark.parametrize("error", ERRORS)
def test_error_in_the_pass_of_a_first_partial_fit_call_leaves_the_encoder_unfitted(
    X, monkeypatch, error
):
    enc = BinaryHashEncoder(**K)
    calls = fail_at_batch(monkeypatch, error, at=2)
    with pytest.raises(error):
        enc.partial_fit(X[:40])
    assert len(calls) == 2
    assert vars(enc) == vars(BinaryHashEncoder(**K))
    with pytest.raises(NotFittedError):
        enc.transform(X)


# -- GridSearchCV -------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", [False, True])
def test_ctrl_c_stops_a_grid_search(X, monkeypatch, pipeline):
    y = np.arange(len(X)) % 2
    if pipeline:
        estimator = Pipeline(
            [("enc", BinaryHashEncoder(**K)), ("knn", HammingKNeighborsClassifier(n_neighbors=3))]
        )
        search = GridSearchCV(estimator, {"enc__n_bits": [8, 16]}, cv=2)
    else:
        search = GridSearchCV(
            BinaryHashEncoder(**K), {"n_bits": [8, 16]}, cv=2, scoring=lambda *args: 0.0
        )
    calls = fail_at_batch(monkeypatch, KeyboardInterrupt, at=2)
    # error_score=nan (the default) records a failed fit and goes on: not for Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    assert len(calls) == 2  # the first candidate's first fold stopped, and no fit followed
    assert not hasattr(search, "cv_results_")


# -- HammingNeighbors graph build ---------------------------------------------------------------


def _fit(estimator, codes):
    if isinstance(estimator, HammingKNeighborsClassifier):
        return estimator.fit(codes, codes[:, 0] + 2 * codes[:, 1])
    return estimator.fit(codes)


def _neighbors_state(estimator, queries):
    state = {}
    for key, value in vars(estimator).items():
        copied = value.copy() if isinstance(value, np.ndarray) else value
        state[key] = (id(value), copied)
    return state, [a.tobytes() for a in estimator.kneighbors(queries)]


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize("step", ["knn_graph", "build_search_graph", "choose_entry_points"])
@pytest.mark.parametrize("cls", [HammingNeighbors, HammingKNeighborsClassifier])
def test_error_during_the_graph_build_keeps_codes_graph_and_classes(cls, step, error, monkeypatch):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (200, 32), dtype=np.uint8)
    estimator = _fit(cls(n_neighbors=3, algorithm="nndescent", random_state=0), codes)
    assert estimator.fit_method_ == "nndescent" and estimator.graph_indptr_ is not None
    before, answers = _neighbors_state(estimator, codes[:20])

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(neighbors_base, step, failing)
    other = rng.integers(0, 2, (100, 32), dtype=np.uint8)  # other codes and other classes
    other[:, :2] = 1
    with pytest.raises(error):
        _fit(estimator, other)
    monkeypatch.undo()
    after, answers_after = _neighbors_state(estimator, codes[:20])
    assert after.keys() == before.keys()
    for key, (identity, value) in before.items():
        assert after[key][0] == identity, key
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key][1], value, err_msg=key)
    assert answers_after == answers
    if cls is HammingKNeighborsClassifier:
        np.testing.assert_array_equal(estimator.classes_, [0, 1, 2, 3])
    # a first fit that fails leaves the estimator unfitted
    monkeypatch.setattr(neighbors_base, step, failing)
    fresh = cls(n_neighbors=3, algorithm="nndescent", random_state=0)
    with pytest.raises(error):
        _fit(fresh, other)
    assert vars(fresh) == vars(cls(n_neighbors=3, algorithm="nndescent", random_state=0))


# -- plotting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plot_training_curves", "plot_code_histograms"])
def test_plotting_an_encoder_without_history_is_not_fitted_error(fitted, tmp_path, plt, name):
    from skhash import plotting

    plot = getattr(plotting, name)
    with pytest.raises(NotFittedError, match="no training history.*fit it first"):
        plot(BinaryHashEncoder())
    fitted.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc")
    loaded.transform(np.zeros((1, 6)))  # usable for codes, but holds no training history
    with pytest.raises(NotFittedError, match="loaded from disk keeps no history"):
        plot(loaded)
    plot(fitted)  # the fitted encoder itself plots


# -- an encoder shared with a HashIndex ---------------------------------------------------------


@pytest.mark.parametrize("asymmetric", [False, True])
def test_refitting_a_shared_encoder_changes_no_query_and_no_add(X, asymmetric):
    Q, new = X[:7] + 0.1, X[:20] * 1.5 - 0.2
    encoder = BinaryHashEncoder(**K).fit(X)
    original = copy.deepcopy(encoder)
    kw = dict(rescore=None, asymmetric=asymmetric)
    index = HashIndex(encoder=FrozenEstimator(encoder), **kw).fit(X)
    reference = HashIndex(encoder=FrozenEstimator(original), **kw).fit(X)
    answers = index.kneighbors(Q, 5)
    encoder.set_params(random_state=1).fit(X[::-1])  # the FrozenEstimator shares it
    assert not np.array_equal(encoder.transform(new), original.transform(new))
    for a, b in zip(index.kneighbors(Q, 5), answers, strict=True):
        np.testing.assert_array_equal(a, b)
    index.add(new)
    reference.add(new)
    np.testing.assert_array_equal(index.codes_, reference.codes_)
    for a, b in zip(index.kneighbors(new, 5), reference.kneighbors(new, 5), strict=True):
        np.testing.assert_array_equal(a, b)


class SignOfRandomProjection(TransformerMixin, BaseEstimator):
    """A user's own hash: no network state nor arrays HashIndex knows to copy."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y=None):
        self.projection_ = np.random.default_rng(self.seed).standard_normal((X.shape[1], 16))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return (np.asarray(X) @ self.projection_ > 0).astype(np.uint8)


def test_refitting_a_shared_encoder_of_your_own_changes_later_queries(X):
    encoder = SignOfRandomProjection().fit(X)
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X)
    before = index.kneighbors(X[:10], 5)
    encoder.set_params(seed=1).fit(X)  # called as it is: the new fit encodes the queries
    after = index.kneighbors(X[:10], 5)
    assert not all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))


# -- the commit of a transactional fit ----------------------------------------------------------


def _interrupt_at_line(code, n):
    """A trace function raising KeyboardInterrupt at the ``n``-th line run in ``code``'s frames,
    as a Ctrl-C handled there would; returns it and the count of lines seen."""
    seen = [0]

    def local(frame, event, arg):
        if event == "line":
            seen[0] += 1
            if seen[0] == n:
                raise KeyboardInterrupt
        return local

    def trace(frame, event, arg):
        return local if frame.f_code is code else None

    return trace, seen


def test_ctrl_c_at_any_line_of_the_commit_leaves_the_old_or_the_new_state():
    rng = np.random.default_rng(0)
    old_codes, new_codes = (rng.integers(0, 2, (n, 16), dtype=np.uint8) for n in (30, 20))
    old = vars(HammingNeighbors(n_neighbors=2).fit(old_codes))
    new = vars(HammingNeighbors(n_neighbors=2).fit(new_codes))
    wrapper = HammingNeighbors.fit.__code__  # fit_context's wrapper, which commits
    assert wrapper.co_filename.endswith("_validation.py")
    previous = sys.gettrace()
    interrupted = 0
    for n in range(1, 100):
        nn = HammingNeighbors(n_neighbors=2).fit(old_codes)
        trace, seen = _interrupt_at_line(wrapper, n)
        sys.settrace(trace)
        try:
            nn.fit(new_codes)
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            sys.settrace(previous)
        state = vars(nn)
        assert state.keys() in (old.keys(), new.keys()), n
        expected = old if state["n_samples_fit_"] == 30 else new
        np.testing.assert_array_equal(state["codes_"], expected["codes_"])
        if seen[0] < n:  # past the last line: every line was interrupted once
            break
    assert seen[0] < n and interrupted >= 3
