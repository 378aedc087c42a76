"""BinaryHashEncoder: learned binary codes, trained with RDMReg through skorch.

torch and skorch are imported inside the methods that train or run the
network, so that importing this module (and using a loaded encoder, which
computes with numpy) never imports them.
"""

import copy
import hashlib
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._persistence import EncoderFilesMixin
from ._validation import Interval, Options, fit_context, validate_params

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(X):
    """Reject finite values that float32, the network's type, cannot hold; X unchanged."""
    if X.dtype == np.float64 and X.size and max(X.max(), -X.min()) > _FLOAT32_MAX:
        raise ValueError(
            f"Input X contains values beyond the float32 range (|x| > {_FLOAT32_MAX:.3g}), "
            "in which the network computes; rescale X."
        )
    return X


def _training_float32(X):
    """The training rows as a float32 array torch may share (a copy if read-only)."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    # joblib hands GridSearchCV workers read-only memory maps; torch warns on those
    return X32 if X32.flags.writeable else X32.copy()


def _input_standardisation(scaler, floor=0.1):
    """Mean and scale of the network's inputs: per feature, the scale floored.

    Each feature is centred and divided by its standard deviation, but by no
    less than ``floor`` times the root mean of the features' variances. Without
    the floor a feature that barely varies in the training rows (embeddings
    stored as float16 hold features with a spread of 1e-8) is blown up until a
    change of 1e-5 in a query flips ~40% of its bits; with it, no feature is
    amplified more than ``1 / floor`` times relative to the others
    (``docs/benchmarks.md``, "Queries that differ from the training rows by
    rounding").
    """
    typical = float(np.sqrt(np.mean(scaler.var_)))
    if not np.isfinite(typical) or typical == 0.0:  # all rows equal: nothing to scale
        return scaler.mean_, np.ones_like(scaler.mean_)
    return scaler.mean_, np.maximum(np.sqrt(scaler.var_), floor * typical)


class BinaryHashEncoder(
    EncoderFilesMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Learn binary hash codes whose Hamming distances preserve neighbourhoods.

    A small torch network (an MLP with a linear shortcut, see
    :class:`~skhash._module.HashMLP`) maps (internally standardised) features to
    ``n_bits`` outputs in (-1, 1) (smoothed by anchors above 64 bits: ``n_anchors``);
    :meth:`transform` thresholds them at 0. It is
    trained through skorch on a sum of loss terms, each a pure function in
    :mod:`skhash.losses` listed in one table (``skhash._objective.LOSS_TERMS``):

    - **RDMReg** (``reg_weight``): the batch's outputs must look like uniform
      hypercube vertices on every random slice (sliced distribution matching),
      which makes bits balanced, independent and binary;
    - **neighbourhood** (``neighbor_weight``): every batch holds each item and
      one of its ``n_neighbors`` nearest input-space neighbours; each item's
      softmax over code similarities to the rest of the batch must match its
      softmax over input cosine similarities (similarity distillation), which is
      what makes Hamming neighbours meaningful;
    - **local anti-collapse** (``anticollapse_weight``): the Kozachenko–Leonenko
      entropy of the batch, pushing each item off its nearest other item only
      (with labels, its nearest item of another class);
    - **label centroid** (``centroid_weight``, when ``y`` is given): items are
      pulled toward the batch mean of their class.

    The output steepness ``beta`` of ``tanh(beta * h)`` rises from 1 to
    ``beta_max`` over training (HashNet's continuation), so outputs end at the
    vertices.

    The similarity the codes learn to preserve is the **cosine similarity of
    the rows of X as given**, the usual metric of embeddings. Features on
    unrelated scales (tabular data) should be standardised first, e.g. with a
    :class:`~sklearn.preprocessing.StandardScaler` in a ``Pipeline``; the
    network standardises its own inputs either way.

    Parameters
    ----------
    n_bits : int, default=64
        Code length.
    nested_bits : tuple of int or None, default=None
        Prefix lengths for nested (Matryoshka) codes, increasing and each below
        ``n_bits``, e.g. ``(32, 64, 128)`` with ``n_bits=256``: every loss term
        is applied to each prefix ``codes[:, :p]`` as to a code of ``p`` bits
        (its own targets and slices, ``temperature="auto"`` for ``p`` bits) and
        to the full code, and summed with weights proportional to the lengths
        (every bit weighs the same), so that the first ``p`` bits of
        ``transform(X)`` are themselves good ``p``-bit codes: one fit serves
        every listed length (an index of a prefix:
        ``HashIndex(prefix_bits=p)``). None trains the full code only. See
        ``docs/nested_codes.md``.
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Hidden widths of the network's non-linear branch; ``()`` gives a linear
        hash. ``"auto"`` is one layer of 256 units up to 64 bits and of 2,048
        units for longer codes, which need more capacity, together with twice
        the training steps (``max_steps``): fortunes embeddings, recall10@100
        at 128 bits 0.799 with 256 units, 0.810 with 1,024 or 2,048 units;
        with twice the steps 0.813 with 1,024 and 0.819 with 2,048 units (mean
        of 2 seeds). With ``nested_bits`` one network serves every length:
        4,096 units above 64 bits (fortunes, 128 bits nested at 32 and 64:
        the full code 0.807 with 2,048 units, 0.813 with 4,096; mean of 2
        seeds). At 64 bits wider layers help too (0.644 with 256 units,
        0.654 with 512, 0.660 with 1,024), but 512 units already take the fit
        of the 14,813 fortunes rows from 50 s to 73 s on 2 cores.
    reg_weight : float, default=1.0
        Weight of RDMReg, the distribution-matching term.
    n_projections : int, default=256
        Random slices per training step.
    projection : {"active", "sphere", "axis"}, default="active"
        Slice sampler: ``"active"`` slices are non-zero on ``active_dims``
        random bits, ``"sphere"`` slices are dense, ``"axis"`` slices are single
        bits.
    active_dims : int, default=8
        Non-zero coordinates per slice when ``projection="active"``; at most
        ``n_bits``.
    sparsity : float, default=0.5
        Target share of zeros (-1 outputs) per bit, in (0, 1).
    centroid_weight : float, default=3.0
        Weight of the label-centroid term; used only when ``fit`` gets ``y``.
        Whatever this weight, ``y`` also orders the training batches in class
        pairs and keeps class mates from being each other's nearest item in the
        anticollapse term: fit without ``y`` for codes that ignore the labels.
        Larger values group classes more tightly at the expense of the
        within-class neighbourhood order (on the fortunes embeddings at 64 bits:
        label mAP@100 0.378 at 3.0, 0.387 at 10.0, while the recall of cosine
        neighbours falls from 0.58 to 0.21). For many small classes (man-page
        paragraphs labelled by page: 7,553 pages for 18,000 rows) 10.0 gives
        0.159-0.164 against 0.142 at 3.0.
    anticollapse_weight : float, default=0.1
        Weight of the local anti-collapse (KoLeo) term.
    neighbor_weight : float, default=1.0
        Weight of the neighbourhood term; 0 skips building the neighbour graph.
    n_neighbors : int, default=10
        Input-space neighbours per item in the neighbour graph (by cosine
        similarity), from which each item's batch partner is drawn.
    neighbor_loss : {"distill", "contrastive"}, default="distill"
        ``"distill"`` matches similarity distributions over the batch
        (:func:`~skhash.losses.similarity_distillation_loss`);
        ``"contrastive"`` is InfoNCE with the partner as the only positive
        (:func:`~skhash.losses.neighbor_contrastive_loss`).
    temperature : float or "auto", default="auto"
        Softmax temperature on code similarities (``<z_i, z_j> / n_bits``).
        ``"auto"`` is ``0.1 * min(1, sqrt(64 / n_bits))``, with ``n_bits`` the
        length of the code or prefix the term sees: longer codes resolve
        finer differences and want a sharper softmax (measured on the fortunes
        embeddings: at 128 bits 0.07 beats 0.1 by 6% recall; at 32 and 64 bits
        0.1 beats 0.05 and 0.2).
    teacher_temperature : float or "auto", default="auto"
        Softmax temperature on input cosine similarities (``"distill"`` only);
        smaller values focus the teacher on each item's closest batch mates.
        ``"auto"`` sets it from the training rows' neighbourhoods: 0.4 times
        the mean gap between a row's cosine to its nearest and to its 10th
        nearest other row, among samples of 2,048 rows, so that it depends on
        the kind of data, not on how many rows there are, and ``partial_fit``
        chunks of at least 2,048 rows get the value ``fit`` gets
        (``skhash._objective.auto_teacher_temperature``). The teacher then
        ranks near neighbours alike whatever the scale of the data's
        similarities: 0.049 on the fortunes sentence embeddings (where a fixed
        0.05 was tuned), 0.060 on the man-page ones, 0.013 on scikit-learn's
        digits, where 0.05 left the codes below PCA-ITQ's
        (``docs/benchmarks.md``). The value used is ``teacher_temperature_``.
    beta_max : float, default=16.0
        Final output steepness. With the batch-normalised pre-activations the
        mean distance of outputs to the nearest vertex falls roughly as
        ``1 / beta_max`` (Gaussian inputs: 0.07 at 8 from 16 to 256 bits, but
        0.13 at 8 and 0.10 at 16 for 1024 bits).
    max_epochs : int, default=40
        Passes over the training rows when ``max_steps="auto"``.
    max_steps : int or "auto", default="auto"
        Training budget in steps (batches): the steepness and learning-rate
        schedules run over this many steps, and training stops after them.
        ``"auto"`` is ``max_epochs`` passes over the training rows (at most
        ``max_samples``, so at most ``max_epochs * ceil(max_samples /
        batch_size)`` = 5,120 steps with the defaults), and twice that for
        codes of more than 64 bits, whose wider network keeps learning (with
        it, the miss rate 1 - recall10@100 against PCA-ITQ's fell by 0.03 to
        0.12 on both corpora of ``docs/benchmarks.md``; nested codes need it
        for their long prefixes, ``docs/nested_codes.md``); for
        :meth:`partial_fit`, which cannot know how many rows will come,
        ``"auto"`` is that largest value. An int sets the budget whatever the
        number of rows (``max_epochs`` is then unused). See
        ``docs/training_at_scale.md``.
    max_samples : int, default=32_768
        Most rows a training sees: with more rows, ``fit`` (and each
        :meth:`partial_fit` call) draws a seeded uniform sample of this many
        rows, without replacement, and builds the neighbour graph, the input
        standardisation and the training on it. This bounds the cost of the
        neighbour graph (quadratic in the rows) and, with
        ``max_steps="auto"``, of training: ``fit`` costs about the same for
        10^5 and 10^6 rows. Up to this many rows every row is used.
    batch_size : int, default=256
        Items per step, at least 2 (each with one neighbour when
        ``neighbor_weight > 0``).
    lr : float, default=2e-3
        Initial Adam learning rate, decayed to 0 along a cosine over the
        ``max_steps`` training steps.
    device : str, default="cpu"
        Torch device for training and inference, e.g. ``"cuda"``; ``fit``
        rejects a device this torch build cannot use with a ValueError.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, neighbour sampling, targets and slices. On
        the CPU, the same integer gives bit-identical codes for the same data,
        torch version and torch thread count (``torch.get_num_threads()``); a
        different thread count changes the order of floating-point sums and
        may flip a few bits (see ``docs/guarantees.md``).
    verbose : int, default=0
        0 prints nothing; 1 prints a table row per epoch with the loss terms and
        the convergence figures (see :class:`~skhash.callbacks.TrainingLog`), and
        skorch's progress bar within each epoch when writing to a terminal or
        notebook.
    n_anchors : int or "auto", default="auto"
        Smoothed codes, off at 0. Otherwise, once training is over, ``fit``
        clusters the unit-length training rows into this many k-means
        *anchors* (at most one per distinct row) and gives each anchor the
        mean network output of its rows; every row encoded from then on, the
        training rows included, has the code ``sign(f(x) + anchor_weight *
        mean(a_j))`` over the ``anchor_neighbors`` anchors ``j`` nearest ``x``
        by cosine (``f`` the network's output, ``a_j`` anchor ``j``'s value): a
        new row borrows the codes the network learnt for the training rows
        around it. ``"auto"``: for codes over 64 bits, ``min(4096, n_rows //
        3)`` anchors for ``n_rows`` non-zero training rows (those of the
        ``max_samples`` sample), none below three rows; none at 64 bits and
        below, and none in :meth:`partial_fit` (see there). About a third of
        the training rows (e.g. 4,096 for 12,800 rows) gained 0.4 to 2.2
        points of recall10@100 at 32 to 256 bits on the fortunes and man-page
        embeddings, the TF-IDF + LSA vectors of both and scikit-learn's digits
        (``docs/nested_codes.md``, "Codes from their neighbours' codes");
        fewer anchors gain less. The cost: the anchors are stored with the
        network (``n_anchors_ * (n_features + n_bits)`` float32 values) and
        encoding a row adds one cosine scan of them (``n_anchors_ *
        n_features`` multiply-adds: with 4,096 anchors, encoding took
        1.3x-1.5x the time of the 128-bit nested network alone, 2.5x and 1.9x
        that of the 128- and 256-bit ones and 6.4x that of the 64-bit one,
        hence none by default at 64 bits and below), and the k-means run adds
        to ``fit`` (45-60 s for 4,096 anchors of 12,813 rows of 384 features,
        168 s for the 32,768 rows of the default ``max_samples``, on one
        thread). A zero row, which has no cosine to an anchor, keeps
        the network's code.
    anchor_neighbors : int, default=3
        Anchors averaged per row (with anchors); capped at the number of
        anchors.
    anchor_weight : float, default=1.0
        Weight of the anchors' mean against the network's output, which lies
        in [-1, 1] (with anchors); 3.0 lost 7 points at 128 bits on the
        fortunes embeddings where 1.0 gained 0.9.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network (absent from an encoder loaded with :meth:`load`).
    module_state_ : dict of str to ndarray
        The network's weights and buffers (``state_dict()`` of
        :class:`~skhash._module.HashMLP`) as float32 numpy arrays; what
        :meth:`embed` computes with when ``net_`` is absent, and what
        :meth:`save` writes. Read-only: a refit replaces the dict (a
        copy, by ``copy.deepcopy`` or a pickle round trip, is writeable).
        With anchors (``n_anchors > 0``, or ``"auto"`` above 64 bits) it also
        holds them:
        ``"anchors.centres"`` (unit rows, ``(n_anchors_, n_features_in_)``),
        ``"anchors.values"`` (``(n_anchors_, n_bits)``), ``"anchors.k"`` and
        ``"anchors.weight"`` (``anchor_neighbors`` and ``anchor_weight`` as
        fitted; ``set_params`` changes them at the next ``fit``).
    n_anchors_ : int
        Anchors fitted (``n_anchors``, ``"auto"`` resolved, capped by the
        distinct training rows); only when anchors were fitted.
    hidden_layer_sizes_ : tuple of int
        Hidden widths of the trained network (``"auto"`` resolved).
    n_steps_ : int
        Training steps (batches) done so far, by ``fit`` or by all
        :meth:`partial_fit` calls since the first.
    history_ : skorch.History
        Per epoch (per call of :meth:`partial_fit`): ``train_loss``, each loss
        term, ``train_batch_count`` (steps), ``beta`` and ``lr`` (at the
        epoch's last step), ``vertex_dist``
        (mean distance of a batch's outputs to the nearest vertex), ``ones_min``
        and ``ones_max`` (extreme per-bit shares of ones), ``max_corr``, ``hist``
        (a one-line histogram) and ``hist_counts`` (its 12 bin counts).
        See :class:`~skhash.callbacks.HypercubeDiagnostics`. Absent from a
        loaded encoder.
    scaler_ : sklearn.preprocessing.StandardScaler
        Fitted on the training rows (the sample of ``max_samples`` rows when
        there are more), or on the first :meth:`partial_fit` chunk. The
        network centres its inputs by its ``mean_`` and divides each feature
        by its standard deviation, but by no less than a tenth of the root
        mean of ``var_`` (buffers of the torch module), so that a feature that
        barely varies in training is not blown up.
    teacher_temperature_ : float
        The teacher temperature training used: ``teacher_temperature``, or the
        value ``"auto"`` resolved to from the training rows (the first
        :meth:`partial_fit` chunk's; 0.05 without a neighbour graph,
        ``neighbor_weight=0``). Saved with the encoder.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    skhash.HammingNeighbors : Nearest-neighbour search over the codes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import BinaryHashEncoder
    >>> X, y = load_digits(return_X_y=True)
    >>> enc = BinaryHashEncoder(n_bits=32, max_epochs=2, random_state=0).fit(X)
    >>> enc.transform(X[:2]).shape
    (2, 32)
    >>> enc.packbits(X[:2]).shape
    (2, 4)
    """

    _parameter_constraints = {
        "n_bits": [Interval(numbers.Integral, 1, None, closed="left")],
        "nested_bits": [None, tuple, list],
        "hidden_layer_sizes": [Options(str, {"auto"}), tuple, list],
        "reg_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_projections": [Interval(numbers.Integral, 1, None, closed="left")],
        "projection": [Options(str, {"active", "sphere", "axis"})],
        "active_dims": [Interval(numbers.Integral, 1, None, closed="left")],
        "sparsity": [Interval(numbers.Real, 0, 1, closed="neither")],
        "centroid_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "anticollapse_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "neighbor_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "neighbor_loss": [Options(str, {"distill", "contrastive"})],
        "temperature": [Options(str, {"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "teacher_temperature": [
            Options(str, {"auto"}),
            Interval(numbers.Real, 0, None, closed="neither"),
        ],
        "beta_max": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_steps": [Options(str, {"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Integral, 2, None, closed="left")],
        # batch norm and every batch term (neighbour ranking, KoLeo, centroid) need 2 items
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "device": [str],
        "random_state": [
            Interval(numbers.Integral, 0, 2**32 - 1, closed="both"),
            np.random.RandomState,
            None,
        ],
        "verbose": ["boolean", Interval(numbers.Integral, 0, None, closed="left")],
        "n_anchors": [Options(str, {"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "anchor_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "anchor_weight": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_bits=64,
        nested_bits=None,
        hidden_layer_sizes="auto",
        reg_weight=1.0,
        n_projections=256,
        projection="active",
        active_dims=8,
        sparsity=0.5,
        centroid_weight=3.0,
        anticollapse_weight=0.1,
        neighbor_weight=1.0,
        n_neighbors=10,
        neighbor_loss="distill",
        temperature="auto",
        teacher_temperature="auto",
        beta_max=16.0,
        max_epochs=40,
        max_steps="auto",
        max_samples=32_768,
        batch_size=256,
        lr=2e-3,
        device="cpu",
        random_state=None,
        verbose=0,
        n_anchors="auto",
        anchor_neighbors=3,
        anchor_weight=1.0,
    ):
        self.n_bits = n_bits
        self.nested_bits = nested_bits
        self.hidden_layer_sizes = hidden_layer_sizes
        self.reg_weight = reg_weight
        self.n_projections = n_projections
        self.projection = projection
        self.active_dims = active_dims
        self.sparsity = sparsity
        self.centroid_weight = centroid_weight
        self.anticollapse_weight = anticollapse_weight
        self.neighbor_weight = neighbor_weight
        self.n_neighbors = n_neighbors
        self.neighbor_loss = neighbor_loss
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature
        self.beta_max = beta_max
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.max_samples = max_samples
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_anchors = n_anchors
        self.anchor_neighbors = anchor_neighbors
        self.anchor_weight = anchor_weight

    def _check_params(self):
        """Checks across parameters, or inside one, that constraints cannot declare."""
        sizes = self.hidden_layer_sizes
        if not isinstance(sizes, str) and not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                "The 'hidden_layer_sizes' parameter of BinaryHashEncoder must be 'auto' or a "
                f"tuple of ints >= 1. Got {sizes!r} instead."
            )
        if self.projection == "active" and self.active_dims > self.n_bits:
            raise ValueError(
                f"active_dims={self.active_dims} exceeds n_bits={self.n_bits}; a slice "
                "cannot have more active dimensions than there are bits."
            )
        self._check_nested_bits()

    def _check_nested_bits(self):
        nested = self.nested_bits
        if nested is None:
            return
        if not (
            len(nested)
            and all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in nested)
            and all(1 <= a < b for a, b in zip(nested, [*nested[1:], self.n_bits], strict=True))
        ):
            raise ValueError(
                "The 'nested_bits' parameter of BinaryHashEncoder must be None or a non-empty "
                f"tuple of increasing ints >= 1, each below n_bits={self.n_bits}, e.g. "
                f"(32, 64, 128) with n_bits=256. Got {nested!r} instead."
            )
        if self.projection == "active" and self.active_dims > nested[0]:
            raise ValueError(
                f"active_dims={self.active_dims} exceeds the shortest prefix of "
                f"nested_bits={tuple(nested)!r}; a slice of a prefix cannot have more active "
                "dimensions than the prefix has bits."
            )

    def _torch_device(self):
        import torch

        try:
            device = torch.device(self.device)
            torch.empty(1, device=device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise ValueError(
                f"device={self.device!r} cannot be used by this torch build ({exc}); "
                "use device='cpu'"
                + (" or a CUDA build of torch." if "cuda" in str(self.device) else ".")
            ) from exc
        if device.type == "meta":  # tensors without data: no training step can run
            raise ValueError(f"device={self.device!r} holds no data; use device='cpu'.")
        return device

    def _check_some_term(self, labels):
        """Raise when no loss term is on: training would leave the random network."""
        supervised = bool(self.centroid_weight) and bool((labels >= 0).any())
        if not (self.reg_weight or self.neighbor_weight or self.anticollapse_weight or supervised):
            raise ValueError(
                "Every loss term is off (reg_weight, neighbor_weight and anticollapse_weight "
                "are 0, and centroid_weight is 0 or no y was given): the network would not "
                "train. Give one of them a positive weight."
            )

    @fit_context()
    def fit(self, X, y=None):
        """Train the network.

        Transactional: the new state is built aside and replaces the old one
        only when training succeeded. Any failure (bad data, divergence, an
        exception in a callback, Ctrl-C) leaves a fitted encoder as it was and
        an unfitted one unfitted; ``KeyboardInterrupt`` propagates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, at least two rows, finite and within the float32
            range. Sparse matrices are not supported.
        y : array-like of shape (n_samples,), default=None
            Class labels, one per row: strings, or numbers of a numeric dtype
            (discrete, not continuous; -1 is a class like any other). When given, the
            label-centroid term pulls items of a class together, and training
            batches hold the items of each class in pairs so that small classes
            meet in a batch (``skhash._datasets.class_pair_order``).

        Returns
        -------
        self : BinaryHashEncoder
            The fitted encoder.

        Raises
        ------
        FloatingPointError
            When training diverges (a non-finite loss or output); the message
            says what to lower.
        """
        self._check_params()
        X, labels = self._validate(X, y, reset=True)
        self._check_some_term(labels)
        _check_float32_range(X)
        device = self._torch_device()

        import torch

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        rows = self._sample_rows(len(X), seed + 4)
        if rows is not None:  # sample first: memory bounded by max_samples rows
            X, labels = X[rows], labels[rows]
        X32 = _training_float32(X)
        scaler = StandardScaler().fit(X)
        dataset = self._dataset(X, X32, labels, seed)
        teacher_temperature = self._teacher_temperature(X)
        batch_size, drop_last, n_batches = self._batching(len(X32))
        steps = self.max_steps if self.max_steps != "auto" else self._auto_epochs() * n_batches
        net = self._make_net(
            seed, scaler, device, steps, teacher_temperature, batch_size=batch_size,
            drop_last=drop_last, max_epochs=-(-steps // n_batches), batches_per_epoch=n_batches,
        )  # fmt: skip
        # seeds weight initialisation without touching the caller's global RNG; the CPU's
        # only (the module is built there): torch.manual_seed would also reseed every
        # CUDA device, which fork_rng(devices=[]) does not restore
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            self._train(lambda: net.fit(dataset, y=None), net, X32)
        # fit starts anew: the graphs earlier partial_fit calls kept go with their network
        vars(self).pop("_chunk_graphs", None)
        self.scaler_ = scaler
        self.teacher_temperature_ = teacher_temperature
        self._set_trained(net)
        n_anchors = self._n_anchors(X)
        if n_anchors:
            self._fit_anchors(X, n_anchors, seed + 5)
        return self

    def _fit_anchors(self, X, n_anchors, seed):
        """Add the anchors of smoothed codes (``n_anchors``) to ``module_state_``."""
        import torch
        from threadpoolctl import threadpool_limits

        from ._inference import anchor_table, forward, read_only_state

        Z = forward(self.module_state_, X)  # the network's own outputs, not yet smoothed
        # k-means sums per OpenMP thread, so its centres (and the codes) follow the thread
        # count, which numba's OpenMP layer can change: tie it to torch's, which the
        # network's codes depend on already
        with threadpool_limits(limits=torch.get_num_threads(), user_api="openmp"):
            table = anchor_table(X, Z, n_anchors, self.anchor_neighbors, self.anchor_weight, seed)
        self.module_state_ = read_only_state({**self.module_state_, **table})
        self.n_anchors_ = int(table["anchors.values"].shape[0])

    @fit_context(keep_fitted=True)
    def partial_fit(self, X, y=None):
        """Train on one chunk of rows: one pass over it, within a budget of ``max_steps``.

        For data that does not fit in memory, or arrives in chunks: call it on
        each chunk in turn, from a plain loop or from
        ``dask_ml.wrappers.Incremental``; ``max_epochs`` passes mean calling it
        on every chunk ``max_epochs`` times. What one call does:

        - the first call fixes the network (its shape and loss settings from the
          current parameters; ``teacher_temperature="auto"`` resolved from this
          chunk's rows), the input width and the input
          standardisation (``scaler_``, fitted on this chunk: give a
          representative one, e.g. shuffled rows) and the initial weights;
        - each call builds the neighbour graph *within its chunk* (the partners
          of the neighbourhood term are the chunk's own rows; a chunk of more
          than ``max_samples`` rows is sampled down to ``max_samples`` rows, as
          in ``fit``; a chunk seen again, e.g. in the next pass, reuses its
          graph: the graphs of the most recent chunks, at most ``max_samples``
          rows in all, are kept) and makes one pass over the chunk's rows in
          shuffled batches (the last call may stop early, at the end of the
          budget);
        - the steepness and learning-rate schedules follow the total count of
          training steps (``n_steps_``) over ``max_steps``, read at each call
          (``"auto"``: ``max_epochs * ceil(max_samples / batch_size)``, twice
          that for codes of more than 64 bits); so
          state ``max_steps`` as the sum of the passes you intend, e.g.
          ``max_epochs * sum(ceil(len(chunk) / batch_size))``, one step fewer
          per pass over a chunk whose last batch would hold a single row (that
          row is dropped: batch norm needs two). After :meth:`fit`, whose
          ``"auto"`` budget counts the rows it trained on, the schedules go on
          from ``n_steps_`` within the budget of this call's reading of
          ``max_steps``; state it to continue a fitted encoder. A call once the
          budget is spent raises a ValueError. ``batch_size``, ``lr``,
          ``beta_max`` and ``verbose`` (the table per call; a progress bar
          only if the first call had one) are read at each call too (e.g. a
          lower ``lr`` after a call that diverged), as are ``max_samples`` and
          ``n_neighbors`` for the call's chunk; the network and the loss
          settings stay the first call's;
        - with ``n_anchors`` an int > 0, the anchors of smoothed codes are
          fitted anew after each call's training, on the call's chunk (as
          sampled): the codes are smoothed by the last chunk's anchors, so make
          the last chunk a representative one, or call ``fit`` instead; each
          call pays the anchors' k-means. ``n_anchors="auto"`` fits none here
          (a call cannot know it is the last), whatever the length.

        Transactional like ``fit``: the network and its optimizer are copied
        before the update, so a call that fails (bad chunk, wrong width,
        divergence, Ctrl-C) leaves the encoder exactly as it was before the
        call. Labels ``y``, when given, are compared within the chunk only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data, at least two rows, with the width of the
            first chunk.
        y : array-like of shape (n_samples,), default=None
            Class labels of the chunk's rows.

        Returns
        -------
        self : BinaryHashEncoder
        """
        self._check_params()
        first = "net_" not in vars(self)
        if first and "module_state_" in vars(self):
            raise ValueError(
                "This encoder has weights but no training state (net_), e.g. it was loaded "
                "from disk: partial_fit cannot continue its training. Call fit, or "
                "partial_fit on a new encoder."
            )
        X, labels = self._validate(X, y, reset=first)
        if first:  # later calls keep the first call's objective
            self._check_some_term(labels)
        _check_float32_range(X)
        import torch

        from .callbacks import training_steps

        base = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        done = 0 if first else training_steps(self.net_)
        budget = self.max_steps
        if budget == "auto":
            # the code length of the network being trained, whatever set_params says now
            n_bits = self.n_bits if first else self._n_features_out
            budget = self._auto_epochs(n_bits) * self._batching(self.max_samples)[2]
        if done >= budget:
            raise ValueError(
                f"The training budget max_steps={self.max_steps!r} ({budget} steps) is spent: "
                f"{done} steps done. Set a larger max_steps (set_params) to train on, or "
                "call fit to train anew."
            )
        # a fresh, reproducible stream of draws for every call
        seed = int(np.random.SeedSequence([base, done]).generate_state(1)[0] >> 1)
        rows = self._sample_rows(len(X), seed + 4)
        if rows is not None:
            X, labels = X[rows], labels[rows]
        X32 = _training_float32(X)
        batch_size, drop_last, _ = self._batching(len(X32))
        # the loss keeps the first call's weights (set_params cannot change them): so
        # does the choice of building a neighbour graph for its partners
        neighbor_weight = (
            self.neighbor_weight if first else self.net_.criterion_.settings["neighbor_weight"]
        )
        graphs, key = dict(getattr(self, "_chunk_graphs", {})), None
        if rows is None and neighbor_weight > 0:
            # a chunk seen again (the next pass) reuses its graph, a function of the
            # rows and n_neighbors (an approximate one, above 60,000 rows, as drawn)
            digest = hashlib.blake2b(np.ascontiguousarray(X).data, digest_size=16).hexdigest()
            key = (digest, X.shape, X.dtype.str, self.n_neighbors)
        cached = None if first else graphs.pop(key, None)
        dataset = self._dataset(
            X, X32, labels, seed, neighbors=cached, with_partners=neighbor_weight > 0
        )
        if first:
            scaler = StandardScaler().fit(X)
            # "auto" is resolved on the first chunk and kept: one objective throughout
            teacher_temperature = self._teacher_temperature(X)
            net = self._make_net(
                base, scaler, self._torch_device(), budget, teacher_temperature,
                batch_size=batch_size, drop_last=drop_last, max_epochs=1,
                batches_per_epoch="auto",
            )  # fmt: skip
        else:
            scaler = self.scaler_
            # the update happens on a copy: a failed call leaves net_ whole
            net = copy.deepcopy(self.net_)
            # the loss keeps the settings of the first call (set_params cannot change them)
            teacher_temperature = net.criterion_.settings["teacher_temperature"]
            # attributes, not set_params: skorch's set_params would re-initialise parts
            net.batch_size = batch_size
            net.iterator_train__drop_last = drop_last
            net.max_steps = budget
            for name in ("output_scale", "lr_schedule"):
                dict(net.callbacks_)[name].max_steps = budget
            # read at each call like max_steps: a divergence says to lower lr or beta_max
            # (the schedules read net.lr and beta_end at every step)
            net.lr = self.lr
            dict(net.callbacks_)["output_scale"].beta_end = self.beta_max
            if self.verbose and not net.verbose:  # silent until now: the table's header first
                dict(net.callbacks_)["print_log"].first_iteration_ = True
            net.verbose = int(self.verbose)
        with torch.random.fork_rng(devices=[]):  # the CPU's generator only, as in fit
            torch.random.default_generator.manual_seed(base if first else seed)
            self._train(lambda: net.partial_fit(dataset, y=None, epochs=1), net, X32)
        if key is not None:  # most recent last; at most max_samples rows' graphs kept
            graphs[key] = dataset.neighbors.numpy()
            while sum(len(g) for g in graphs.values()) > self.max_samples:
                del graphs[next(iter(graphs))]
        self._chunk_graphs = graphs
        self.scaler_ = scaler
        self.teacher_temperature_ = teacher_temperature
        self._set_trained(net)
        n_anchors = self._n_anchors(X, chunk=True)
        if n_anchors:  # from this chunk's rows and the network as now trained
            self._fit_anchors(X, n_anchors, seed + 5)
        return self

    def _validate(self, X, y, *, reset):
        """Validated X (float64 or float32) and class indices (-1 without ``y``)."""
        if y is None:
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset
            )
            return X, np.full(len(X), -1, dtype=np.int64)
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset
        )
        try:
            kind = type_of_target(y, input_name="y")
        except TypeError as exc:  # numpy cannot sort them: None among strings, say
            kind, cause = "unknown", exc
        else:
            cause = None
        if kind == "unknown":  # sklearn would suggest a continuous target: name the problem
            raise ValueError(
                "Unknown label type: y must hold one class label of one kind per row, all "
                f"strings or all numbers in a numeric dtype; got dtype {y.dtype}"
                + (f" ({cause})" if cause else "")
                + ". A missing label (None) is not supported: drop those rows, or fit the "
                "encoder without y."
            ) from cause
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(
                f"{exc} BinaryHashEncoder takes y as class labels (for supervised codes); "
                "a continuous target, e.g. a regressor's in a Pipeline, cannot be one. Fit "
                "the encoder without y: outside the Pipeline, or wrapped in "
                "sklearn.frozen.FrozenEstimator once fitted."
            ) from exc
        return X, LabelEncoder().fit_transform(y).astype(np.int64)

    def _sample_rows(self, n, seed):
        """Sorted seeded sample of ``max_samples`` of ``n`` rows, or None to use them all."""
        if n <= self.max_samples:
            return None
        return np.sort(np.random.default_rng(seed).choice(n, self.max_samples, replace=False))

    def _batching(self, n):
        """Batch size, whether to drop the last batch, and batches per pass over ``n`` rows."""
        batch_size = min(self.batch_size, n)
        # batch norm needs two rows; a lone last row would also skew RDMReg
        drop_last = n % batch_size == 1
        return batch_size, drop_last, n // batch_size if drop_last else -(-n // batch_size)

    def _dataset(self, X, X32, labels, seed, neighbors=None, with_partners=None):
        import torch

        from ._datasets import NeighborPairDataset
        from ._knn_graph import knn_graph

        if with_partners is None:
            with_partners = self.neighbor_weight > 0
        if neighbors is None and with_partners:
            # by the cosine of the rows as given, whatever their scale (the helper
            # normalises in float64; a zero row is at distance 1 from every row)
            neighbors, _ = knn_graph(X, self.n_neighbors, metric="cosine", random_state=seed)
        return NeighborPairDataset(
            X32, labels, neighbors, generator=torch.Generator().manual_seed(seed + 1)
        )

    def _teacher_temperature(self, X):
        """``teacher_temperature``, with ``"auto"`` resolved from the rows' neighbourhoods."""
        if not isinstance(self.teacher_temperature, str):
            return float(self.teacher_temperature)
        from ._objective import TEACHER_FALLBACK, auto_teacher_temperature

        # without the neighbourhood term the teacher is not used
        return TEACHER_FALLBACK if self.neighbor_weight == 0 else auto_teacher_temperature(X)

    def _train(self, run, net, X32):
        try:
            run()
            net.check_finite_state(X32[:1024])
        except FloatingPointError as exc:
            raise FloatingPointError(
                f"{exc} Lower lr (now {self.lr!r}) or beta_max (now {self.beta_max!r}), "
                "or check the loss weights; the encoder keeps its previous state."
            ) from exc

    def _set_trained(self, net):
        from ._inference import read_only_state
        from .callbacks import training_steps

        self.net_ = net
        self.history_ = net.history
        vars(self).pop("n_anchors_", None)  # a new network: its anchors, if any, come next
        self.n_steps_ = training_steps(net)
        # read from the network: set_params between partial_fit calls changes no layer
        self.hidden_layer_sizes_ = tuple(
            int(layer.out_features)
            for layer in net.module_.hidden
            if hasattr(layer, "out_features")
        )
        self.module_state_ = read_only_state(
            {
                name: value.detach().cpu().numpy().astype(np.float32, copy=True)
                for name, value in net.module_.state_dict().items()
            }
        )

    def _objective_settings(self, teacher_temperature):
        """Encoder parameters for :class:`~skhash._objective.HashingLoss`.

        ``temperature="auto"`` stays ``"auto"``: the loss resolves it for each
        code length its terms see (the full code and each nested prefix).
        ``teacher_temperature`` is the value resolved from the training rows.
        """
        params = self.get_params(deep=False)
        nested = params["nested_bits"]
        return {
            **params,
            "nested_bits": None if nested is None else tuple(nested),
            "teacher_temperature": teacher_temperature,
        }

    def _make_net(
        self,
        seed,
        scaler,
        device,
        steps,
        teacher_temperature,
        *,
        batch_size,
        drop_last,
        max_epochs,
        batches_per_epoch,
    ):
        import torch
        from skorch.callbacks import PassthroughScoring, ProgressBar

        from ._datasets import BatchLoader
        from ._module import HashMLP
        from ._net import HashNet
        from ._objective import TERM_NAMES, HashingLoss
        from .callbacks import (
            CosineLRSchedule,
            HypercubeDiagnostics,
            OutputScaleSchedule,
            TrainingLog,
            progress_bar_wanted,
        )

        # both schedules follow the step count over the budget, not the epochs
        callbacks = [
            ("output_scale", OutputScaleSchedule(beta_end=self.beta_max, max_steps=steps)),
            ("diagnostics", HypercubeDiagnostics()),
            # cosine decay: large steps while codes are soft, fine ones once they are binary
            ("lr_schedule", CosineLRSchedule(max_steps=steps)),
        ]
        callbacks += [
            (f"{term}_score", PassthroughScoring(name=term, on_train=True)) for term in TERM_NAMES
        ]
        if progress_bar_wanted(self.verbose):
            bar = ProgressBar(
                batches_per_epoch=batches_per_epoch, postfix_keys=["train_loss", *TERM_NAMES]
            )
            callbacks.append(("progress_bar", bar))
        input_mean, input_scale = _input_standardisation(scaler)
        return HashNet(
            HashMLP,
            module__n_features=self.n_features_in_,
            module__n_bits=self.n_bits,
            module__hidden_layer_sizes=self._hidden_layer_sizes(),
            module__input_mean=input_mean,
            module__input_scale=input_scale,
            criterion=HashingLoss,
            criterion__settings=self._objective_settings(teacher_temperature),
            criterion__seed=seed + 2,
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=max_epochs,
            max_steps=steps,
            batch_size=batch_size,
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            iterator_train__drop_last=drop_last,
            iterator_train__generator=torch.Generator().manual_seed(seed + 3),
            iterator_valid=BatchLoader,
            train_split=None,
            callbacks=callbacks,
            callbacks__print_log=TrainingLog(),
            device=device,
            verbose=int(self.verbose),
        )

    def embed(self, X, batch_size=8192):
        """Continuous outputs of the network, before thresholding.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        batch_size : int, default=8192
            Rows per forward pass; bounds memory.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_bits), float32
            Values in [-1, 1] (in [-1 - anchor_weight, 1 + anchor_weight] with
            anchors: the smoothed outputs); ``transform`` is ``Z > 0``.

        Notes
        -----
        With ``net_`` (after ``fit``) the network runs in torch on its device;
        without it (an encoder loaded with :meth:`load`) the same forward pass
        runs in numpy from ``module_state_`` (``skhash._inference.forward``),
        without importing torch.
        """
        check_is_fitted(self)
        validate_params(
            {"batch_size": [Interval(numbers.Integral, 1, None, closed="left")]},
            "BinaryHashEncoder.embed",
            batch_size=batch_size,
        )
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = np.ascontiguousarray(_check_float32_range(X), dtype=np.float32)
        if "net_" not in vars(self):
            from ._inference import forward

            return forward(self.module_state_, X, chunk_size=batch_size)
        import torch

        from ._inference import check_finite_outputs

        module = self.net_.module_
        module.eval()
        device = self.net_.device
        out = np.empty((len(X), self._n_features_out), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(X), batch_size):
                rows = X[start : start + batch_size]
                # joblib hands GridSearchCV workers read-only memory maps; torch warns on those
                rows = rows if rows.flags.writeable else rows.copy()
                chunk = torch.from_numpy(rows).to(device)
                out[start : start + batch_size] = module(chunk).float().cpu().numpy()
        check_finite_outputs(out)
        if "anchors.centres" in self.module_state_:
            from ._inference import smooth

            out = smooth(self.module_state_, X, out)
        return out

    def transform(self, X):
        """Binary codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_bits), uint8
            0/1 bits, one column per bit.
        """
        return (self.embed(X) > 0).astype(np.uint8)

    def packbits(self, X):
        """Binary codes of ``X`` packed eight to a byte.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        packed : ndarray of shape (n_samples, ceil(n_bits / 8)), uint8
            ``np.packbits(self.transform(X), axis=1)``, C-contiguous.
        """
        return np.packbits(self.embed(X) > 0, axis=1)

    def get_feature_names_out(self, input_features=None):
        """Output feature names, ``binaryhashencoder0`` to ``binaryhashencoder{n_bits - 1}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_`` when given.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return super().get_feature_names_out(input_features)

    def _auto_epochs(self, n_bits=None):
        """Passes over the rows under ``max_steps="auto"`` for codes of ``n_bits``."""
        n_bits = self.n_bits if n_bits is None else n_bits
        # long codes: the wide network (and every nested length) needs the steps
        return 2 * self.max_epochs if n_bits > 64 else self.max_epochs

    def _n_anchors(self, X, chunk=False):
        """Anchors of smoothed codes for training rows ``X`` (``"auto"`` resolved)."""
        if not isinstance(self.n_anchors, str):
            return self.n_anchors
        # not per partial_fit chunk: the k-means would run at every call and only the last
        # call's anchors be kept; long codes only: below 65 bits the scan of the anchors
        # costs several times the small network's encoding for 1-2 points
        # (docs/nested_codes.md); the trained width, which set_params(n_bits=...) does
        # not change before the next fit
        if chunk or self._n_features_out <= 64:
            return 0
        # zero rows have no direction to cluster: all-zero data keeps the network's codes
        return min(4096, int(np.count_nonzero(np.any(X != 0, axis=1))) // 3)

    def _hidden_layer_sizes(self):
        if isinstance(self.hidden_layer_sizes, str):
            if self.n_bits <= 64:
                return (256,)
            # nested: one network serves several lengths (docs/nested_codes.md)
            return (4096,) if self.nested_bits is not None else (2048,)
        return tuple(self.hidden_layer_sizes)

    def _temperature(self):
        """The temperature of the full code (``"auto"`` resolved for ``n_bits``)."""
        if isinstance(self.temperature, str):
            from ._objective import auto_temperature

            return auto_temperature(self.n_bits)
        return float(self.temperature)

    @property
    def _n_features_out(self):
        # the trained width, not the n_bits parameter, which set_params may have changed
        if "module_state_" in vars(self):
            return self.module_state_["linear.bias"].shape[0]
        return self.n_bits

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are uint8 whatever comes in
        # "cpu:0" is the CPU too (torch's device type is the part before the colon)
        tags.non_deterministic = str(self.device).split(":")[0] != "cpu"
        return tags
