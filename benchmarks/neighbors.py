"""Benchmark Hamming k-NN search: skhash's backends next to faiss and usearch.

The default run is the issue-5 setting: 200,000 clustered 64-bit codes (1,000
random centres, 6 random bit flips each), 2,000 queries drawn the same way
from the same centres, k=10, two threads. For every method it reports the
build time (warm: a second build in the same process), the queries per second
of one batch of all queries (median of 3), and the tie-aware
distance-recall@10 (a neighbour counts if its distance is at most the exact
10th distance). Cold times are measured in fresh processes: with an empty
numba cache (first use after installation, numba compiles everything) and
with the cache filled by that first process.

Needs the ``bench`` extra: ``pip install -e ".[bench]"`` (faiss-cpu, usearch).

Usage::

    python benchmarks/neighbors.py                 # issue-5 table
    python benchmarks/neighbors.py --no-cold       # skip the fresh processes
    python benchmarks/neighbors.py --scaling       # 10^4..10^6 codes x 64/256/1024 bits
    python benchmarks/neighbors.py --crossover     # brute vs nndescent by size ("auto")
    python benchmarks/neighbors.py --uniform       # uniform random codes instead
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from functools import partial

import numpy as np


def make_codes(n_samples, n_bits, n_queries, n_centres=1000, flips=6, uniform=False, seed=0):
    """Database and query bits: centres plus ``flips`` random bit flips."""
    rng = np.random.default_rng(seed)
    if uniform:
        return (
            rng.integers(0, 2, (n_samples, n_bits), dtype=np.uint8),
            rng.integers(0, 2, (n_queries, n_bits), dtype=np.uint8),
        )
    centres = rng.integers(0, 2, (n_centres, n_bits), dtype=np.uint8)

    def draw(n):
        codes = centres[rng.integers(0, n_centres, n)]
        rows = np.arange(n)
        for _ in range(flips):
            codes[rows, rng.integers(0, n_bits, n)] ^= 1
        return codes

    return draw(n_samples), draw(n_queries)


def _cpu_counters():
    """(busy seconds of all cores, seconds of this process) from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(value) for value in f.readline().split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    own = os.times()
    return busy / ticks, own.user + own.system


class Disturbance:
    """Share of the machine's CPU used by *other* processes while a row ran."""

    def __enter__(self):
        self.start = _cpu_counters()
        self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc):
        end = _cpu_counters()
        wall = time.perf_counter() - self.wall
        if self.start is None or end is None or wall <= 0:
            self.share = float("nan")
        else:
            others = (end[0] - self.start[0]) - (end[1] - self.start[1])
            self.share = max(0.0, others / (wall * os.cpu_count()))


