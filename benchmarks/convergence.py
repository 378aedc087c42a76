"""Convergence at scale: Gaussian inputs -> b bits, unsupervised, default settings.

For each b: fit ``BinaryHashEncoder(n_bits=b, random_state=seed)`` on 20,000 x
max(2b, 64) standard Gaussian rows, encode 5,000 fresh rows and report the five
figures of issue 4 next to SimHash and PCA-ITQ on the same data.

    python benchmarks/convergence.py --bits 16 64 256 1024
"""

import argparse
import time

import numpy as np

from skhash import PCAITQ, BinaryHashEncoder, SimHash


def expected_distinct(n, n_bits):
    """Expected number of distinct codes among n uniform random codes."""
    if n_bits > 60:  # 2**n_bits overflows floats long before collisions become likely
        return n - n * (n - 1) / 2 * 2.0 ** -min(n_bits, 1000)
    m = 2.0**n_bits
    return m * -np.expm1(n * np.log1p(-1 / m))


def code_figures(codes, n_triples=20000, seed=0):
    """Balance, pairwise and triple dependence, and distinctness of 0/1 codes."""
    n, b = codes.shape
    s = codes.astype(np.float64) * 2 - 1
    ones = codes.mean(0)
    corr = np.corrcoef(s, rowvar=False) if b > 1 else np.zeros((1, 1))
    np.fill_diagonal(corr, 0)
    triple = 0.0
    if b >= 3:
        rng = np.random.default_rng(seed)
        idx = np.array([rng.choice(b, 3, replace=False) for _ in range(min(n_triples, 5000))])
        prod = s[:, idx[:, 0]] * s[:, idx[:, 1]]
        third = s[:, idx[:, 2]]
        pc = prod - prod.mean(0)
        tc = third - third.mean(0)
        denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
        triple = float(np.max(np.abs((pc * tc).sum(0)) / np.maximum(denom, 1e-12)))
    distinct = len(np.unique(np.packbits(codes, axis=1), axis=0))
    return {
        "max_corr": float(np.nanmax(np.abs(corr))),
        "triple_corr": triple,
        "distinct_ratio": distinct / expected_distinct(n, b),
        "ones_min": float(ones.min()),
        "ones_max": float(ones.max()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=5000)
    args = parser.parse_args()
    print(
        "| bits | method | vertex dist | max corr | max triple corr | distinct / random "
        "| ones min | ones max | fit s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for b in args.bits:
        rng = np.random.default_rng(args.seed)
        d = max(2 * b, 64)
        X = rng.standard_normal((args.n_train, d), dtype=np.float32)
        X_test = rng.standard_normal((args.n_test, d), dtype=np.float32)
        for name, est in [
            ("skhash", BinaryHashEncoder(n_bits=b, random_state=args.seed)),
            ("SimHash", SimHash(n_bits=b, random_state=args.seed)),
            ("PCA-ITQ", PCAITQ(n_bits=b, random_state=args.seed)),
        ]:
            t = time.perf_counter()
            est.fit(X)
            fit_s = time.perf_counter() - t
            codes = est.transform(X_test)
            vdist = np.abs(1 - np.abs(est.embed(X_test))).mean() if hasattr(est, "embed") else 0
            f = code_figures(codes, seed=args.seed)
            print(
                f"| {b} | {name} | {vdist:.3f} | {f['max_corr']:.3f} | {f['triple_corr']:.3f} "
                f"| {f['distinct_ratio']:.3f} | {f['ones_min']:.3f} | {f['ones_max']:.3f} "
                f"| {fit_s:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
