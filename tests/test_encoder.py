import copy
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from skhash import BinaryHashEncoder
from tests.helpers import FAST


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return BinaryHashEncoder(random_state=0, **FAST).fit(X)


def test_transform_packbits_embed_agree(fitted, digits):
    X, _ = digits
    codes = fitted.transform(X)
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 16)
    assert set(np.unique(codes)) <= {0, 1}
    packed = fitted.packbits(X)
    assert packed.shape == (len(X), 2) and packed.flags.c_contiguous
    np.testing.assert_array_equal(packed, np.packbits(codes, axis=1))
    z = fitted.embed(X)
    assert z.dtype == np.float32 and np.all(np.abs(z) <= 1)
    np.testing.assert_array_equal(codes, (z > 0).astype(np.uint8))


def test_packbits_pads_partial_bytes(digits):
    X, _ = digits
    enc = BinaryHashEncoder(**{**FAST, "n_bits": 11}, random_state=0).fit(X[:200])
    assert enc.packbits(X[:5]).shape == (5, 2)


def test_same_seed_same_codes_other_seed_other_codes(fitted, digits):
    X, _ = digits
    again = BinaryHashEncoder(random_state=0, **FAST).fit(X)
    np.testing.assert_array_equal(fitted.transform(X), again.transform(X))
    np.testing.assert_array_equal(fitted.embed(X), again.embed(X))
    other = BinaryHashEncoder(random_state=1, **FAST).fit(X)
    assert not np.array_equal(fitted.transform(X), other.transform(X))


def test_fit_leaves_torch_global_rng_alone(digits):
    import torch

    X, _ = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    BinaryHashEncoder(random_state=0, **FAST).fit(X[:100])
    torch.testing.assert_close(torch.rand(3), expected)


def test_fit_leaves_numpy_global_rng_alone(digits):
    # the legacy global generator is what this checks (hence the noqa)
    X, y = digits
    before = np.random.get_state(legacy=False)  # noqa: NPY002
    BinaryHashEncoder(random_state=0, **FAST).fit(X[:100], y[:100])
    after = np.random.get_state(legacy=False)  # noqa: NPY002
    np.testing.assert_array_equal(after["state"]["key"], before["state"]["key"])
    assert after["state"]["pos"] == before["state"]["pos"]


def test_constructor_takes_keyword_arguments_only():
    with pytest.raises(TypeError, match="positional"):
        BinaryHashEncoder(32)


def test_a_non_cpu_device_is_tagged_non_deterministic():
    assert not BinaryHashEncoder().__sklearn_tags__().non_deterministic
    assert BinaryHashEncoder(device="cuda").__sklearn_tags__().non_deterministic


def test_fit_leaves_the_accelerators_rngs_alone(digits, monkeypatch):
    # torch.manual_seed also reseeds every CUDA (and MPS) device, which fork_rng(devices=[])
    # does not restore: on a GPU machine a fit, even on the CPU, changed the caller's CUDA
    # random stream. Weights are initialised on the CPU: only its generator is seeded.
    import torch

    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(seed))
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: seeded.append(seed))
    X, _ = digits
    BinaryHashEncoder(random_state=0, **FAST).fit(X[:100])
    BinaryHashEncoder(random_state=0, **FAST).partial_fit(X[:100]).partial_fit(X[100:200])
    assert seeded == []


def test_history_records_terms_and_convergence(fitted):
    h = fitted.history_
    assert len(h) == FAST["max_epochs"]
    for key in (
        "train_loss",
        "rdmreg",
        "neighbor",
        "anticollapse",
        "beta",
        "vertex_dist",
        "ones_min",
        "ones_max",
        "max_corr",
        "hist",
    ):
        assert key in h[-1], key
    assert h[-1, "beta"] == pytest.approx(fitted.beta_max)
    assert h[0, "vertex_dist"] > h[-1, "vertex_dist"]
    assert "centroid" not in h[-1]


def test_supervised_fit_with_string_labels(digits):
    X, y = digits
    labels = np.array(["abcdefghij"[i] for i in y])
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(X, labels)
    assert "centroid" in enc.history_[-1]
    assert enc.transform(X[:3]).shape == (3, 16)


