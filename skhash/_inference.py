"""The encoder network's forward pass in numpy, so that inference never imports torch.

:func:`forward` computes what :class:`skhash._module.HashMLP` computes in eval mode,
from the module's ``state_dict()`` copied to numpy arrays (the encoder's
``module_state_``)::

    x = (X - input_mean) / input_scale
    h = linear(x) + nonlinear(hidden(x))          # hidden: (Linear, GELU) * n
    z = tanh(beta * (h - running_mean) / sqrt(running_var + 1e-5))

With the anchors of smoothed codes in the state (``BinaryHashEncoder(n_anchors=...)``,
:data:`ANCHOR_KEYS`), :func:`forward` then adds their term (:func:`smooth`).

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

__all__ = [
    "ANCHOR_KEYS",
    "anchor_table",
    "check_finite_outputs",
    "forward",
    "hidden_layer_keys",
    "read_only_state",
    "smooth",
]

# torch.nn.BatchNorm1d's default
_BN_EPS = 1e-5
# the arrays of smoothed codes (``BinaryHashEncoder(n_anchors=...)``) in a network state
ANCHOR_KEYS = ("anchors.centres", "anchors.values", "anchors.k", "anchors.weight")
# rows per cosine scan of the anchors: bounds the (rows, n_anchors) similarity block
_ANCHOR_CHUNK = 1024
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
    present = [key for key in ANCHOR_KEYS if key in state]
    if present:
        if len(present) != len(ANCHOR_KEYS):
            raise ValueError(f"The network state has {present} but not all of {ANCHOR_KEYS}.")
        centres, values = state["anchors.centres"], state["anchors.values"]
        n_features, n_bits = state["input_mean"].shape[0], state["linear.bias"].shape[0]
        k = np.ravel(state["anchors.k"])
        if (
            centres.ndim != 2
            or centres.shape[1] != n_features
            or values.shape != (centres.shape[0], n_bits)
            or k.shape != (1,)
            or np.size(state["anchors.weight"]) != 1
            or not 1 <= float(k[0]) <= centres.shape[0]
            or float(k[0]) != int(k[0])
        ):
            raise ValueError(
                f"The network state's anchors are inconsistent: centres {centres.shape} "
                f"(n_anchors, {n_features}), values {values.shape} (n_anchors, {n_bits}), "
                f"k {k!r} (an int from 1 to n_anchors)."
            )


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
    if "anchors.centres" in state:
        out = smooth(state, X, out)
        if pre_activation:  # the smoothed outputs: their sign is the bit, as h's is tanh's
            pre = out
    return (out, pre) if pre_activation else out


def _unit_rows(X):
    """Rows of ``X`` scaled to unit length, float32; zero rows stay zero."""
    X = np.asarray(X)
    # in float64: the squares of large float32 values would overflow
    norms = np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _nearest_anchors(X, centres, k):
    """``(n_samples, k)`` indices of the ``k`` anchors of largest cosine to each row."""
    out = np.empty((X.shape[0], k), dtype=np.intp)
    for start in range(0, X.shape[0], _ANCHOR_CHUNK):
        sim = _unit_rows(X[start : start + _ANCHOR_CHUNK]) @ centres.T
        # the k largest, in no order (their mean is what counts)
        out[start : start + _ANCHOR_CHUNK] = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return out


def smooth(state, X, Z):
    """Smoothed outputs ``Z + weight * mean(values[j])`` over the ``k`` anchors ``j``
    nearest each row of ``X`` by cosine (``BinaryHashEncoder(n_anchors=...)``).

    Parameters
    ----------
    state : dict of str to ndarray
        A network state holding the arrays of :data:`ANCHOR_KEYS`.
    X : ndarray of shape (n_samples, n_features)
        The rows ``Z`` was computed from.
    Z : ndarray of shape (n_samples, n_bits)
        The network's outputs of ``X``.

    Returns
    -------
    Z_smoothed : ndarray of shape (n_samples, n_bits), float32
        A zero row of ``X``, which has no cosine to any anchor, keeps its ``Z``.
    """
    centres = np.asarray(state["anchors.centres"], dtype=np.float32)
    values = np.asarray(state["anchors.values"], dtype=np.float32)
    # one-element arrays (safetensors keeps no 0-d ones)
    k, weight = int(np.ravel(state["anchors.k"])[0]), np.ravel(state["anchors.weight"])[0]
    X, Z = np.asarray(X, dtype=np.float32), np.asarray(Z, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != centres.shape[1] or Z.shape != (len(X), values.shape[1]):
        raise ValueError(
            f"X must have shape (n_samples, {centres.shape[1]}) and Z (n_samples, "
            f"{values.shape[1]}); got {X.shape} and {Z.shape}."
        )
    nearest = _nearest_anchors(X, centres, k)
    term = values[nearest].mean(axis=1, dtype=np.float32)
    term[~np.any(X != 0, axis=1)] = 0.0
    return (Z + weight * term).astype(np.float32, copy=False)


def anchor_table(X, Z, n_anchors, k, weight, random_state):
    """The arrays of :data:`ANCHOR_KEYS` from training rows ``X`` and their outputs ``Z``.

    The anchors are the centres of ``min(n_anchors, n distinct unit rows)``
    k-means clusters of the unit-length non-zero rows of ``X``, scaled to unit
    length; an anchor's value is the mean of ``Z`` over the rows whose anchor
    of largest cosine it is (the rule encoding applies). Anchors without rows
    are dropped; ``k`` is capped at the number of anchors kept.
    """
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    rows = np.flatnonzero(np.any(np.asarray(X) != 0, axis=1))
    if rows.size == 0:
        raise ValueError("n_anchors > 0 needs non-zero training rows: every row of X is zero.")
    unit = _unit_rows(np.asarray(X)[rows])
    n_clusters = min(int(n_anchors), len(np.unique(unit, axis=0)))
    with warnings.catch_warnings():
        # fewer distinct rows than clusters is handled below, by dropping empty ones
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters, n_init=1, max_iter=50, random_state=random_state).fit(unit)
    centres = _unit_rows(kmeans.cluster_centers_)
    labels = _nearest_anchors(unit, centres, 1)[:, 0]
    counts = np.bincount(labels, minlength=n_clusters)
    values = np.zeros((n_clusters, Z.shape[1]), dtype=np.float64)
    np.add.at(values, labels, np.asarray(Z, dtype=np.float64)[rows])
    keep = counts > 0
    values = (values[keep] / counts[keep, None]).astype(np.float32)
    centres = centres[keep]
    return {
        "anchors.centres": np.ascontiguousarray(centres),
        "anchors.values": np.ascontiguousarray(values),
        "anchors.k": np.asarray([min(int(k), len(values))], dtype=np.float32),
        "anchors.weight": np.asarray([weight], dtype=np.float32),
    }


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
