"""skorch callbacks that steer and watch the training of a
:class:`~skhash.BinaryHashEncoder`.

:class:`OutputScaleSchedule`, :class:`HypercubeDiagnostics`,
:class:`EpochProgressBar` and :class:`TrainingLog` are all on by default. The
first raises the output steepness, the second records convergence figures in
``encoder.history_`` (where :mod:`skhash.plotting` reads them), the last two
print them: with ``verbose=1`` a live bar during each epoch (on an interactive
terminal or in a notebook) and one table row per epoch; with ``verbose=0``
nothing is printed, and everything is still recorded.

The functions :func:`histogram_counts`, :func:`sparkline` and
:func:`code_statistics` compute the same figures for any array of relaxed
codes, e.g. ``encoder.embed(X)``.
"""

import math
import sys

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog

__all__ = [
    "EpochProgressBar",
    "HypercubeDiagnostics",
    "OutputScaleSchedule",
    "TrainingLog",
    "code_statistics",
    "histogram_counts",
    "sparkline",
]

_SPARK = " ▁▂▃▄▅▆▇█"

#: Number of bins and value range of the recorded histograms.
HIST_BINS = 12
HIST_RANGE = (-1.5, 1.5)


class OutputScaleSchedule(Callback):
    """Raise the output steepness ``beta`` of ``tanh(beta * h)`` over the epochs.

    HashNet's continuation: training starts smooth (``beta_start``), so every
    loss term has gradients, and ends steep (``beta_end``), so outputs sit at the
    hypercube vertices and the thresholded code is what was trained. ``beta``
    grows geometrically from epoch 1 to the last epoch and is recorded in
    ``history`` as ``"beta"``.

    Parameters
    ----------
    beta_start : float, default=1.0
        Steepness during the first epoch.
    beta_end : float, default=8.0
        Steepness during the last epoch.
    """

    def __init__(self, beta_start=1.0, beta_end=8.0):
        self.beta_start = beta_start
        self.beta_end = beta_end

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)  # 1-based: skorch adds the row before callbacks run
        progress = (epoch - 1) / max(net.max_epochs - 1, 1)
        beta = self.beta_start * (self.beta_end / self.beta_start) ** min(progress, 1.0)
        net.module_.beta.fill_(beta)
        net.history.record("beta", beta)


def histogram_counts(values, bins=HIST_BINS, value_range=HIST_RANGE):
    """Histogram of ``values`` over equal bins, symmetric about 0.

    Unlike :func:`numpy.histogram`, a value on the edge between two bins counts
    in the bin nearer to 0, so that -1 and +1 (which are bin edges for the
    default 12 bins over [-1.5, 1.5]) land in the mirror-image bins
    [-1, -0.75) and (0.75, 1]. Values outside ``value_range`` are not counted.

    Parameters
    ----------
    values : array-like
        Any shape; flattened.
    bins : int, default=12
        Number of equal-width bins.
    value_range : tuple of float, default=(-1.5, 1.5)
        Lower and upper edge of the histogram.

    Returns
    -------
    counts : ndarray of shape (bins,), int64
        Number of values per bin.
    """
    lo, hi = value_range
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values) & (values >= lo) & (values <= hi)]
    # nudge every value toward 0 by far less than a bin width: edges go to the inner bin
    nudged = values - np.sign(values) * (hi - lo) * 1e-9
    counts, _ = np.histogram(nudged, bins=bins, range=value_range)
    return counts.astype(np.int64)


def sparkline(values, bins=HIST_BINS, value_range=HIST_RANGE):
    """One-line histogram of ``values`` with block characters.

    Parameters
    ----------
    values : array-like
        Any shape; flattened. Binned as in :func:`histogram_counts`.
    bins : int, default=12
        Number of characters (bins).
    value_range : tuple of float, default=(-1.5, 1.5)
        Lower and upper edge of the histogram.

    Returns
    -------
    line : str
        ``bins`` characters, the tallest bar for the fullest bin and a space for
        an empty one.

    Examples
    --------
    >>> from skhash.callbacks import sparkline
    >>> sparkline([-1.0, -0.99, 0.98, 1.0, 0.1], bins=6)
    ' █ ▄█ '
    """
    counts = histogram_counts(values, bins, value_range)
    return _spark_from_counts(counts)


def _spark_from_counts(counts):
    counts = np.asarray(counts)
    if counts.max(initial=0) == 0:
        return " " * len(counts)
    levels = np.ceil(counts / counts.max() * (len(_SPARK) - 1)).astype(int)
    return "".join(_SPARK[i] for i in levels)


