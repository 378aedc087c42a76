"""Benchmark Hamming k-NN search: skhash's backends next to faiss and usearch.

The default run is the issue-5 setting: 200,000 clustered 64-bit codes (1,000
random centres, 6 random bit flips each), 2,000 queries drawn the same way
from the same centres, k=10, two threads. For every method it reports the
build time (warm: numba code already compiled by a build on a subset), the
queries per second of one batch of all queries (fastest of 5), and the
tie-aware distance-recall@10 (a neighbour counts if its distance, recomputed
from the returned index, is at most the exact 10th distance). Approximate
methods sweep their search breadth on one built index: skhash's
``ef_search``, faiss HNSW's ``efSearch``, usearch's ``expansion_search``.
Cold times are measured in fresh processes: with an empty numba cache (first
use after installation, numba compiles everything) and with the cache filled
by that first process. All methods get bit-packed codes (skhash with
``packed=True``).

Needs the ``bench`` extra: ``pip install -e ".[bench]"`` (faiss-cpu, usearch,
matplotlib).

Usage::

    python benchmarks/neighbors.py                  # issue-5 table, cold start included
    python benchmarks/neighbors.py --no-cold        # skip the fresh processes
    python benchmarks/neighbors.py --only-cold      # only the fresh processes
    python benchmarks/neighbors.py --fortunes --bits 256   # codes of the fortunes embeddings
    python benchmarks/neighbors.py --scaling        # 10^4..10^6 codes x 64/256/1024 bits + figure
    python benchmarks/neighbors.py --memory         # bytes per item of each index
    python benchmarks/neighbors.py --crossover      # brute vs nndescent by size ("auto")
    python benchmarks/neighbors.py --uniform        # uniform random codes instead
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
from pathlib import Path

import numpy as np

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "neighbors_scaling.png"
TARGET_RECALL = 0.95
# Seconds a child process of the scaling table may spend compiling (numba) on top
# of its budget: pynndescent compiles about 40 s in every fresh process.
COMPILE_ALLOWANCE = 90


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


def fortunes_codes(n_bits, n_queries=2000):
    """Packed codes of the fortunes split: database rows and held-out queries.

    ``BinaryHashEncoder(n_bits=n_bits, random_state=0)`` fitted on the 12,813
    database embeddings (``benchmarks/_fortunes.py``); cached in the system
    temp directory, since the fit takes about a minute.
    """
    import hashlib

    import skhash

    # Keyed by the encoder's source too: a changed encoder gives other codes.
    source = hashlib.sha1()
    for path in sorted(Path(skhash.__file__).parent.glob("*.py")):
        if path.name not in ("_neighbors.py", "_graph.py", "_hamming.py"):
            source.update(path.read_bytes())
    key = f"{n_bits}bits_q{n_queries}_{source.hexdigest()[:10]}"
    cache = Path(tempfile.gettempdir()) / f"skhash_fortunes_codes_{key}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["database"], saved["queries"]
    sys.path.insert(0, str(Path(__file__).parent))
    from _fortunes import load_split

    from skhash import BinaryHashEncoder

    X_db, _, X_q, _ = load_split(n_queries=n_queries)
    print(f"fitting BinaryHashEncoder(n_bits={n_bits}) on {len(X_db):,} rows...", flush=True)
    encoder = BinaryHashEncoder(n_bits=n_bits, random_state=0).fit(X_db)
    database, queries = encoder.packbits(X_db), encoder.packbits(X_q)
    # write then rename, so a killed run leaves no half-written cache
    partial_file = cache.with_suffix(".tmp.npz")
    np.savez(partial_file, database=database, queries=queries)
    os.replace(partial_file, cache)
    return database, queries


class Data:
    """Packed database and query codes with their exact k-NN distances."""

    def __init__(self, database, queries, n_bits, k, description, true_distances=None):
        from skhash._hamming import as_words, hamming_knn

        self.database = np.ascontiguousarray(database)
        self.queries = np.ascontiguousarray(queries)
        self.n_bits = n_bits
        self.k = k
        self.description = description
        self.words = as_words(self.database)
        self.query_words = as_words(self.queries)
        if true_distances is None:
            true_distances, _ = hamming_knn(self.query_words, self.words, k)
        self.true_distances = true_distances

    def subset(self, n_queries):
        """The same database with the first ``n_queries`` queries."""
        sub = object.__new__(Data)
        sub.__dict__.update(self.__dict__)
        sub.queries = self.queries[:n_queries]
        sub.query_words = self.query_words[:n_queries]
        sub.true_distances = self.true_distances[:n_queries]
        return sub

    def recall(self, indices):
        """Distance-recall@k of returned rows, distances recomputed from the codes."""
        from skhash.metrics import distance_recall_at_k

        indices = np.asarray(indices, dtype=np.int64)[:, : self.k]
        xor = self.words[np.maximum(indices, 0)] ^ self.query_words[:, None, :]
        distances = np.bitwise_count(xor).sum(axis=2).astype(np.float64)
        distances[indices < 0] = np.inf  # missing neighbours (faiss pads with -1)
        return distance_recall_at_k(self.true_distances, distances, k=self.k)


def load_data(args):
    if args.fortunes:
        database, queries = fortunes_codes(args.bits, args.queries)
        return Data(database, queries, args.bits, args.k, "fortunes")
    database, queries = make_codes(args.n, args.bits, args.queries, uniform=args.uniform)
    kind = "uniform" if args.uniform else "clustered"
    return Data(
        np.packbits(database, axis=1), np.packbits(queries, axis=1), args.bits, args.k, kind
    )


def _cpu_counters():
    """(busy seconds of all cores, seconds of this process and its children), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(value) for value in f.readline().split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    own = os.times()
    return busy / ticks, own.user + own.system + own.children_user + own.children_system


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


