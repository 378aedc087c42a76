"""The numpy forward pass against the torch module it mirrors."""

import numpy as np
import pytest

from skhash._inference import forward, hidden_layer_keys
from tests.helpers import FAST


def module_state(encoder):
    """The encoder's network state as numpy arrays (contract: ``module_state_``)."""
    state = getattr(encoder, "module_state_", None)
    if state is None:
        state = {k: v.detach().cpu().numpy() for k, v in encoder.net_.module_.state_dict().items()}
    return state


def torch_forward(encoder, X):
    import torch

    module = encoder.net_.module_
    module.eval()
    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()


def check_against_torch(encoder, X):
    expected = torch_forward(encoder, X)
    got = forward(module_state(encoder), X, chunk_size=97)
    # float32 rounding, amplified at most by beta through tanh's slope <= 1
    np.testing.assert_allclose(got, expected, atol=2e-5 * float(module_state(encoder)["beta"]))
    differ = (got > 0) != (expected > 0)
    # a code bit may differ only where torch's output is within float rounding of 0
    assert np.all(np.abs(expected[differ]) < 1e-5)
    return differ.sum(), differ.size


def test_forward_equals_torch_on_fitted_encoder(fitted, digits):
    X, _ = digits
    n_differ, n_total = check_against_torch(fitted, X)
    assert n_differ <= 1e-4 * n_total  # measured 0 of 28,752 bits here


def test_forward_linear_and_deep_networks(digits):
    from skhash import BinaryHashEncoder

    X, _ = digits
    params = {**FAST, "max_epochs": 2}
    for sizes in [(), (16, 8)]:
        encoder = BinaryHashEncoder(random_state=0, **{**params, "hidden_layer_sizes": sizes})
        encoder.fit(X[:200])
        assert len(hidden_layer_keys(module_state(encoder))) == len(sizes)
        n_differ, n_total = check_against_torch(encoder, X[:500])
        assert n_differ <= 1e-3 * n_total


def test_forward_is_chunk_independent_and_bounded(fitted, digits):
    X, _ = digits
    state = module_state(fitted)
    a = forward(state, X[:300], chunk_size=7)
    b = forward(state, X[:300])
    # BLAS may sum in another order for another number of rows: rounding only
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.all(((a > 0) == (b > 0)) | (np.abs(b) < 1e-5))
    assert a.dtype == np.float32 and np.all(np.abs(a) <= 1)


def test_forward_rejects_wrong_width_and_incomplete_state(fitted, digits):
    X, _ = digits
    state = module_state(fitted)
    # the message of forward's own check, not numpy's "could not be broadcast ... shapes"
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 64\), got \(1797, 10\)"):
        forward(state, X[:, :10])
    broken = {k: v for k, v in state.items() if k != "norm.running_var"}
    with pytest.raises(ValueError, match="norm.running_var"):
        forward(broken, X)


def test_pre_activations_are_the_batch_normalised_outputs_before_the_steepness(fitted, digits):
    import torch

    X, _ = digits
    state = module_state(fitted)
    Z, H = forward(state, X[:300], chunk_size=97, pre_activation=True)
    np.testing.assert_array_equal(Z, forward(state, X[:300], chunk_size=97))  # the same codes
    np.testing.assert_array_equal(Z, np.tanh(state["beta"] * H))
    module = fitted.net_.module_
    module.eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(X[:300], dtype=np.float32))
        x = (x - module.input_mean) / module.input_scale
        expected = module.norm(module.linear(x) + module.nonlinear(module.hidden(x))).numpy()
    np.testing.assert_allclose(H, expected, atol=1e-4)
    # unsaturated: a bit's distance from its boundary survives where tanh(beta * h) is +-1
    assert np.mean(np.abs(Z) > 0.999) > 0.3 and np.mean(np.abs(H) > 3.8 / state["beta"]) > 0.3
    assert len(np.unique(np.abs(H))) > 0.9 * H.size
