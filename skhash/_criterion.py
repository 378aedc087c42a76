"""The training objective: the loss terms of :mod:`skhash._losses`, weighted."""

import torch
from torch import nn

from ._losses import (
    koleo_loss,
    label_centroid_loss,
    neighbor_contrastive_loss,
    rdmreg,
    similarity_distillation_loss,
)
from ._samplers import sample_hypercube, sample_projections


class HashingLoss(nn.Module):
    """Weighted sum of RDMReg and the optional local terms.

    Holds the generator that draws fresh hypercube targets and slice directions
    at every step, so one seed fixes the whole sequence of draws.

    Parameters
    ----------
    reg_weight : float
        Weight of :func:`~skhash._losses.rdmreg`.
    n_projections : int
        Slices per step.
    projection : {"sphere", "active", "axis"}
        Slice sampler, see :func:`~skhash._samplers.sample_projections`.
    active_dims : int
        Non-zero coordinates per slice for ``projection="active"``.
    sparsity : float
        Share of -1s in the target vertices.
    centroid_weight : float
        Weight of :func:`~skhash._losses.label_centroid_loss` (labelled rows only).
    anticollapse_weight : float
        Weight of :func:`~skhash._losses.koleo_loss`.
    neighbor_weight : float
        Weight of the neighbour term.
    neighbor_loss : {"distill", "contrastive"}
        :func:`~skhash._losses.similarity_distillation_loss` (needs ``inputs``)
        or :func:`~skhash._losses.neighbor_contrastive_loss`.
    temperature : float
        Temperature on code similarities in the neighbour term.
    teacher_temperature : float
        Temperature on input cosine similarities (``"distill"`` only).
    seed : int
        Seed of the target and slice draws.
    """

    def __init__(
        self,
        reg_weight=1.0,
        n_projections=256,
        projection="active",
        active_dims=8,
        sparsity=0.5,
        centroid_weight=1.0,
        anticollapse_weight=0.0,
        neighbor_weight=0.0,
        neighbor_loss="distill",
        temperature=0.1,
        teacher_temperature=0.05,
        seed=0,
    ):
        super().__init__()
        self.reg_weight = reg_weight
        self.n_projections = n_projections
        self.projection = projection
        self.active_dims = active_dims
        self.sparsity = sparsity
        self.centroid_weight = centroid_weight
        self.anticollapse_weight = anticollapse_weight
        self.neighbor_weight = neighbor_weight
        self.neighbor_loss = neighbor_loss
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature
        # draws happen on the CPU so that results do not depend on the device's RNG
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, embed, labels, inputs=None):
        """Loss terms for one batch.

        Parameters
        ----------
        embed : torch.Tensor of shape (batch, n_bits) or (2 * batch, n_bits)
            Outputs of the batch's items, followed, when the neighbour term is
            on, by the outputs of one neighbour of each.
        labels : torch.Tensor of shape (batch,)
            Class indices, -1 for unlabelled rows.
        inputs : torch.Tensor of shape (len(embed), n_features), default=None
            The inputs behind ``embed`` (as given to ``fit``), for the distillation
            teacher.

        Returns
        -------
        terms : dict of str to torch.Tensor
            ``"loss"`` (the weighted total) and each active term by name.
        """
        n = len(labels)
        # rows: the batch's items, then one block per drawn neighbour of each
        anchors, positives = embed[:n], embed[n : 2 * n]
        n_bits = anchors.shape[1]
        terms = {}
        if self.reg_weight:
            targets = sample_hypercube(anchors.shape, self.sparsity, self.generator)
            slices = sample_projections(
                n_bits, self.n_projections, self.projection, self.active_dims, self.generator
            )
            terms["rdmreg"] = self.reg_weight * rdmreg(
                anchors, targets.to(embed.device), slices.to(embed.device)
            )
        if self.centroid_weight and bool((labels >= 0).any()):
            terms["centroid"] = self.centroid_weight * label_centroid_loss(anchors, labels)
        if self.anticollapse_weight:
            terms["anticollapse"] = self.anticollapse_weight * koleo_loss(anchors)
        if self.neighbor_weight and len(positives):
            if self.neighbor_loss == "distill":
                terms["neighbor"] = self.neighbor_weight * similarity_distillation_loss(
                    embed, inputs, self.temperature, self.teacher_temperature
                )
            else:
                terms["neighbor"] = self.neighbor_weight * neighbor_contrastive_loss(
                    anchors, positives, self.temperature
                )
        terms["loss"] = sum(terms.values()) if terms else embed.sum() * 0.0
        return terms
