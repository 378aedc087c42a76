"""skorch callbacks that steer and watch the training of a
:class:`~skhash.BinaryHashEncoder`.

:class:`OutputScaleSchedule`, :class:`CosineLRSchedule`,
:class:`HypercubeDiagnostics` and :class:`TrainingLog` are on by default. The
first two steer training step by step over the encoder's budget of steps
(``max_steps``): the output steepness rises and the learning rate falls; the
third records convergence figures in ``encoder.history_`` (where
:mod:`skhash.plotting` reads them), the last prints them, one table row per
epoch, with ``verbose=1``; then, on an interactive terminal or in a notebook
(:func:`progress_bar_wanted`), skorch's :class:`~skorch.callbacks.ProgressBar`
also shows a live bar with the loss terms during each epoch. With
``verbose=0`` nothing is printed, and everything is still recorded. All of
them use skorch's public callback API only.

The functions :func:`histogram_counts`, :func:`sparkline` and
:func:`code_statistics` compute the same figures for any array of relaxed
codes, e.g. ``encoder.embed(X)`` (of the network alone: smoothed codes, which
``n_anchors`` gives above 64 bits by default, lie outside [-1, 1]).
"""

import math
import numbers
import sys
from itertools import cycle

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog
from skorch.utils import Ansi
from tabulate import tabulate

from ._objective import TERM_NAMES

__all__ = [
    "CosineLRSchedule",
    "HypercubeDiagnostics",
    "OutputScaleSchedule",
    "TrainingLog",
    "code_statistics",
    "histogram_counts",
    "progress_bar_wanted",
    "sparkline",
    "training_steps",
]

_SPARK = " ▁▂▃▄▅▆▇█"

#: Number of bins and value range of the recorded histograms.
HIST_BINS = 12
HIST_RANGE = (-1.5, 1.5)


def training_steps(net):
    """Training steps (batches) the net has begun, over all its epochs and ``partial_fit`` calls.

    Read from ``net.history``, the one record that every fit, ``partial_fit``
    and copy of the net carries along. Inside ``on_batch_begin`` the current
    batch is counted, so the 0-based index of the running step is one less.

    Parameters
    ----------
    net : skorch.NeuralNet

    Returns
    -------
    steps : int
    """
    return sum(len(row["batches"]) for row in net.history)


def _check_max_steps(callback, allow_none=False):
    """Raise unless ``callback.max_steps`` is an int >= 1 (or None where allowed)."""
    value = callback.max_steps
    if value is None and allow_none:
        return
    # bool is an int to Python, not a budget of steps
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"{type(callback).__name__} needs an int max_steps >= 1"
            + (" or None" if allow_none else "")
            + f", got {value!r}."
        )


