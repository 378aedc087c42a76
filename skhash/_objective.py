"""The training objective: one table of loss terms, and the loss module built from it.

:data:`LOSS_TERMS` is the single source of truth for the objective of
:class:`~skhash.BinaryHashEncoder`. The loss module (:class:`HashingLoss`), the
per-term history columns (skorch scoring callbacks), the printed log
(:class:`~skhash.callbacks.TrainingLog`) and the plots
(:func:`~skhash.plotting.plot_training_curves`) all read it; the default
values live only in the encoder's ``__init__``.

Adding a loss term takes three edits:

1. its pure function in :mod:`skhash.losses`;
2. its weight (and any option) as a parameter of
   :class:`~skhash.BinaryHashEncoder` (``__init__``, docstring and
   ``_parameter_constraints``: scikit-learn needs parameters spelled out);
3. one :class:`LossTerm` entry in :data:`LOSS_TERMS`.

Nested (Matryoshka) codes need no edit per term: with ``nested_bits``,
:class:`HashingLoss` applies every term to each prefix ``outputs[:, :p]`` and
to the full code, each with its own draws and its length-dependent options
(:data:`LENGTH_RULES`, e.g. ``temperature="auto"``), and sums them weighted
by length (:func:`level_weights`).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import losses
from .samplers import sample_hypercube, sample_projections

__all__ = [
    "DRAW_SETTINGS",
    "LENGTH_RULES",
    "LEVEL_SETTINGS",
    "LOSS_TERMS",
    "TERM_NAMES",
    "HashingLoss",
    "LossTerm",
    "auto_teacher_temperature",
    "auto_temperature",
    "level_weights",
]


@dataclass(frozen=True)
class LossTerm:
    """One term of the objective: ``weight * function(*needs, **options)``.

    Parameters
    ----------
    name : str
        Key of the term in the loss dict, in ``history_`` and in the log.
    function : callable
        Pure function from :mod:`skhash.losses`.
    weight : str
        Encoder parameter holding the weight; a weight of 0 skips the term.
    needs : tuple of str
        Positional arguments, by name of the :class:`TermInputs` property that
        provides them: ``"codes"`` (the items' outputs), ``"partner_codes"``,
        ``"pair_codes"`` and ``"pair_inputs"`` (items then partners),
        ``"labels"``, ``"targets"`` (hypercube draws like ``codes``),
        ``"slices"`` (slice directions). A term whose input is missing from a
        batch (no partners, no labelled item) is skipped for that batch.
    options : tuple of str, default=()
        Encoder parameters passed as keyword arguments of the same name.
    selected_by : tuple of (str, object) or None, default=None
        ``(parameter, value)``: the entry applies only when that encoder
        parameter has that value (several entries may share a name, e.g. the
        two forms of the neighbourhood term).
    """

    name: str
    function: Any
    weight: str
    needs: tuple
    options: tuple = ()
    selected_by: tuple | None = None


#: The objective, term by term, in the order the terms are computed and logged.
LOSS_TERMS = (
    LossTerm("rdmreg", losses.rdmreg, "reg_weight", needs=("codes", "targets", "slices")),
    LossTerm("centroid", losses.label_centroid_loss, "centroid_weight", needs=("codes", "labels")),
    LossTerm(
        "anticollapse", losses.koleo_loss, "anticollapse_weight", needs=("codes", "item_labels")
    ),
    LossTerm(
        "neighbor",
        losses.similarity_distillation_loss,
        "neighbor_weight",
        needs=("pair_codes", "pair_inputs"),
        options=("temperature", "teacher_temperature"),
        selected_by=("neighbor_loss", "distill"),
    ),
    LossTerm(
        "neighbor",
        losses.neighbor_contrastive_loss,
        "neighbor_weight",
        needs=("codes", "partner_codes"),
        options=("temperature",),
        selected_by=("neighbor_loss", "contrastive"),
    ),
)

#: Names of the terms, each once, in table order.
TERM_NAMES = tuple(dict.fromkeys(term.name for term in LOSS_TERMS))

#: Encoder parameters of the random draws (``"targets"`` and ``"slices"``).
DRAW_SETTINGS = ("sparsity", "n_projections", "projection", "active_dims")

#: Encoder parameters that say which code lengths the terms apply to.
LEVEL_SETTINGS = ("nested_bits",)


def auto_temperature(n_bits):
    """``temperature="auto"``: ``0.1 * min(1, sqrt(64 / n_bits))`` for codes of ``n_bits``.

    Longer codes resolve finer differences and want a sharper softmax
    (fortunes embeddings: at 128 bits 0.07 beats 0.1 by 6% recall; at 32 and
    64 bits 0.1 beats 0.05 and 0.2).
    """
    return 0.1 * min(1.0, (64 / n_bits) ** 0.5)


#: ``teacher_temperature="auto"``: this many times the mean gap between a row's
#: nearest and its ``TEACHER_GAP_RANK``-th nearest neighbour's cosine, among
#: ``TEACHER_GAP_SAMPLE`` rows.
TEACHER_GAP_SCALE = 0.4
TEACHER_GAP_RANK = 10
TEACHER_GAP_SAMPLE = 2048
#: ... averaged over at most this many disjoint samples of that size (a steadier mean).
TEACHER_GAP_BLOCKS = 4
#: ``teacher_temperature="auto"`` when the rows show no gap (all neighbours tied).
TEACHER_FALLBACK = 0.05


def auto_teacher_temperature(X):
    """``teacher_temperature="auto"``: the teacher's temperature set by the data's neighbourhoods.

    The teacher softmax ranks an item's batch mates by ``cos / T``; only
    differences of cosines matter, and the ones it must rank are those of the
    item's near neighbours. So ``T`` is :data:`TEACHER_GAP_SCALE` (0.4) times
    the mean, over the rows, of ``cos(nearest) - cos(10th nearest)``: the
    teacher weighs a row's nearest neighbour about ``e**(1 / 0.4)``, 12 times,
    as much as its 10th, whatever the scale of the data's similarities.

    The gaps are those among a fixed number of rows: the mean over up to
    :data:`TEACHER_GAP_BLOCKS` (4) disjoint samples of
    :data:`TEACHER_GAP_SAMPLE` (2,048) rows, drawn with a fixed seed (all the
    rows when there are fewer). With more rows every neighbour is nearer and
    the gap changes, in either direction (fortunes embeddings: 0.117 among
    the first 1,000 rows, 0.143 among 12,813; their LSA vectors: 0.177 and
    0.159; ``benchmarks/teacher_gap.py``), so
    a gap over all the rows would give the same kind of data a colder or
    hotter teacher by its size alone, and ``partial_fit`` (which resolves
    ``"auto"`` on its first chunk) another one than ``fit``. The scale keeps
    the fixed 0.05 that was tuned on the fortunes embeddings (gap 0.123:
    0.049); the man-page embeddings get 0.060 and scikit-learn's digits (gap
    0.034-0.037: pixel rows are all alike by cosine) 0.013-0.015, where 0.05
    left the codes below PCA-ITQ's (``docs/benchmarks.md``, "The teacher's
    temperature on data of another kind" and "The gap among 2,048 rows").

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The training rows. Cosines ignore the rows' norms; a zero row is at
        cosine 0 to every row, as in :func:`skhash._knn_graph.knn_graph`.

    Returns
    -------
    temperature : float
        :data:`TEACHER_FALLBACK` (0.05) when the mean gap is below 1e-6 (no
        gap a float32 cosine resolves) or there are fewer than three rows
        (nothing to scale by).
    """
    X = np.asarray(X)  # each sample is taken to float64 alone: no copy of all the rows
    if X.ndim != 2 or len(X) < 3:
        return TEACHER_FALLBACK
    # a fixed seed: the value is a property of the data, not of random_state
    order = np.random.default_rng(0).permutation(len(X))
    n_blocks = min(TEACHER_GAP_BLOCKS, max(1, len(X) // TEACHER_GAP_SAMPLE))
    size = min(TEACHER_GAP_SAMPLE, len(X))
    gaps = [
        _mean_neighbour_gap(X[np.sort(order[i * size : (i + 1) * size])]) for i in range(n_blocks)
    ]
    gap = float(np.mean(gaps))
    # below float32's resolution of a cosine (the teacher's precision) the rows show no gap
    if not np.isfinite(gap) or gap < 1e-6:
        return TEACHER_FALLBACK
    return TEACHER_GAP_SCALE * gap


def _mean_neighbour_gap(X):
    """Mean over the rows of cos(nearest) - cos(10th nearest) among the other rows."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    unit = X / np.where(norms > 0, norms, 1.0)
    cosines = unit @ unit.T
    np.fill_diagonal(cosines, -np.inf)  # a row is not its own neighbour
    rank = min(TEACHER_GAP_RANK, len(unit) - 1)
    kth = -np.partition(-cosines, rank - 1, axis=1)[:, rank - 1]
    return np.mean(cosines.max(axis=1) - kth)


