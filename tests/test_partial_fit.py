"""BinaryHashEncoder.partial_fit: chunked training within a budget of steps, transactional."""

import copy

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skhash import BinaryHashEncoder
from skhash.metrics import make_retrieval_scorer

K = dict(n_bits=8, hidden_layer_sizes=(16,), n_projections=16, random_state=0, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).standard_normal((240, 6))


def chunks_of(X, n=4):
    return np.array_split(X, n)


def train_in_chunks(X, passes=2, **params):
    enc = BinaryHashEncoder(**{**K, **params})
    for _ in range(passes):
        for chunk in chunks_of(X):
            enc.partial_fit(chunk)
    return enc


def state_of(enc, X):
    """Everything a caller can observe of a trained encoder."""
    return (
        enc.n_features_in_,
        enc.teacher_temperature_,
        enc.n_steps_,
        enc.embed(X).tobytes(),
        len(enc.history_),
        id(enc.net_),
        {k: v.tobytes() for k, v in enc.module_state_.items()},
        {k: v.detach().numpy().tobytes() for k, v in enc.net_.module_.state_dict().items()},
    )


@pytest.fixture(scope="module")
def trained(data):
    return train_in_chunks(data, passes=2, max_steps=16)


def test_one_call_is_one_pass_over_its_chunk(trained):
    # 4 chunks of 60 rows, batches of 32: 2 steps per call, 8 calls
    assert trained.n_steps_ == 16
    assert len(trained.history_) == 8
    assert list(trained.history_[:, "train_batch_count"]) == [2] * 8


def test_schedules_run_over_the_stated_budget(trained):
    h = trained.history_
    last_step = np.cumsum(h[:, "train_batch_count"]) - 1
    np.testing.assert_allclose(h[:, "beta"], trained.beta_max ** (last_step / 15), rtol=1e-6)
    np.testing.assert_allclose(h[:, "lr"], trained.lr * (1 + np.cos(np.pi * last_step / 16)) / 2)
    assert h[-1, "beta"] == pytest.approx(trained.beta_max)


def test_budget_spent_is_a_clear_error_and_can_be_raised(trained, data):
    enc = copy.deepcopy(trained)
    before = state_of(enc, data)
    with pytest.raises(ValueError, match=r"max_steps=16 \(16 steps\) is spent: 16 steps done"):
        enc.partial_fit(data[:60])
    assert state_of(enc, data) == before
    enc.set_params(max_steps=18)
    enc.partial_fit(data[:60])
    assert enc.n_steps_ == 18


def test_the_last_call_stops_at_the_budget(data):
    enc = train_in_chunks(data, passes=1, max_steps=7)  # the 4th call gets 1 step of 2
    assert enc.n_steps_ == 7
    assert enc.history_[-1, "train_batch_count"] == 1
    assert enc.history_[-1, "beta"] == pytest.approx(enc.beta_max)


def test_same_seed_same_codes(trained, data):
    again = train_in_chunks(data, passes=2, max_steps=16)
    np.testing.assert_array_equal(again.embed(data), trained.embed(data))
    other = train_in_chunks(data, passes=2, max_steps=16, random_state=1)
    assert not np.array_equal(other.transform(data), trained.transform(data))


def test_scaler_comes_from_the_first_chunk(trained, data):
    first = chunks_of(data)[0]
    np.testing.assert_allclose(trained.scaler_.mean_, first.mean(0))
    np.testing.assert_allclose(trained.module_state_["input_mean"], first.mean(0), rtol=1e-5)


def test_partial_fit_learns_neighbourhoods_like_fit(digits):
    """4 chunks, as many passes as fit: codes keep cosine neighbours about as well."""
    X = digits[0][:800]
    params = dict(n_bits=16, hidden_layer_sizes=(32,), n_projections=32, random_state=0)
    fitted = BinaryHashEncoder(**params, max_epochs=6).fit(X)
    enc = BinaryHashEncoder(**params, max_steps=fitted.n_steps_ + 4)
    for _ in range(6):
        for chunk in chunks_of(X):
            enc.partial_fit(chunk)
    untrained = BinaryHashEncoder(**params, max_steps=1).partial_fit(X[:300])

    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    true = np.argsort(-sim, axis=1)[:, :10]

    def recall(encoder):
        codes = encoder.transform(X).astype(np.int32)
        dist = (codes[:, None, :] != codes[None, :, :]).sum(-1) + np.eye(len(X)) * 1000
        found = np.argsort(dist, axis=1, kind="stable")[:, :50]
        return np.mean([len(np.intersect1d(t, f)) for t, f in zip(true, found, strict=True)])

    assert recall(enc) >= 0.85 * recall(fitted)
    assert recall(enc) > 1.2 * recall(untrained)


