import pickle
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
        ({"n_bits": 0}, "n_bits"),
        ({"n_bits": 2.5}, "n_bits"),
        ({"sparsity": 0.0}, "sparsity"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"n_bits": 4, "active_dims": 8}, "active_dims=8 exceeds n_bits=4"),
        ({"projection": "diagonal"}, "'projection' parameter of BinaryHashEncoder must be one of"),
        ({"lr": float("inf")}, "'lr'"),
        ({"beta_max": float("inf")}, "'beta_max'"),
        ({"n_bits": True}, "'n_bits'"),
        ({"hidden_layer_sizes": (32, True)}, "hidden_layer_sizes"),
        ({"verbose": -1}, "'verbose'"),
        ({"device": 0}, "'device'"),
        ({"reg_weight": -1.0}, "reg_weight"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
        ({"lr": 0}, "lr"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 0.0}, "temperature"),
        ({"neighbor_loss": "triplet"}, "neighbor_loss"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        BinaryHashEncoder(**params).fit(X[:20])


def test_strings_and_sparse_input_rejected(digits):
    X, _ = digits
    with pytest.raises(TypeError, match="[Ss]parse"):
        BinaryHashEncoder(**FAST).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError):
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
    pd = pytest.importorskip("pandas")
    X, _ = digits
    frame = pd.DataFrame(X[:200], columns=[f"px{i}" for i in range(64)])
    enc = BinaryHashEncoder(random_state=0, **FAST).fit(frame)
    np.testing.assert_array_equal(enc.feature_names_in_, frame.columns)
    names = enc.get_feature_names_out()
    assert list(names) == [f"binaryhashencoder{i}" for i in range(16)]
    out = enc.set_output(transform="pandas").transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
