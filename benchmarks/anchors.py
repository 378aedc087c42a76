"""Learned anchors: is skhash better than published deep-hashing objectives of its shape?

Issue 15, item 3. Two unsupervised deep-hashing methods of the same shape as
skhash (a network, then a sign), implemented here from their papers and trained
on the same inputs with the same network body as ``BinaryHashEncoder``'s default
at 64 bits (inputs standardised with its floored scale, linear shortcut + one
256-unit GELU layer):

- **BiHalf** (Li & van Gemert, AAAI 2021): the hash layer splits every bit at
  its median over the batch (top half +1, bottom half -1: exactly balanced bits),
  backward is the straight-through gradient plus ``gamma * (h - b) / numel``;
- **GreedyHash** (Su et al., NeurIPS 2018): ``sign`` forward, identity backward,
  plus ``alpha * mean(| |h| - 1 |^3)`` pulling ``h`` to the vertices.

Both use the unsupervised loss of the papers' code: the batch is split in two
halves paired row by row, and the cosine of each pair's codes must match the
cosine of its inputs (mean squared error). At test time codes are ``h > 0``.

Protocol: MiniLM embeddings of ``../shared/data`` (fortunes, man pages), a
seeded split into 2,000 held-out queries and the database (as
``_harness.load_split``); truth = each query's 10 nearest database rows by
cosine; recall10@100 of the Hamming ranking. Tuning (each anchor, same budget:
the grid ``GRID`` of 2 lr x 2 values of its own weight, 40 epochs like skhash) uses
a validation split *of the database* (1,000 rows against up to 10,000 others), never the
test queries; skhash runs with its defaults, PCA-ITQ and SimHash in the same run.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/anchors.py --seeds 0 1 2
    python benchmarks/anchors.py --quick                     # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import itertools
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from _harness import (
    DATA,
    code_figures,
    float_ranking,
    hamming_ranking,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)
from sklearn.preprocessing import StandardScaler
from torch import nn

from skhash import PCAITQ, BinaryHashEncoder, SimHash
from skhash._encoder import _input_standardisation

CORPORA = {"fortunes": "fortunes_minilm.npz", "manpages": "manpages_minilm.npz"}
#: Tuning grid, the same for both anchors: lr x epochs (skhash's 40) x the method's weight
#: (BiHalf's gamma, GreedyHash's alpha; the papers' code uses gamma 3-6-ish and alpha 1).
GRID = {
    "BiHalf": list(itertools.product([1e-3, 3e-3], [40], [3.0, 30.0])),
    "GreedyHash": list(itertools.product([1e-3, 3e-3], [40], [0.1, 1.0])),
}


def load_corpus(name, n_queries=2000, seed=0, n_database=None):
    """Database and held-out queries of a corpus, split as ``_harness.load_split`` does."""
    X = np.load(DATA / CORPORA[name])["X"].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order[n_queries:][:n_database]], X[order[:n_queries]]


class Body(nn.Module):
    """skhash's default network without its head: standardise, linear + (Linear, GELU, Linear)."""

    def __init__(self, X, n_bits, hidden=256):
        super().__init__()
        # skhash's standardisation, scale floored: the corpora hold a feature of float16
        # rounding noise (values 0 and -2**-24) that X.std(0) would blow up to unit spread
        mean, scale = _input_standardisation(StandardScaler().fit(X))
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))
        d = X.shape[1]
        self.linear = nn.Linear(d, n_bits)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, n_bits))

    def forward(self, x):
        x = (x - self.mean) / self.scale
        return self.linear(x) + self.mlp(x)