def code_statistics(embed, bins=HIST_BINS, value_range=HIST_RANGE):
    """Convergence figures of a batch of relaxed codes.

    Parameters
    ----------
    embed : ndarray of shape (n, n_bits)
        Relaxed codes, e.g. a batch of network outputs in [-1, 1].
    bins : int, default=12
        Bins of the histogram.
    value_range : tuple of float, default=(-1.5, 1.5)
        Range of the histogram.

    Returns
    -------
    stats : dict
        ``vertex_dist`` (mean ``|1 - |z||``), ``ones_min`` and ``ones_max`` (the
        extreme per-bit shares of positive outputs), ``max_corr`` (largest
        ``|corr|`` between two bits' signs; 0 with one bit), ``hist`` (a
        :func:`sparkline` of the values) and ``hist_counts`` (the counts behind
        it, a list of ``bins`` ints, see :func:`histogram_counts`).
    """
    embed = np.asarray(embed, dtype=np.float64)
    bits = (embed > 0).astype(np.float64)
    ones = bits.mean(0)
    max_corr = 0.0
    if embed.shape[1] > 1 and len(embed) > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(bits, rowvar=False)
        np.fill_diagonal(corr, 0.0)
        max_corr = float(np.nanmax(np.abs(corr))) if np.isfinite(corr).any() else 0.0
    counts = histogram_counts(embed, bins, value_range)
    return {
        "vertex_dist": float(np.abs(1 - np.abs(embed)).mean()),
        "ones_min": float(ones.min()),
        "ones_max": float(ones.max()),
        "max_corr": max_corr,
        "hist": _spark_from_counts(counts),
        "hist_counts": counts.tolist(),
    }


class HypercubeDiagnostics(Callback):
    """Record how close the last training batch of each epoch is to binary codes.

    Adds :func:`code_statistics` of the batch's item outputs to ``history``
    each epoch: ``vertex_dist``, ``ones_min``, ``ones_max``, ``max_corr``,
    ``hist``, the one-line histogram over [-1.5, 1.5] that moves from one
    central bump to two spikes at -1 and +1 as training converges, and
    ``hist_counts``, its counts, which
    :func:`skhash.plotting.plot_code_histograms` draws over the epochs.

    The batch is the last full-size training batch of the epoch (a small
    remainder batch would give noisy figures); only its items count, not the
    neighbours paired with them.

    Parameters
    ----------
    bins : int, default=12
        Bins of the recorded histogram.
    value_range : tuple of float, default=(-1.5, 1.5)
        Range of the recorded histogram.
    """

    def __init__(self, bins=HIST_BINS, value_range=HIST_RANGE):
        self.bins = bins
        self.value_range = value_range

    def on_train_begin(self, net, **kwargs):
        # hist_counts is for plots: keep it out of any printed table
        for _, callback in getattr(net, "callbacks_", []):
            if isinstance(callback, PrintLog) and hasattr(callback, "keys_ignored_"):
                callback.keys_ignored_.add("hist_counts")

    def on_epoch_begin(self, net, **kwargs):
        self._last = None

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        # keep the last full-size batch: a small remainder batch gives noisy figures
        if training and y_pred is not None:
            n_items = len(batch[1])
            if self._last is None or n_items >= self._last[1]:
                self._last = (y_pred.detach(), n_items)

    def on_epoch_end(self, net, **kwargs):
        if getattr(self, "_last", None) is None:
            return
        y_pred, n_items = self._last
        self._last = None
        with torch.no_grad():
            embed = y_pred[:n_items].detach().float().cpu().numpy()
        for key, value in code_statistics(embed, self.bins, self.value_range).items():
            net.history.record(key, value)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_last", None)  # a tensor of the last batch: not worth pickling
        return state


def _in_notebook():
    try:
        shell = get_ipython().__class__.__name__  # noqa: F821 (defined by IPython)
    except NameError:
        return False
    return shell == "ZMQInteractiveShell"