class OutputScaleSchedule(Callback):
    """Raise the output steepness ``beta`` of ``tanh(beta * h)`` over training.

    HashNet's continuation: training starts smooth (``beta_start``), so every
    loss term has gradients, and ends steep (``beta_end``), so outputs sit at the
    hypercube vertices and the thresholded code is what was trained. ``beta``
    grows geometrically over the training steps: at step ``s`` (0-based) of a
    budget of ``max_steps`` it is ``beta_start * (beta_end / beta_start) **
    (s / (max_steps - 1))``, and stays at ``beta_end`` after the budget. The step
    count runs on across ``partial_fit`` calls (see :func:`training_steps`).
    ``history`` records, per epoch, the ``"beta"`` of the epoch's last step.
    The module must have a ``set_beta`` method, as
    :class:`~skhash._module.HashMLP` has.

    Parameters
    ----------
    beta_end : float
        Steepness at the last step (the encoder passes its ``beta_max``).
    beta_start : float, default=1.0
        Steepness at the first step. Both ends must be finite and positive
        (checked when skorch initializes the callback).
    max_steps : int or None, default=None
        Training steps of the schedule, >= 1. None moves ``beta`` once per epoch
        instead, over ``net.max_epochs`` epochs (with one epoch, at ``beta_end``).
    """

    def __init__(self, *, beta_end, beta_start=1.0, max_steps=None):
        self.beta_end = beta_end
        self.beta_start = beta_start
        self.max_steps = max_steps

    def initialize(self):
        # a geometric schedule needs both ends positive (beta_start=0 divided by zero)
        for name in ("beta_start", "beta_end"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
                raise ValueError(f"OutputScaleSchedule needs a finite {name} > 0, got {value!r}.")
        _check_max_steps(self, allow_none=True)
        return super().initialize()

    def _set(self, net, progress):
        if progress >= 1.0:  # exactly beta_end: the power can miss it by a rounding
            beta = self.beta_end
        else:
            beta = self.beta_start * (self.beta_end / self.beta_start) ** progress
        net.module_.set_beta(beta)
        return beta

    def on_epoch_begin(self, net, **kwargs):
        if self.max_steps is None:
            epoch = len(net.history)  # 1-based: skorch adds the row before callbacks run
            # a schedule of one epoch: that epoch is the last, at beta_end
            last = net.max_epochs - 1
            net.history.record("beta", self._set(net, (epoch - 1) / last if last > 0 else 1.0))

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and self.max_steps is not None:
            step = training_steps(net) - 1
            # a budget of one step: that step is the last, at beta_end
            self._set(net, step / (self.max_steps - 1) if self.max_steps > 1 else 1.0)

    def on_epoch_end(self, net, **kwargs):
        if self.max_steps is not None:
            net.history.record("beta", float(net.module_.beta))


class CosineLRSchedule(Callback):
    """Cosine decay of the learning rate over a budget of training steps.

    At step ``s`` (0-based) of ``max_steps`` every parameter group of the
    optimizer gets ``lr_min + (net.lr - lr_min) * (1 + cos(pi * s / max_steps)) / 2``:
    large steps while the codes are soft, fine ones once they are binary. The
    step count runs on across ``partial_fit`` calls (see :func:`training_steps`),
    so a training split into calls follows one schedule. ``history`` records,
    per epoch, the ``"lr"`` of the epoch's last step.

    Parameters
    ----------
    max_steps : int
        Training steps of the schedule, >= 1; after them the rate stays at ``lr_min``.
    lr_min : float, default=0.0
        Final learning rate, finite and >= 0 (checked when skorch initializes the
        callback).
    """

    def __init__(self, *, max_steps, lr_min=0.0):
        self.max_steps = max_steps
        self.lr_min = lr_min

    def initialize(self):
        _check_max_steps(self)
        # a negative rate would climb the loss; NaN would make every weight NaN
        lr_min = self.lr_min
        if not (isinstance(lr_min, numbers.Real) and np.isfinite(lr_min) and lr_min >= 0):
            raise ValueError(f"CosineLRSchedule needs a finite lr_min >= 0, got {lr_min!r}.")
        return super().initialize()

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        progress = min((training_steps(net) - 1) / max(self.max_steps, 1), 1.0)
        lr = self.lr_min + (net.lr - self.lr_min) * (1 + math.cos(math.pi * progress)) / 2
        for group in net.optimizer_.param_groups:
            group["lr"] = lr

    def on_epoch_end(self, net, **kwargs):
        net.history.record("lr", float(net.optimizer_.param_groups[0]["lr"]))


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
    # nudge every value toward 0 by far less than a bin width: edges go to the inner
    # bin; never past 0 (a value smaller than the nudge keeps its side)
    nudged = values - np.sign(values) * np.minimum(np.abs(values) / 2, (hi - lo) * 1e-9)
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
    :func:`skhash.plotting.plot_code_histograms` draws over the epochs. With a
    plain :class:`~skorch.callbacks.PrintLog`, pass
    ``keys_ignored="hist_counts"`` to keep the list out of the table
    (:class:`TrainingLog` never prints it).

    The batch is the last full-size training batch of the epoch (a small
    remainder batch would give noisy figures); only its items count, not the
    neighbours paired with them.

    Parameters
    ----------
    bins : int, default=12
        Bins of the recorded histogram, >= 1.
    value_range : tuple of float, default=(-1.5, 1.5)
        Range of the recorded histogram, ``(low, high)`` with ``low < high``
        (both checked when skorch initializes the callback).
    """

    def __init__(self, bins=HIST_BINS, value_range=HIST_RANGE):
        self.bins = bins
        self.value_range = value_range

    def initialize(self):
        # checked before training: numpy would reject them only at the first epoch's end
        bins, value_range = self.bins, self.value_range
        if not isinstance(bins, numbers.Integral) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"HypercubeDiagnostics needs an int bins >= 1, got {bins!r}.")
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(
                "HypercubeDiagnostics needs a value_range (low, high) of finite floats with "
                f"low < high, got {value_range!r}."
            )
        return super().initialize()

    def on_epoch_begin(self, net, **kwargs):
        # trailing "_": skorch takes the other attributes for parameters (get_params, clone)
        self.last_batch_ = None

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        # keep the last full-size batch: a small remainder batch gives noisy figures
        if training and y_pred is not None:
            n_items = len(batch[0])  # a Batch: its items come first in y_pred
            if self.last_batch_ is None or n_items >= self.last_batch_[1]:
                self.last_batch_ = (y_pred.detach(), n_items)

    def on_epoch_end(self, net, **kwargs):
        if getattr(self, "last_batch_", None) is None:
            return
        y_pred, n_items = self.last_batch_
        self.last_batch_ = None
        with torch.no_grad():
            embed = y_pred[:n_items].detach().float().cpu().numpy()
        for key, value in code_statistics(embed, self.bins, self.value_range).items():
            net.history.record(key, value)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("last_batch_", None)  # a tensor of the last batch: not worth pickling
        return state


def _in_notebook():
    try:
        shell = get_ipython().__class__.__name__  # noqa: F821 (defined by IPython)
    except NameError:
        return False
    return shell == "ZMQInteractiveShell"


def progress_bar_wanted(verbose, stream=None):
    """Whether a live progress bar helps: ``verbose >= 1`` on a terminal or in a notebook.

    In logs, pipes and CI output (no terminal) a bar would only add noise, so
    redirected output holds just the one line per epoch of :class:`TrainingLog`.

    Parameters
    ----------
    verbose : int
        The encoder's ``verbose``.
    stream : file-like or None, default=None
        Where the bar would go; None means ``sys.stderr``.

    Returns
    -------
    wanted : bool
    """
    if not verbose:
        return False
    if _in_notebook():
        return True
    isatty = getattr(sys.stderr if stream is None else stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class TrainingLog(PrintLog):
    """One table row per epoch: loss terms, then the convergence figures.

    skorch's :class:`~skorch.callbacks.PrintLog` (whose parameters it takes)
    with the columns in the order they are read: ``epoch``, the loss terms (as
    listed in the encoder's loss-term table), ``train_loss``, ``beta``, ``lr``,
    ``vertex_dist``, ``hist``, ``ones_min``, ``ones_max``, ``max_corr``,
    anything else, ``dur``. The histogram is framed by ``|`` so that its empty
    outer bins keep their width. Printed only when the net's ``verbose`` is at
    least 1. ``hist_counts`` is never printed. Only public ``PrintLog``
    methods are overridden (:meth:`table`).

    Parameters
    ----------
    keys_ignored : str or list of str, default=None
        History keys not to print, besides ``batches``, ``hist_counts`` and, as
        in ``PrintLog``, keys ending in ``_best``.
    sink : callable, default=print
        Receives each line.
    tablefmt : str, default="simple"
        ``tabulate`` table format.
    floatfmt : str, default=".4f"
        ``tabulate`` number format.
    stralign : str, default="right"
        Alignment of text columns.
    columns : sequence of str or None, default=None
        Columns to put first, in this order, when present; None is the order
        above.
    """

    COLUMNS = (
        "epoch",
        *TERM_NAMES,
        "train_loss",
        "beta",
        "lr",
        "vertex_dist",
        "hist",
        "ones_min",
        "ones_max",
        "max_corr",
    )

    def __init__(
        self,
        keys_ignored=None,
        sink=print,
        tablefmt="simple",
        floatfmt=".4f",
        stralign="right",
        columns=None,
    ):
        super().__init__(
            keys_ignored=keys_ignored,
            sink=sink,
            tablefmt=tablefmt,
            floatfmt=floatfmt,
            stralign=stralign,
        )
        self.columns = columns

    def ordered_keys(self, keys):
        """The printed columns of a row with ``keys``, in order."""
        # skorch's batch counters say nothing max_steps does not: not printed
        ignored = set(self.keys_ignored_) | {
            "hist_counts",
            "train_batch_count",
            "valid_batch_count",
        }
        shown = [
            key
            for key in keys
            if key not in ignored and not key.endswith("_best") and not key.startswith("event_")
        ]
        first = [key for key in (self.columns or self.COLUMNS) if key in shown]
        events = sorted(key for key in keys if key.startswith("event_") and key not in ignored)
        rest = sorted(key for key in shown if key not in first and key != "dur")
        return first + rest + events + (["dur"] if "dur" in shown else [])

    def table(self, row):
        """The row as a ``tabulate`` table with its header, in :meth:`ordered_keys` order."""
        colors = cycle([color.value for color in Ansi if color != Ansi.ENDC])
        headers, cells = [], []
        for key, color in zip(self.ordered_keys(row.keys()), colors, strict=False):
            headers.append(key.removeprefix("event_"))
            if key == "hist" and isinstance(row[key], str):
                cells.append(f"|{row[key]}|")
            else:
                cells.append(self.format_row(row, key, color=color))
        return tabulate(
            [cells],
            headers=headers,
            tablefmt=self.tablefmt,
            floatfmt=self.floatfmt,
            stralign=self.stralign,
        )