class BiHalfSign(torch.autograd.Function):
    """Median split per bit over the batch; straight-through plus a pull of h toward b."""

    @staticmethod
    def forward(ctx, h, gamma):
        n = len(h)
        order = h.argsort(dim=0, descending=True)
        values = torch.ones_like(h)
        values[n // 2 :] = -1.0  # the top half of each column gets +1
        b = torch.empty_like(h).scatter_(0, order, values)
        ctx.save_for_backward(h, b)
        ctx.gamma = gamma
        return b

    @staticmethod
    def backward(ctx, grad):
        h, b = ctx.saved_tensors
        return grad + ctx.gamma * (h - b) / b.numel(), None


class STESign(torch.autograd.Function):
    """GreedyHash's layer: sign forward, the gradient passed through unchanged."""

    @staticmethod
    def forward(ctx, h):
        return torch.where(h >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


def pair_cosine_loss(b, x):
    """The papers' unsupervised loss: cosines of row-paired batch halves must match."""
    half = len(b) // 2
    cos_b = F.cosine_similarity(b[:half], b[half : 2 * half])
    cos_x = F.cosine_similarity(x[:half], x[half : 2 * half])
    return F.mse_loss(cos_b, cos_x)


def fit_anchor(method, X, n_bits, lr, epochs, weight, seed, batch_size=256):
    """Train one anchor; returns the network and its behaviour figures during training."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Body(X, n_bits)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * (len(X) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    Xt = torch.from_numpy(X)
    balance = []
    for epoch in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X) - batch_size + 1, batch_size):  # full batches only
            x = Xt[perm[start : start + batch_size]]
            h = net(x)
            if method == "BiHalf":
                b = BiHalfSign.apply(h, weight)
                loss = pair_cosine_loss(b, x)
                if epoch == epochs - 1:
                    balance.append(float(b.detach().mean(0).abs().max()))
            else:
                loss = pair_cosine_loss(STESign.apply(h), x)
                loss = loss + weight * (h.abs() - 1).abs().pow(3).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net, {"max |batch mean of a bit|, last epoch": max(balance, default=float("nan"))}


def anchor_codes(net, X):
    """0/1 codes ``h > 0`` and the mean distance of ``h`` to the nearest of -1, 1."""
    with torch.inference_mode():
        h = net(torch.from_numpy(X)).numpy()
    return (h > 0).astype(np.uint8), float(np.abs(1 - np.abs(h)).mean())


def tune(method, Xdb, n_bits, seed=0, n_val=1000, n_train=10000, grid=None):
    """Best (lr, epochs, weight) on a validation split of the database, and all scores.

    ``n_val`` database rows are the validation queries, up to ``n_train`` others the
    training rows and the validation database (a bound on the tuning time).
    """
    rng = np.random.default_rng(seed + 100)
    order = rng.permutation(len(Xdb))
    Xv, Xt = Xdb[order[:n_val]], Xdb[order[n_val:][:n_train]]
    true = float_ranking(Xt, Xv, 10)
    scores = {}
    for setting in grid or GRID[method]:
        net, _ = fit_anchor(method, Xt, n_bits, *setting, seed=seed)
        scores[setting] = recall(
            true, hamming_ranking(anchor_codes(net, Xt)[0], anchor_codes(net, Xv)[0]), 100
        )
    return max(scores, key=scores.get), scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="skhash max_epochs")
    parser.add_argument("--small-grid", action="store_true", help="first 2 settings only")
    quick = dict(corpora=["fortunes"], bits=16, seeds=[0], n_database=3000, max_epochs=2)
    quick["small_grid"] = True
    args = parse_args(parser, quick, argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    print(machine_line(threads=torch.get_num_threads()), flush=True)
    b = args.bits
    for corpus in args.corpora:
        Xdb, Xq = load_corpus(corpus, n_database=args.n_database)
        true = float_ranking(Xdb, Xq, 10)
        print(f"\n# {corpus}: {len(Xdb):,} database rows, {len(Xq):,} queries, {b} bits\n")
        print("## Tuning on a validation split of the database (seed 0, recall10@100)\n")
        best = {}
        for method in GRID:
            grid = GRID[method][:2] if args.small_grid else GRID[method]
            if args.small_grid and args.max_epochs:
                grid = [(lr, args.max_epochs, w) for lr, _, w in grid]
            best[method], scores = tune(method, Xdb, b, grid=grid)
            for (lr, epochs, weight), score in scores.items():
                mark = " (chosen)" if (lr, epochs, weight) == best[method] else ""
                print(f"- {method} lr={lr:g} epochs={epochs} weight={weight:g}: "
                      f"{score:.3f}{mark}", flush=True)  # fmt: skip
        print(f"\n## Test: 2,000 held-out queries, recall10@100 per seed ({b} bits)\n")
        print_header("seed", "method", "recall10@100", "recall10@10", "fit s", "behaviour", left=2)
        results = {}
        for seed in args.seeds:
            runs = {
                "skhash": BinaryHashEncoder(n_bits=b, random_state=seed, **params),
                "PCA-ITQ": PCAITQ(n_bits=b, random_state=seed),
                "SimHash": SimHash(n_bits=b, random_state=seed),
            }
            for name, est in runs.items():
                fit_s, _ = timed(partial(est.fit, Xdb))
                db_codes, q_codes = est.transform(Xdb), est.transform(Xq)
                ranked = hamming_ranking(db_codes, q_codes)
                fig = code_figures(db_codes)
                note = f"ones {fig['ones_min']:.2f}-{fig['ones_max']:.2f}"
                if name == "skhash":
                    z = est.embed(Xdb)
                    note += f", vertex dist {np.abs(1 - np.abs(z)).mean():.3f}"
                results.setdefault(name, []).append(recall(true, ranked, 100))
                print_row(seed, name, f"{results[name][-1]:.3f}",
                          f"{recall(true, ranked, 10):.3f}", f"{fit_s:.0f}", note)  # fmt: skip
            for method, (lr, epochs, weight) in best.items():
                fit_s, (net, check) = timed(
                    partial(fit_anchor, method, Xdb, b, lr, epochs, weight, seed)
                )
                db_codes, vdist = anchor_codes(net, Xdb)
                q_codes = anchor_codes(net, Xq)[0]
                ranked = hamming_ranking(db_codes, q_codes)
                fig = code_figures(db_codes)
                note = f"ones {fig['ones_min']:.2f}-{fig['ones_max']:.2f}, |h| vertex dist "
                note += f"{vdist:.3f}"
                if method == "BiHalf":
                    batch_bal = check["max |batch mean of a bit|, last epoch"]
                    note += f", max per-batch imbalance {batch_bal:.3g}"
                results.setdefault(method, []).append(recall(true, ranked, 100))
                print_row(seed, method, f"{results[method][-1]:.3f}",
                          f"{recall(true, ranked, 10):.3f}", f"{fit_s:.0f}", note)  # fmt: skip
        print(f"\n## Summary, {corpus}, {b} bits, mean (std) over seeds {args.seeds}\n")
        print_header("method", "recall10@100", "skhash / method", left=1)
        for name, values in results.items():
            ratio = np.mean(results["skhash"]) / np.mean(values)
            print_row(name, f"{np.mean(values):.3f} ({np.std(values):.3f})", f"{ratio:.3f}")
    print_command()


if __name__ == "__main__":
    main()