class EpochProgressBar(Callback):
    """A progress bar over the batches of each epoch, with the latest loss terms.

    Shown only when the net's ``verbose`` is at least 1 and ``file`` is an
    interactive terminal or the net runs in a Jupyter notebook; in logs,
    pipes and CI output (no terminal) it prints nothing, so redirected output
    holds just the one line per epoch of :class:`TrainingLog`. The bar is
    erased at the end of each epoch, where that line takes its place. It uses
    ``tqdm``, which skorch already depends on.

    Parameters
    ----------
    keys : list of str or None, default=None
        Batch-level history keys shown after the bar, e.g. ``["train_loss",
        "rdmreg"]``. None shows ``train_loss`` and every other number recorded
        for the batch (each loss term), except ``train_batch_size``.
    file : file-like or None, default=None
        Where the bar goes; None means ``sys.stderr`` at the start of each epoch.
    force : bool, default=False
        Show the bar (when ``verbose >= 1``) even if ``file`` is not a terminal.
    mininterval : float, default=0.1
        Least number of seconds between two redraws.

    Examples
    --------
    The bar is on by default in :class:`~skhash.BinaryHashEncoder`; in a
    skorch net of your own::

        net = NeuralNet(..., callbacks=[("progress", EpochProgressBar())])
    """

    def __init__(self, keys=None, file=None, force=False, mininterval=0.1):
        self.keys = keys
        self.file = file
        self.force = force
        self.mininterval = mininterval

    def _stream(self):
        return self.file if self.file is not None else sys.stderr

    def _active(self, net):
        if not getattr(net, "verbose", 0):
            return False
        if self.force or _in_notebook():
            return True
        isatty = getattr(self._stream(), "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # closed stream
            return False

    def _total(self, net, dataset_train):
        if len(net.history) > 1:  # what the previous epoch did, drop_last included
            return net.history[-2].get("train_batch_count") or None
        try:
            batch_size = getattr(net, "iterator_train__batch_size", net.batch_size)
            return math.ceil(len(dataset_train) / batch_size)
        except (TypeError, ValueError, ZeroDivisionError):
            return None

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self._close()
        if not self._active(net):
            return
        import tqdm

        self.pbar_ = tqdm.tqdm(
            total=self._total(net, dataset_train),
            desc=f"epoch {len(net.history)}/{net.max_epochs}",
            leave=False,
            file=self._stream(),
            dynamic_ncols=True,
            mininterval=self.mininterval,
        )

    def on_batch_end(self, net, training=False, **kwargs):
        pbar = getattr(self, "pbar_", None)
        if pbar is None or not training:
            return
        row = net.history[-1, "batches", -1]
        keys = self.keys
        if keys is None:
            keys = ["train_loss"] + [
                key
                for key in row
                if key not in ("train_loss", "train_batch_size")
                and isinstance(row[key], int | float)
            ]
        pbar.set_postfix(
            {key.removeprefix("train_"): f"{row[key]:.4g}" for key in keys if key in row},
            refresh=False,
        )
        pbar.update()

    def on_epoch_end(self, net, **kwargs):
        self._close()

    def on_train_end(self, net, **kwargs):
        self._close()

    def _close(self):
        pbar = getattr(self, "pbar_", None)
        if pbar is not None:
            pbar.close()
            self.pbar_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pbar_", None)  # tqdm objects do not pickle
        return state


class TrainingLog(PrintLog):
    """One table row per epoch: loss terms, then the convergence figures.

    skorch's :class:`~skorch.callbacks.PrintLog` (whose parameters it takes)
    with the columns in the order they are read: ``epoch``, the loss terms,
    ``train_loss``, ``beta``, ``vertex_dist``, ``hist``, ``ones_min``,
    ``ones_max``, ``max_corr``, anything else, ``dur``. The histogram is
    framed by ``|`` so that its empty outer bins keep their width. Printed
    only when the net's ``verbose`` is at least 1. ``hist_counts`` is never
    printed.

    Parameters
    ----------
    keys_ignored : str or list of str, default=None
        History keys not to print, besides ``batches`` and ``hist_counts``.
    sink : callable, default=print
        Receives each line.
    tablefmt : str, default="simple"
        ``tabulate`` table format.
    floatfmt : str, default=".4f"
        ``tabulate`` number format.
    stralign : str, default="right"
        Alignment of text columns.
    """

    _LEADING = ("epoch", "rdmreg", "centroid", "anticollapse", "neighbor", "train_loss")
    _FIGURES = ("beta", "vertex_dist", "hist", "ones_min", "ones_max", "max_corr")

    def initialize(self):
        super().initialize()
        self.keys_ignored_.add("hist_counts")
        return self

    def _sorted_keys(self, keys):
        keys = super()._sorted_keys(keys)  # epoch first, events and dur last
        first = [key for key in self._LEADING if key in keys]
        figures = [key for key in self._FIGURES if key in keys]
        return first + figures + [key for key in keys if key not in first + figures]

    def format_row(self, row, key, color):
        if key == "hist" and isinstance(row.get(key), str):
            return f"|{row[key]}|"
        return super().format_row(row, key, color)