def wait_idle(max_seconds, threshold=0.9, window=5.0):
    """Wait until the CPU is at least ``threshold`` idle over ``window`` seconds."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        with Disturbance() as sample:
            time.sleep(window)
        if 1 - sample.share >= threshold:
            return True
        print(f"  waiting: other processes use {sample.share:.0%} of the CPU", flush=True)
    return False


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def qps(search, n_queries, repeats=5):
    """Queries per second of the fastest of ``repeats`` batches of ``search()``.

    The fastest batch is the least disturbed by other processes.
    """
    times = []
    for _ in range(repeats):
        elapsed, result = timed(search)
        times.append(elapsed)
    return n_queries / min(times), result


def recall(true_distances, distances, k):
    from skhash.metrics import distance_recall_at_k

    return distance_recall_at_k(true_distances, np.asarray(distances)[:, :k], k=k)


# Methods. Each returns rows: dict(method, params, build_s, qps, recall).


def bench_skhash(algorithm, database, queries, true_distances, args, **params):
    from skhash._neighbors import HammingNeighbors

    def build():
        return HammingNeighbors(
            n_neighbors=args.k, algorithm=algorithm, n_jobs=args.threads, random_state=0, **params
        ).fit(database)

    build()  # compiles, and warms caches
    build_s, nn = timed(build)
    speed, (distances, _) = qps(lambda: nn.kneighbors(queries), len(queries))
    described = ", ".join(f"{key}={value}" for key, value in params.items()) or "defaults"
    return [
        dict(
            method=f"skhash {algorithm}",
            params=described,
            build_s=build_s,
            qps=speed,
            recall=recall(true_distances, distances, args.k),
        )
    ]


def bench_numpy(database, queries, true_distances, args, chunk=64):
    """np.bitwise_count over uint64 words and np.argpartition, chunked queries."""
    from skhash._hamming import as_words

    words = as_words(np.packbits(database, axis=1))
    query_words = as_words(np.packbits(queries, axis=1))
    k = args.k

    def search():
        out = np.empty((len(query_words), k), dtype=np.int64)
        for start in range(0, len(query_words), chunk):
            block = query_words[start : start + chunk]
            dist = np.bitwise_count(block[:, None, :] ^ words[None, :, :]).sum(axis=2)
            part = np.argpartition(dist, k - 1, axis=1)[:, :k]
            out[start : start + chunk] = np.sort(np.take_along_axis(dist, part, axis=1), axis=1)
        return out

    speed, distances = qps(search, len(queries), repeats=2)
    return [
        dict(
            method="numpy bitwise_count",
            params=f"chunks of {chunk} queries, 1 thread",
            build_s=0.0,
            qps=speed,
            recall=recall(true_distances, distances, k),
        )
    ]


def bench_faiss(database, queries, true_distances, args, hnsw=True):
    import faiss

    faiss.omp_set_num_threads(args.threads)
    n_bits = database.shape[1]
    packed = np.packbits(database, axis=1)
    packed_queries = np.packbits(queries, axis=1)
    rows = []

    def flat():
        index = faiss.IndexBinaryFlat(n_bits)
        index.add(packed)
        return index

    build_s, index = timed(flat)
    speed, (distances, _) = qps(lambda: index.search(packed_queries, args.k), len(queries))
    rows.append(
        dict(
            method="faiss IndexBinaryFlat",
            params="exact",
            build_s=build_s,
            qps=speed,
            recall=recall(true_distances, distances, args.k),
        )
    )
    if not hnsw:
        return rows

    def build_hnsw():
        index = faiss.IndexBinaryHNSW(n_bits, 32)
        index.add(packed)
        return index

    build_s, index = timed(build_hnsw)
    for ef in args.ef:
        index.hnsw.efSearch = ef
        speed, (distances, _) = qps(lambda: index.search(packed_queries, args.k), len(queries))
        rows.append(
            dict(
                method="faiss IndexBinaryHNSW",
                params=f"M=32, efSearch={ef}",
                build_s=build_s,
                qps=speed,
                recall=recall(true_distances, distances, args.k),
            )
        )
    return rows


def bench_usearch(database, queries, true_distances, args):
    from usearch.index import Index

    n_bits = database.shape[1]
    packed = np.packbits(database, axis=1)
    packed_queries = np.packbits(queries, axis=1)

    def build():
        index = Index(ndim=n_bits, metric="hamming", dtype="b1")
        index.add(np.arange(len(packed)), packed, threads=args.threads)
        return index

    build_s, index = timed(build)
    rows = []
    for ef in args.ef:
        index.expansion_search = ef
        speed, matches = qps(
            lambda: index.search(packed_queries, args.k, threads=args.threads), len(queries)
        )
        rows.append(
            dict(
                method="usearch",
                params=f"defaults (connectivity 16), expansion_search={ef}",
                build_s=build_s,
                qps=speed,
                recall=recall(true_distances, matches.distances, args.k),
            )
        )
    return rows


def cold_child(args):
    """Fit and first batch query in this (fresh) process; print JSON timings."""
    import numba

    numba.set_num_threads(args.threads)
    from skhash._neighbors import HammingNeighbors

    database, queries = make_codes(args.n, args.bits, args.queries, uniform=args.uniform)
    fit_s, nn = timed(
        lambda: HammingNeighbors(
            n_neighbors=args.k, algorithm=args.cold, n_jobs=args.threads, random_state=0
        ).fit(database)
    )
    query_s, _ = timed(lambda: nn.kneighbors(queries))
    print(json.dumps({"fit_s": fit_s, "query_s": query_s}))


def run_cold(args, algorithm, cache_dir):
    command = [
        sys.executable,
        __file__,
        "--cold",
        algorithm,
        "--n",
        str(args.n),
        "--bits",
        str(args.bits),
        "--queries",
        str(args.queries),
        "--k",
        str(args.k),
        "--threads",
        str(args.threads),
    ] + (["--uniform"] if args.uniform else [])
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_NUM_THREADS=str(args.threads))
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def environment(args):
    import numba
    import pynndescent
    import sklearn

    versions = {"numpy": np.__version__, "numba": numba.__version__}
    versions["pynndescent"] = getattr(pynndescent, "__version__", "0.7.0")
    versions["scikit-learn"] = sklearn.__version__
    for name in ("faiss", "usearch"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"CPU: {cpu}, {os.cpu_count()} logical cores, {args.threads} threads used; "
        f"load average at start {load:.2f}. "
        + ", ".join(f"{key} {value}" for key, value in versions.items())
    )


def run_methods(methods, args, verbose=True):
    """Run each method (after waiting for an idle CPU if asked), noting disturbance."""
    rows = []
    for method in methods:
        if args.wait_idle:
            wait_idle(args.wait_idle)
        with Disturbance() as disturbance:
            new_rows = method()
        for row in new_rows:
            row["others"] = disturbance.share
        rows += new_rows
        if verbose:
            for row in new_rows:
                print(f"  {json.dumps(row)}", flush=True)
    return rows


def table(rows):
    lines = [
        "| method | parameters | build (s) | QPS | distance-recall@10 | others' CPU |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['params']} | {row['build_s']:.2f} | "
            f"{row['qps']:,.0f} | {row['recall']:.3f} | {row['others']:.0%} |"
        )
    return "\n".join(lines)


def main_table(args):
    import numba

    from skhash._hamming import as_words, hamming_knn

    numba.set_num_threads(args.threads)
    print(environment(args), flush=True)
    database, queries = make_codes(args.n, args.bits, args.queries, uniform=args.uniform)
    true_distances, _ = hamming_knn(
        as_words(np.packbits(queries, axis=1)), as_words(np.packbits(database, axis=1)), args.k
    )
    cold = {}
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache_dir:
            for algorithm in ("brute", "nndescent"):
                empty = run_cold(args, algorithm, cache_dir)
                cached = run_cold(args, algorithm, cache_dir)
                cold[algorithm] = (empty, cached)
                print(f"cold {algorithm}: {empty} then {cached}", flush=True)

    chosen = set(args.methods)
    methods = []
    if not args.only_cold:
        for algorithm in ("brute", "nndescent"):
            if algorithm in chosen:
                methods.append(
                    partial(bench_skhash, algorithm, database, queries, true_distances, args)
                )
        for extra in args.nndescent_grid:
            methods.append(
                partial(
                    bench_skhash,
                    "nndescent",
                    database,
                    queries,
                    true_distances,
                    args,
                    **json.loads(extra),
                )
            )
        if "faiss" in chosen:
            methods.append(partial(bench_faiss, database, queries, true_distances, args))
        if "usearch" in chosen:
            methods.append(partial(bench_usearch, database, queries, true_distances, args))
        if "numpy" in chosen:
            methods.append(partial(bench_numpy, database, queries, true_distances, args))
    rows = run_methods(methods, args)

    kind = "uniform random" if args.uniform else "clustered (1,000 centres, 6 bit flips)"
    print(
        f"\n{args.n:,} {kind} {args.bits}-bit codes, {args.queries:,} queries, "
        f"k={args.k}, {args.threads} threads\n"
    )
    if rows:
        print(table(rows))
    if cold:
        print(
            "\n| skhash backend | cold fit, empty numba cache (s) | cold first query batch (s) "
            "| fit, numba cache filled (s) | first query batch (s) |\n|---|---:|---:|---:|---:|"
        )
        for algorithm, (empty, cached) in cold.items():
            print(
                f"| {algorithm} | {empty['fit_s']:.2f} | {empty['query_s']:.2f} | "
                f"{cached['fit_s']:.2f} | {cached['query_s']:.2f} |"
            )
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    print("Command: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


def main_scaling(args):
    """Exact search only (skhash brute, faiss flat) across sizes and code lengths."""
    import numba

    numba.set_num_threads(args.threads)
    print(environment(args), flush=True)
    print(
        "\n| codes | bits | queries | skhash brute QPS | faiss IndexBinaryFlat QPS | ratio "
        "| others' CPU |\n|---:|---:|---:|---:|---:|---:|---:|"
    )
    for n_bits in args.scaling_bits:
        for n in args.scaling_n:
            n_queries = max(50, min(args.queries, int(2e9 / (n * n_bits))))
            database, queries = make_codes(n, n_bits, n_queries, uniform=args.uniform)
            sub = argparse.Namespace(**{**vars(args), "queries": n_queries})
            true_distances = np.zeros((n_queries, args.k))  # recall is not reported here
            ours, theirs = run_methods(
                [
                    partial(bench_skhash, "brute", database, queries, true_distances, sub),
                    partial(bench_faiss, database, queries, true_distances, sub, hnsw=False),
                ],
                args,
                verbose=False,
            )
            others = max(ours["others"], theirs["others"])
            print(
                f"| {n:,} | {n_bits} | {n_queries:,} | {ours['qps']:,.0f} | "
                f"{theirs['qps']:,.0f} | {ours['qps'] / theirs['qps']:.2f} | {others:.0%} |",
                flush=True,
            )
    print("\nCommand: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


def main_crossover(args):
    """Exact vs approximate skhash backends by database size (the "auto" threshold).

    Break-even queries: how many queries a fitted NN-descent index must serve
    before its build time is repaid by queries faster than exact search.
    """
    import numba

    from skhash._hamming import as_words, hamming_knn

    numba.set_num_threads(args.threads)
    print(environment(args), flush=True)
    print(
        "\n| codes | brute QPS | nndescent build (s) | nndescent QPS | nndescent recall "
        "| break-even queries | others' CPU |\n|---:|---:|---:|---:|---:|---:|---:|"
    )
    for n in args.crossover_n:
        database, queries = make_codes(n, args.bits, args.queries, uniform=args.uniform)
        true_distances, _ = hamming_knn(
            as_words(np.packbits(queries, axis=1)), as_words(np.packbits(database, axis=1)), args.k
        )
        brute, approx = run_methods(
            [
                partial(bench_skhash, "brute", database, queries, true_distances, args),
                partial(bench_skhash, "nndescent", database, queries, true_distances, args),
            ],
            args,
            verbose=False,
        )
        others = max(brute["others"], approx["others"])
        saving = 1 / brute["qps"] - 1 / approx["qps"]
        even = f"{approx['build_s'] / saving:,.0f}" if saving > 0 else "never"
        print(
            f"| {n:,} | {brute['qps']:,.0f} | {approx['build_s']:.1f} | {approx['qps']:,.0f} | "
            f"{approx['recall']:.3f} | {even} | {others:.0%} |",
            flush=True,
        )
    print("\nCommand: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="database codes")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--uniform", action="store_true", help="uniform random codes")
    parser.add_argument(
        "--ef", type=int, nargs="+", default=[16, 32, 64, 128, 256], help="HNSW efSearch sweep"
    )
    parser.add_argument(
        "--nndescent-grid",
        nargs="*",
        default=[],
        metavar="JSON",
        help="extra HammingNeighbors settings, e.g. '{\"epsilon\": 0.3}'",
    )
    parser.add_argument("--no-cold", action="store_true", help="skip fresh-process timings")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each method wait up to SECONDS for a 90%% idle CPU",
    )
    parser.add_argument("--only-cold", action="store_true", help="only fresh-process timings")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["brute", "nndescent", "faiss", "usearch", "numpy"],
        default=["brute", "nndescent", "faiss", "usearch", "numpy"],
        help="methods of the main table (default: all)",
    )
    parser.add_argument("--scaling", action="store_true", help="exact search scaling table")
    parser.add_argument("--scaling-n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scaling-bits", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument(
        "--crossover", action="store_true", help="brute vs nndescent by database size"
    )
    parser.add_argument(
        "--crossover-n", type=int, nargs="+", default=[100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--cold", choices=["brute", "nndescent"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold:
        cold_child(args)
    elif args.scaling:
        main_scaling(args)
    elif args.crossover:
        main_crossover(args)
    else:
        main_table(args)


if __name__ == "__main__":
    main()
