"""Figures for watching training and judging codes, drawn with matplotlib.

matplotlib is optional: it is imported when a function of this module is first
called, never by ``import skhash`` or ``import skhash.plotting``. Install it with
``pip install matplotlib``.

- :func:`plot_training_curves`: loss terms, distance to the nearest vertex and
  ``beta``, bit balance and bit correlation over the epochs of
  ``encoder.history_``;
- :func:`plot_code_histograms`: the per-epoch histogram of a batch's relaxed
  codes, which moves from one central bump to two spikes at -1 and +1;
- :func:`plot_hamming_distances`: Hamming distances between items and their
  true neighbours against those between random pairs, from codes and a
  neighbour index array, or from an encoder and data
  (:func:`plot_encoder_distances`). :func:`hamming_distance_pairs` computes
  the same distances without drawing.

Every function draws on ``ax`` (or ``axes``) when given, else on a new figure,
and returns what it drew on.
"""

import numbers

import numpy as np

from ._objective import TERM_NAMES
from .callbacks import HIST_RANGE

__all__ = [
    "hamming_distance_pairs",
    "plot_code_histograms",
    "plot_encoder_distances",
    "plot_hamming_distances",
    "plot_training_curves",
]

#: Loss terms of :class:`~skhash.BinaryHashEncoder`, in the order they are drawn
#: (the encoder's loss-term table, ``skhash._objective.LOSS_TERMS``).
LOSS_TERMS = TERM_NAMES


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised by mocking the import
        raise ImportError(
            "skhash.plotting needs matplotlib, which is not installed; "
            "install it with `pip install matplotlib`."
        ) from exc
    return plt


def _history_rows(history):
    """Epoch rows (a list of dicts) from an encoder, a skorch History or rows."""
    if hasattr(history, "history_"):
        history = history.history_
    elif hasattr(history, "get_params"):  # an estimator without a training history
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {type(history).__name__} has no training history (history_): fit it "
            "first. An encoder loaded from disk keeps no history."
        )
    rows = list(history)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError(
            "history must be a fitted encoder, its history_ (a skorch History) or a "
            "non-empty list of per-epoch dicts."
        )
    return rows


def _series(rows, key):
    """Epoch numbers and values of ``key`` over the rows that have it."""
    epochs, values = [], []
    for i, row in enumerate(rows):
        value = row.get(key)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            epochs.append(row.get("epoch", i + 1))
            values.append(float(value))
    return np.asarray(epochs), np.asarray(values)


