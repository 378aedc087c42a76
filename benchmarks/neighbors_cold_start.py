"""How long do a fresh process's first ``fit`` and query of ``HammingNeighbors`` take? (issue 5)

For ``algorithm="brute"`` and ``"nndescent"``: ``fit`` and the first batch
query, each in a fresh Python process, twice: first with an empty numba cache
(the first use after installation, numba compiles everything), then with the
cache that first process filled; each algorithm has a cache directory of its
own. Codes as in ``neighbors_qps.py`` (issue-5 clustered codes by default,
``--uniform`` or ``--fortunes`` otherwise).

Usage::

    python benchmarks/neighbors_cold_start.py --wait-idle 600
    python benchmarks/neighbors_cold_start.py --quick        # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _hamming_knn import add_data_arguments, data_options
from _harness import (
    Disturbance,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    timed,
    wait_idle,
)

ALGORITHMS = ("brute", "nndescent")


def child(args):
    """Fit and first batch query in this (fresh) process; print JSON timings."""
    import numba

    numba.set_num_threads(args.threads)
    from _hamming_knn import load_codes

    from skhash import HammingNeighbors

    database, queries, _ = load_codes(args)
    fit_s, nn = timed(
        lambda: HammingNeighbors(
            n_neighbors=args.k, algorithm=args.child, packed=True, n_jobs=args.threads,
            random_state=0,
        ).fit(database)
    )  # fmt: skip
    query_s, _ = timed(lambda: nn.kneighbors(queries))
    print(json.dumps({"fit_s": fit_s, "query_s": query_s}))


def run_child(args, algorithm, cache_dir):
    """Timings of ``child`` in a fresh process with numba's cache in ``cache_dir``."""
    command = [sys.executable, __file__, "--child", algorithm] + data_options(args)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS=str(args.threads))
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    parser.add_argument("--child", choices=ALGORITHMS, help=argparse.SUPPRESS)
    args = parse_args(parser, dict(n=5_000, queries=200), argv)
    if args.child:
        child(args)
        return

    print(machine_line(args.threads), flush=True)
    results = {}
    for algorithm in args.algorithms:
        if args.wait_idle:
            wait_idle(args.wait_idle)
        # a cache of its own: nndescent's fit (up to 200,000 codes) runs brute's exact
        # kernel, which a shared cache would already hold, compiled by the brute row
        with tempfile.TemporaryDirectory() as cache_dir, Disturbance() as disturbance:
            empty = run_child(args, algorithm, cache_dir)
            cached = run_child(args, algorithm, cache_dir)
        results[algorithm] = (empty, cached, disturbance.share)
        print(f"cold {algorithm}: {empty} then {cached}", flush=True)

    kind = "fortunes" if args.fortunes else "uniform" if args.uniform else "clustered"
    size = "" if args.fortunes else f"{args.n:,} "
    print(f"\n{size}{kind} {args.bits}-bit codes, {args.queries:,} queries, k={args.k}\n")
    print_header(
        "skhash backend", "fit, empty numba cache (s)", "first query batch (s)",
        "fit, numba cache filled (s)", "first query batch (s)", "others' CPU", left=1,
    )  # fmt: skip
    for algorithm, (empty, cached, share) in results.items():
        print_row(
            algorithm, f"{empty['fit_s']:.2f}", f"{empty['query_s']:.2f}",
            f"{cached['fit_s']:.2f}", f"{cached['query_s']:.2f}", f"{share:.0%}",
        )  # fmt: skip
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    print_command()


if __name__ == "__main__":
    main()
