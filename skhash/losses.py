"""Loss terms of :class:`~skhash.BinaryHashEncoder`, as pure tensor functions.

Each takes embeddings of shape ``(batch, n_bits)`` (values in [-1, 1]) and returns
a scalar tensor. They hold no state and draw no random numbers: the caller passes
targets and slice directions in (see :mod:`skhash.samplers`). The encoder combines
them as listed in its loss-term table, ``skhash._objective.LOSS_TERMS``.
"""

import torch
import torch.nn.functional as F


def rdmreg(embed, targets, projections):
    """Sliced distribution-matching regulariser (RDMReg).

    Projects the batch and a batch of target samples on each slice direction,
    sorts both projections over the batch and penalises their squared difference:
    a Monte-Carlo estimate of the squared sliced 2-Wasserstein distance between
    the batch's empirical distribution and the target distribution.

    Parameters
    ----------
    embed : torch.Tensor of shape (batch, n_bits)
        Network outputs.
    targets : torch.Tensor of shape (batch, n_bits)
        Samples of the target distribution, e.g. from
        :func:`~skhash.samplers.sample_hypercube`.
    projections : torch.Tensor of shape (n_bits, n_projections)
        Unit slice directions, e.g. from
        :func:`~skhash.samplers.sample_projections`.

    Returns
    -------
    loss : torch.Tensor
        Scalar, mean over batch and slices.
    """
    if embed.shape != targets.shape:
        raise ValueError(
            f"embed and targets must have the same shape, got {tuple(embed.shape)} "
            f"and {tuple(targets.shape)}."
        )
    projected = (embed @ projections).sort(dim=0).values
    projected_targets = (targets @ projections).sort(dim=0).values
    return (projected - projected_targets).pow(2).mean()


def label_centroid_loss(embed, labels):
    """Pull each item toward the mean of its class within the batch.

    The centre is the batch mean of the class, not a running mean or a fixed code:
    it needs no state, follows the network as it moves, and leaves *where* a class
    sits on the hypercube to the other terms, so it never fights RDMReg's target
    distribution. Items with a negative label (unlabelled) are ignored; the only
    item of its class in the batch adds 0 to the mean (its centre is the item itself).

    Parameters
    ----------
    embed : torch.Tensor of shape (batch, n_bits)
        Network outputs.
    labels : torch.Tensor of shape (batch,)
        Integer class indices; negative means unlabelled.

    Returns
    -------
    loss : torch.Tensor
        Scalar: mean over labelled items of the squared distance to their class
        centre, divided by ``n_bits``.
    """
    if labels.shape != embed.shape[:1]:
        raise ValueError(
            f"labels must have one entry per row of embed, got shape {tuple(labels.shape)} "
            f"for embed of shape {tuple(embed.shape)}."
        )
    keep = labels >= 0
    if not bool(keep.any()):
        return embed.sum() * 0.0
    embed, labels = embed[keep], labels[keep]
    _, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), embed.shape[1], dtype=embed.dtype, device=embed.device)
    sums.index_add_(0, inverse, embed)
    centres = sums / counts.unsqueeze(1).to(embed.dtype)
    return (embed - centres[inverse]).pow(2).mean()


#: Nearest items by ``torch.cdist`` whose distances :func:`koleo_loss` computes again.
_KOLEO_CANDIDATES = 8