# Methods. Each returns rows: dict(method, params, build_s, qps, recall); a
# sweep of an approximate method gives one row per setting, on one built index.


def warm_skhash(algorithm, data, args, n_warm=20_000, **params):
    """Compile (or load from numba's cache) everything a fit and a query use."""
    from skhash._neighbors import HammingNeighbors

    n_warm = min(n_warm, len(data.database))
    nn = HammingNeighbors(
        n_neighbors=args.k,
        algorithm=algorithm,
        packed=True,
        n_jobs=args.threads,
        random_state=0,
        **params,
    ).fit(data.database[:n_warm])
    nn.kneighbors(data.queries[:10])


def bench_skhash(algorithm, data, args, ef_sweep=None, **params):
    """Warm build and queries; for nndescent, one row per ``ef_search`` in ``ef_sweep``."""
    from skhash._neighbors import HammingNeighbors

    def build():
        return HammingNeighbors(
            n_neighbors=args.k,
            algorithm=algorithm,
            packed=True,
            n_jobs=args.threads,
            random_state=0,
            **params,
        ).fit(data.database)

    warm_skhash(algorithm, data, args, **params)
    build_s, nn = timed(build)
    described = ", ".join(f"{key}={value}" for key, value in params.items())
    default_ef = HammingNeighbors().ef_search
    if algorithm != "nndescent" or not ef_sweep:
        ef_sweep = [nn.ef_search]
    rows = []
    for ef in ef_sweep:
        nn.set_params(ef_search=ef)
        speed, indices = qps(
            lambda: nn.kneighbors(data.queries, return_distance=False), len(data.queries)
        )
        setting = described
        if algorithm == "nndescent":
            setting = ", ".join(
                filter(None, [described, f"ef_search={ef}" + (" (default)" * (ef == default_ef))])
            )
        rows.append(
            dict(
                method=f"skhash {algorithm}",
                params=setting or "defaults",
                build_s=build_s,
                qps=speed,
                recall=data.recall(indices),
                ef=ef,
            )
        )
    return rows


def bench_numpy(data, args, chunk=64):
    """np.bitwise_count over uint64 words and np.argpartition, chunked queries."""
    words, query_words, k = data.words, data.query_words, args.k

    def search():
        out = np.empty((len(query_words), k), dtype=np.int64)
        for start in range(0, len(query_words), chunk):
            block = query_words[start : start + chunk]
            dist = np.bitwise_count(block[:, None, :] ^ words[None, :, :]).sum(axis=2)
            part = np.argpartition(dist, k - 1, axis=1)[:, :k]
            out[start : start + chunk] = part
        return out

    speed, indices = qps(search, len(query_words), repeats=2)
    return [
        dict(
            method="numpy bitwise_count",
            params=f"chunks of {chunk} queries, 1 thread",
            build_s=0.0,
            qps=speed,
            recall=data.recall(indices),
        )
    ]


