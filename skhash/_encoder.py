"""BinaryHashEncoder: learned binary codes, trained with RDMReg through skorch."""

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder, StandardScaler, normalize
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import LRScheduler, PassthroughScoring

from ._criterion import HashingLoss
from ._datasets import BatchLoader, NeighborPairDataset, knn_graph
from ._module import HashMLP
from ._net import HashNet
from ._samplers import PROJECTIONS
from .callbacks import EpochProgressBar, HypercubeDiagnostics, OutputScaleSchedule, TrainingLog

_LOSS_TERMS = ("rdmreg", "centroid", "anticollapse", "neighbor")
NEIGHBOR_LOSSES = ("distill", "contrastive")


class BinaryHashEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn binary hash codes whose Hamming distances preserve neighbourhoods.

    A small torch network (an MLP with a linear shortcut, see
    :class:`~skhash._module.HashMLP`) maps (internally standardised) features to
    ``n_bits`` outputs in (-1, 1); :meth:`transform` thresholds them at 0. It is
    trained through skorch on a sum of loss terms, each a pure function in
    :mod:`skhash._losses`:

    - **RDMReg** (``reg_weight``): the batch's outputs must look like uniform
      hypercube vertices on every random slice (sliced distribution matching),
      which makes bits balanced, independent and binary;
    - **neighbourhood** (``neighbor_weight``): every batch holds each item and
      one of its ``n_neighbors`` nearest input-space neighbours; each item's
      softmax over code similarities to the rest of the batch must match its
      softmax over input cosine similarities (similarity distillation), which is
      what makes Hamming neighbours meaningful;
    - **local anti-collapse** (``anticollapse_weight``): the Kozachenko–Leonenko
      entropy of the batch, pushing each item off its nearest other item only;
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
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Hidden widths of the network's non-linear branch; ``()`` gives a linear
        hash. ``"auto"`` is one layer of 256 units up to 64 bits and of 1,024
        units for longer codes, which need more capacity (fortunes embeddings,
        recall10@100 at 128 bits: 0.799 with 256 units, 0.810 with 1,024 or
        2,048). At 64 bits wider layers help too (0.644 with 256 units, 0.654
        with 512, 0.660 with 1,024), but 512 units already take the fit of the
        14,813 fortunes rows from 50 s to 73 s on 2 cores.
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
        Larger values group classes more tightly at the expense of the
        within-class neighbourhood order (on the fortunes embeddings at 64 bits:
        label mAP@100 0.378 at 3.0, 0.387 at 10.0, while the recall of cosine
        neighbours falls from 0.58 to 0.21).
    anticollapse_weight : float, default=0.1
        Weight of the local anti-collapse (KoLeo) term.
    neighbor_weight : float, default=1.0
        Weight of the neighbourhood term; 0 skips building the neighbour graph.
    n_neighbors : int, default=10
        Input-space neighbours per item in the neighbour graph (by cosine
        similarity), from which each item's batch partner is drawn.
    neighbor_loss : {"distill", "contrastive"}, default="distill"
        ``"distill"`` matches similarity distributions over the batch
        (:func:`~skhash._losses.similarity_distillation_loss`);
        ``"contrastive"`` is InfoNCE with the partner as the only positive
        (:func:`~skhash._losses.neighbor_contrastive_loss`).
    temperature : float or "auto", default="auto"
        Softmax temperature on code similarities (``<z_i, z_j> / n_bits``).
        ``"auto"`` is ``0.1 * min(1, sqrt(64 / n_bits))``: longer codes resolve
        finer differences and want a sharper softmax (measured on the fortunes
        embeddings: at 128 bits 0.07 beats 0.1 by 6% recall; at 32 and 64 bits
        0.1 beats 0.05 and 0.2).
    teacher_temperature : float, default=0.05
        Softmax temperature on input cosine similarities (``"distill"`` only);
        smaller values focus the teacher on each item's closest batch mates.
    beta_max : float, default=16.0
        Final output steepness. With the batch-normalised pre-activations the
        mean distance of outputs to the nearest vertex falls roughly as
        ``1 / beta_max`` (Gaussian inputs: 0.07 at 8 from 16 to 256 bits, but
        0.13 at 8 and 0.10 at 16 for 1024 bits).
    max_epochs : int, default=40
        Passes over the data.
    batch_size : int, default=256
        Items per step (each with one neighbour when ``neighbor_weight > 0``).
    lr : float, default=2e-3
        Initial Adam learning rate, decayed to 0 along a cosine over the epochs.
    device : str, default="cpu"
        Torch device for training and inference, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, neighbour sampling, targets and slices. The
        same integer gives bit-identical codes on the CPU.
    verbose : int, default=0
        0 prints nothing; 1 prints a table row per epoch with the loss terms and
        the convergence figures (see :class:`~skhash.callbacks.TrainingLog`), and
        a progress bar within each epoch when writing to a terminal or notebook.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network.
    history_ : skorch.History
        Per epoch: ``train_loss``, each loss term, ``beta``, ``vertex_dist``
        (mean distance of a batch's outputs to the nearest vertex), ``ones_min``
        and ``ones_max`` (extreme per-bit shares of ones), ``max_corr``, ``hist``
        (a one-line histogram) and ``hist_counts`` (its 12 bin counts).
        See :class:`~skhash.callbacks.HypercubeDiagnostics`.
    scaler_ : sklearn.preprocessing.StandardScaler
        The standardisation the network applies to its inputs (its mean and
        scale are also buffers of the torch module).
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

    def __init__(
        self,
        n_bits=64,
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
        teacher_temperature=0.05,
        beta_max=16.0,
        max_epochs=40,
        batch_size=256,
        lr=2e-3,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_bits = n_bits
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
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        def positive_int(name):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")

        def non_negative(name):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")

        for name in (
            "n_bits",
            "n_projections",
            "active_dims",
            "n_neighbors",
            "max_epochs",
            "batch_size",
        ):
            positive_int(name)
        for name in ("reg_weight", "centroid_weight", "anticollapse_weight", "neighbor_weight"):
            non_negative(name)
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}.")
        if self.projection == "active" and self.active_dims > self.n_bits:
            raise ValueError(
                f"active_dims={self.active_dims} exceeds n_bits={self.n_bits}; a slice "
                "cannot have more active dimensions than there are bits."
            )
        if not isinstance(self.sparsity, numbers.Real) or not 0 < self.sparsity < 1:
            raise ValueError(
                f"sparsity must lie in the open interval (0, 1), got {self.sparsity!r}."
            )
        if self.neighbor_loss not in NEIGHBOR_LOSSES:
            raise ValueError(
                f"neighbor_loss must be one of {NEIGHBOR_LOSSES}, got {self.neighbor_loss!r}."
            )
        if not (isinstance(self.temperature, str) and self.temperature == "auto"):
            if not isinstance(self.temperature, numbers.Real) or not self.temperature > 0:
                raise ValueError(
                    f'temperature must be "auto" or a number > 0, got {self.temperature!r}.'
                )
        for name in ("teacher_temperature", "lr", "beta_max"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}.")
        sizes = self.hidden_layer_sizes
        if not (isinstance(sizes, str) and sizes == "auto") and (
            not isinstance(sizes, tuple | list)
            or not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes)
        ):
            raise ValueError(
                f'hidden_layer_sizes must be "auto" or a tuple of integers >= 1, got {sizes!r}.'
            )

    def fit(self, X, y=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, at least two rows. Sparse matrices are not supported.
        y : array-like of shape (n_samples,), default=None
            Class labels (any hashable values). When given, the label-centroid
            term pulls items of a class together.

        Returns
        -------
        self : BinaryHashEncoder
            The fitted encoder.
        """
        self._check_params()
        if y is None:
            X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
            labels = np.full(len(X), -1, dtype=np.int64)
        else:
            X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_min_samples=2)
            labels = LabelEncoder().fit_transform(y).astype(np.int64)
        self.scaler_ = StandardScaler().fit(X)
        X = np.ascontiguousarray(X, dtype=np.float32)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        neighbors = None
        if self.neighbor_weight > 0:
            # Euclidean order on unit rows is cosine order.
            neighbors = knn_graph(normalize(X), self.n_neighbors, random_state=seed)
        dataset = NeighborPairDataset(
            X, labels, neighbors, generator=torch.Generator().manual_seed(seed + 1)
        )
        self.net_ = self._make_net(seed, len(X))
        # seeds weight initialisation without touching the caller's global RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net_.fit(dataset, y=None)
        self.history_ = self.net_.history
        return self

    def _make_net(self, seed, n):
        callbacks = [
            ("output_scale", OutputScaleSchedule(1.0, self.beta_max)),
            ("diagnostics", HypercubeDiagnostics()),
            ("progress_bar", EpochProgressBar()),
            # cosine decay: large steps while codes are soft, fine ones once they are binary
            ("lr_schedule", LRScheduler("CosineAnnealingLR", T_max=self.max_epochs)),
        ]
        callbacks += [
            (f"{term}_score", PassthroughScoring(name=term, on_train=True)) for term in _LOSS_TERMS
        ]
        return HashNet(
            HashMLP,
            module__n_features=self.n_features_in_,
            module__n_bits=self.n_bits,
            module__hidden_layer_sizes=self._hidden_layer_sizes(),
            module__input_mean=self.scaler_.mean_,
            module__input_scale=self.scaler_.scale_,
            criterion=HashingLoss,
            criterion__reg_weight=self.reg_weight,
            criterion__n_projections=self.n_projections,
            criterion__projection=self.projection,
            criterion__active_dims=self.active_dims,
            criterion__sparsity=self.sparsity,
            criterion__centroid_weight=self.centroid_weight,
            criterion__anticollapse_weight=self.anticollapse_weight,
            criterion__neighbor_weight=self.neighbor_weight,
            criterion__neighbor_loss=self.neighbor_loss,
            criterion__temperature=self._temperature(),
            criterion__teacher_temperature=self.teacher_temperature,
            criterion__seed=seed + 2,
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=min(self.batch_size, n),
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            # batch norm needs two rows; a lone last row would also skew RDMReg
            iterator_train__drop_last=n % min(self.batch_size, n) == 1,
            iterator_train__generator=torch.Generator().manual_seed(seed + 3),
            iterator_valid=BatchLoader,
            train_split=None,
            callbacks=callbacks,
            callbacks__print_log=TrainingLog(),
            device=self.device,
            verbose=self.verbose,
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
            Values in [-1, 1]; ``transform`` is ``Z > 0``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        X = np.ascontiguousarray(X, dtype=np.float32)
        module = self.net_.module_
        module.eval()
        device = self.net_.device
        out = np.empty((len(X), self.n_bits), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(X), batch_size):
                chunk = torch.from_numpy(X[start : start + batch_size]).to(device)
                out[start : start + batch_size] = module(chunk).float().cpu().numpy()
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

    def _hidden_layer_sizes(self):
        if isinstance(self.hidden_layer_sizes, str):
            return (256,) if self.n_bits <= 64 else (1024,)
        return tuple(self.hidden_layer_sizes)

    def _temperature(self):
        if isinstance(self.temperature, str):
            return 0.1 * min(1.0, (64 / self.n_bits) ** 0.5)
        return float(self.temperature)

    @property
    def _n_features_out(self):
        return self.n_bits

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are uint8 whatever comes in
        tags.non_deterministic = self.device != "cpu"
        return tags
