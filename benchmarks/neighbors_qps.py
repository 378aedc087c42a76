"""How fast and how exact is ``HammingNeighbors`` next to faiss and usearch? (issues 3, 5)

The issue-5 table: 200,000 clustered 64-bit codes (1,000 random centres, 6
random bit flips each), 2,000 queries drawn the same way, k=10, two threads.
For every method: the warm build time (numba code already compiled by a build
on the first 20,000 codes), the queries per second of one batch of all queries
(fastest of 5) and the tie-aware distance-recall@10. Approximate methods sweep
their search breadth on one built index (skhash ``ef_search``, its default
``"auto"`` first; faiss HNSW ``efSearch``; usearch ``expansion_search``). The
issue-5 targets close the output. Cold starts (fresh processes) are measured
by ``neighbors_cold_start.py``. Needs the ``bench`` extra.

Usage::

    python benchmarks/neighbors_qps.py --wait-idle 600        # issue-5 table
    python benchmarks/neighbors_qps.py --fortunes --bits 256  # codes of the fortunes data
    python benchmarks/neighbors_qps.py --uniform              # uniform random codes
    python benchmarks/neighbors_qps.py --embeddings --n 1000000 --bits 256
        # 10^6 codes of rows made from the real embeddings (_embedding_codes.py)
    python benchmarks/neighbors_qps.py --quick                # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
from functools import partial

import numba
from _hamming_knn import (
    Data,
    add_data_arguments,
    bench_faiss_flat,
    bench_faiss_hnsw,
    bench_numpy,
    bench_skhash,
    bench_usearch,
    load_codes,
    lowest_reaching,
    qps_at_recall,
    run_methods,
)
from _harness import machine_line, parse_args, print_command, print_header, print_row

METHODS = ["brute", "nndescent", "faiss", "usearch", "numpy"]


def targets(rows):
    """Issue-5 ratios of skhash's default rows against faiss."""
    by = {}
    for row in rows:
        # --nndescent-grid rows (other settings than ef_search) are not the defaults
        if row["method"] != "skhash nndescent" or row["params"].startswith("ef_search"):
            by.setdefault(row["method"], []).append(row)
    lines = []
    if "skhash brute" in by and "faiss IndexBinaryFlat" in by:
        ratio = by["skhash brute"][0]["qps"] / by["faiss IndexBinaryFlat"][0]["qps"]
        lines.append(f"brute / faiss flat QPS: {ratio:.2f}x (target >= 1.0)")
    default = [row for row in by.get("skhash nndescent", []) if "(default)" in row["params"]]
    if default and "faiss IndexBinaryHNSW" in by:
        ours = default[0]
        hnsw = lowest_reaching(by["faiss IndexBinaryHNSW"])
        lines.append(
            f"nndescent default: recall {ours['recall']:.3f} (target >= 0.95), "
            f"QPS {ours['qps']:,.0f} = {ours['qps'] / hnsw['qps']:.2f}x faiss HNSW at "
            f"{hnsw['params']} ({hnsw['qps']:,.0f} QPS, recall {hnsw['recall']:.3f}; "
            "target >= 0.5x)"
        )
        lowest = lowest_reaching(by["skhash nndescent"])
        lines.append(
            f"nndescent at its lowest ef reaching 0.95 ({lowest['params']}): recall "
            f"{lowest['recall']:.3f}, QPS {lowest['qps']:,.0f} = "
            f"{lowest['qps'] / hnsw['qps']:.2f}x that faiss HNSW row"
        )
        ours_at, how_ours = qps_at_recall(by["skhash nndescent"])
        hnsw_at, how_hnsw = qps_at_recall(by["faiss IndexBinaryHNSW"])
        if ours_at and hnsw_at:
            lines.append(
                f"QPS at distance-recall@10 = 0.95: nndescent {ours_at:,.0f} ({how_ours}), "
                f"faiss HNSW {hnsw_at:,.0f} ({how_hnsw}): {ours_at / hnsw_at:.2f}x "
                "(issue 13 target >= 1.0x)"
            )
        lines.append(
            f"nndescent build {ours['build_s']:.2f} s = "
            f"{ours['build_s'] / hnsw['build_s']:.2f}x faiss HNSW's {hnsw['build_s']:.2f} s "
            "(target <= 3x)"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument(
        "--ef",
        type=int,
        nargs="+",
        default=[10, 16, 32, 64, 128, 256],
        help="search breadth sweep: skhash ef_search, faiss efSearch, usearch expansion_search",
    )
    parser.add_argument(
        "--nndescent-grid",
        nargs="*",
        default=[],
        metavar="JSON",
        help="extra HammingNeighbors settings, each swept over --ef, "
        "e.g. '{\"n_neighbors_graph\": 16}'",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=METHODS, help="default: all"
    )
    args = parse_args(parser, dict(n=5_000, queries=200, ef=[10, 32]), argv)

    numba.set_num_threads(args.threads)
    print(machine_line(args.threads, extra=("faiss-cpu", "usearch")), flush=True)
    database, queries, description = load_codes(args)
    data = Data(database, queries, args.bits, args.k, args.threads)
    chosen = set(args.methods)
    methods = []
    if "brute" in chosen:
        methods.append(partial(bench_skhash, "brute", data, args))
    if "nndescent" in chosen:
        methods.append(partial(bench_skhash, "nndescent", data, args, args.ef))
    for extra in args.nndescent_grid:
        methods.append(
            partial(bench_skhash, "nndescent", data, args, args.ef, **json.loads(extra))
        )
    if "faiss" in chosen:
        methods.append(partial(bench_faiss_flat, data, args))
        methods.append(partial(bench_faiss_hnsw, data, args, args.ef))
    if "usearch" in chosen:
        methods.append(partial(bench_usearch, data, args, args.ef))
    if "numpy" in chosen:
        methods.append(partial(bench_numpy, data, args))
    rows = run_methods(methods, args)

    if args.fortunes:
        description += (
            f" (BinaryHashEncoder(n_bits={args.bits}, random_state=0) fitted on the database)"
        )
    print(f"\n{description}, {len(queries):,} queries, k={args.k}, {args.threads} threads\n")
    k = args.k
    print_header(
        "method", "parameters", "build (s)", "QPS", f"distance-recall@{k}", "others' CPU",
        left=2,
    )  # fmt: skip
    for row in rows:
        print_row(
            row["method"], row["params"], f"{row['build_s']:.2f}", f"{row['qps']:,.0f}",
            f"{row['recall']:.3f}", f"{row['others']:.0%}",
        )  # fmt: skip
    print("\n" + targets(rows))
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    print_command()


if __name__ == "__main__":
    main()
