"""Does the encoder converge to balanced, independent, distinct codes at any length? (issue 4)

Gaussian inputs -> b bits, unsupervised, default settings. For each b: fit
``BinaryHashEncoder(n_bits=b, random_state=seed, n_anchors=0)`` (the network's own
outputs: the smoothed codes that ``"auto"`` adds above 64 bits lie off [-1, 1], and
this is a question about training) and the baselines
(``_harness.encoders``: SimHash, PCA-ITQ) on 20,000 x max(2b, 64) standard
Gaussian rows, encode 5,000 fresh rows and report the five figures of issue 4
(``_harness.code_figures``): distance to the cube's vertices (0 for the
baselines, whose codes are exact signs), max pairwise and
triple correlation of bits, distinct codes against random codes, share of ones.

Usage::

    python benchmarks/convergence.py --bits 16 64 256 1024
    python benchmarks/convergence.py --quick                  # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    code_figures,
    encoders,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    timed,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    quick = dict(bits=[8], n_train=1000, n_test=500, max_epochs=2)
    args = parse_args(parser, quick, argv)
    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}

    print(machine_line(), flush=True)
    print_header(
        "bits", "method", "vertex dist", "max corr", "max triple corr", "distinct / random",
        "ones min", "ones max", "fit s",
    )  # fmt: skip
    for b in args.bits:
        rng = np.random.default_rng(args.seed)
        d = max(2 * b, 64)
        X = rng.standard_normal((args.n_train, d), dtype=np.float32)
        X_test = rng.standard_normal((args.n_test, d), dtype=np.float32)
        for name, est in encoders(b, args.seed, **{"n_anchors": 0, **params}).items():
            fit_s, _ = timed(lambda est=est, X=X: est.fit(X))
            codes = est.transform(X_test)
            # the baselines' codes are exact signs (vertex distance 0); their embed gives
            # unscaled projections, not outputs in (-1, 1)
            vdist = np.abs(1 - np.abs(est.embed(X_test))).mean() if name == "skhash" else 0
            f = code_figures(codes, seed=args.seed)
            print_row(
                b, name, f"{vdist:.3f}", f"{f['max_corr']:.3f}", f"{f['triple_corr']:.3f}",
                f"{f['distinct_ratio']:.3f}", f"{f['ones_min']:.3f}", f"{f['ones_max']:.3f}",
                f"{fit_s:.1f}",
            )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
