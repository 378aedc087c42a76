"""The open question: what does RDMReg do on its own, and what is the local term for?

Issue 15, item 4 (``docs/open_question.md``). RDMReg alone, in the method
author's setting (no batch norm, no steepness schedule), dense (``"sphere"``)
against ``"active"`` slices:

- ``stall``: a linear map with ``tanh`` outputs, trained on RDMReg only, from
  4,000 Gaussian rows (width = bits) to 16-1,024 bits; distance of the outputs to
  the nearest vertex over the steps. Dense slices stall as bits grow.
- ``parity``: free points that start at codes with planted parity: 24 bits, 12
  free and 12 products of two free bits (``b_k = b_i * b_j``, distinct pairs), so
  every 1-D and 2-D marginal is uniform while ``E[b_i b_j b_k] = 1`` and only
  2^12 codes are reachable. RDMReg alone with axis / 2-dim / 8-dim / dense slices,
  then RDMReg plus a local term (KoLeo, :func:`skhash.losses.koleo_loss`) or a
  third-moment penalty on random triples; triple correlation, collisions,
  entropy, vertex distance and seconds per step.
- ``encoder``: ``BinaryHashEncoder`` variants in which RDMReg must do the work:
  no batch norm on the output (emulated: the public API has no switch, so a
  subclass swaps the module's ``norm`` for ``Identity``), with and without
  RDMReg, with and without the steepness schedule; fortunes held-out protocol
  of ``quality.py`` (recall10@100), plus bit balance and dependence.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/open_question.py --parts stall parity
    OMP_WAIT_POLICY=PASSIVE python benchmarks/open_question.py --parts encoder --seeds 0 1
    python benchmarks/open_question.py --quick               # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from _harness import (
    code_figures,
    expected_distinct,
    float_ranking,
    hamming_ranking,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
)
from anchors import load_corpus

from skhash import BinaryHashEncoder
from skhash.losses import koleo_loss, rdmreg, vertex_distance
from skhash.samplers import sample_hypercube, sample_projections

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def slices(kind, n_bits, gen, n_proj=256):
    """Slice directions: ("axis",), ("active", k) or ("sphere",)."""
    if kind[0] == "active":
        return sample_projections(n_bits, n_proj, "active", kind[1], gen)
    return sample_projections(n_bits, n_proj, kind[0], generator=gen)


# (a) the stall ---------------------------------------------------------------


def stall_run(model, n_bits, kind, steps, seed=0, every=25):
    """RDMReg only, vertex distance over steps, for one of two models.

    ``"free"``: 512 free, unbounded points from a standard Gaussian (full batch, Adam
    0.1, cosine decay), as in ``examples/plot_smoke_test.py``. ``"tanh"``: a linear
    map with ``tanh`` outputs from 4,000 Gaussian rows (width = bits; batches of 256,
    Adam 0.01), the method author's network setting.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if model == "free":
        X = torch.randn(512, n_bits, generator=gen).requires_grad_()
        params, lr, forward = [X], 0.1, lambda x: x
    else:
        X = torch.randn(4000, n_bits, generator=gen)
        net = torch.nn.Linear(n_bits, n_bits)
        params, lr, forward = net.parameters(), 1e-2, lambda x: torch.tanh(net(x))
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if model == "free" else None
    curve = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            with torch.no_grad():  # on 1,000 rows at most: the 1,024-bit forward pass is costly
                curve.append((step, vertex_distance(forward(X[:1000]))))
        if step == steps:
            break
        rows = torch.randint(len(X), (256,), generator=gen) if model == "tanh" else slice(None)
        z = forward(X[rows])
        loss = rdmreg(z, sample_hypercube(z.shape, generator=gen), slices(kind, n_bits, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    with torch.no_grad():
        codes = (forward(X) > 0).numpy().astype(np.uint8)
    return np.array(curve), code_figures(codes)


# (b, c) parity collapse ------------------------------------------------------


def parity_codes(n, n_free, gen):
    """±1 codes: n_free uniform bits, then one product b_i * b_j per distinct pair."""
    free = sample_hypercube((n, n_free), generator=gen)
    pairs = list(itertools.combinations(range(n_free), 2))
    pick = torch.randperm(len(pairs), generator=gen)[:n_free]
    triples = [(*pairs[p], n_free + k) for k, p in enumerate(pick.tolist())]
    prod = torch.stack([free[:, i] * free[:, j] for i, j, _ in triples], 1)
    return torch.cat([free, prod], 1), triples


def parity_figures(z, triples):
    """Triple correlation, 2-D marginals, collisions and entropy of sign(z)."""
    s = torch.where(z >= 0, 1.0, -1.0).numpy()
    n, b = s.shape
    triple = float(np.mean([abs(np.mean(s[:, i] * s[:, j] * s[:, k])) for i, j, k in triples]))
    ones = (s + 1) / 2
    both = ones.T @ ones / n  # P(b_i = 1, b_j = 1); with balanced bits 0.25 is uniform
    off = ~np.eye(b, dtype=bool)
    _, counts = np.unique(s, axis=0, return_counts=True)
    p = counts / n
    return {
        "triple": triple,
        "pair11_dev": float(np.abs(both[off] - 0.25).max()),
        "ones_dev": float(np.abs(ones.mean(0) - 0.5).max()),
        "distinct": len(counts) / expected_distinct(n, b),
        "entropy": float(-(p * np.log2(p)).sum()),
        "vertex": vertex_distance(z),
    }


def third_moment_loss(z, gen, n_triples=512):
    """Squared batch means of z_i z_j z_k over random triples (0 for independent bits)."""
    idx = torch.stack([torch.randperm(z.shape[1], generator=gen)[:3] for _ in range(n_triples)])
    return (z[:, idx[:, 0]] * z[:, idx[:, 1]] * z[:, idx[:, 2]]).mean(0).pow(2).mean()


def parity_run(kind, steps, local=None, weight=0.0, n=4000, n_free=12, batch=1024, seed=0):
    """Free points from parity codes (+ small noise) under RDMReg (+ a local term).

    Adam with a cosine-annealed learning rate, so the points settle by the end.
    """
    gen = torch.Generator().manual_seed(seed)
    start, triples = parity_codes(n, n_free, gen)
    z = (start + 0.05 * torch.randn(start.shape, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([z], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    curve, begin = [], time.perf_counter()
    for step in range(steps + 1):
        if step % 25 == 0 or step == steps:
            curve.append((step, parity_figures(z.detach(), triples)))
        if step == steps:
            break
        rows = torch.randperm(n, generator=gen)[:batch]
        zb = z[rows]
        loss = rdmreg(zb, sample_hypercube(zb.shape, generator=gen), slices(kind, 2 * n_free, gen))
        if local == "koleo":
            loss = loss + weight * koleo_loss(zb)
        elif local == "third":
            loss = loss + weight * third_moment_loss(zb, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return curve, (time.perf_counter() - begin) / steps


# (d) the encoder with RDMReg doing the work ----------------------------------


class NoNormEncoder(BinaryHashEncoder):
    """BinaryHashEncoder whose network has no batch norm on the output (emulation).

    Relies on private details (``_make_net`` and the module's ``norm``) that may
    change; the check in ``fit`` fails loudly if the swap did not happen.
    """

    def _make_net(self, *args, **kwargs):
        from skhash._module import HashMLP

        class HashMLPNoNorm(HashMLP):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.norm = torch.nn.Identity()

        return super()._make_net(*args, **kwargs).set_params(module=HashMLPNoNorm)

    def fit(self, X, y=None):
        super().fit(X, y)
        assert isinstance(self.net_.module_.norm, torch.nn.Identity), "batch norm not removed"
        return self


ENCODER_VARIANTS = {
    "defaults (batch norm + schedule)": (BinaryHashEncoder, {}),
    "no batch norm": (NoNormEncoder, {}),
    "no batch norm, no RDMReg": (NoNormEncoder, {"reg_weight": 0.0}),
    "no batch norm, RDMReg x10": (NoNormEncoder, {"reg_weight": 10.0}),
    "no batch norm, no schedule (beta_max=1)": (NoNormEncoder, {"beta_max": 1.0}),
    "no batch norm, no schedule, no RDMReg": (NoNormEncoder, {"beta_max": 1.0, "reg_weight": 0.0}),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["stall", "parity", "encoder"])
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=list(ENCODER_VARIANTS))
    parser.add_argument("--corpus", choices=["fortunes", "manpages"], default="fortunes")
    parser.add_argument("--n-database", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    # a smoke run must not overwrite the docs' figures with its tiny ones
    quick = dict(
        bits=[16, 64],
        steps=20,
        n_database=2000,
        max_epochs=2,
        figures=Path(tempfile.gettempdir()) / "skhash_open_question_quick",
    )
    args = parse_args(parser, quick, argv)
    print(machine_line(threads=torch.get_num_threads()), flush=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    if "stall" in args.parts:
        print(f"\n## (a) RDMReg alone, {args.steps} steps\n")
        print_header("model", "bits", "slices", "vertex dist", "max corr", "distinct / random",
                     left=3)  # fmt: skip
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.2), layout="constrained")
        colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(args.bits)))
        for row, model in zip(axes, ("free", "tanh"), strict=True):
            final = {}
            for b, color in zip(args.bits, colors, strict=True):
                for kind, style in ((("sphere",), "--"), (("active", 8), "-")):
                    curve, fig_ = stall_run(model, b, kind, args.steps)
                    final[b, kind[0]] = curve[-1, 1]
                    row[0].plot(*curve.T, style, color=color, label=f"{b} bits" * (style == "-"))
                    print_row(model, b, kind[0], f"{curve[-1, 1]:.3f}", f"{fig_['max_corr']:.3f}",
                              f"{fig_['distinct_ratio']:.3f}")  # fmt: skip
            for kind, style in (("sphere", "o--"), ("active", "s-")):
                row[1].plot(args.bits, [final[b, kind] for b in args.bits], style, label=kind)
            what = "free Gaussian points" if model == "free" else "tanh(linear map)"
            row[0].set(xlabel="step", ylabel="mean distance to nearest vertex", ylim=(0, 0.8),
                       title=f"{what}; solid: active (8 dims), dashed: sphere")  # fmt: skip
            row[0].legend(fontsize="small")
            row[1].set(xscale="log", xlabel="bits", ylabel=f"distance after {args.steps} steps",
                       ylim=(0, 0.8), title=f"{what}: final distance by code length")  # fmt: skip
            row[1].legend()
        fig.suptitle("RDMReg alone (no batch norm, no steepness schedule): dense vs active slices")
        fig.savefig(args.figures / "open_question_stall.png", dpi=90)
    if "parity" in args.parts:
        runs = {
            "axis (1-D)": (("axis",), None, 0.0),
            "active 2 dims": (("active", 2), None, 0.0),
            "active 8 dims": (("active", 8), None, 0.0),
            "sphere (dense)": (("sphere",), None, 0.0),
            "active 2 + KoLeo 0.1": (("active", 2), "koleo", 0.1),
            "active 2 + KoLeo 1": (("active", 2), "koleo", 1.0),
            "active 8 + KoLeo 1": (("active", 8), "koleo", 1.0),
            "active 2 + third moment 10": (("active", 2), "third", 10.0),
            "active 2 + third moment 100": (("active", 2), "third", 100.0),
        }
        print(f"\n## (b, c) planted parity, 24 bits (12 free, 12 products), {args.steps} steps\n")
        cols = ("triple", "pair11_dev", "ones_dev", "distinct", "entropy", "vertex")
        print_header("slices + local term", "when", *cols, "s / step", left=1)
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
        for name, (kind, local, weight) in runs.items():
            curve, per_step = parity_run(kind, args.steps, local, weight)
            for when, (_, m) in (("start", curve[0]), ("end", curve[-1])):
                if when == "start" and name != "axis (1-D)":
                    continue
                print_row(name, when, *(f"{m[c]:.3f}" for c in cols), f"{per_step:.4f}")
            steps = [s for s, _ in curve]
            style = "--" if local else "-"
            for ax, key in zip(axes, ("triple", "distinct", "vertex"), strict=True):
                ax.plot(steps, [m[key] for _, m in curve], style, label=name)
        titles = (
            "mean |E[b_i b_j b_k]| over planted triples",
            "distinct codes / expected for random codes",
            "distance to nearest vertex",
        )
        for ax, title in zip(axes, titles, strict=True):
            ax.set(xlabel="step", title=title)
        axes[0].legend(fontsize="small")
        fig.suptitle("Planted parity b_k = b_i b_j: uniform 1-D and 2-D marginals, 2^12 codes")
        fig.savefig(args.figures / "open_question_parity.png", dpi=90)
    if "encoder" in args.parts:
        Xdb, Xq = load_corpus(args.corpus, n_database=args.n_database)
        true = float_ranking(Xdb, Xq, 10)
        params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
        print(f"\n## (d) encoder variants, {args.corpus}, 64 bits, 2,000 held-out queries\n")
        print_header("variant", "seed", "recall10@100", "vertex dist", "ones min-max",
                     "max corr", "triple corr", "distinct / random", "fit s", left=1)  # fmt: skip
        for name in args.variants:
            cls, extra = ENCODER_VARIANTS[name]
            for seed in args.seeds:
                est = cls(n_bits=64, random_state=seed, **extra, **params)
                begin = time.perf_counter()
                est.fit(Xdb)
                fit_s = time.perf_counter() - begin
                z, zq = est.embed(Xdb), est.embed(Xq)
                ranked = hamming_ranking((z > 0).astype(np.uint8), (zq > 0).astype(np.uint8))
                m = code_figures((z > 0).astype(np.uint8))
                print_row(name, seed, f"{recall(true, ranked, 100):.3f}",
                          f"{np.abs(1 - np.abs(z)).mean():.3f}",
                          f"{m['ones_min']:.2f}-{m['ones_max']:.2f}", f"{m['max_corr']:.3f}",
                          f"{m['triple_corr']:.3f}", f"{m['distinct_ratio']:.3f}",
                          f"{fit_s:.0f}")  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
