"""How fast does the encoder encode and train? (issue 4)

``transform``/``packbits`` rows per second and ``fit`` rows·epochs per second, on
384-d float32 inputs (like sentence embeddings) to 64 bits, default network, with
the threads torch uses by default (``torch.get_num_threads()``); ``fit`` is timed
after a 1-epoch warm-up fit on 500 rows (a process's first fit also pays lazy
imports and loading numba's cache), encoding is the fastest of 3 calls
(``_harness.best_of``) after a warm-up (the encoder speed table of
``docs/benchmarks.md``).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/encoder_speed.py [--device cuda]
    python benchmarks/encoder_speed.py --quick                # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
import torch
from _harness import best_of, machine_line, parse_args, print_command, print_header, timed

from skhash import BinaryHashEncoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--fit-rows", type=int, default=14_813)
    parser.add_argument("--fit-epochs", type=int, default=5)
    args = parse_args(parser, dict(rows=5_000, fit_rows=1_000, fit_epochs=1), argv)
    rng = np.random.default_rng(0)
    X_fit = rng.standard_normal((args.fit_rows, 384), dtype=np.float32)
    X = rng.standard_normal((args.rows, 384), dtype=np.float32)

    print(machine_line(torch.get_num_threads()), flush=True)
    # warm-up: a process's first fit also pays one-off costs (lazy imports, numba's cache)
    BinaryHashEncoder(n_bits=args.bits, max_epochs=1, device=args.device, random_state=0).fit(
        X_fit[:500]
    )
    enc = BinaryHashEncoder(
        n_bits=args.bits, max_epochs=args.fit_epochs, device=args.device, random_state=0
    )
    fit_s, _ = timed(lambda: enc.fit(X_fit))
    enc.transform(X[:1000])  # warm-up
    transform_s, _ = best_of(lambda: enc.transform(X))
    packbits_s, _ = best_of(lambda: enc.packbits(X))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.bits} bits")
    print_header("what", "rows/s", "seconds")
    for what, seconds in [("transform", transform_s), ("packbits", packbits_s)]:
        print(
            f"| {what} ({args.rows} x 384 float32) | {args.rows / seconds:,.0f} | {seconds:.2f} |"
        )
    print(
        f"| fit ({args.fit_rows} rows x {args.fit_epochs} epochs, incl. neighbour graph) "
        f"| {args.fit_rows * args.fit_epochs / fit_s:,.0f} rows·epochs/s | {fit_s:.1f} |"
    )
    print_command()


if __name__ == "__main__":
    main()
