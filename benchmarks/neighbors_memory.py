"""How many bytes per code does each Hamming index hold? (issue 5)

For 200,000 clustered codes of 64 and 256 bits: skhash ``HammingNeighbors``
``"brute"`` and ``"nndescent"`` (the arrays they hold: codes, search graph, entry
points, and from 100,000 codes on the upper layer with its codes), faiss
``IndexBinaryFlat`` and ``IndexBinaryHNSW`` M=32 and usearch (their
serialisations), next to a 384-d float32 embedding (1,536 B).

Usage::

    python benchmarks/neighbors_memory.py --wait-idle 600
    python benchmarks/neighbors_memory.py --quick             # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import pickle

import numpy as np
from _hamming_knn import add_data_arguments, make_codes
from _harness import (
    held_bytes,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
)

from skhash import HammingNeighbors


def fitted_bytes(estimator):
    """Bytes of the arrays a fitted estimator holds (``_harness.held_bytes``)."""
    return held_bytes(estimator)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--memory-bits", type=int, nargs="+", default=[64, 256])
    args = parse_args(parser, dict(n=5_000, memory_bits=[64]), argv)
    if args.fortunes or args.embeddings:  # options shared with the other scripts
        parser.error("--fortunes and --embeddings do not apply: this script makes its own codes")

    import faiss
    from usearch.index import Index

    faiss.omp_set_num_threads(args.threads)
    print(machine_line(args.threads, extra=("faiss-cpu", "usearch")), flush=True)
    columns = ["skhash brute", "skhash nndescent", "faiss IndexBinaryFlat"]
    columns += ["faiss IndexBinaryHNSW M=32", "usearch (connectivity 16)", "float32 384-d"]
    lines = []
    for n_bits in args.memory_bits:
        database, _ = make_codes(args.n, n_bits, 1, uniform=args.uniform)
        database = np.packbits(database, axis=1)
        n = len(database)
        brute = HammingNeighbors(algorithm="brute", packed=True).fit(database)
        nnd = HammingNeighbors(
            algorithm="nndescent", packed=True, n_jobs=args.threads, random_state=0
        ).fit(database)
        flat = faiss.IndexBinaryFlat(n_bits)
        flat.add(database)
        hnsw = faiss.IndexBinaryHNSW(n_bits, 32)
        hnsw.add(database)
        usearch = Index(ndim=n_bits, metric="hamming", dtype="b1")
        usearch.add(np.arange(n), database, threads=args.threads)
        sizes = [
            fitted_bytes(brute) / n,
            fitted_bytes(nnd) / n,
            faiss.serialize_index_binary(flat).nbytes / n,
            faiss.serialize_index_binary(hnsw).nbytes / n,
            usearch.serialized_length / n,
            1536,
        ]
        lines.append([f"{n_bits} bits"] + [f"{size:,.0f} B" for size in sizes])
        graph, entries = (getattr(nnd, name, None) for name in ("graph_indices_", "entry_points_"))
        links = (
            f"nndescent graph {len(graph) / n:.1f} links per code, " if graph is not None else ""
        )
        links += f"{len(entries):,} entry points; " if entries is not None else ""
        print(
            f"{n_bits} bits: {links}pickled nndescent index "
            f"{len(pickle.dumps(nnd)) / n:,.0f} B per code; usearch memory_usage "
            f"{usearch.memory_usage / n:,.0f} B per code",
            flush=True,
        )
    print()
    print_header(f"{args.n:,} codes", *columns, left=1)
    for line in lines:
        print_row(*line)
    print_command()


if __name__ == "__main__":
    main()
