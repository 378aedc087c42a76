"""Encoder throughput: ``transform``/``packbits`` rows per second and ``fit`` rows·epochs/s.

384-d float32 inputs (like sentence embeddings) to 64 bits, default network, on
the threads torch uses by default (``torch.get_num_threads()``).

    python benchmarks/encoder_speed.py [--device cuda]
"""

import argparse
import time

import numpy as np
import torch

from skhash import BinaryHashEncoder


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--fit-rows", type=int, default=14_813)
    parser.add_argument("--fit-epochs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X_fit = rng.standard_normal((args.fit_rows, 384), dtype=np.float32)
    X = rng.standard_normal((args.rows, 384), dtype=np.float32)

    enc = BinaryHashEncoder(
        n_bits=args.bits, max_epochs=args.fit_epochs, device=args.device, random_state=0
    )
    t = time.perf_counter()
    enc.fit(X_fit)
    fit_s = time.perf_counter() - t
    enc.transform(X[:1000])  # warm-up
    transform_s = best_of(lambda: enc.transform(X))
    packbits_s = best_of(lambda: enc.packbits(X))
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.bits} bits")
    print("| what | rows/s | seconds |")
    print("|---|---|---|")
    print(
        f"| transform ({args.rows} x 384 float32) | {args.rows / transform_s:,.0f} "
        f"| {transform_s:.2f} |"
    )
    print(
        f"| packbits ({args.rows} x 384 float32) | {args.rows / packbits_s:,.0f} "
        f"| {packbits_s:.2f} |"
    )
    print(
        f"| fit ({args.fit_rows} rows x {args.fit_epochs} epochs, incl. neighbour graph) "
        f"| {args.fit_rows * args.fit_epochs / fit_s:,.0f} rows·epochs/s | {fit_s:.1f} |"
    )


if __name__ == "__main__":
    main()