def test_wrong_width_is_a_clear_error_and_changes_nothing(trained, data):
    enc = copy.deepcopy(trained)
    enc.set_params(max_steps=100)
    before = state_of(enc, data)
    with pytest.raises(ValueError, match="X has 9 features, but BinaryHashEncoder is expecting 6"):
        enc.partial_fit(np.zeros((60, 9)))
    assert state_of(enc, data) == before


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_bad_chunk_changes_nothing(trained, data, bad):
    enc = copy.deepcopy(trained)
    enc.set_params(max_steps=100)
    before = state_of(enc, data)
    chunk = data[:60].copy()
    chunk[5, 2] = bad
    with pytest.raises(ValueError, match="NaN|infinity|float32 range"):
        enc.partial_fit(chunk)
    with pytest.raises(ValueError, match="1 sample"):
        enc.partial_fit(data[:1])
    assert state_of(enc, data) == before


def test_divergence_keeps_the_previous_state(trained, data):
    enc = copy.deepcopy(trained)
    enc.set_params(max_steps=100)
    before = state_of(enc, data)
    with pytest.raises(FloatingPointError, match="diverged.*keeps its previous state"):
        enc.partial_fit(np.full((60, 6), 3e38))  # finite, but overflows the network
    assert state_of(enc, data) == before
    enc.partial_fit(data[:60])  # and it trains on from there
    assert enc.n_steps_ == trained.n_steps_ + 2


