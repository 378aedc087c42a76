"""Encode and search throughput of ``skhash.dask`` with 1 and 2 workers (issue 14).

Data: the 14,813 fortunes MiniLM embeddings tiled to ``--rows`` rows, each copy
plus Gaussian-like noise (``--noise`` times a fixed noise table, then
re-normalised), generated block by block on the workers. These are NOT
``--rows`` distinct real texts: the noise only keeps copies from being equal.
Queries: 1,000 other noisy copies, encoded on the client.

Encoder: a BinaryHashEncoder fitted on ``--fit-rows`` fortunes rows for
``--max-epochs`` epochs (throughput does not depend on the quality reached),
shipped as fitted (torch) and as saved/loaded (numpy inference, no torch).

For 1 and 2 workers (``LocalCluster(n, threads_per_worker=1, processes=True)``):

- encode: ``packbits(encoder, X).persist()`` to completion, rows/s, and the
  generation of the rows alone;
- bits: the cluster's codes against ``encoder.packbits`` in this process with
  one torch thread, on the first ``--check-rows`` rows;
- search: ``DaskHashIndex`` with ``--shard-rows`` rows per shard, best of 3
  ``kneighbors`` calls of 1, 100 and 1,000 queries (k=10), checked equal to
  the single-process kernel, which is timed too (1 numba thread);
- merge: the per-query cost of merging the shards' answers (in process) and
  the payload bytes one query sends and receives.

On a machine with fewer free cores than workers the 2-worker numbers cannot
show scaling; the script prints the CPU share other processes used.

Usage::

    python benchmarks/dask_scaling.py                 # 10^6 rows, 64 bits
    python benchmarks/dask_scaling.py --rows 200000   # modest
    python benchmarks/dask_scaling.py --quick         # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
from _harness import (
    DATA,
    Disturbance,
    best_of,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    timed,
)
from distributed import Client, LocalCluster, wait

from skhash import BinaryHashEncoder
from skhash._hamming import as_words, hamming_knn
from skhash._threads import numba_threads
from skhash.dask import DaskHashIndex, _merge, packbits

QUICK = dict(rows=40_000, fit_rows=2_000, max_epochs=2, shard_rows=10_000, check_rows=20_000)


def noisy_rows(base, noise, scale, block_info=None):
    """Rows ``start:stop`` of the tiled data: ``base[i % n] + scale * noise[...]``, unit rows."""
    start, stop = block_info[None]["array-location"][0]
    rows = np.arange(start, stop)
    n = len(base)
    # a different noise row for each copy of a base row
    out = base[rows % n] + scale * noise[(rows + 7919 * (rows // n)) % n]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def tiled(client, base, noise, scale, n_rows, chunk):
    shared = client.scatter([base, noise], broadcast=True)  # once per worker
    return da.map_blocks(
        noisy_rows,
        *shared,
        scale,
        chunks=(
            (chunk,) * (n_rows // chunk) + ((n_rows % chunk,) if n_rows % chunk else ()),
            (base.shape[1],),
        ),
        dtype=np.float32,
    )


def local_codes(encoder, X):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return encoder.packbits(X), encoder.embed(X)
    finally:
        torch.set_num_threads(threads)


def bench_workers(n_workers, args, encoders, base, noise, queries, query_codes):
    """Rows of the encode and search tables for one cluster size."""
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    client.run(lambda: __import__("skhash.dask"))  # imports outside the timings
    encode_rows, search_rows = [], []
    try:
        X = tiled(client, base, noise, args.noise, args.rows, args.shard_rows)
        first = X.map_blocks(lambda b: b[:, :1], chunks=(X.chunks[0], (1,)))
        seconds, _ = timed(lambda: _persist(first))
        encode_rows.append((n_workers, "generate rows only", seconds))
        codes = None
        for name, encoder in encoders.items():
            # warm: ship the encoder and import its libraries on every worker
            packbits(encoder, X[: 2 * n_workers * 100].rechunk(100)).compute()
            seconds, persisted = timed(lambda e=encoder: _persist(packbits(e, X)))
            encode_rows.append((n_workers, f"generate + encode ({name})", seconds))
            if name == "torch":
                codes = persisted
        check = codes[: args.check_rows].compute()
        local, z = local_codes(encoders["torch"], X[: args.check_rows].compute())
        differ = np.unpackbits(check, axis=1) != np.unpackbits(local, axis=1)
        near_zero = np.abs(z) <= 1e-5
        bits = (int(differ.sum()), differ.size, int((differ & ~near_zero).sum()))

        index = DaskHashIndex().fit(codes)
        full = codes.compute()
        for n_q in (1, 100, len(queries)):
            times = []
            for repeat in range(3):
                # other queries each time: identical graphs could reuse results
                batch = np.roll(query_codes, 7 * repeat, axis=0)[:n_q]
                seconds, (dist, ids) = timed(lambda b=batch: index.kneighbors(b, 10))
                ref = _single(batch, full)[1]
                assert np.array_equal(ids, ref[1]) and np.array_equal(dist, ref[0])
                times.append(seconds)
            search_rows.append((n_workers, n_q, min(times)))
        return encode_rows, search_rows, bits, len(index.codes_.chunks[0]), full
    finally:
        client.close()
        cluster.close()


def _persist(collection):
    persisted = collection.persist()
    wait(persisted)
    return persisted


def _single(query_codes, full):
    with numba_threads(1):
        return timed(lambda: hamming_knn(as_words(query_codes), as_words(full), 10))


def merge_cost(n_shards, n_queries, k, split_every, seed=0):
    """Seconds per query to merge ``n_shards`` answers of k (in process, tree of split_every)."""
    rng = np.random.default_rng(seed)
    parts = [
        (
            np.sort(rng.integers(0, 64, (n_queries, k), dtype=np.int32), axis=1),
            rng.integers(0, 2**40, (n_queries, k), dtype=np.int64),
            None,
        )
        for _ in range(n_shards)
    ]

    def tree():
        level = parts
        while len(level) > 1:
            level = [
                _merge(level[i : i + split_every], k) for i in range(0, len(level), split_every)
            ]
        return level[0]

    seconds, _ = best_of(tree, repeat=5)
    return seconds / n_queries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-bits", type=int, default=64)
    parser.add_argument("--fit-rows", type=int, default=8_000)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--shard-rows", type=int, default=125_000)
    parser.add_argument("--check-rows", type=int, default=100_000)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parse_args(parser, QUICK, argv)
    print(machine_line(threads=max(args.workers), extra=("dask", "distributed", "dask-ml")))
    with Disturbance() as others:
        time.sleep(5)
    print(f"Other processes used {others.share:.0%} of the CPU over 5 s before the run.")

    data = np.load(DATA / "fortunes_minilm.npz")["X"].astype(np.float32)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(data.shape) / np.sqrt(data.shape[1])).astype(np.float32)
    fit_rows = data[rng.permutation(len(data))[: args.fit_rows]]
    fit_s, encoder = timed(
        lambda: BinaryHashEncoder(
            n_bits=args.n_bits, max_epochs=args.max_epochs, random_state=0
        ).fit(fit_rows)
    )
    with tempfile.TemporaryDirectory() as tmp:
        encoder.save(Path(tmp) / "encoder")
        loaded = BinaryHashEncoder.load(Path(tmp) / "encoder")
    encoders = {"torch": encoder, "numpy, loaded": loaded}
    # queries: other noisy copies (offset past the database rows)
    q_rows = np.arange(args.rows, args.rows + 1000)
    queries = noisy_rows(
        data, noise, args.noise, {None: {"array-location": [(q_rows[0], q_rows[-1] + 1)]}}
    )
    query_codes = encoder.packbits(queries)
    print(
        f"\nData: fortunes MiniLM ({len(data):,} x {data.shape[1]}) tiled to {args.rows:,} "
        f"rows with noise {args.noise} (NOT distinct real texts); {args.n_bits}-bit encoder "
        f"fitted on {args.fit_rows:,} rows, {args.max_epochs} epochs ({fit_s:.0f} s); "
        f"{args.shard_rows:,} rows per chunk/shard."
    )

    encode_rows, search_rows, bits_rows = [], [], []
    for n_workers in args.workers:
        enc, search, bits, n_shards, full = bench_workers(
            n_workers, args, encoders, data, noise, queries, query_codes
        )
        encode_rows += enc
        search_rows += search
        bits_rows.append((n_workers, *bits))

    print("\nEncode (wall time to persisted codes; one torch/BLAS thread per worker)\n")
    print_header("workers", "step", "seconds", "rows/s", left=2)
    for n_workers, step, seconds in encode_rows:
        print_row(n_workers, step, f"{seconds:.2f}", f"{args.rows / seconds:,.0f}")
    X_local = noisy_rows(data, noise, args.noise, {None: {"array-location": [(0, 50_000)]}})
    local_s, _ = best_of(lambda: local_codes(encoder, X_local), repeat=2)
    print_row(
        "-",
        "encode only, this process, torch 1 thread",
        f"{local_s:.2f}",
        f"{len(X_local) / local_s:,.0f}",
    )

    print("\nBits: cluster codes against local packbits (torch, 1 thread)\n")
    print_header("workers", "bits differing", "bits compared", "differing with |z| > 1e-5", left=1)
    for row in bits_rows:
        print_row(row[0], f"{row[1]:,}", f"{row[2]:,}", f"{row[3]:,}")

    print(f"\nSearch (k=10, exact Hamming, {n_shards} shards; best of 3)\n")
    print_header("workers", "queries per call", "seconds per call", "queries/s", left=1)
    for n_workers, n_q, seconds in search_rows:
        print_row(n_workers, n_q, f"{seconds:.4f}", f"{n_q / seconds:,.0f}")
    for n_q in (1, len(query_codes)):
        seconds = min(_single(query_codes[:n_q], full)[0] for _ in range(3))
        print_row(
            "-",
            f"{n_q} (single process, 1 numba thread)",
            f"{seconds:.4f}",
            f"{n_q / seconds:,.0f}",
        )
    n_bytes = -(-args.n_bits // 8)
    words = 8 * -(-n_bytes // 8)
    print("\nMerge and payload per query (k=10)\n")
    print_header("shards", "merge tree", "merge us/query", "bytes out", "bytes back", left=2)
    for shards in (n_shards, 64, 1024):
        per_q = merge_cost(shards, 1000, 10, 8)
        print_row(
            shards, "8-way", f"{per_q * 1e6:.1f}", f"{shards * words:,}", f"{shards * 10 * 12:,}"
        )
    print_command()


if __name__ == "__main__":
    main()