def bench_faiss_flat(data, args):
    import faiss

    faiss.omp_set_num_threads(args.threads)

    def flat():
        index = faiss.IndexBinaryFlat(data.n_bits)
        index.add(data.database)
        return index

    build_s, index = timed(flat)
    speed, (_, indices) = qps(lambda: index.search(data.queries, args.k), len(data.queries))
    return [
        dict(
            method="faiss IndexBinaryFlat",
            params="exact",
            build_s=build_s,
            qps=speed,
            recall=data.recall(indices),
        )
    ]


def bench_faiss_hnsw(data, args, ef_sweep, M=32):
    import faiss

    faiss.omp_set_num_threads(args.threads)

    def build_hnsw():
        index = faiss.IndexBinaryHNSW(data.n_bits, M)
        index.add(data.database)
        return index

    build_s, index = timed(build_hnsw)
    rows = []
    for ef in ef_sweep:
        index.hnsw.efSearch = ef
        speed, (_, indices) = qps(lambda: index.search(data.queries, args.k), len(data.queries))
        rows.append(
            dict(
                method="faiss IndexBinaryHNSW",
                params=f"M={M}, efSearch={ef}",
                build_s=build_s,
                qps=speed,
                recall=data.recall(indices),
                ef=ef,
            )
        )
    return rows


def bench_faiss(data, args):
    return bench_faiss_flat(data, args) + bench_faiss_hnsw(data, args, args.ef)


def bench_usearch(data, args):
    from usearch.index import Index

    def build():
        index = Index(ndim=data.n_bits, metric="hamming", dtype="b1")
        index.add(np.arange(len(data.database)), data.database, threads=args.threads)
        return index

    build_s, index = timed(build)
    rows = []
    for ef in args.ef:
        index.expansion_search = ef
        speed, matches = qps(
            lambda: index.search(data.queries, args.k, threads=args.threads), len(data.queries)
        )
        rows.append(
            dict(
                method="usearch",
                params=f"defaults (connectivity 16), expansion_search={ef}",
                build_s=build_s,
                qps=speed,
                recall=data.recall(matches.keys.astype(np.int64)),
                ef=ef,
            )
        )
    return rows


def cold_child(args):
    """Fit and first batch query in this (fresh) process; print JSON timings."""
    import numba

    numba.set_num_threads(args.threads)
    from skhash._neighbors import HammingNeighbors

    if args.fortunes:
        database, queries = fortunes_codes(args.bits, args.queries)
    else:
        database, queries = make_codes(args.n, args.bits, args.queries, uniform=args.uniform)
        database, queries = np.packbits(database, axis=1), np.packbits(queries, axis=1)
    fit_s, nn = timed(
        lambda: HammingNeighbors(
            n_neighbors=args.k, algorithm=args.cold, packed=True, n_jobs=args.threads,
            random_state=0,
        ).fit(database)
    )  # fmt: skip
    query_s, _ = timed(lambda: nn.kneighbors(queries))
    print(json.dumps({"fit_s": fit_s, "query_s": query_s}))


def _child_args(args):
    """Command-line options that reproduce the data of ``args`` in a child process."""
    return [
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
    ] + [flag for flag in ("--uniform", "--fortunes") if getattr(args, flag[2:])]


def run_cold(args, algorithm, cache_dir):
    command = [sys.executable, __file__, "--cold", algorithm] + _child_args(args)
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
        f"load average at start {load:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
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


def table(rows, k):
    lines = [
        f"| method | parameters | build (s) | QPS | distance-recall@{k} | others' CPU |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['params']} | {row['build_s']:.2f} | "
            f"{row['qps']:,.0f} | {row['recall']:.3f} | {row['others']:.0%} |"
        )
    return "\n".join(lines)


def lowest_reaching(rows, target=TARGET_RECALL):
    """The row of the smallest setting reaching ``target`` recall, else the best one."""
    reaching = [row for row in rows if row["recall"] >= target]
    if reaching:
        return min(reaching, key=lambda row: row["ef"])
    return max(rows, key=lambda row: row["recall"])


