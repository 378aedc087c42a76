"""Does the cost of ``BinaryHashEncoder.fit`` stop growing with n? (issue 13, item 5)

Two measurements, public API only:

- ``--sizes`` (default 10^4, 10^5, 10^6 rows): seconds of one ``fit`` with the
  default settings (64 bits), on the fortunes MiniLM embeddings (14,813 real rows,
  384-d) **tiled with small Gaussian noise** (row ``i`` is real row ``i % 14,813``
  plus N(0, ``--noise``^2) per coordinate; 0.01 moves a unit row by ~0.2),
  next to the steps trained and the share of the CPU other processes used
  meanwhile (the machine is shared). Every size gets the same fresh process
  state: a warm-up fit on 2,000 rows runs first (numba / torch start-up).
- ``--quality``: recall10@100 of the default encoder at ``--bits`` on both real
  data sets (fortunes: 12,813 database rows; man pages: 18,000), 2,000 held-out
  queries each, ground truth = 10 nearest database rows by cosine, per seed and
  the mean; run it on two checkouts (``PYTHONPATH=<old checkout>``) to compare
  training before and after a change.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/fit_scaling.py --sizes 10000 100000 1000000
    OMP_WAIT_POLICY=PASSIVE python benchmarks/fit_scaling.py --quality --seeds 0 1 2
    python benchmarks/fit_scaling.py --quick                  # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    DATA,
    Disturbance,
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

from skhash import BinaryHashEncoder


def tiled_embeddings(n, noise, seed=0):
    """``n`` rows: the fortunes embeddings repeated, plus N(0, noise^2) per coordinate."""
    real = np.load(DATA / "fortunes_minilm.npz")["X"].astype(np.float32)
    rng = np.random.default_rng(seed)
    X = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, len(real)):  # block by block: no float64 temporary of n rows
        stop = min(n, start + len(real))
        X[start:stop] = real[: stop - start]
        X[start:stop] += noise * rng.standard_normal((stop - start, real.shape[1]), np.float32)
    return X


def steps_of(encoder):
    """Training steps of a fitted encoder (from its history, so any version works)."""
    return int(sum(len(row["batches"]) for row in encoder.history_))


def scaling(args):
    warm = tiled_embeddings(2000, args.noise, seed=1)
    BinaryHashEncoder(n_bits=args.bits, max_epochs=1, random_state=0).fit(warm)
    print(f"\n## fit seconds, {args.bits} bits, default settings\n")
    print(f"Rows: fortunes MiniLM embeddings tiled, N(0, {args.noise}^2) noise per coordinate.")
    print_header("rows", "fit s", "steps", "ms / step", "other CPU use", left=1)
    times = {}
    for n in args.sizes:
        X = tiled_embeddings(n, args.noise)
        encoder = BinaryHashEncoder(n_bits=args.bits, random_state=0, **args.params)
        with Disturbance() as load:
            seconds, _ = timed(lambda encoder=encoder, X=X: encoder.fit(X))
        steps = steps_of(encoder)
        times[n] = seconds
        print_row(
            f"{n:,}", f"{seconds:.1f}", f"{steps:,}", f"{1000 * seconds / steps:.1f}",
            f"{load.share:.0%}",
        )  # fmt: skip
        del X, encoder
    sizes = sorted(times)
    for small, large in zip(sizes, sizes[1:], strict=False):
        print(f"fit({large:,}) / fit({small:,}) = {times[large] / times[small]:.2f}")


def split(name, n_queries=2000, seed=0):
    """Seeded database / query split of one data set in ``DATA``."""
    X = np.load(DATA / f"{name}_minilm.npz")["X"].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order[n_queries:]], X[order[:n_queries]]


def quality(args):
    print(f"\n## recall10@100, {args.bits} bits, default settings, seeds {args.seeds}\n")
    print_header("data set", "database rows", *[f"seed {s}" for s in args.seeds], "mean",
                 "fit s (mean)", left=1)  # fmt: skip
    for name in args.datasets:
        Xdb, Xq = split(name)
        Xdb = Xdb[: args.n_database]
        true = float_ranking(Xdb, Xq, 10)
        recalls, seconds = [], []
        for seed in args.seeds:
            encoder = BinaryHashEncoder(n_bits=args.bits, random_state=seed, **args.params)
            fit_s, _ = timed(lambda encoder=encoder, Xdb=Xdb: encoder.fit(Xdb))
            ranked = hamming_ranking(encoder.transform(Xdb), encoder.transform(Xq), 100)
            recalls.append(recall(true, ranked, 100))
            seconds.append(fit_s)
        print_row(
            name, f"{len(Xdb):,}", *[f"{r:.4f}" for r in recalls], f"{np.mean(recalls):.4f}",
            f"{np.mean(seconds):.0f}",
        )  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--quality", action="store_true", help="recall on the real data sets")
    parser.add_argument("--datasets", nargs="+", default=["fortunes", "manpages"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    quick = dict(sizes=[2_000, 20_000], seeds=[0], n_database=2000, max_epochs=2)
    args = parse_args(parser, quick, argv)
    args.params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}

    print(machine_line(), flush=True)
    if args.quality:
        quality(args)
    elif args.sizes:
        scaling(args)
    print_command()


if __name__ == "__main__":
    main()
