"""What does each part of the objective contribute? Each loss term off, each slice sampler.

For every variant of ``BinaryHashEncoder(n_bits=64, random_state=0)``: recall10@100
on the fortunes split of ``quality.py`` (with PCA-ITQ from the same run) and the
convergence figures of ``convergence.py`` on Gaussian rows (20,000 x 128 unless
``--gauss-rows`` says otherwise), encoding 5,000 fresh rows. Answers issue 4
(the ablation table of ``docs/benchmarks.md``).

Usage::

    python benchmarks/ablation.py --gauss-rows 5000
    python benchmarks/ablation.py --quick                     # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    code_figures,
    encoders,
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
)

from skhash import BinaryHashEncoder

VARIANTS = {
    "defaults": {},
    "no RDMReg (reg_weight=0)": {"reg_weight": 0.0},
    "no anti-collapse (anticollapse_weight=0)": {"anticollapse_weight": 0.0},
    "no neighbourhood term (neighbor_weight=0)": {"neighbor_weight": 0.0},
    "InfoNCE neighbourhood (neighbor_loss='contrastive')": {"neighbor_loss": "contrastive"},
    "dense slices (projection='sphere')": {"projection": "sphere"},
    "coordinate slices (projection='axis')": {"projection": "axis"},
    "no steepness schedule (beta_max=1)": {"beta_max": 1.0},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gauss-rows", type=int, default=20000)
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    quick = dict(bits=8, gauss_rows=1000, n_database=2000, max_epochs=2)
    quick["variants"] = ["defaults", "no RDMReg (reg_weight=0)"]
    args = parse_args(parser, quick, argv)
    b, seed = args.bits, args.seed
    common = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}

    print(machine_line(), flush=True)
    Xdb, _, Xq, _ = load_split(seed=0, n_database=args.n_database)
    true = float_ranking(Xdb, Xq, 10)
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((args.gauss_rows, max(2 * b, 64)), dtype=np.float32)
    G_test = rng.standard_normal((5000, G.shape[1]), dtype=np.float32)

    itq = encoders(b, seed)["PCA-ITQ"].fit(Xdb)
    itq_recall = recall(true, hamming_ranking(itq.transform(Xdb), itq.transform(Xq)), 100)
    print(f"PCA-ITQ recall10@100 at {b} bits: {itq_recall:.3f}\n")
    print_header(
        "variant", "recall10@100", "/ ITQ", "vertex dist (fortunes)", "Gaussian: vertex dist",
        "max corr", "max triple corr", "distinct / random", "ones min–max",
    )  # fmt: skip
    for name in args.variants:
        params = {**common, **VARIANTS[name]}
        enc = BinaryHashEncoder(n_bits=b, random_state=seed, **params).fit(Xdb)
        r = recall(true, hamming_ranking(enc.transform(Xdb), enc.transform(Xq)), 100)
        vd = np.abs(1 - np.abs(enc.embed(Xq))).mean()
        genc = BinaryHashEncoder(n_bits=b, random_state=seed, **params).fit(G)
        gvd = np.abs(1 - np.abs(genc.embed(G_test))).mean()
        f = code_figures(genc.transform(G_test), seed=seed)
        print_row(
            name, f"{r:.3f}", f"{r / itq_recall:.3f}", f"{vd:.3f}", f"{gvd:.3f}",
            f"{f['max_corr']:.3f}", f"{f['triple_corr']:.3f}", f"{f['distinct_ratio']:.3f}",
            f"{f['ones_min']:.2f}–{f['ones_max']:.2f}",
        )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
