"""Does training in chunks (``partial_fit``) reach the codes of ``fit``? (issue 14, item 3)

On the fortunes MiniLM embeddings (``_harness.load_split``: 12,813 database rows,
2,000 held-out queries; ground truth = each query's 10 nearest database rows by
cosine), per seed:

- ``fit`` on all database rows, default settings (``--bits``);
- ``partial_fit`` on ``--chunks`` equal chunks of the same rows (in the split's
  seeded order), as many passes over every chunk as ``fit`` makes over the data
  (``max_epochs``, twice that above 64 bits), with the total budget stated up front:
  ``max_steps = passes * sum(ceil(len(chunk) / batch_size))``.

Reports recall10@100 of both, their mean over seeds and the ratio, and the
seconds of each (the machine is shared: see the load in the first line).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/partial_fit.py --seeds 0 1 2
    python benchmarks/partial_fit.py --quick                  # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import math

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

from skhash import BinaryHashEncoder


def in_chunks(X, n_chunks, passes, **params):
    """An encoder trained by ``partial_fit``: ``passes`` times over each of ``n_chunks``."""
    chunks = np.array_split(X, n_chunks)
    encoder = BinaryHashEncoder(**params)
    steps = passes * sum(math.ceil(len(chunk) / encoder.batch_size) for chunk in chunks)
    encoder.set_params(max_steps=steps)
    for _ in range(passes):
        for chunk in chunks:
            encoder.partial_fit(chunk)
    return encoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument(
        "--max-epochs", type=int, default=40, help="fit max_epochs (passes: x2 over 64 bits)"
    )
    args = parse_args(parser, dict(seeds=[0], n_database=2000, max_epochs=2), argv)

    print(machine_line(), flush=True)
    Xdb, _, Xq, _ = load_split(seed=0, n_database=args.n_database)
    true = float_ranking(Xdb, Xq, 10)
    # the passes fit makes: max_epochs, twice that for codes over 64 bits
    passes = BinaryHashEncoder(n_bits=args.bits, max_epochs=args.max_epochs)._auto_epochs()
    print(
        f"{len(Xdb):,} database rows in {args.chunks} chunks, {len(Xq):,} queries, "
        f"{args.bits} bits, {passes} passes"
    )
    print_header(
        "seed", "fit r10@100", f"{args.chunks} chunks r10@100", "chunks / fit", "fit s",
        "chunks s", "fit steps", "chunks steps",
    )  # fmt: skip
    rows = []
    for seed in args.seeds:
        params = dict(n_bits=args.bits, random_state=seed, max_epochs=args.max_epochs)
        fit_s, fitted = timed(lambda params=params: BinaryHashEncoder(**params).fit(Xdb))
        chunk_s, chunked = timed(
            lambda params=params: in_chunks(Xdb, args.chunks, passes, **params)
        )
        scores = [
            recall(true, hamming_ranking(enc.transform(Xdb), enc.transform(Xq), 100), 100)
            for enc in (fitted, chunked)
        ]
        rows.append(scores)
        print_row(
            seed, f"{scores[0]:.4f}", f"{scores[1]:.4f}", f"{scores[1] / scores[0]:.3f}",
            f"{fit_s:.0f}", f"{chunk_s:.0f}", fitted.n_steps_, chunked.n_steps_,
        )  # fmt: skip
    fit_mean, chunk_mean = np.mean(rows, axis=0)
    print_row(
        "mean", f"{fit_mean:.4f}", f"{chunk_mean:.4f}", f"{chunk_mean / fit_mean:.3f}",
        "", "", "", "",
    )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
