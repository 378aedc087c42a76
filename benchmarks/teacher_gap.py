"""The neighbour gap behind ``teacher_temperature="auto"``, and how it moves with the rows.

For each corpus's database rows (``_harness.load_split``), the mean over rows of
``cos(nearest) - cos(10th nearest other row)``, brute force in numpy:

- among all the rows, among three seeded samples of 2,048 rows, and among the
  first 3,203 and 1,000 rows (how the gap depends on the number of rows);
- the value ``skhash._objective.auto_teacher_temperature`` gives for all the
  rows, for the first of 4 chunks (what ``partial_fit`` resolves it on) and for
  the first 1,000 rows;
- with ``--profile``, the gap to the r-th nearest row for r from 2 to 100, among
  the seed-0 sample of 2,048 rows: how the neighbours' similarities fall off
  (could a rank that depends on the code length set the temperature?).

No training: seconds per corpus. ``docs/benchmarks.md``, "The gap among 2,048 rows".

Usage::

    python benchmarks/teacher_gap.py
    python benchmarks/teacher_gap.py --corpora fortunes digits
    python benchmarks/teacher_gap.py --profile
    python benchmarks/teacher_gap.py --quick                 # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    CORPORA,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
)

from skhash._objective import auto_teacher_temperature


def mean_gaps(X, n_rows=None, seed=0, ranks=(10,)):
    """Mean ``cos(nearest) - cos(r-th nearest)`` for each r of ``ranks``, among all of
    ``X`` or among a seeded sample of ``n_rows`` of its rows."""
    if n_rows is not None and len(X) > n_rows:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), n_rows, replace=False))]
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
    cosines = unit.astype(np.float64) @ unit.T.astype(np.float64)
    np.fill_diagonal(cosines, -np.inf)
    top = -np.sort(-cosines, axis=1)[:, : max(ranks)]
    return [float(np.mean(top[:, 0] - top[:, r - 1])) for r in ranks]


def mean_gap(X, n_rows=None, seed=0, rank=10):
    """Mean gap among all of ``X``, or among a seeded sample of ``n_rows`` of its rows."""
    return mean_gaps(X, n_rows, seed, (rank,))[0]


PROFILE_RANKS = (2, 3, 5, 10, 20, 50, 100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--profile", action="store_true", help="gap at ranks 2 to 100")
    args = parse_args(parser, dict(corpora=["digits"], n_database=1200), argv)

    print(machine_line(), flush=True)
    print("\n## Mean gap, cos(nearest) - cos(10th nearest)\n")
    print_header(
        "corpus (rows)", "all rows", "2,048-row samples (seeds 0 / 1 / 2)", "first 3,203",
        "first 1,000", left=1,
    )  # fmt: skip
    rule = {}
    for corpus in args.corpora:
        X = load_split(corpus=corpus, n_database=args.n_database)[0]
        samples = " / ".join(f"{mean_gap(X, 2048, seed):.3f}" for seed in (0, 1, 2))
        print_row(
            f"{corpus} ({len(X):,})", f"{mean_gap(X):.3f}", samples,
            f"{mean_gap(X[:3203]):.3f}", f"{mean_gap(X[:1000]):.3f}",
        )  # fmt: skip
        rule[corpus] = (
            len(X),
            auto_teacher_temperature(X),
            auto_teacher_temperature(np.array_split(X, 4)[0]),
            auto_teacher_temperature(X[:1000]),
        )
    print('\n## teacher_temperature="auto"\n')
    print_header("corpus (rows)", "all rows", "first of 4 chunks", "first 1,000", left=1)
    for corpus, (n, every, chunk, first) in rule.items():
        print_row(f"{corpus} ({n:,})", f"{every:.4f}", f"{chunk:.4f}", f"{first:.4f}")
    if args.profile:
        print("\n## Gap to the r-th nearest row, seed-0 sample of 2,048 rows\n")
        print_header("corpus", *(f"r = {r}" for r in PROFILE_RANKS), "r=3 / r=10", left=1)
        for corpus in args.corpora:
            X = load_split(corpus=corpus, n_database=args.n_database)[0]
            gaps = mean_gaps(X, 2048, 0, PROFILE_RANKS)
            ratio = gaps[PROFILE_RANKS.index(3)] / gaps[PROFILE_RANKS.index(10)]
            print_row(corpus, *(f"{g:.4f}" for g in gaps), f"{ratio:.3f}")
    print_command()


if __name__ == "__main__":
    main()