def plot_training_curves(history, *, axes=None, log_loss=True):
    """Loss terms and convergence figures over the epochs.

    Three panels: (1) ``train_loss`` and each loss term; (2) ``vertex_dist``,
    the mean distance of a batch's outputs to the nearest hypercube vertex,
    with ``beta``, the output steepness, on a second axis; (3) the extreme
    per-bit shares of ones (``ones_min``, ``ones_max``, ideally ``1 -
    sparsity``) and ``max_corr``, the largest correlation between two bits
    (ideally near 0). Keys missing from the history are skipped.

    Parameters
    ----------
    history : BinaryHashEncoder, skorch.History or list of dict
        A fitted encoder, its ``history_``, or per-epoch rows.
    axes : sequence of 3 matplotlib Axes, default=None
        Where to draw; None makes a new figure with three panels side by side.
    log_loss : bool, default=True
        Log scale for the loss panel (loss terms differ by orders of magnitude).

    Returns
    -------
    axes : ndarray of 3 matplotlib Axes
        The panels drawn on.

    Examples
    --------
    >>> from skhash.plotting import plot_training_curves  # doctest: +SKIP
    >>> axes = plot_training_curves(encoder)              # doctest: +SKIP
    >>> axes[0].figure.savefig("training.png")            # doctest: +SKIP
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    rows = _history_rows(history)
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) != 3:
        raise ValueError(f"axes must hold 3 Axes, got {len(axes)}.")
    ax_loss, ax_vertex, ax_bits = axes

    for key in ("train_loss", *LOSS_TERMS):
        epochs, values = _series(rows, key)
        if len(values):
            style = dict(color="black", linewidth=2) if key == "train_loss" else {}
            label = "total" if key == "train_loss" else key
            ax_loss.plot(epochs, values, marker=".", label=label, **style)
    if log_loss and ax_loss.lines and all(np.all(line.get_ydata() > 0) for line in ax_loss.lines):
        ax_loss.set_yscale("log")
    ax_loss.set(title="Loss terms", xlabel="epoch", ylabel="loss (weighted)")
    if ax_loss.lines:
        ax_loss.legend(fontsize="x-small", framealpha=0.6)

    epochs, values = _series(rows, "vertex_dist")
    if len(values):
        ax_vertex.plot(epochs, values, marker=".", color="C0", label="vertex_dist")
    ax_vertex.set_ylim(bottom=0)
    ax_vertex.set(title="Distance to nearest vertex", xlabel="epoch", ylabel="mean |1 - |z||")
    ax_vertex.yaxis.label.set_color("C0")
    epochs, values = _series(rows, "beta")
    if len(values):
        ax_beta = ax_vertex.twinx()
        ax_beta.plot(epochs, values, linestyle="--", color="C3", label="beta")
        ax_beta.set_ylabel("beta (output steepness)", color="C3")
        ax_beta.set_ylim(bottom=0)

    for key, style in (
        ("ones_min", dict(color="C2", linestyle="-")),
        ("ones_max", dict(color="C2", linestyle="--")),
        ("max_corr", dict(color="C4", linestyle="-")),
    ):
        epochs, values = _series(rows, key)
        if len(values):
            ax_bits.plot(epochs, values, marker=".", label=key, **style)
    ax_bits.set_ylim(0, 1)
    ax_bits.set(title="Bit balance and dependence", xlabel="epoch", ylabel="share / |corr|")
    if ax_bits.lines:
        ax_bits.legend(fontsize="x-small", framealpha=0.6)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return axes


def plot_code_histograms(history, *, ax=None, kind="heatmap", value_range=HIST_RANGE, max_lines=8):
    """Per-epoch histogram of a batch's relaxed codes.

    Reads ``hist_counts`` (recorded by
    :class:`~skhash.callbacks.HypercubeDiagnostics`). Converged codes show
    two spikes at -1 and +1 and nothing in between.

    Parameters
    ----------
    history : BinaryHashEncoder, skorch.History or list of dict
        A fitted encoder, its ``history_``, or per-epoch rows with
        ``hist_counts``.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.
    kind : {"heatmap", "lines"}, default="heatmap"
        ``"heatmap"``: one row per epoch, colour is the share of values in
        the bin. ``"lines"``: one step histogram per epoch for up to
        ``max_lines`` evenly spaced epochs, coloured from early to late.
    value_range : tuple of float, default=(-1.5, 1.5)
        Range the counts were recorded over (the default of
        :class:`~skhash.callbacks.HypercubeDiagnostics`).
    max_lines : int, default=8
        Most epochs drawn with ``kind="lines"``.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.
    """
    plt = _pyplot()
    from matplotlib.colors import PowerNorm
    from matplotlib.ticker import MaxNLocator

    if kind not in ("heatmap", "lines"):
        raise ValueError(f"kind must be 'heatmap' or 'lines', got {kind!r}.")
    if not isinstance(max_lines, numbers.Integral) or isinstance(max_lines, bool) or max_lines < 1:
        raise ValueError(f"max_lines must be an int >= 1, got {max_lines!r}.")
    if np.ndim(value_range) != 1 or np.size(value_range) != 2:
        raise ValueError(f"value_range must be a pair (low, high), got {value_range!r}.")
    low, high = value_range
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}.")
    rows = _history_rows(history)
    rows = [row for row in rows if row.get("hist_counts") is not None]
    if not rows:
        raise ValueError(
            "No 'hist_counts' in the history: it is recorded by "
            "skhash.callbacks.HypercubeDiagnostics."
        )
    lengths = {np.size(row["hist_counts"]) for row in rows}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(
            "Every epoch's hist_counts must have the same number of bins (at least 1), "
            f"got {sorted(lengths)}."
        )
    counts = np.asarray([row["hist_counts"] for row in rows], dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    epochs = np.asarray([row.get("epoch", i + 1) for i, row in enumerate(rows)])
    edges = np.linspace(low, high, counts.shape[1] + 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")

    if kind == "heatmap":
        # one cell per epoch: edges halfway between epochs
        y_edges = np.concatenate([[epochs[0] - 0.5], epochs + 0.5])
        # square-root colour scale: the fading central bump stays visible next to the spikes
        mesh = ax.pcolormesh(
            edges,
            y_edges,
            shares,
            cmap="viridis",
            shading="flat",
            norm=PowerNorm(0.5, vmin=0, vmax=max(shares.max(), 1e-12)),
        )
        ax.figure.colorbar(mesh, ax=ax, label="share of values")
        ax.set_ylabel("epoch")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) > 1:
            ax.set_ylim(y_edges[-1], y_edges[0])  # first epoch at the top
    else:
        pick = np.unique(np.linspace(0, len(rows) - 1, min(max_lines, len(rows))).astype(int))
        cmap = plt.get_cmap("viridis")
        for j, i in enumerate(pick):
            color = cmap(j / max(len(pick) - 1, 1))
            ax.stairs(shares[i], edges, color=color, label=f"epoch {epochs[i]}")
        ax.set_ylabel("share of values")
        ax.legend(fontsize="small")
    for vertex in (-1, 1):
        ax.axvline(
            vertex, color="white" if kind == "heatmap" else "grey", linestyle=":", linewidth=1
        )
    ax.set(title="Relaxed code values per epoch", xlabel="output value z")
    return ax


def _as_bits(codes, packed):
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-dimensional, got shape {codes.shape}.")
    if packed:
        if codes.dtype != np.uint8:
            raise ValueError("packed codes must be uint8 bytes, as np.packbits returns.")
        return np.unpackbits(codes, axis=1).astype(bool)
    if not np.isin(codes, (0, 1)).all():
        raise ValueError("codes must hold 0/1 bits; pass packed=True for packed bytes.")
    return codes.astype(bool)


def _check_n_random_pairs(n_random_pairs, minimum):
    if (
        not isinstance(n_random_pairs, numbers.Integral)
        or isinstance(n_random_pairs, bool)
        or n_random_pairs < minimum
    ):
        raise ValueError(f"n_random_pairs must be an int >= {minimum}, got {n_random_pairs!r}.")
    return int(n_random_pairs)


def hamming_distance_pairs(
    codes, neighbors, *, packed=False, n_random_pairs=10_000, random_state=None
):
    """Hamming distances of neighbour pairs and of random pairs.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_bits) or (n_samples, n_bytes)
        0/1 codes, as ``BinaryHashEncoder.transform`` returns, or packed bytes
        with ``packed=True``.
    neighbors : array-like of int, shape (n_queries, k)
        Row ``i`` holds indices (into ``codes``) of the true neighbours of
        item ``i``, e.g. from
        :meth:`sklearn.neighbors.NearestNeighbors.kneighbors` on the original
        features. Negative indices are skipped (padding).
    packed : bool, default=False
        Whether ``codes`` are packed bytes.
    n_random_pairs : int, default=10000
        Number of random pairs of distinct items (0 for none).
    random_state : int, RandomState instance or None, default=None
        Draws the random pairs.

    Returns
    -------
    neighbor_distances : ndarray of shape (n_pairs,), int64
        Hamming distance between each item and each of its neighbours.
    random_distances : ndarray of shape (n_random_pairs,), int64
        Hamming distance between random pairs of distinct items.
    """
    from sklearn.utils import check_random_state

    n_random_pairs = _check_n_random_pairs(n_random_pairs, 0)
    bits = _as_bits(codes, packed)
    n = len(bits)
    neighbors = np.asarray(neighbors)
    if neighbors.ndim != 2 or not np.issubdtype(neighbors.dtype, np.integer):
        raise ValueError("neighbors must be a 2-dimensional array of integer indices.")
    if len(neighbors) > n or neighbors.max(initial=-1) >= n:
        raise ValueError("neighbors refers to rows beyond those of codes.")
    if n < 2:
        raise ValueError("Need at least two codes.")
    rows, cols = np.nonzero(neighbors >= 0)
    pairs_i, pairs_j = rows, neighbors[rows, cols]
    neighbor_distances = (bits[pairs_i] != bits[pairs_j]).sum(axis=1)
    rng = check_random_state(random_state)
    i = rng.randint(n, size=n_random_pairs)
    j = (i + rng.randint(1, n, size=n_random_pairs)) % n  # any other item
    random_distances = (bits[i] != bits[j]).sum(axis=1)
    return neighbor_distances.astype(np.int64), random_distances.astype(np.int64)


def plot_hamming_distances(
    codes,
    neighbors,
    *,
    packed=False,
    n_random_pairs=10_000,
    random_state=None,
    ax=None,
    title=None,
):
    """Distribution of Hamming distances: true neighbours against random pairs.

    Good codes put an item's true neighbours (found on the original features)
    at small Hamming distances and random pairs near ``n_bits / 2``; the less
    the two histograms overlap, the better Hamming search finds neighbours.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_bits) or (n_samples, n_bytes)
        0/1 codes, or packed bytes with ``packed=True``.
    neighbors : array-like of int, shape (n_queries, k)
        Row ``i`` holds indices of the true neighbours of item ``i``.
    packed : bool, default=False
        Whether ``codes`` are packed bytes.
    n_random_pairs : int, default=10000
        Number of random pairs, at least 1.
    random_state : int, RandomState instance or None, default=None
        Draws the random pairs.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.
    title : str, default=None
        Title of the axes; None gives a generic one.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    hamming_distance_pairs : The distances, without drawing.
    plot_encoder_distances : The same from an encoder and data.
    """
    plt = _pyplot()
    # two histograms to compare: pairs of both kinds are needed
    n_random_pairs = _check_n_random_pairs(n_random_pairs, 1)
    near, far = hamming_distance_pairs(
        codes,
        neighbors,
        packed=packed,
        n_random_pairs=n_random_pairs,
        random_state=random_state,
    )
    if not len(near):
        raise ValueError("neighbors holds no neighbour pair (every index is negative padding).")
    n_bits = _as_bits(np.asarray(codes)[:1], packed).shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
    edges = np.arange(n_bits + 2) - 0.5
    k = np.asarray(neighbors).shape[1]
    ax.hist(
        far,
        bins=edges,
        density=True,
        histtype="stepfilled",
        alpha=0.4,
        color="C7",
        label=f"random pairs (median {np.median(far):g})",
    )
    ax.hist(
        near,
        bins=edges,
        density=True,
        histtype="stepfilled",
        alpha=0.6,
        color="C0",
        label=f"{k} true neighbours (median {np.median(near):g})",
    )
    ax.set_xlim(-0.5, max(np.max(far), np.max(near, initial=0)) + 1.5)
    ax.set(
        xlabel=f"Hamming distance ({n_bits} bits)",
        ylabel="share of pairs",
        title="Hamming distances" if title is None else title,  # "" is no title
    )
    ax.legend(fontsize="small")
    return ax


def plot_encoder_distances(
    encoder,
    X,
    *,
    n_neighbors=10,
    metric="euclidean",
    n_random_pairs=10_000,
    random_state=None,
    ax=None,
    title=None,
):
    """:func:`plot_hamming_distances` for a fitted encoder on data ``X``.

    The true neighbours are the ``n_neighbors`` nearest other rows of ``X``
    under ``metric`` (exact, :class:`sklearn.neighbors.NearestNeighbors`);
    the codes are ``encoder.transform(X)``. Keep ``X`` to a few thousand rows:
    the exact search is quadratic.

    Parameters
    ----------
    encoder : fitted transformer
        Anything whose ``transform`` returns 0/1 codes, e.g. a
        :class:`~skhash.BinaryHashEncoder`, :class:`~skhash.SimHash` or
        :class:`~skhash.PCAITQ`.
    X : array-like of shape (n_samples, n_features)
        Data whose codes and neighbours are compared.
    n_neighbors : int, default=10
        True neighbours per item.
    metric : str, default="euclidean"
        Metric of the true neighbours, e.g. ``"cosine"`` for text embeddings.
    n_random_pairs : int, default=10000
        Number of random pairs, at least 1.
    random_state : int, RandomState instance or None, default=None
        Draws the random pairs.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.
    title : str, default=None
        Title of the axes; None uses the encoder's class name.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.
    """
    from sklearn.neighbors import NearestNeighbors

    _pyplot()
    _check_n_random_pairs(n_random_pairs, 1)  # before the exact search
    # so are the codes: an unfitted encoder, or X of the wrong width, fails at once
    codes = encoder.transform(X)
    neighbors = (
        NearestNeighbors(n_neighbors=n_neighbors, metric=metric)
        .fit(X)
        .kneighbors(return_distance=False)
    )
    return plot_hamming_distances(
        codes,
        neighbors,
        n_random_pairs=n_random_pairs,
        random_state=random_state,
        ax=ax,
        title=type(encoder).__name__ if title is None else title,
    )