def test_ctrl_c_propagates_and_keeps_the_previous_state(trained, data, monkeypatch):
    from skhash.callbacks import CosineLRSchedule

    enc = copy.deepcopy(trained)
    enc.set_params(max_steps=100)
    before = state_of(enc, data)
    original = CosineLRSchedule.on_batch_begin
    calls = []

    def interrupt_at_second_batch(self, net, **kwargs):
        calls.append(1)
        original(self, net, **kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(CosineLRSchedule, "on_batch_begin", interrupt_at_second_batch)
    with pytest.raises(KeyboardInterrupt):
        enc.partial_fit(data[:60])
    assert state_of(enc, data) == before


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
def test_first_call_failing_leaves_the_encoder_unfitted(data, monkeypatch, error):
    import skhash._knn_graph

    def interrupted(*args, **kwargs):
        raise error

    monkeypatch.setattr(skhash._knn_graph, "knn_graph", interrupted)
    enc = BinaryHashEncoder(**K)
    with pytest.raises(error):
        enc.partial_fit(data[:60])
    with pytest.raises(NotFittedError):
        enc.transform(data)
    assert not [key for key in vars(enc) if key.endswith("_")]


def test_bad_parameters_rejected(data):
    for params, match in [
        ({"max_steps": 0}, "'max_steps'"),
        ({"max_steps": "all"}, "'max_steps'"),
        ({"max_steps": True}, "'max_steps'"),
        ({"max_samples": 1}, "'max_samples'"),
    ]:
        with pytest.raises(ValueError, match=match):
            BinaryHashEncoder(**{**K, **params}).partial_fit(data)
        with pytest.raises(ValueError, match=match):
            BinaryHashEncoder(**{**K, **params}).fit(data)


def test_large_chunk_is_sampled_to_max_samples(data):
    enc = BinaryHashEncoder(**K, max_samples=64).partial_fit(data)
    assert enc.n_steps_ == 2  # 64 sampled rows, batches of 32
    assert enc.scaler_.n_samples_seen_ == 64


def test_after_fit_it_trains_on_and_fit_starts_anew(data):
    enc = BinaryHashEncoder(**{**K, "max_epochs": 2}).fit(data)
    steps = enc.n_steps_
    enc.set_params(max_steps=steps + 2)
    enc.partial_fit(data[:60])
    assert enc.n_steps_ == steps + 2
    enc.set_params(max_steps="auto")
    enc.fit(data)
    assert enc.n_steps_ == steps and len(enc.history_) == 2


def test_loaded_encoder_cannot_partial_fit(trained, data, tmp_path):
    trained.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc")
    before = loaded.embed(data)
    with pytest.raises(ValueError, match="no training state"):
        loaded.partial_fit(data)
    np.testing.assert_array_equal(loaded.embed(data), before)


def test_dask_ml_incremental_equals_the_plain_loop(data):
    import dask
    import dask.array as da
    from dask_ml import wrappers

    labels = np.arange(len(data)) % 3
    X = da.from_array(data, chunks=(60, 6))
    y = da.from_array(labels, chunks=60)
    with dask.config.set(scheduler="synchronous"):
        # Incremental wants a scorer; the encoder has no score method: a retrieval scorer.
        # Labelled: dask-ml 2025.1 passes a bogus y to partial_fit when y is None
        # (skhash.dask.partial_fit covers that case, see below).
        scorer = make_retrieval_scorer("map", k=20)
        encoder = BinaryHashEncoder(**K, max_steps=8)
        inc = wrappers.Incremental(encoder, scoring=scorer, shuffle_blocks=False)
        inc.fit(X, y)
        codes = inc.transform(X).compute()  # encodes the dask array block by block
    loop = BinaryHashEncoder(**K, max_steps=8)
    for chunk, chunk_labels in zip(chunks_of(data), chunks_of(labels), strict=True):
        loop.partial_fit(chunk, chunk_labels)
    assert inc.estimator_.n_steps_ == 8 and "centroid" in inc.estimator_.history_[-1]
    np.testing.assert_array_equal(inc.estimator_.embed(data), loop.embed(data))
    np.testing.assert_array_equal(codes, loop.transform(data))


def test_plain_loop_over_dask_blocks(data):
    import dask.array as da

    X = da.from_array(data, chunks=(60, 6))
    enc = BinaryHashEncoder(**K, max_steps=8)
    for block in X.blocks:
        enc.partial_fit(block.compute())
    loop = train_in_chunks(data, passes=1, max_steps=8)
    np.testing.assert_array_equal(enc.embed(data), loop.embed(data))


def test_skhash_dask_partial_fit_equals_the_plain_loop_without_labels(data):
    import dask
    import dask.array as da

    from skhash.dask import partial_fit

    X = da.from_array(data, chunks=(60, 3))  # column chunks are merged
    with dask.config.set(scheduler="synchronous"):
        enc = partial_fit(BinaryHashEncoder(**K, max_steps=8), X)
    loop = train_in_chunks(data, passes=1, max_steps=8)
    np.testing.assert_array_equal(enc.embed(data), loop.embed(data))


def test_skhash_dask_partial_fit_rejects_misaligned_labels_and_keeps_the_encoder(data):
    import dask.array as da

    from skhash.dask import partial_fit

    X = da.from_array(data, chunks=(60, 6))
    y = da.from_array(np.arange(len(data)) % 3, chunks=50)
    enc = BinaryHashEncoder(**K, max_steps=8)
    with pytest.raises(ValueError, match="chunked like the rows of X"):
        partial_fit(enc, X, y)
    assert not hasattr(enc, "n_steps_")
    with pytest.raises(TypeError, match="2-D dask array"):
        partial_fit(enc, data)


@pytest.fixture
def graph_calls(monkeypatch):
    """The row counts of every k-NN graph built while the test runs."""
    import skhash._knn_graph

    calls = []
    original = skhash._knn_graph.knn_graph

    def counted(X, *args, **kwargs):
        calls.append(len(X))
        return original(X, *args, **kwargs)

    monkeypatch.setattr(skhash._knn_graph, "knn_graph", counted)
    return calls


def test_a_chunk_seen_again_reuses_its_graph(data, graph_calls):
    calls = graph_calls
    cached = train_in_chunks(data, passes=2, max_steps=16)
    assert calls == [60] * 4  # the second pass finds every chunk's graph
    calls.clear()
    # graphs of at most max_samples rows are kept: here one chunk's, so none is found again
    small_cache = train_in_chunks(data, passes=2, max_steps=16, max_samples=64)
    assert calls == [60] * 8
    np.testing.assert_array_equal(cached.embed(data), small_cache.embed(data))


def test_auto_teacher_temperature_is_set_by_the_first_chunk_and_kept(data):
    from skhash._objective import auto_teacher_temperature

    first, second = data[:120], np.vstack([data[120:], data[120:] + 1e-3])  # twins: gaps change
    enc = BinaryHashEncoder(**K).partial_fit(first)
    expected = auto_teacher_temperature(first)
    assert enc.teacher_temperature_ == pytest.approx(expected)
    assert auto_teacher_temperature(second) != pytest.approx(expected)
    enc.set_params(teacher_temperature=0.2)  # like every loss setting: fixed by the first call
    enc.partial_fit(second)
    assert enc.teacher_temperature_ == pytest.approx(expected)
    assert enc.net_.criterion_.settings["teacher_temperature"] == pytest.approx(expected)


def test_set_params_between_calls_changes_neither_the_objective_nor_the_layers(data):
    # the loss keeps the first call's settings: so do the partners and the layers' record
    enc = BinaryHashEncoder(**K).partial_fit(data)
    enc.set_params(neighbor_weight=0.0, hidden_layer_sizes=(64,))
    enc.partial_fit(data)
    assert "neighbor" in enc.history_[-1, "batches"][-1]
    assert enc.hidden_layer_sizes_ == K["hidden_layer_sizes"]
    assert enc.module_state_["hidden.0.weight"].shape[0] == K["hidden_layer_sizes"][0]

    enc = BinaryHashEncoder(**{**K, "neighbor_weight": 0.0}).partial_fit(data)
    enc.set_params(neighbor_weight=1.0)
    enc.partial_fit(data)
    assert "neighbor" not in enc.history_[-1, "batches"][-1]
    assert not enc._chunk_graphs  # no graph built for a term that is off


def test_auto_budget_follows_the_trained_code_length(data):
    enc = BinaryHashEncoder(**{**K, "max_epochs": 3}).partial_fit(data)
    enc.set_params(n_bits=128)  # a longer code would get twice the passes
    enc.partial_fit(data)
    # "auto": max_epochs passes over max_samples rows, as for the 8-bit first call
    assert dict(enc.net_.callbacks_)["lr_schedule"].max_steps == 3 * -(-enc.max_samples // 32)


def test_lr_and_beta_max_set_between_calls_apply_to_the_next_call(data):
    # the divergence message says "lower lr or beta_max" and that the encoder keeps its
    # state: the next call must train with the lowered values (it used the first call's)
    enc = BinaryHashEncoder(**K, max_steps=8).partial_fit(data[:60])
    enc.set_params(lr=1e-7, beta_max=2.0)
    enc.partial_fit(data[60:120])
    last_step = enc.n_steps_ - 1
    assert enc.history_[-1, "lr"] == pytest.approx(1e-7 * (1 + np.cos(np.pi * last_step / 8)) / 2)
    assert enc.history_[-1, "beta"] == pytest.approx(2.0 ** (last_step / 7))
    # the first call's record is left as it was trained
    assert enc.history_[0, "beta"] == pytest.approx(16.0 ** (1 / 7))


def test_verbose_set_between_calls_prints_the_next_call(data, capsys):
    enc = BinaryHashEncoder(**K, max_steps=8).partial_fit(data[:60])
    capsys.readouterr()
    enc.set_params(verbose=1)
    enc.partial_fit(data[60:120])
    assert "rdmreg" in capsys.readouterr().out


def test_fit_drops_the_graphs_of_earlier_partial_fit_calls(data, graph_calls):
    # fit starts anew: a graph kept by partial_fit before it (above 60,000 rows an
    # approximate one, drawn with that call's seed) is not reused by the calls after it
    calls = graph_calls
    enc = BinaryHashEncoder(**K, max_steps=100).partial_fit(data[:60])
    enc.fit(data)
    assert not getattr(enc, "_chunk_graphs", None)
    calls.clear()
    enc.set_params(max_steps=enc.n_steps_ + 2)
    enc.partial_fit(data[:60])
    assert calls == [60]