def level_weights(lengths):
    """Weights of the code lengths of a nested objective: ``p / sum(lengths)`` for length ``p``.

    Every bit weighs the same: a length's terms count in proportion to the
    bits they train. With equal weights (the mean, the first rule) the full
    code, one length among several, trailed the model fitted for its length
    alone by 2.2% (fortunes, 128 bits nested at 32 and 64) while the short
    prefixes beat theirs by 4-5%; ``docs/nested_codes.md``.
    """
    total = sum(lengths)
    return [p / total for p in lengths]


#: Options whose ``"auto"`` value depends on the code length, resolved per
#: length the terms see (the full code, and each prefix of nested codes).
LENGTH_RULES = {"temperature": auto_temperature}


def required_settings():
    """Encoder parameters :class:`HashingLoss` reads, in a stable order."""
    names = [t.weight for t in LOSS_TERMS]
    names += [o for t in LOSS_TERMS for o in t.options]
    names += [t.selected_by[0] for t in LOSS_TERMS if t.selected_by]
    return tuple(dict.fromkeys([*names, *DRAW_SETTINGS, *LEVEL_SETTINGS]))


class TermInputs:
    """What the loss terms of one batch may ask for; random draws made on first use.

    Draws happen in the order terms ask for them, from ``generator`` and on the
    CPU (so results do not depend on the device's RNG), and only for terms that
    are on: one seed fixes the whole sequence of draws.
    """

    def __init__(self, outputs, batch, settings, generator):
        self._batch = batch
        self._settings = settings
        self._generator = generator
        self._cache = {}
        self.codes, self.partner_codes = batch.split(outputs)
        self.pair_codes = None if self.partner_codes is None else outputs
        self.pair_inputs = None if batch.partners is None else batch.inputs
        self.labels = batch.labels if bool((batch.labels >= 0).any()) else None
        self.item_labels = batch.labels  # every item's, negative if unlabelled

    def gather(self, needs):
        """The inputs named by ``needs``, in order, or None when one is missing."""
        args = []
        for need in needs:
            value = getattr(self, need)
            if value is None:
                return None  # stop before drawing for a term that is off
            args.append(value)
        return args

    @property
    def targets(self):
        if "targets" not in self._cache:
            draw = sample_hypercube(self.codes.shape, self._settings["sparsity"], self._generator)
            # drawn on the CPU in float32, used on the outputs' device and in their dtype
            self._cache["targets"] = draw.to(self.codes)
        return self._cache["targets"]

    @property
    def slices(self):
        if "slices" not in self._cache:
            s = self._settings
            draw = sample_projections(
                self.codes.shape[1],
                s["n_projections"],
                s["projection"],
                s["active_dims"],
                self._generator,
            )
            self._cache["slices"] = draw.to(self.codes)
        return self._cache["slices"]


