"""``DaskHashIndex(asymmetric=True)`` against Hamming ranking on a real corpus.

Protocol (as ``retrieval.py``): a seeded split of the corpus into 2,000 held-out
queries and the database; ground truth = each query's 10 nearest database rows
by cosine. A default ``BinaryHashEncoder(n_bits=--bits)`` fitted on the
database rows; the database sharded into ``--shards`` row chunks on a
``LocalCluster(--workers, threads_per_worker=1, processes=True)``.

For each search, recall@10 of the returned ids and queries per second (best of
``--repeat`` calls with all the queries, encoding on the client included):

- codes only: Hamming ranking, and the weighted Hamming ranking of
  ``asymmetric=True``;
- with cosine rescoring of ``n_candidates`` per shard, for each of
  ``--candidates``: Hamming candidates against weighted ones.

Every distributed answer is checked against ``HashIndex`` (one process, same
encoder) where the two define the same result: codes only, Hamming and weighted.

Usage::

    python benchmarks/dask_asymmetric.py --corpus fortunes --bits 64
    python benchmarks/dask_asymmetric.py --quick        # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import dask.array as da
import numpy as np
from _harness import (
    best_of,
    float_ranking,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)
from distributed import Client, LocalCluster
from sklearn.frozen import FrozenEstimator

from skhash import BinaryHashEncoder, HashIndex
from skhash.dask import DaskHashIndex


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="fortunes")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--candidates", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    quick = dict(n_database=2000, max_epochs=2, candidates=[20], repeat=1)
    args = parse_args(parser, quick, argv)

    print(machine_line(), flush=True)
    Xdb, _, Xq, _ = load_split(2000, args.seed, args.n_database, corpus=args.corpus)
    true = float_ranking(Xdb, Xq, 10)
    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    encoder = BinaryHashEncoder(n_bits=args.bits, random_state=args.seed, **params)
    seconds, _ = timed(lambda: encoder.fit(Xdb))
    print(f"encoder fit on {len(Xdb):,} rows: {seconds:.0f} s", flush=True)
    frozen = FrozenEstimator(encoder)
    chunk = -(-len(Xdb) // args.shards)

    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        X = da.from_array(Xdb, chunks=chunk).persist()  # on the workers once, not per fit
        rows = []
        for asymmetric in (False, True):
            index = DaskHashIndex(encoder=encoder, asymmetric=asymmetric).fit(X)
            index.kneighbors(Xq[:10], 10)  # compile the kernels on the workers
            seconds, (dist, ids) = best_of(lambda i=index: i.kneighbors(Xq, 10), args.repeat)
            single = HashIndex(encoder=frozen, rescore=None, asymmetric=asymmetric).fit(Xdb)
            ref_dist, ref_ids = single.kneighbors(Xq, 10)
            assert np.array_equal(ids, ref_ids) and np.allclose(dist, ref_dist, rtol=1e-6)
            rows.append(("codes only", asymmetric, recall(true, ids, 10), len(Xq) / seconds))
        for n_candidates in args.candidates:
            for asymmetric in (False, True):
                index = DaskHashIndex(
                    encoder=encoder, n_candidates=n_candidates, asymmetric=asymmetric
                ).fit(X)
                index.kneighbors(Xq[:10], 10)
                seconds, (_, ids) = best_of(lambda i=index: i.kneighbors(Xq, 10), args.repeat)
                label = f"{n_candidates} candidates per shard, cosine rescoring"
                rows.append((label, asymmetric, recall(true, ids, 10), len(Xq) / seconds))

    print(
        f"\n## {args.corpus}: {len(Xdb):,} database rows in {args.shards} shards, "
        f"{args.workers} workers, {len(Xq):,} queries, {args.bits}-bit codes, recall@10\n"
    )
    print_header("search", "ranking", "recall@10", "QPS", left=2)
    for label, asymmetric, r, qps in rows:
        ranking = "weighted (asymmetric)" if asymmetric else "Hamming"
        print_row(label, ranking, f"{r:.3f}", f"{qps:,.0f}")
    print("\nevery codes-only answer equal to HashIndex's (one process)")
    print_command()


if __name__ == "__main__":
    main()