def koleo_loss(embed, labels=None, eps=1e-3):
    """Local anti-collapse: Kozachenko–Leonenko entropy of the batch.

    ``-mean_i log(min_{j != i} ||z_i - z_j|| / sqrt(n_bits))``. Only each item's
    nearest other item in the batch receives a gradient, so distinct items are
    pushed off shared codes without imposing any global arrangement. Because it
    is an entropy estimate, it also penalises deterministic dependence between
    bits (``b3 = b1 * b2`` halves the number of reachable codes), which slices on
    a few active dimensions do not see.

    Parameters
    ----------
    embed : torch.Tensor of shape (batch, n_bits)
        Network outputs of *unrelated* items (do not include known neighbour
        pairs, whose closeness is wanted).
    labels : torch.Tensor of shape (batch,) or None, default=None
        Integer class indices, negative for unlabelled items. Items of one class
        are not each other's nearest item (the label centroid pulls them
        together). None, only negative labels, or a batch of one class only
        (nothing else to keep off; the centroid alone would collapse it): every
        other item is eligible.
    eps : float, default=1e-3
        Added to the normalised distance before the log, so duplicates in the
        batch give a large but finite loss.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    n, n_bits = embed.shape
    if labels is not None and labels.shape != embed.shape[:1]:
        raise ValueError(
            f"labels must have one entry per row of embed, got shape {tuple(labels.shape)} "
            f"for embed of shape {tuple(embed.shape)}."
        )
    if n < 2:
        return embed.sum() * 0.0
    # out of an item's reach: itself and, with labels, its class mates
    barred = torch.eye(n, dtype=torch.bool, device=embed.device)
    if labels is not None:
        barred |= (labels[:, None] == labels) & (labels[:, None] >= 0)
    if bool(barred.all()):  # one class only: each item keeps its nearest class mate off
        barred = torch.eye(n, dtype=torch.bool, device=embed.device)
    # torch.cdist only chooses candidates: above 25 rows it takes a matrix product whose
    # float32 rounding puts near-duplicates ~1e-3 apart, not 0, with wrong gradients;
    # the candidates' distances are computed again directly
    with torch.no_grad():
        # cdist has no half-precision CPU kernel (up to 25 rows): candidates from float32
        wide = embed if embed.dtype in (torch.float32, torch.float64) else embed.float()
        dist = torch.cdist(wide, wide).masked_fill(barred, float("inf"))
        candidates = dist.topk(min(_KOLEO_CANDIDATES, n - 1), dim=1, largest=False).indices
        exact = (embed[:, None, :] - embed[candidates]).norm(dim=2)
        exact = exact.masked_fill(barred.gather(1, candidates), float("inf"))
        nearest_item = candidates.gather(1, exact.argmin(dim=1, keepdim=True))[:, 0]
    # every item has an eligible one: an item barred from all others is of the batch's one class
    nearest = (embed - embed[nearest_item]).norm(dim=1)
    return -torch.log(nearest / n_bits**0.5 + eps).mean()


def neighbor_contrastive_loss(anchors, positives, temperature=0.1):
    """InfoNCE between items and one of their input-space neighbours.

    Row ``i`` of ``positives`` is a neighbour of row ``i`` of ``anchors`` in the
    input space; every other row of the batch serves as a negative. Similarity
    is the normalised inner product ``<a, p> / n_bits``, which is
    ``1 - 2 * hamming / n_bits`` on hypercube vertices, so the loss ranks by
    Hamming distance once codes are binary.

    Parameters
    ----------
    anchors, positives : torch.Tensor of shape (batch, n_bits)
        Network outputs of the items and of their sampled neighbours.
    temperature : float, default=0.1
        Softmax temperature on the similarity in [-1, 1].

    Returns
    -------
    loss : torch.Tensor
        Scalar, symmetric cross-entropy (anchors to positives and back).
    """
    if anchors.shape != positives.shape:
        raise ValueError(
            f"anchors and positives must have the same shape, got {tuple(anchors.shape)} "
            f"and {tuple(positives.shape)}."
        )
    logits = anchors @ positives.T / (anchors.shape[1] * temperature)
    target = torch.arange(len(anchors), device=anchors.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def vertex_distance(embed):
    """Mean absolute distance of each coordinate to the nearest of -1 and 1.

    Parameters
    ----------
    embed : torch.Tensor or numpy.ndarray of shape (n, n_bits)

    Returns
    -------
    distance : float
        ``mean(|1 - |z||)``; 0 when every output is a hypercube vertex.
    """
    return float(abs(1 - abs(embed)).mean())


def _power_of_two_rescale(rows):
    """Rows times the power of two that brings each one's peak magnitude into [1, 2)."""
    wide = rows.double()  # the factor of a subnormal float32 row exceeds float32's range
    peak = wide.abs().amax(dim=1, keepdim=True)
    exponent = torch.floor(torch.log2(torch.where(peak > 0, peak, 1.0)))
    return (wide * torch.exp2(-exponent)).to(rows.dtype)


def similarity_distillation_loss(embed, inputs, temperature=0.1, teacher_temperature=0.05):
    """Match each item's softmax over batch similarities to the input space's.

    For every row ``i``, the teacher distribution is
    ``softmax_j(cos(x_i, x_j) / teacher_temperature)`` and the student's is
    ``softmax_j(<z_i, z_j> / (n_bits * temperature))`` over all ``j != i`` in
    the batch; the loss is their cross-entropy. With neighbour pairs in the batch
    the teacher puts most mass on each item's neighbour, like InfoNCE, but also
    ranks the rest, so the codes learn graded similarity.

    The cosine similarities do not depend on the scale of the rows: each row
    is first scaled by a power of two (exact) so that its largest magnitude
    lies in [1, 2), where a float32 squared norm neither overflows (rows beyond
    ~1e19) nor falls under ``F.normalize``'s floor (below ~1e-12); an all-zero
    row has similarity 0 to every row.

    Parameters
    ----------
    embed : torch.Tensor of shape (batch, n_bits)
    inputs : torch.Tensor of shape (batch, n_features)
    temperature : float, default=0.1
        The student's temperature, per bit (the logits are divided by
        ``n_bits * temperature``).
    teacher_temperature : float, default=0.05
        The teacher's temperature on cosine similarities.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    n = len(embed)
    if len(inputs) != n:
        raise ValueError(
            f"embed and inputs must have the same number of rows, got {tuple(embed.shape)} "
            f"and {tuple(inputs.shape)}."
        )
    x = F.normalize(_power_of_two_rescale(inputs), dim=1)
    eye = torch.eye(n, dtype=torch.bool, device=embed.device)
    teacher = (x @ x.T / teacher_temperature).masked_fill(eye, float("-inf")).softmax(1)
    student = (embed @ embed.T / (embed.shape[1] * temperature)).masked_fill(eye, float("-inf"))
    return -(teacher * student.log_softmax(1)).masked_fill(eye, 0.0).sum(1).mean()