class HashingLoss(nn.Module):
    """Weighted sum of the terms of :data:`LOSS_TERMS` that are on.

    Holds the generator that draws fresh hypercube targets and slice directions
    at every step, so one seed fixes the whole sequence of draws.

    With ``nested_bits`` (a tuple of prefix lengths ``p``), every term is
    computed on each prefix ``outputs[:, :p]`` and on the full code, as if the
    code were that long (its own targets and slices, ``"auto"`` options
    resolved for that length by :data:`LENGTH_RULES`), and each term is the
    sum over those lengths weighted by :func:`level_weights` (proportional to
    the length): one network whose prefixes are codes trained for their own
    length. Without it, the terms see the full code only.

    Parameters
    ----------
    settings : dict
        Values of the encoder parameters the table names (weights, options,
        selectors, :data:`DRAW_SETTINGS` and :data:`LEVEL_SETTINGS`); an option
        of :data:`LENGTH_RULES` may be ``"auto"`` (resolved per code length) or
        a number. Every one is required: the defaults live in
        :class:`~skhash.BinaryHashEncoder` only.
    seed : int
        Seed of the target and slice draws.
    """

    def __init__(self, settings, seed):
        super().__init__()
        missing = [name for name in required_settings() if name not in settings]
        if missing:
            raise ValueError(f"HashingLoss needs the settings {missing}.")
        self.settings = {name: settings[name] for name in required_settings()}
        if isinstance(self.settings["teacher_temperature"], str):
            raise ValueError(
                "HashingLoss needs a number for teacher_temperature: the encoder resolves "
                "'auto' from the training rows (BinaryHashEncoder._teacher_temperature)."
            )
        self.terms = tuple(
            term
            for term in LOSS_TERMS
            if self.settings[term.weight]
            and (
                term.selected_by is None
                or self.settings[term.selected_by[0]] == term.selected_by[1]
            )
        )
        self.nested_bits = tuple(int(p) for p in self.settings["nested_bits"] or ())
        self.generator = torch.Generator().manual_seed(seed)

    def _settings_for(self, n_bits):
        """The settings with the ``"auto"`` options of :data:`LENGTH_RULES` resolved."""
        resolved = dict(self.settings)
        for name, rule in LENGTH_RULES.items():
            if isinstance(resolved[name], str):
                resolved[name] = rule(n_bits)
        return resolved

    def _terms(self, outputs, batch):
        """The weighted terms on codes of ``outputs.shape[1]`` bits, by name."""
        settings = self._settings_for(outputs.shape[1])
        inputs = TermInputs(outputs, batch, settings, self.generator)
        terms = {}
        for term in self.terms:
            args = inputs.gather(term.needs)
            if args is None:  # e.g. no labelled item or no partners: off for this batch
                continue
            options = {name: settings[name] for name in term.options}
            terms[term.name] = settings[term.weight] * term.function(*args, **options)
        return terms

    def forward(self, outputs, batch):
        """Loss terms for one batch.

        Parameters
        ----------
        outputs : torch.Tensor of shape (len(batch.inputs), n_bits)
            Network outputs of ``batch.inputs``.
        batch : skhash._batch.Batch
            The batch behind ``outputs``.

        Returns
        -------
        terms : dict of str to torch.Tensor
            ``"loss"`` (the weighted total) and each term computed, by name
            (with ``nested_bits``, its sum over the prefixes and the full code
            weighted by :func:`level_weights`).
        """
        # prefixes first, the full code last: draws in that order, from one seed
        levels = [self._terms(outputs[:, :p], batch) for p in self.nested_bits]
        levels.append(self._terms(outputs, batch))
        terms = levels[-1]
        if len(levels) > 1:
            weights = level_weights([*self.nested_bits, outputs.shape[1]])
            terms = {
                name: sum(w * lv[name] for w, lv in zip(weights, levels, strict=True))
                for name in terms
            }
        terms["loss"] = sum(terms.values()) if terms else outputs.sum() * 0.0
        return terms
