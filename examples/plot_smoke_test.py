"""Smoke test of RDMReg: do Gaussian points become E-bit codes?

The method's own sanity check. Start from points drawn from a standard Gaussian
in E dimensions and move them by gradient descent on RDMReg alone
(:func:`skhash.losses.rdmreg` against uniform hypercube vertices), then watch
the mean distance of every coordinate to the nearest of -1 and +1. It is 0.535
for Gaussian points and 0 for binary codes.

Two slice samplers (:func:`skhash.samplers.sample_projections`):

- ``"sphere"``: dense random directions. By the central limit theorem, a dense
  projection of uniform hypercube vertices is nearly Gaussian once E is large,
  so Gaussian points already match it: from E = 32 on the loss gives almost
  no push toward the vertices and the distance stays flat.
- ``"active"``: directions non-zero on 8 random coordinates. Each slice sees
  the discrete structure of 8 bits whatever E, and the points keep moving to
  the vertices (more slowly the larger E, at a fixed number of steps).

The points are free parameters (the smallest possible torch model), so what
moves them is the loss alone: :class:`~skhash.BinaryHashEncoder` also raises
the steepness of its ``tanh`` output, which pushes outputs to the vertices on
its own and would hide the difference.

    python examples/plot_smoke_test.py [figure.png]   # about a minute on 2 cores
    SKHASH_FAST=1 python examples/plot_smoke_test.py   # a few seconds, for the tests
"""

import argparse
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from skhash.losses import rdmreg, vertex_distance
from skhash.samplers import sample_hypercube, sample_projections

FAST = bool(os.environ.get("SKHASH_FAST"))
SMALL_E = (2, 16) if FAST else (2, 4, 8, 16, 32)
LARGE_E = (128,) if FAST else (64, 128, 256, 512, 1024)
N_POINTS = 128 if FAST else 256  # points moved, and targets drawn, per step
N_STEPS = 20 if FAST else 200
N_PROJECTIONS = 256
ACTIVE_DIMS = 8
RECORD_EVERY = 5 if FAST else 10
GAUSSIAN_LEVEL = 0.535  # E|1 - |z|| for z ~ N(0, 1)


def transport(n_bits, kind, seed=0):
    """Distance to the nearest vertex along RDMReg descent from Gaussian points."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(N_POINTS, n_bits, generator=generator).requires_grad_()
    optimizer = torch.optim.Adam([points], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, N_STEPS)
    steps, distances = [], []
    for step in range(N_STEPS + 1):
        if step % RECORD_EVERY == 0 or step == N_STEPS:
            steps.append(step)
            distances.append(vertex_distance(points.detach()))
        if step == N_STEPS:
            break
        targets = sample_hypercube(points.shape, generator=generator)
        slices = sample_projections(n_bits, N_PROJECTIONS, kind, ACTIVE_DIMS, generator)
        loss = rdmreg(points, targets, slices)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return np.array(steps), np.array(distances)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "figure",
        nargs="?",
        type=Path,
        default=Path(__file__).parent / "figures" / "plot_smoke_test.png",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    curves = {}
    print(
        f"{'E':>5}  {'sphere':>7}  {'active':>7}   distance to nearest vertex "
        f"after {N_STEPS} steps"
    )
    for n_bits in SMALL_E + LARGE_E:
        for kind in ("sphere", "active"):
            curves[n_bits, kind] = transport(n_bits, kind)
        print(
            f"{n_bits:>5}  {curves[n_bits, 'sphere'][1][-1]:7.3f}  "
            f"{curves[n_bits, 'active'][1][-1]:7.3f}"
        )

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ax, group in zip(axes[:2], (SMALL_E, LARGE_E), strict=True):
        colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(group)))
        for n_bits, color in zip(group, colors, strict=True):
            for kind, style in (("sphere", "--"), ("active", "-")):
                steps, dist = curves[n_bits, kind]
                ax.plot(
                    steps,
                    dist,
                    style,
                    color=color,
                    label=f"E = {n_bits}" if kind == "active" else None,
                )
        ax.axhline(GAUSSIAN_LEVEL, color="grey", linewidth=0.8, linestyle=":")
        ax.set(
            xlabel="step",
            ylabel="mean distance to nearest vertex",
            ylim=(0, 0.75),
            title=f"E = {group[0]} to {group[-1]}" if len(group) > 1 else f"E = {group[0]}",
        )
        ax.legend(
            fontsize="small",
            title="solid: active slices, dashed: sphere slices",
            title_fontsize="small",
            loc="upper right",
            ncol=3,
        )
    ax = axes[2]
    sizes = SMALL_E + LARGE_E
    for kind, style in (("sphere", "o--"), ("active", "s-")):
        label = "sphere (dense)" if kind == "sphere" else f"active ({ACTIVE_DIMS} dims)"
        ax.plot(sizes, [curves[e, kind][1][-1] for e in sizes], style, label=label)
    ax.axhline(GAUSSIAN_LEVEL, color="grey", linewidth=0.8, linestyle=":", label="Gaussian points")
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel="code length E (bits)",
        ylabel=f"distance after {N_STEPS} steps",
        ylim=(0, 0.75),
        title="Final distance by code length",
    )
    ax.legend(fontsize="small", loc="lower right")
    fig.suptitle("RDMReg alone, from Gaussian points to E-bit codes: dense vs active slices")

    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)
    print(f"wrote {args.figure} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
