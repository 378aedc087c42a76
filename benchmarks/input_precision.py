"""Do codes survive a query that differs from the training data by rounding?

Embeddings are often stored as float16 (the corpora in ``../shared/data`` are) while
fresh queries come from the model in float32, or from another device: they differ
from the stored rows by ~1e-5 per coordinate. In one run, per corpus: a seeded split
(``_harness.load_split``), one ``BinaryHashEncoder(n_bits=...)`` per input scaling,
fitted on the database; then the 2,000 queries with seeded Gaussian noise of
``--eps`` per coordinate added: recall10@100 (ground truth: the clean queries' 10
nearest database rows by cosine) and the share of code bits that differ from the
clean queries' codes. PCA-ITQ (fitted on the same rows) is the reference.

Input scalings (``--scalings``): ``floored`` is the library's (per feature, the scale
floored at a tenth of the root mean of the features' variances); ``per-feature``
replaces ``skhash._encoder._input_standardisation`` by the rule before 0.2.0
(``StandardScaler``'s ``scale_``, no floor); ``one`` by one scale for all features
(the root mean of the variances).

Usage::

    python benchmarks/input_precision.py --bits 32 --corpora fortunes manpages
    python benchmarks/input_precision.py --quick        # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
from unittest import mock

import numpy as np
from _harness import (
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)


def per_feature(scaler):
    """The input standardisation before 0.2.0: one scale per feature, no floor."""
    return scaler.mean_, scaler.scale_


def one_scale(scaler):
    """One scale for all features: the root mean of the features' variances."""
    return scaler.mean_, np.full_like(scaler.mean_, np.sqrt(np.mean(scaler.var_)))


SCALINGS = {"floored": None, "per-feature": per_feature, "one": one_scale}


def fitted(scaling, n_bits, seed, Xdb, max_epochs):
    from skhash import BinaryHashEncoder

    params = {} if max_epochs is None else {"max_epochs": max_epochs}
    enc = BinaryHashEncoder(n_bits=n_bits, random_state=seed, **params)
    if SCALINGS[scaling] is None:
        seconds, _ = timed(lambda: enc.fit(Xdb))
    else:
        with mock.patch("skhash._encoder._input_standardisation", SCALINGS[scaling]):
            seconds, _ = timed(lambda: enc.fit(Xdb))
    return enc, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--corpora", nargs="+", default=["fortunes", "manpages"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.0, 1e-6, 1e-5, 1e-4, 1e-3])
    parser.add_argument(
        "--scalings", nargs="+", choices=list(SCALINGS), default=["floored", "per-feature", "one"]
    )
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    quick = dict(corpora=["fortunes"], n_database=2000, max_epochs=2, eps=[0.0, 1e-5])
    args = parse_args(parser, quick, argv)

    from skhash import PCAITQ

    print(machine_line(), flush=True)
    for corpus in args.corpora:
        Xdb, _, Xq, _ = load_split(2000, args.seed, args.n_database, corpus=corpus)
        true = float_ranking(Xdb, Xq, 10)
        spread = np.sort(Xdb.std(axis=0))
        print(
            f"\n## {corpus}: {len(Xdb):,} database rows, {len(Xq):,} queries, {args.bits} bits, "
            f"seed {args.seed}; smallest feature standard deviations "
            f"{', '.join(f'{v:.2g}' for v in spread[:4])}\n"
        )
        models = {"PCA-ITQ": PCAITQ(n_bits=args.bits, random_state=args.seed).fit(Xdb)}
        for scaling in args.scalings:
            models[f"skhash, {scaling} scale"], seconds = fitted(
                scaling, args.bits, args.seed, Xdb, args.max_epochs
            )
            print(f"fit ({scaling} scale): {seconds:.0f} s", flush=True)
        print_header("eps per coordinate", *[f"{m}: recall / bits changed" for m in models])
        rng = np.random.default_rng(args.seed)
        noise = rng.standard_normal(Xq.shape).astype(np.float32)
        for eps in args.eps:
            cells = []
            for model in models.values():
                db, clean = model.transform(Xdb), model.transform(Xq)
                moved = model.transform(Xq + np.float32(eps) * noise)
                got = recall(true, hamming_ranking(db, moved, 100), 100)
                cells.append(f"{got:.4f} / {np.mean(moved != clean):.4f}")
            print_row(f"{eps:g}", *cells)
    print_command()


if __name__ == "__main__":
    main()