def test_single_class_labels_work(digits):
    X, _ = digits
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(X[:100], np.zeros(100))
    assert enc.transform(X[:100]).shape == (100, 16)


def test_labels_pull_classes_together(digits):
    """With labels, same-class codes end closer than without."""
    X, y = digits

    def within_class_gap(enc):
        codes = enc.transform(X).astype(int)
        dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)
        same = y[:, None] == y[None, :]
        return dist[~same].mean() - dist[same].mean()

    kw = {**FAST, "max_epochs": 5, "neighbor_weight": 0.0}
    plain = BinaryHashEncoder(random_state=0, **kw).fit(X)
    labelled = BinaryHashEncoder(random_state=0, centroid_weight=5.0, **kw).fit(X, y)
    assert within_class_gap(labelled) > within_class_gap(plain)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_raises(digits, fitted, bad):
    X, _ = digits
    Xb = X[:50].copy()
    Xb[3, 4] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        BinaryHashEncoder(**FAST).fit(Xb)
    with pytest.raises(ValueError, match="NaN|infinity"):
        fitted.transform(Xb)


def test_wrong_width_names_both(fitted, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="63 features.*expecting 64"):
        fitted.transform(X[:, :63])


@pytest.mark.parametrize("method", ["transform", "embed", "packbits"])
def test_unfitted_raises(method, digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        getattr(BinaryHashEncoder(), method)(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_bits": 0}, "'n_bits'"),
        ({"n_bits": 2.5}, "'n_bits'"),
        ({"sparsity": 0.0}, "'sparsity'"),
        ({"sparsity": 1.0}, "'sparsity'"),
        ({"n_bits": 4, "active_dims": 8}, "active_dims=8 exceeds n_bits=4"),
        ({"projection": "diagonal"}, "'projection' parameter of BinaryHashEncoder must be one of"),
        ({"lr": float("inf")}, "'lr'"),
        ({"beta_max": float("inf")}, "'beta_max'"),
        ({"n_bits": True}, "'n_bits'"),
        ({"hidden_layer_sizes": (32, True)}, "'hidden_layer_sizes'"),
        ({"verbose": -1}, "'verbose'"),
        ({"device": 0}, "'device'"),
        ({"reg_weight": -1.0}, "'reg_weight'"),
        ({"hidden_layer_sizes": (0,)}, "'hidden_layer_sizes'"),
        ({"hidden_layer_sizes": "wide"}, "'hidden_layer_sizes'"),
        ({"lr": 0}, "'lr'"),
        ({"temperature": "hot"}, "'temperature'"),
        ({"temperature": 0.0}, "'temperature'"),
        ({"teacher_temperature": "cold"}, "'teacher_temperature'"),
        ({"teacher_temperature": 0.0}, "'teacher_temperature'"),
        ({"neighbor_loss": "triplet"}, "'neighbor_loss'"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match, digits):
    # 'name' in quotes: the declared check's message, not a later one that names the parameter
    # (with n_bits's check gone, n_bits=0 still fails, as "active_dims=8 exceeds n_bits=0")
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        BinaryHashEncoder(**params).fit(X[:20])


def test_strings_and_sparse_input_rejected(digits):
    X, _ = digits
    with pytest.raises(TypeError, match="[Ss]parse"):
        BinaryHashEncoder(**FAST).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="string"):
        BinaryHashEncoder(**FAST).fit(np.array([["a", "b"], ["c", "d"]]))


def test_one_sample_is_a_clear_error(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="1 sample"):
        BinaryHashEncoder(**FAST).fit(X[:1])


def test_joblib_round_trip_is_exact(fitted, digits, tmp_path):
    X, _ = digits
    path = tmp_path / "enc.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.embed(X), fitted.embed(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_cuda_net_loads_on_cpu(fitted, digits):
    """A net saved from a CUDA device is mapped to the CPU on a machine without one."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this test checks the fallback on machines without CUDA")
    X, _ = digits
    fitted_cuda = pickle.loads(pickle.dumps(fitted))
    fitted_cuda.net_.device = "cuda"  # as after fit(device="cuda")
    blob = pickle.dumps(fitted_cuda)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning about the fallback
        loaded = pickle.loads(blob)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_feature_names_and_pandas_output(digits):
    import pandas as pd  # part of the test extras: a missing package fails, never skips

    X, _ = digits
    frame = pd.DataFrame(X[:200], columns=[f"px{i}" for i in range(64)])
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(frame)
    np.testing.assert_array_equal(enc.feature_names_in_, frame.columns)
    names = enc.get_feature_names_out()
    assert list(names) == [f"binaryhashencoder{i}" for i in range(16)]
    out = enc.set_output(transform="pandas").transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


# --- contract 2: torch-free import, module_state_, numpy fallback, save/load ---------------


def test_importing_the_encoder_does_not_import_torch():
    code = (
        "import sys; from skhash import BinaryHashEncoder; import skhash._encoder; "
        "assert 'torch' not in sys.modules and 'skorch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_state_is_read_only(fitted, tmp_path):
    # a HashIndex keeps a reference to the dict it was built with (a refit replaces it):
    # an in-place write would change the index's queries behind its back
    fitted.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc")
    for encoder in (fitted, loaded):
        for name, array in encoder.module_state_.items():
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 0
            assert array.flags.writeable is False, name
    clone = copy.deepcopy(fitted)  # copies are theirs to change
    clone.module_state_["linear.bias"][...] = 0


def test_module_state_is_the_torch_state_as_float32_numpy(fitted):
    state = fitted.net_.module_.state_dict()
    assert set(fitted.module_state_) == set(state)
    for key, value in state.items():
        array = fitted.module_state_[key]
        assert isinstance(array, np.ndarray) and array.dtype == np.float32
        np.testing.assert_array_equal(array, value.numpy().astype(np.float32))
    assert fitted.module_state_["beta"] == np.float32(fitted.beta_max)
    assert fitted.hidden_layer_sizes_ == FAST["hidden_layer_sizes"]
    assert BinaryHashEncoder(n_bits=128).fit(
        np.eye(3)[[0, 1, 2, 0]], None
    ).hidden_layer_sizes_ == (2048,)


def test_embed_without_net_uses_the_numpy_forward(fitted, digits):
    X, _ = digits
    loaded = copy.copy(fitted)
    del loaded.net_
    np.testing.assert_allclose(loaded.embed(X, batch_size=100), fitted.embed(X), atol=1e-5)
    codes = fitted.transform(X)
    assert (loaded.transform(X) != codes).mean() < 1e-3  # only outputs within 1e-5 of 0 may flip


def test_save_and_load_round_trip(fitted, digits, tmp_path):
    X, _ = digits
    fitted.save(tmp_path / "enc")
    loaded = BinaryHashEncoder.load(tmp_path / "enc")
    assert isinstance(loaded, BinaryHashEncoder) and not hasattr(loaded, "net_")
    assert loaded.n_features_in_ == 64 and loaded.hidden_layer_sizes_ == (32,)
    assert loaded.teacher_temperature_ == fitted.teacher_temperature_
    np.testing.assert_allclose(loaded.embed(X), fitted.embed(X), atol=1e-5)
    with pytest.raises(NotFittedError):
        BinaryHashEncoder().save(tmp_path / "never")
    assert not (tmp_path / "never").exists()


# --- issue 11: bad input, divergence, interrupted and failed fits ----------------------------

K = dict(n_bits=8, hidden_layer_sizes=(16,), max_epochs=2, n_projections=16, random_state=0)


@pytest.fixture(scope="module")
def small():
    return np.random.default_rng(0).standard_normal((60, 6))


@pytest.fixture(scope="module")
def small_fitted(small):
    return BinaryHashEncoder(**K).fit(small)


def state_of(enc, X):
    """Everything a caller can observe of a fitted encoder."""
    return (
        enc.n_features_in_,
        enc.teacher_temperature_,
        enc.embed(X).tobytes(),
        len(enc.history_),
        id(enc.net_),
        {k: v.tobytes() for k, v in enc.module_state_.items()},
    )


@pytest.mark.parametrize("method", ["transform", "packbits", "embed"])
def test_values_beyond_float32_rejected_like_fit(small_fitted, small, method):
    with pytest.raises(ValueError, match="float32 range"):
        BinaryHashEncoder(**K).fit(small * 1e39)
    with pytest.raises(ValueError, match="float32 range"):
        getattr(small_fitted, method)(small * 1e39)
    # the largest float32 passes the range check; the network's sums then overflow,
    # which is reported rather than thresholded into a code
    assert getattr(small_fitted, method)(np.full((2, 6), 1e30)).shape[0] == 2
    with pytest.raises(ValueError, match="outputs are not finite"):
        getattr(small_fitted, method)(np.full((2, 6), 3e38))


@pytest.mark.parametrize("batch_size", [-1, 0, 1.5, True, None])
def test_embed_batch_size_validated(small_fitted, small, batch_size):
    with pytest.raises(ValueError, match="'batch_size' parameter of BinaryHashEncoder.embed"):
        small_fitted.embed(small, batch_size=batch_size)


def test_embed_batch_size_changes_outputs_by_rounding_only(small_fitted, small):
    # the matrix products block differently: the last float32 bit of h may change, and
    # tanh(beta * h) scales that by up to beta (16) where an output is off the vertices
    chunked = small_fitted.embed(small, batch_size=7)
    np.testing.assert_allclose(chunked, small_fitted.embed(small), rtol=0, atol=1e-5)


@pytest.mark.parametrize("refit", [False, True])
def test_divergence_stops_fit_and_keeps_the_state(small, small_fitted, refit):
    enc = copy.deepcopy(small_fitted) if refit else BinaryHashEncoder(**K)
    before = state_of(enc, small) if refit else None
    enc.set_params(lr=1e30)
    with pytest.raises(FloatingPointError, match="diverged.*Lower lr \\(now 1e\\+30\\)"):
        enc.fit(small)
    if refit:
        assert state_of(enc, small) == before
    else:
        with pytest.raises(NotFittedError):
            enc.transform(small)
        assert not [k for k in vars(enc) if k.endswith("_")]


def test_failed_refit_with_other_width_keeps_the_previous_model(small, small_fitted):
    enc = copy.deepcopy(small_fitted)
    before = state_of(enc, small)
    wide = np.random.default_rng(1).standard_normal((60, 9))
    enc.set_params(lr=1e30)  # fails late, after the new width was seen
    with pytest.raises(FloatingPointError):
        enc.fit(wide)
    assert state_of(enc, small) == before
    with pytest.raises(ValueError, match="9 features.*expecting 6"):
        enc.transform(wide)


def test_exception_in_a_callback_keeps_the_state(small, small_fitted, monkeypatch):
    from skhash.callbacks import HypercubeDiagnostics

    def fail(self, net, **kwargs):
        raise RuntimeError("callback failed")

    enc = copy.deepcopy(small_fitted)
    before = state_of(enc, small)
    monkeypatch.setattr(HypercubeDiagnostics, "on_epoch_end", fail)
    with pytest.raises(RuntimeError, match="callback failed"):
        enc.fit(small[:, :4])
    assert state_of(enc, small) == before


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
def test_interrupt_while_building_the_graph(small, small_fitted, monkeypatch, error):
    import skhash._knn_graph

    def interrupted(*args, **kwargs):
        raise error

    monkeypatch.setattr(skhash._knn_graph, "knn_graph", interrupted)
    enc = copy.deepcopy(small_fitted)
    before = state_of(enc, small)
    with pytest.raises(error):
        enc.fit(small[:, :4])
    assert state_of(enc, small) == before
    fresh = BinaryHashEncoder(**K)
    with pytest.raises(error):
        fresh.fit(small)
    with pytest.raises(NotFittedError):
        fresh.embed(small)


def test_ctrl_c_during_training_propagates(small, monkeypatch):
    from skhash.callbacks import OutputScaleSchedule

    calls = []

    def interrupt_in_epoch_2(self, net, **kwargs):
        calls.append(len(net.history))
        if len(net.history) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(OutputScaleSchedule, "on_epoch_begin", interrupt_in_epoch_2)
    enc = BinaryHashEncoder(**{**K, "max_epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        enc.fit(small)
    assert calls == [1, 2]  # training stopped there, and fit did not return
    assert not hasattr(enc, "net_")


@pytest.mark.parametrize("neighbor_weight", [0.0, 1.0])
def test_batch_size_one_is_a_clear_error(small, neighbor_weight):
    # one item per batch: with a partner batch norm would run, but the neighbour ranking,
    # KoLeo and the centroid would all be 0 at every step (only RDMReg trained)
    enc = BinaryHashEncoder(**K, batch_size=1, neighbor_weight=neighbor_weight)
    with pytest.raises(ValueError, match=r"'batch_size'.*\[2, inf\)"):
        enc.fit(small)
    assert not hasattr(enc, "net_")


@pytest.mark.parametrize("device", ["bogus", "cuda", "cuda:99"])
def test_unusable_device_is_a_clear_error(small, device):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=f"device={device!r} cannot be used"):
        BinaryHashEncoder(**K, device=device).fit(small)


def test_continuous_labels_rejected(small):
    with pytest.raises(ValueError, match="continuous"):
        BinaryHashEncoder(**K).fit(small, np.linspace(0, 1, len(small)))


@pytest.mark.parametrize(
    "labels",
    [["a", None], np.array(["a", None], dtype=object), np.array([1, "a"], dtype=object)],
)
def test_labels_of_mixed_kinds_are_named_and_keep_the_state(small, small_fitted, labels):
    # None among strings (a missing label) or numbers among strings: numpy cannot sort
    # them; the error says what is wrong with y, not that it is a continuous target
    enc = copy.deepcopy(small_fitted)
    before = state_of(enc, small)
    y = np.resize(np.asarray(labels, dtype=object), len(small))
    with pytest.raises(ValueError, match="one kind.*missing label") as info:
        enc.fit(small, y if isinstance(labels, np.ndarray) else y.tolist())
    assert "continuous" not in str(info.value)
    assert state_of(enc, small) == before


def test_continuous_target_of_a_pipeline_names_the_way_out(small):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(BinaryHashEncoder(**K), Ridge())
    with pytest.raises(ValueError, match="continuous.*Fit the encoder without y"):
        pipe.fit(small, small[:, 0] * 2.5)


def test_meta_device_is_a_clear_error(small):
    enc = BinaryHashEncoder(**K, device="meta")
    with pytest.raises(ValueError, match="device='meta' holds no data"):
        enc.fit(small)
    assert not hasattr(enc, "net_")


def test_no_loss_term_is_a_clear_error(small):
    off = dict(reg_weight=0.0, neighbor_weight=0.0, anticollapse_weight=0.0)
    for fit in ("fit", "partial_fit"):
        enc = BinaryHashEncoder(**K, **off)
        with pytest.raises(ValueError, match="Every loss term is off"):
            getattr(enc, fit)(small)
        assert not hasattr(enc, "net_")
    # labels alone train the codes
    y = (small[:, 0] > 0).astype(int)
    assert BinaryHashEncoder(**K, **off).fit(small, y).transform(small).any()


def test_queries_that_overflow_the_network_are_an_error(small_fitted):
    Q = np.zeros((3, small_fitted.n_features_in_))
    Q[1] = 3e38  # within float32, but the network's sums overflow
    Q[2, ::2], Q[2, 1::2] = 3e38, -3e38
    for method in (small_fitted.embed, small_fitted.transform):
        with pytest.raises(ValueError, match=r"not finite for 2 row\(s\) of X \(first: \[1, 2\]"):
            method(Q)


def test_read_only_rows_train_without_a_warning(small):
    X = np.array(small, dtype=np.float32)
    X.setflags(write=False)  # as joblib hands GridSearchCV workers their data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BinaryHashEncoder(**K).fit(X)
        BinaryHashEncoder(**K).partial_fit(X)


def test_read_only_queries_encode_without_a_warning(small_fitted, tmp_path):
    # GridSearchCV workers also transform read-only memory maps (the test folds); torch
    # warns once per process, so the check runs in a fresh one
    joblib.dump(small_fitted, tmp_path / "enc.joblib")
    code = (
        "import warnings, joblib, numpy as np; warnings.simplefilter('error'); "
        f"enc = joblib.load({str(tmp_path / 'enc.joblib')!r}); "
        "X = np.ones((5, enc.n_features_in_), np.float32); X.setflags(write=False); "
        "enc.transform(X); enc.packbits(X); enc.embed(X)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_feature_names_out_before_fit_raises():
    with pytest.raises(NotFittedError):
        BinaryHashEncoder().get_feature_names_out()


@pytest.mark.parametrize("scale", [2.0**66, 2.0**-43])
def test_codes_do_not_depend_on_the_rows_scale(scale):
    # norms ~1e20 and ~1e-13, beyond float32's squared-norm range: same codes as unit rows
    # (powers of two scale exactly, so the codes must be bit-identical)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    kw = {**K, "neighbor_weight": 1.0}
    reference = BinaryHashEncoder(**kw).fit(X).transform(X)
    scaled = BinaryHashEncoder(**kw).fit(X * scale)
    np.testing.assert_array_equal(scaled.transform(X * scale), reference)


def test_a_feature_that_barely_varies_in_training_is_not_amplified():
    # embeddings stored as float16 hold features with a spread of 1e-8 (0 or -2**-24); a
    # scale per feature would make a query's change of 1e-5 there a jump of ~300 scales
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    X[:, 3] = np.where(rng.random(200) < 0.5, 0.0, -(2.0**-24))
    enc = BinaryHashEncoder(**K).fit(X)
    scale, spread = enc.module_state_["input_scale"], np.sqrt(enc.scaler_.var_)
    typical = np.sqrt(enc.scaler_.var_.mean())
    np.testing.assert_allclose(scale[3], 0.1 * typical, rtol=1e-6)  # floored
    others = np.arange(8) != 3
    np.testing.assert_allclose(scale[others], spread[others], rtol=1e-6)  # per feature
    moved = X.copy()
    moved[:, 3] += 1e-5
    assert (enc.transform(moved) != enc.transform(X)).mean() < 0.01


def test_zero_rows_are_handled(small):
    X = small.copy()
    X[[3, 7]] = 0.0
    enc = BinaryHashEncoder(**K).fit(X)
    assert np.isfinite(enc.embed(X)).all()
    assert np.isfinite(enc.history_[:, "train_loss"]).all()


def test_inference_uses_the_fitted_width_not_a_changed_parameter(small_fitted, small):
    enc = copy.copy(small_fitted)
    enc.set_params(n_bits=3)
    np.testing.assert_array_equal(enc.embed(small), small_fitted.embed(small))
    assert len(enc.get_feature_names_out()) == 8


# --- issue 13: a training budget in steps, a bounded sample of rows ---------------------------


def test_more_rows_than_max_samples_train_on_a_seeded_sample(small):
    X = np.vstack([small, small[::-1] + 0.5])  # 120 rows
    enc = BinaryHashEncoder(**{**K, "batch_size": 16}, max_samples=48).fit(X)
    assert enc.scaler_.n_samples_seen_ == 48  # the standardisation sees the sample only
    assert enc.n_steps_ == K["max_epochs"] * 3  # passes over 48 rows, not 120
    again = BinaryHashEncoder(**{**K, "batch_size": 16}, max_samples=48).fit(X)
    np.testing.assert_array_equal(again.embed(X), enc.embed(X))
    other = BinaryHashEncoder(**{**K, "batch_size": 16, "random_state": 1}, max_samples=48)
    assert other.fit(X).scaler_.mean_.tolist() != enc.scaler_.mean_.tolist()  # another sample


def test_max_samples_at_or_above_n_uses_every_row(small, small_fitted):
    enc = BinaryHashEncoder(**K, max_samples=len(small)).fit(small)
    np.testing.assert_array_equal(enc.embed(small), small_fitted.embed(small))
    assert enc.scaler_.n_samples_seen_ == len(small)


def test_auto_budget_is_max_epochs_passes(small_fitted, small):
    # 60 rows, batches of min(256, 60): one step per pass
    assert small_fitted.n_steps_ == K["max_epochs"] == len(small_fitted.history_)


# --- the teacher's temperature: "auto" from the training rows' neighbourhoods -------------


def _mean_gap_to_the_tenth_neighbour(X):
    """Brute force: mean over rows of cos(nearest) - cos(10th nearest) among the other rows."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=11, metric="cosine").fit(X).kneighbors(X)
    return np.mean(distances[:, 10] - distances[:, 1])  # column 0: the row itself


def test_auto_teacher_temperature_is_a_fixed_share_of_the_mean_gap_to_the_tenth_neighbour():
    from skhash._objective import auto_teacher_temperature

    X = np.random.default_rng(0).normal(size=(300, 6))
    gap = _mean_gap_to_the_tenth_neighbour(X)
    assert auto_teacher_temperature(X) == pytest.approx(0.4 * gap)
    # cosines: neither the rows' scale nor their order matters
    assert auto_teacher_temperature(1000 * X) == pytest.approx(0.4 * gap)
    assert auto_teacher_temperature(X[::-1]) == pytest.approx(0.4 * gap)
    # fewer than 11 rows: the farthest other row stands for the 10th
    few = X[:5]
    cos = (few / np.linalg.norm(few, axis=1, keepdims=True)) @ (
        few / np.linalg.norm(few, axis=1, keepdims=True)
    ).T
    np.fill_diagonal(cos, -np.inf)
    short_gap = np.mean(cos.max(axis=1) - np.sort(cos, axis=1)[:, 1])
    assert auto_teacher_temperature(few) == pytest.approx(0.4 * short_gap)
    # a zero row is at cosine 0 to every row: no nan
    with_zero = np.vstack([X, np.zeros(6)])
    assert np.isfinite(auto_teacher_temperature(with_zero))
    # nothing to scale by: too few rows, every row the same direction
    assert auto_teacher_temperature(X[:2]) == 0.05
    assert auto_teacher_temperature(np.empty((0, 6))) == 0.05
    assert auto_teacher_temperature(np.outer(np.arange(1, 51), np.ones(6))) == 0.05


def test_auto_teacher_temperature_does_not_depend_on_how_many_rows_there_are():
    from skhash._objective import auto_teacher_temperature

    # on a 4-sphere the neighbours' gap shrinks with the number of rows
    X = np.random.default_rng(1).normal(size=(9000, 5))
    few, many = X[:2500], X
    assert _mean_gap_to_the_tenth_neighbour(many) < 0.8 * _mean_gap_to_the_tenth_neighbour(few)
    # the rule reads it among samples of 2,048 rows: the same value for both
    assert auto_teacher_temperature(many) == pytest.approx(auto_teacher_temperature(few), rel=0.03)
    # and among all of them below 2,048 rows
    small = X[:1000]
    assert auto_teacher_temperature(small) == pytest.approx(
        0.4 * _mean_gap_to_the_tenth_neighbour(small)
    )


def test_auto_teacher_temperature_follows_the_similarities_not_the_scale(digits):
    X, _ = digits
    X = X[:300]
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(X)
    # the value is the rule on the training rows, and the loss trains with it
    from skhash._objective import auto_teacher_temperature

    assert enc.teacher_temperature_ == pytest.approx(auto_teacher_temperature(X))
    assert enc.net_.criterion_.settings["teacher_temperature"] == enc.teacher_temperature_
    # a property of the data: another random_state gives the same value
    other = BinaryHashEncoder(random_state=1, **FAST).fit(X)
    assert other.teacher_temperature_ == enc.teacher_temperature_
    # cosines do not depend on the rows' scale
    scaled = BinaryHashEncoder(random_state=0, **FAST).fit(1000 * X)
    assert scaled.teacher_temperature_ == pytest.approx(enc.teacher_temperature_, rel=1e-6)
    # a common offset squeezes every cosine toward 1: the neighbours' gaps shrink, and so does T
    squeezed = BinaryHashEncoder(random_state=0, **FAST).fit(X + 50.0)
    assert squeezed.teacher_temperature_ < enc.teacher_temperature_ / 10


def test_a_given_teacher_temperature_is_used_as_given(digits):
    X, _ = digits
    enc = BinaryHashEncoder(teacher_temperature=0.07, random_state=0, **FAST).fit(X[:200])
    assert enc.teacher_temperature_ == 0.07
    assert enc.net_.criterion_.settings["teacher_temperature"] == 0.07
    assert enc.get_params()["teacher_temperature"] == 0.07


def test_without_a_neighbour_graph_the_teacher_temperature_is_the_fallback(digits):
    X, _ = digits
    enc = BinaryHashEncoder(neighbor_weight=0.0, random_state=0, **FAST).fit(X[:200])
    assert enc.teacher_temperature_ == 0.05