def targets(rows):
    """Issue-5 ratios of skhash's default rows against faiss."""
    by = {}
    for row in rows:
        by.setdefault(row["method"], []).append(row)
    lines = []
    if "skhash brute" in by and "faiss IndexBinaryFlat" in by:
        ratio = by["skhash brute"][0]["qps"] / by["faiss IndexBinaryFlat"][0]["qps"]
        lines.append(f"brute / faiss flat QPS: {ratio:.2f}x (target >= 1.0)")
    if "skhash nndescent" in by and "faiss IndexBinaryHNSW" in by:
        default = [row for row in by["skhash nndescent"] if "(default)" in row["params"]]
        hnsw = lowest_reaching(by["faiss IndexBinaryHNSW"])
        if default:
            ours = default[0]
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
            lines.append(
                f"nndescent build {ours['build_s']:.2f} s = "
                f"{ours['build_s'] / hnsw['build_s']:.2f}x faiss HNSW's {hnsw['build_s']:.2f} s "
                "(target <= 3x)"
            )
    return "\n".join(lines)


def main_table(args):
    import numba

    numba.set_num_threads(args.threads)
    print(environment(args), flush=True)
    data = load_data(args)
    cold = {}
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache_dir:
            for algorithm in ("brute", "nndescent"):
                if args.wait_idle:
                    wait_idle(args.wait_idle)
                with Disturbance() as disturbance:
                    empty = run_cold(args, algorithm, cache_dir)
                    cached = run_cold(args, algorithm, cache_dir)
                cold[algorithm] = (empty, cached, disturbance.share)
                print(f"cold {algorithm}: {empty} then {cached}", flush=True)

    chosen = set(args.methods)
    methods = []
    if not args.only_cold:
        if "brute" in chosen:
            methods.append(partial(bench_skhash, "brute", data, args))
        if "nndescent" in chosen:
            methods.append(partial(bench_skhash, "nndescent", data, args, args.ef))
        for extra in args.nndescent_grid:
            methods.append(
                partial(bench_skhash, "nndescent", data, args, args.ef, **json.loads(extra))
            )
        if "faiss" in chosen:
            methods.append(partial(bench_faiss, data, args))
        if "usearch" in chosen:
            methods.append(partial(bench_usearch, data, args))
        if "numpy" in chosen:
            methods.append(partial(bench_numpy, data, args))
    rows = run_methods(methods, args)

    if args.fortunes:
        kind = (
            f"{len(data.database):,} fortunes {args.bits}-bit codes "
            f"(BinaryHashEncoder(n_bits={args.bits}, random_state=0) fitted on the database)"
        )
    else:
        kind = "uniform random" if args.uniform else "clustered (1,000 centres, 6 bit flips)"
        kind = f"{args.n:,} {kind} {args.bits}-bit codes"
    print(f"\n{kind}, {len(data.queries):,} queries, k={args.k}, {args.threads} threads\n")
    if rows:
        print(table(rows, args.k))
        print("\n" + targets(rows))
    if cold:
        print(
            "\n| skhash backend | fit, empty numba cache (s) | first query batch (s) "
            "| fit, numba cache filled (s) | first query batch (s) | others' CPU |\n"
            "|---|---:|---:|---:|---:|---:|"
        )
        for algorithm, (empty, cached, share) in cold.items():
            print(
                f"| {algorithm} | {empty['fit_s']:.2f} | {empty['query_s']:.2f} | "
                f"{cached['fit_s']:.2f} | {cached['query_s']:.2f} | {share:.0%} |"
            )
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    print("Command: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


# Scaling: exact and approximate search by database size and code length.


def _scaling_data_file(n, n_bits, args):
    kind = "uniform" if args.uniform else "clustered"
    return Path(tempfile.gettempdir()) / f"skhash_scaling_{kind}_{n}x{n_bits}_q{args.queries}.npz"


def scaling_data(n, n_bits, args):
    """Codes and exact distances of one configuration, cached on disk."""
    path = _scaling_data_file(n, n_bits, args)
    if not path.exists():
        database, queries = make_codes(n, n_bits, args.queries, uniform=args.uniform)
        database, queries = np.packbits(database, axis=1), np.packbits(queries, axis=1)
        data = Data(database, queries, n_bits, args.k, "clustered")
        np.savez(
            path.with_suffix(".tmp.npz"),
            database=database,
            queries=queries,
            true_distances=data.true_distances,
        )
        os.replace(path.with_suffix(".tmp.npz"), path)
        return data
    saved = np.load(path)
    if saved["true_distances"].shape[1] < args.k:
        raise ValueError(f"{path} holds fewer than k={args.k} exact distances; delete it.")
    return Data(
        saved["database"],
        saved["queries"],
        n_bits,
        args.k,
        "clustered",
        saved["true_distances"][:, : args.k],
    )


def scaling_child(args):
    """One approximate method at one scaling configuration; print its best row."""
    import numba

    numba.set_num_threads(args.threads)
    data = scaling_data(args.n, args.bits, args)
    if args.scaling_child == "nndescent":
        rows = bench_skhash("nndescent", data, args, args.scaling_ef)
    else:
        rows = bench_faiss_hnsw(data, args, args.scaling_ef)
    print(json.dumps(rows))


def _run_scaling_child(method, n, n_bits, args):
    """Run ``scaling_child`` in a fresh process, within ``args.budget`` seconds.

    The budget covers the build and the sweep; the child's warm-up compilation
    gets ``COMPILE_ALLOWANCE`` seconds more.
    """
    sub = argparse.Namespace(**{**vars(args), "n": n, "bits": n_bits})
    command = [sys.executable, __file__, "--scaling-child", method]
    command += _child_args(sub) + ["--scaling-ef"] + [str(ef) for ef in args.scaling_ef]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    try:
        output = subprocess.run(
            command,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=args.budget + COMPILE_ALLOWANCE,
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    return json.loads(output.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def scaling_config(n, n_bits, args):
    """Scaling results for one (codes, bits) configuration."""
    data = scaling_data(n, n_bits, args)
    # Exact search: as many queries as cost about 2 * 10^9 bit comparisons.
    n_exact = max(50, min(args.queries, int(2e9 / (n * n_bits))))
    exact = data.subset(n_exact)
    result = dict(
        n=n, bits=n_bits, exact_queries=n_exact, queries=len(data.queries), budget=args.budget
    )
    brute, flat = run_methods(
        [partial(bench_skhash, "brute", exact, args), partial(bench_faiss_flat, exact, args)],
        args,
        verbose=False,
    )
    result["brute"], result["flat"] = brute, flat
    for method in ("nndescent", "hnsw"):
        if args.wait_idle:
            wait_idle(args.wait_idle)
        with Disturbance() as disturbance:
            if n >= args.isolate_from:
                rows, wall = _run_scaling_child(method, n, n_bits, args)
            elif method == "nndescent":
                rows = bench_skhash("nndescent", data, args, args.scaling_ef)
            else:
                rows = bench_faiss_hnsw(data, args, args.scaling_ef)
        if rows is None:
            result[method] = dict(timeout=wall, others=disturbance.share)
            continue
        best = lowest_reaching(rows)
        best["others"] = disturbance.share
        best["sweep"] = [(row["ef"], row["qps"], row["recall"]) for row in rows]
        result[method] = best
    return result


def _scaling_row(r):
    def approx(m):
        if "timeout" in m:
            return f"> {r['budget']:.0f} s budget: not finished | – | – | –"
        mark = "" if m["recall"] >= TARGET_RECALL else " (best; < 0.95)"
        return f"{m['build_s']:.1f} | {m['ef']}{mark} | {m['qps']:,.0f} | {m['recall']:.3f}"

    others = max(r[m]["others"] for m in ("brute", "flat", "nndescent", "hnsw"))
    nnd, hnsw = r["nndescent"], r["hnsw"]
    if "timeout" in nnd or "timeout" in hnsw:
        ratios = "– | –"
    else:
        ratios = f"{nnd['qps'] / hnsw['qps']:.2f} | {nnd['build_s'] / hnsw['build_s']:.2f}"
    return (
        f"| {r['n']:,} | {r['bits']} | {r['brute']['qps']:,.0f} | {r['flat']['qps']:,.0f} | "
        f"{r['brute']['qps'] / r['flat']['qps']:.2f} | {approx(nnd)} | {approx(hnsw)} | "
        f"{ratios} | {others:.0%} |"
    )


def scaling_table(results):
    head = (
        "| codes | bits | skhash brute QPS | faiss flat QPS | brute / flat "
        "| nndescent build (s) | ef_search | nndescent QPS | recall "
        "| HNSW build (s) | efSearch | HNSW QPS | recall "
        "| nndescent / HNSW QPS | nndescent / HNSW build | others' CPU (max) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    ordered = sorted(results.values(), key=lambda r: (r["bits"], r["n"]))
    return "\n".join([head] + [_scaling_row(r) for r in ordered])


def scaling_figure(results, path=FIGURE, threads=2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = sorted({r["bits"] for r in results.values()})
    fig, axes = plt.subplots(2, len(bits), figsize=(4.2 * len(bits), 7.6), squeeze=False)
    styles = {
        "brute": ("skhash brute (exact)", "C0", "-", "o"),
        "flat": ("faiss IndexBinaryFlat (exact)", "C1", "-", "s"),
        "nndescent": ("skhash nndescent, lowest ef_search with recall >= 0.95", "C0", "--", "^"),
        "hnsw": (
            "faiss IndexBinaryHNSW M=32, lowest efSearch with recall >= 0.95",
            "C1",
            "--",
            "v",
        ),
    }
    for col, b in enumerate(bits):
        rs = sorted((r for r in results.values() if r["bits"] == b), key=lambda r: r["n"])
        for key, (label, colour, line, marker) in styles.items():
            done = [r for r in rs if "timeout" not in r[key]]
            n = [r["n"] for r in done]
            axes[0, col].plot(
                n, [r[key]["qps"] for r in done], line, color=colour, marker=marker,
                label=label if col == 0 else None,
            )  # fmt: skip
            if key in ("nndescent", "hnsw"):
                axes[1, col].plot(
                    n, [r[key]["build_s"] for r in done], line, color=colour, marker=marker
                )
                for r in rs:
                    if "timeout" in r[key]:
                        # not finished within the budget: an open marker at the budget
                        axes[1, col].plot(
                            [r["n"]], [r["budget"]], marker=marker, color=colour,
                            markerfacecolor="none", linestyle="none",
                        )  # fmt: skip
                        axes[1, col].annotate(
                            f"> {r['budget']:.0f} s, unfinished",
                            (r["n"], r["budget"]),
                            textcoords="offset points",
                            xytext=(-4, 6),
                            fontsize=7,
                            color=colour,
                            ha="right",
                        )
        axes[0, col].set_title(f"{b}-bit codes")
        for row in (0, 1):
            axes[row, col].set_xscale("log")
            axes[row, col].set_yscale("log")
            axes[row, col].set_xlabel("database codes")
            axes[row, col].grid(True, which="both", alpha=0.3)
        axes[0, col].set_ylabel("queries / s (k=10, batch)")
        axes[1, col].set_ylabel("index build (s, warm)")
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(
        f"Hamming k-NN on clustered codes: 2-core AMD EPYC VM, {threads} thread"
        + "s" * (threads > 1)
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


def main_scaling(args):
    """Exact and approximate search across sizes and code lengths; table and figure.

    Results accumulate in ``--scaling-json`` (keyed by codes and bits), so
    configurations can be measured in separate runs and plotted together.
    """
    import numba

    numba.set_num_threads(args.threads)
    results_file = Path(args.scaling_json)
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if not args.plot_only:
        print(environment(args), flush=True)
        for n_bits in args.scaling_bits:
            for n in args.scaling_n:
                result = scaling_config(n, n_bits, args)
                print(f"  {json.dumps(result)}", flush=True)
                results[f"{n}x{n_bits}"] = result
                results_file.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {results_file}\n")
    print(scaling_table(results))
    scaling_figure(results, Path(args.figure), args.threads)
    print("\nCommand: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


def main_memory(args):
    """Bytes per item of each index, from its arrays or its serialisation."""
    import faiss
    from usearch.index import Index

    from skhash._neighbors import HammingNeighbors

    faiss.omp_set_num_threads(args.threads)
    print(environment(args), flush=True)
    lines = [
        f"| {args.n:,} codes | skhash brute | skhash nndescent | faiss IndexBinaryFlat "
        "| faiss IndexBinaryHNSW M=32 | usearch (connectivity 16) | float32 384-d |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n_bits in args.memory_bits:
        database, _ = make_codes(args.n, n_bits, 1, uniform=args.uniform)
        database = np.packbits(database, axis=1)
        n = len(database)
        brute = HammingNeighbors(algorithm="brute", packed=True).fit(database)
        nnd = HammingNeighbors(
            algorithm="nndescent", packed=True, n_jobs=args.threads, random_state=0
        ).fit(database)
        nnd_arrays = [nnd.codes_, nnd.graph_indptr_, nnd.graph_indices_, nnd.entry_points_]
        degree = len(nnd.graph_indices_) / n
        flat = faiss.IndexBinaryFlat(n_bits)
        flat.add(database)
        hnsw = faiss.IndexBinaryHNSW(n_bits, 32)
        hnsw.add(database)
        usearch = Index(ndim=n_bits, metric="hamming", dtype="b1")
        usearch.add(np.arange(n), database, threads=args.threads)
        sizes = [
            brute.codes_.nbytes / n,
            sum(a.nbytes for a in nnd_arrays) / n,
            faiss.serialize_index_binary(flat).nbytes / n,
            faiss.serialize_index_binary(hnsw).nbytes / n,
            usearch.serialized_length / n,
            1536,
        ]
        lines.append(f"| {n_bits} bits | " + " | ".join(f"{s:,.0f} B" for s in sizes) + " |")
        print(
            f"{n_bits} bits: nndescent graph {degree:.1f} links per code, "
            f"{len(nnd.entry_points_):,} entry points; usearch memory_usage "
            f"{usearch.memory_usage / n:,.0f} B per item",
            flush=True,
        )
    print("\n" + "\n".join(lines))
    print("\nCommand: python " + " ".join(shlex.quote(arg) for arg in sys.argv))


def main_crossover(args):
    """Exact vs approximate skhash backends by database size (the "auto" threshold).

    Break-even queries: how many queries a fitted NN-descent index must serve
    before its build time is repaid by queries faster than exact search.
    """
    import numba

    numba.set_num_threads(args.threads)
    print(environment(args), flush=True)
    print(
        "\n| codes | brute QPS | nndescent build (s) | nndescent QPS | nndescent recall "
        "| nndescent / brute QPS | break-even queries | others' CPU |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for n in args.crossover_n:
        sub = argparse.Namespace(**{**vars(args), "n": n})
        data = load_data(sub)
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
        print(
            f"| {n:,} | {brute['qps']:,.0f} | {approx['build_s']:.1f} | {approx['qps']:,.0f} | "
            f"{approx['recall']:.3f} | {approx['qps'] / brute['qps']:.2f} | {even} | "
            f"{others:.0%} |",
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
        "--fortunes",
        action="store_true",
        help="codes of the fortunes embeddings (../shared/data) instead of synthetic ones: "
        "12,813 database rows, --queries held-out rows",
    )
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
    parser.add_argument("--scaling", action="store_true", help="scaling table and figure")
    parser.add_argument("--scaling-n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scaling-bits", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument(
        "--scaling-ef",
        type=int,
        nargs="+",
        default=[10, 16, 32, 64, 128],
        help="ef sweep of the scaling table; the lowest reaching recall 0.95 is reported",
    )
    parser.add_argument(
        "--scaling-json",
        default=str(Path(tempfile.gettempdir()) / "skhash_neighbors_scaling.json"),
        help="results file, merged across runs",
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw table and figure from --scaling-json"
    )
    parser.add_argument("--figure", default=str(FIGURE), help="scaling figure file")
    parser.add_argument(
        "--budget",
        type=float,
        default=600,
        metavar="SECONDS",
        help="time limit of one approximate method at one scaling configuration "
        "(build and sweep, in a child process, from --isolate-from codes on)",
    )
    parser.add_argument("--isolate-from", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help="bytes per item of each index")
    parser.add_argument("--memory-bits", type=int, nargs="+", default=[64, 256])
    parser.add_argument(
        "--crossover", action="store_true", help="brute vs nndescent by database size"
    )
    parser.add_argument(
        "--crossover-n", type=int, nargs="+", default=[30_000, 100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--cold", choices=["brute", "nndescent"], help=argparse.SUPPRESS)
    parser.add_argument("--scaling-child", choices=["nndescent", "hnsw"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold:
        cold_child(args)
    elif args.scaling_child:
        scaling_child(args)
    elif args.scaling:
        main_scaling(args)
    elif args.memory:
        main_memory(args)
    elif args.crossover:
        main_crossover(args)
    else:
        main_table(args)


if __name__ == "__main__":
    main()
