"""Ablation: each loss term off, each slice sampler, no steepness schedule.

For every variant of ``BinaryHashEncoder(n_bits=64, random_state=0)``: recall10@100
on the fortunes split of ``quality.py`` (with PCA-ITQ from the same run) and the
convergence figures of ``convergence.py`` on Gaussian rows (20,000 x 128 unless
``--gauss-rows`` says otherwise), encoding 5,000 fresh rows.

    python benchmarks/ablation.py --gauss-rows 5000
"""

import argparse

import numpy as np
from _fortunes import float_ranking, hamming_ranking, load_split, recall
from convergence import code_figures

from skhash import PCAITQ, BinaryHashEncoder

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gauss-rows", type=int, default=20000)
    args = parser.parse_args()
    b, seed = args.bits, args.seed

    Xdb, _, Xq, _ = load_split(seed=0)
    true = float_ranking(Xdb, Xq, 10)
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((args.gauss_rows, max(2 * b, 64)), dtype=np.float32)
    G_test = rng.standard_normal((5000, G.shape[1]), dtype=np.float32)

    itq = PCAITQ(n_bits=b, random_state=seed).fit(Xdb)
    itq_recall = recall(true, hamming_ranking(itq.transform(Xdb), itq.transform(Xq)), 100)
    print(f"PCA-ITQ recall10@100 at {b} bits: {itq_recall:.3f}\n")
    print(
        "| variant | recall10@100 | / ITQ | vertex dist (fortunes) | Gaussian: vertex dist "
        "| max corr | max triple corr | distinct / random | ones min–max |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, params in VARIANTS.items():
        enc = BinaryHashEncoder(n_bits=b, random_state=seed, **params).fit(Xdb)
        r = recall(true, hamming_ranking(enc.transform(Xdb), enc.transform(Xq)), 100)
        vd = np.abs(1 - np.abs(enc.embed(Xq))).mean()
        genc = BinaryHashEncoder(n_bits=b, random_state=seed, **params).fit(G)
        gvd = np.abs(1 - np.abs(genc.embed(G_test))).mean()
        f = code_figures(genc.transform(G_test), seed=seed)
        print(
            f"| {name} | {r:.3f} | {r / itq_recall:.3f} | {vd:.3f} | {gvd:.3f} "
            f"| {f['max_corr']:.3f} | {f['triple_corr']:.3f} | {f['distinct_ratio']:.3f} "
            f"| {f['ones_min']:.2f}–{f['ones_max']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
