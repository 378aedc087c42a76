"""Random targets and slice directions for RDMReg.

Every function takes an explicit :class:`torch.Generator` so that training is
reproducible under ``random_state`` without touching torch's global RNG.
"""

import torch

PROJECTIONS = ("sphere", "active", "axis")


def sample_hypercube(shape, sparsity=0.5, generator=None, device=None, dtype=torch.float32):
    """Draw uniform vertices of the {-1, 1} hypercube.

    Parameters
    ----------
    shape : tuple of int
        Shape of the returned tensor, e.g. ``(batch_size, n_bits)``.
    sparsity : float, default=0.5
        Probability of a coordinate being -1. ``0.5`` gives uniform vertices.
    generator : torch.Generator, default=None
        Source of randomness.
    device : torch.device or str, default=None
        Placement of the result; None is torch's default device.
    dtype : torch.dtype, default=torch.float32
        Type of the result: floating point or signed integer (-1 must be
        representable).

    Returns
    -------
    targets : torch.Tensor
        Tensor of ``shape`` whose entries are -1 or 1, i.i.d. with
        ``P(-1) = sparsity``.
    """
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must lie in (0, 1), got {sparsity!r}.")
    if not (dtype.is_floating_point or dtype.is_signed) or dtype.is_complex:
        # uint8 would hold 255 and bool True for -1
        raise ValueError(f"dtype must be a floating or signed integer type, got {dtype}.")
    u = torch.rand(shape, generator=generator, device=device)
    return torch.where(u < sparsity, -1.0, 1.0).to(dtype)


def sample_projections(
    n_dims, n_projections, kind="active", active_dims=8, generator=None, device=None
):
    """Draw unit slice directions, one per column.

    Parameters
    ----------
    n_dims : int
        Dimension of the space being sliced (the number of bits).
    n_projections : int
        Number of slices, >= 1.
    kind : {"sphere", "active", "axis"}, default="active"
        ``"sphere"``: uniform directions on the unit sphere (dense slices, the
        Cramér–Wold setting). ``"active"``: each direction is non-zero on exactly
        ``active_dims`` random coordinates, Gaussian there, then normalised;
        low-dimensional slices see the discrete structure of the hypercube, which
        dense slices average away when ``n_dims`` is large. ``"axis"``: coordinate
        slices, which only match the per-bit marginals.
    active_dims : int, default=8
        Non-zero coordinates per direction for ``kind="active"``, >= 1; clipped
        to ``n_dims``.
    generator : torch.Generator, default=None
        Source of randomness.
    device : torch.device or str, default=None
        Placement of the result; None is torch's default device.

    Returns
    -------
    projections : torch.Tensor of shape (n_dims, n_projections)
        Columns of unit Euclidean norm.
    """
    # no slice, or an empty one, would leave RDMReg NaN or blind (a zero "unit" direction)
    if n_dims < 1:
        raise ValueError(f"n_dims must be >= 1, got {n_dims!r}.")
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections!r}.")
    if kind == "active" and active_dims < 1:
        raise ValueError(f"active_dims must be >= 1, got {active_dims!r}.")
    if kind == "sphere":
        p = torch.randn(n_dims, n_projections, generator=generator, device=device)
    elif kind == "active":
        k = min(active_dims, n_dims)
        # the k smallest of i.i.d. uniforms per column is a uniform k-subset
        scores = torch.rand(n_dims, n_projections, generator=generator, device=device)
        rows = scores.topk(k, dim=0, largest=False).indices
        values = torch.randn(k, n_projections, generator=generator, device=device)
        p = torch.zeros(n_dims, n_projections, device=device).scatter_(0, rows, values)
    elif kind == "axis":
        rows = torch.randint(n_dims, (n_projections,), generator=generator, device=device)
        p = torch.zeros(n_dims, n_projections, device=device)
        p[rows, torch.arange(n_projections, device=device)] = 1.0
    else:
        raise ValueError(f"kind must be one of {PROJECTIONS}, got {kind!r}.")
    return p / p.norm(dim=0, keepdim=True).clamp_min(1e-12)
