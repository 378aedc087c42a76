"""From how many codes does graph search beat exact search? (issue 5, ``algorithm="auto"``)

For each database size: skhash ``"brute"`` against ``"nndescent"`` with its
default ``ef_search``, on the same codes and queries: QPS, build time,
distance-recall@10, and the break-even number of queries a fitted NN-descent
index must serve before its build time is repaid by queries faster than exact
search. The threshold of ``HammingNeighbors(algorithm="auto")`` rests on it.

Usage::

    python benchmarks/neighbors_crossover.py --wait-idle 600
    python benchmarks/neighbors_crossover.py --crossover-n 20000 30000 40000
    python benchmarks/neighbors_crossover.py --quick          # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
from functools import partial

import numba
from _hamming_knn import Data, add_data_arguments, bench_skhash, load_codes, run_methods
from _harness import machine_line, parse_args, print_command, print_header, print_row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument(
        "--crossover-n", type=int, nargs="+", default=[30_000, 100_000, 300_000, 1_000_000]
    )
    args = parse_args(parser, dict(crossover_n=[2_000, 5_000], queries=200), argv)

    numba.set_num_threads(args.threads)
    print(machine_line(args.threads), flush=True)
    print()
    print_header(
        "codes", "brute QPS", "nndescent build (s)", "nndescent QPS", "nndescent recall",
        "nndescent / brute QPS", "break-even queries", "others' CPU", left=0,
    )  # fmt: skip
    for n in args.crossover_n:
        sub = argparse.Namespace(**{**vars(args), "n": n})
        database, queries, _ = load_codes(sub)
        data = Data(database, queries, args.bits, args.k, args.threads)
        brute, approx = run_methods(
            [
                partial(bench_skhash, "brute", data, sub),
                partial(bench_skhash, "nndescent", data, sub),
            ],
            args,
            verbose=False,
        )
        others = max(brute["others"], approx["others"])
        saving = 1 / brute["qps"] - 1 / approx["qps"]
        even = f"{approx['build_s'] / saving:,.0f}" if saving > 0 else "never"
        print_row(
            f"{n:,}", f"{brute['qps']:,.0f}", f"{approx['build_s']:.1f}", f"{approx['qps']:,.0f}",
            f"{approx['recall']:.3f}", f"{approx['qps'] / brute['qps']:.2f}", even,
            f"{others:.0%}",
        )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
