"""The encoder network's forward pass in numpy, so that inference never imports torch.

:func:`forward` computes what :class:`skhash._module.HashMLP` computes in eval mode,
from the module's ``state_dict()`` copied to numpy arrays (the encoder's
``module_state_``)::

    x = (X - input_mean) / input_scale
    h = linear(x) + nonlinear(hidden(x))          # hidden: (Linear, GELU) * n
    z = tanh(beta * (h - running_mean) / sqrt(running_var + 1e-5))

GELU is the exact one, ``0.5 * x * (1 + erf(x / sqrt(2)))``, as ``torch.nn.GELU()``.
Everything is float32 like the torch module, but BLAS and torch sum in different
orders, so outputs differ from torch's by float rounding: a code bit can differ
only where the output is within rounding of 0 (``tests/test_inference.py``
counts them).
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import re

import numpy as np
from scipy.special import erf

__all__ = ["check_finite_outputs", "forward", "hidden_layer_keys", "read_only_state"]

# torch.nn.BatchNorm1d's default
_BN_EPS = 1e-5
_HIDDEN = re.compile(r"^hidden\.(\d+)\.weight$")


def hidden_layer_keys(state):
    """Prefixes of the hidden Linear layers in order, e.g. ``["hidden.0", "hidden.2"]``."""
    indices = sorted(int(m.group(1)) for key in state if (m := _HIDDEN.match(key)))
    return [f"hidden.{i}" for i in indices]


def read_only_state(state):
    """``state`` with every array made read-only, in place; returns it.

    A ``HashIndex`` keeps a reference to the state it was built with (a refit
    replaces the dict, never writes into it): an in-place write would change
    the index's queries without it knowing.
    """
    for array in state.values():
        array.flags.writeable = False
    return state


def _check_state(state):
    required = ("input_mean", "input_scale", "linear.weight", "linear.bias", "beta")
    required += ("norm.running_mean", "norm.running_var")
    missing = [key for key in required if key not in state]
    if missing:
        raise ValueError(f"The network state lacks the arrays {missing}; is it a HashMLP's?")
    if hidden_layer_keys(state) and "nonlinear.weight" not in state:
        raise ValueError("The network state has hidden layers but no 'nonlinear.weight'.")


def _linear(x, state, prefix):
    # x @ W.T + b, W stored (out, in) as torch stores it
    return x @ state[f"{prefix}.weight"].T + state[f"{prefix}.bias"]


def _gelu(x):
    return (0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))).astype(np.float32, copy=False)


def _forward_chunk(state, X, hidden):
    """Batch-normalised pre-activations ``h`` of one chunk (``forward`` applies the tanh)."""
    x = (X - state["input_mean"]) / state["input_scale"]
    h = _linear(x, state, "linear")
    if hidden:
        a = x
        for prefix in hidden:
            a = _gelu(_linear(a, state, prefix))
        h += _linear(a, state, "nonlinear")
    invstd = np.float32(1.0) / np.sqrt(state["norm.running_var"] + np.float32(_BN_EPS))
    return (h - state["norm.running_mean"]) * invstd


def forward(state, X, *, chunk_size=8192, pre_activation=False):
    """Relaxed codes in [-1, 1] of ``X``: ``HashMLP.forward`` in eval mode, in numpy.

    Parameters
    ----------
    state : dict of str to ndarray
        The module's ``state_dict()`` as numpy arrays (torch's key names).
    X : ndarray of shape (n_samples, n_features)
        Inputs; cast to float32.
    chunk_size : int, default=8192
        Rows per pass; bounds the memory of the hidden activations.
    pre_activation : bool, default=False
        Also return the batch-normalised pre-activations ``h`` (``Z = tanh(beta
        * h)``): how far each bit is from its decision boundary, unsaturated by
        ``beta``.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_bits), float32
        ``Z > 0`` are the code bits.
    H : ndarray of shape (n_samples, n_bits), float32
        The pre-activations; only with ``pre_activation=True``.
    """
    _check_state(state)
    state = {key: np.asarray(value, dtype=np.float32) for key, value in state.items()}
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != state["input_mean"].shape[0]:
        raise ValueError(
            f"X must have shape (n_samples, {state['input_mean'].shape[0]}), got {X.shape}."
        )
    hidden = hidden_layer_keys(state)
    n_bits = state["linear.weight"].shape[0]
    out = np.empty((X.shape[0], n_bits), dtype=np.float32)
    pre = np.empty_like(out) if pre_activation else None
    chunk_size = max(1, int(chunk_size))
    for start in range(0, X.shape[0], chunk_size):
        h = _forward_chunk(state, X[start : start + chunk_size], hidden)
        out[start : start + chunk_size] = np.tanh(state["beta"] * h)
        if pre_activation:
            pre[start : start + chunk_size] = h
    check_finite_outputs(out)
    return (out, pre) if pre_activation else out


def check_finite_outputs(out):
    """Raise if the network's outputs hold NaN (rows so large that float32 overflowed).

    A NaN output would threshold to a 0 bit without a word: the code of such a
    row would be silently wrong.
    """
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"The network's outputs are not finite for {rows.size} row(s) of X (first: "
            f"{rows[:5].tolist()}): their values are too large for the network's float32 "
            "arithmetic. Rescale X the way the training rows were."
        )
