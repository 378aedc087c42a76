"""Codes and methods shared by the Hamming k-NN benchmarks (``neighbors_*.py``).

Codes: clustered (issue 5: 1,000 random centres, 6 random bit flips each),
uniform, the fortunes embeddings' codes, or (``--embeddings``) codes of ``--n``
rows made from both real corpora (:mod:`_embedding_codes`: held-out real rows
as queries, database rows interpolated between a real row and one of its
neighbours plus noise); always bit-packed, as
``BinaryHashEncoder.packbits`` returns them. Methods: skhash's
``HammingNeighbors`` (``"brute"``, ``"nndescent"``), faiss ``IndexBinaryFlat``
and ``IndexBinaryHNSW``, usearch, and numpy's ``bitwise_count``. Each method
returns rows ``dict(method, params, build_s, qps, recall[, ef])``; an
approximate method sweeps its search breadth on one built index, one row per
setting. Recall is the tie-aware distance-recall@k
(:func:`skhash.metrics.distance_recall_at_k`) from distances recomputed from
the returned indices. Needs the ``bench`` extra (faiss-cpu, usearch, matplotlib).
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import json

import numpy as np
from _embedding_codes import (
    add_embedding_arguments,
    cached_codes,
    encoder_source_key,
    load_embedding_codes,
)
from _harness import Disturbance, best_of, load_split, timed, wait_idle

from skhash import HammingNeighbors
from skhash.metrics import distance_recall_at_k

TARGET_RECALL = 0.95


def add_data_arguments(parser, n=200_000):
    """Options choosing the codes, the queries and the threads."""
    parser.add_argument("--n", type=int, default=n, help="database codes")
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
    add_embedding_arguments(parser)
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each method wait up to SECONDS for a 90%% idle CPU",
    )


def data_options(args):
    """Command-line options that reproduce the codes of ``args`` in a child process."""
    options = ["--n", args.n, "--bits", args.bits, "--queries", args.queries]
    options += ["--k", args.k, "--threads", args.threads, "--mix", args.mix, "--noise", args.noise]
    flags = [
        flag for flag in ("--uniform", "--fortunes", "--embeddings") if getattr(args, flag[2:])
    ]
    return [str(option) for option in options] + flags


def make_codes(n_samples, n_bits, n_queries, n_centres=1000, flips=6, uniform=False, seed=0):
    """Database and query bits (unpacked): centres plus ``flips`` random bit flips."""
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
    database embeddings (:func:`_harness.load_split`); cached in the system
    temp directory, keyed by the encoder's source, since the fit takes a minute.
    """
    from skhash import BinaryHashEncoder

    def make():
        X_db, _, X_q, _ = load_split(n_queries=n_queries)
        print(f"fitting BinaryHashEncoder(n_bits={n_bits}) on {len(X_db):,} rows...", flush=True)
        encoder = BinaryHashEncoder(n_bits=n_bits, random_state=0).fit(X_db)
        return dict(database=encoder.packbits(X_db), queries=encoder.packbits(X_q))

    key = f"{n_bits}bits_q{n_queries}_{encoder_source_key()}"
    arrays = cached_codes(f"fortunes_codes_{key}", make)
    return arrays["database"], arrays["queries"]


def load_codes(args):
    """(packed database, packed queries, description) chosen by ``args``."""
    if args.fortunes:
        database, queries = fortunes_codes(args.bits, args.queries)
        return database, queries, f"{len(database):,} fortunes {args.bits}-bit codes"
    if args.embeddings:
        return load_embedding_codes(args)
    database, queries = make_codes(args.n, args.bits, args.queries, uniform=args.uniform)
    kind = "uniform random" if args.uniform else "clustered (1,000 centres, 6 bit flips)"
    description = f"{args.n:,} {kind} {args.bits}-bit codes"
    return np.packbits(database, axis=1), np.packbits(queries, axis=1), description


def as_words(packed):
    """Packed uint8 rows as uint64 words, zero padded to a multiple of 8 bytes."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n_words = max(1, -(-packed.shape[1] // 8))
    padded = np.zeros((len(packed), 8 * n_words), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


class Data:
    """Packed database and query codes with their exact k-NN distances.

    The exact distances come from ``HammingNeighbors(algorithm="brute")``
    unless given (``true_distances``, e.g. from a cache).
    """

    def __init__(self, database, queries, n_bits, k, threads=None, true_distances=None):
        self.database = np.ascontiguousarray(database)
        self.queries = np.ascontiguousarray(queries)
        self.n_bits, self.k = n_bits, k
        self.words, self.query_words = as_words(self.database), as_words(self.queries)
        if true_distances is None:
            exact = HammingNeighbors(
                n_neighbors=k, algorithm="brute", packed=True, n_jobs=threads
            ).fit(self.database)
            true_distances, _ = exact.kneighbors(self.queries)
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
        indices = np.asarray(indices, dtype=np.int64)[:, : self.k]
        xor = self.words[np.maximum(indices, 0)] ^ self.query_words[:, None, :]
        distances = np.bitwise_count(xor).sum(axis=2).astype(np.float64)
        distances[indices < 0] = np.inf  # missing neighbours (faiss pads with -1)
        return distance_recall_at_k(self.true_distances, distances, k=self.k)


def qps(search, n_queries, repeats=5):
    """Queries per second of the fastest of ``repeats`` batches, and its result."""
    seconds, result = best_of(search, repeats)
    return n_queries / seconds, result


def _skhash(algorithm, args, **params):
    return HammingNeighbors(
        n_neighbors=args.k,
        algorithm=algorithm,
        packed=True,
        n_jobs=args.threads,
        random_state=0,
        **params,
    )


def bench_skhash(algorithm, data, args, ef_sweep=(), default_row=True, **params):
    """Warm build and queries; for nndescent, one row per ``ef_search``.

    The nndescent rows are the default ``ef_search="auto"`` (if ``default_row``)
    and each value of ``ef_sweep``, on one built index.
    """
    # compile (or load from numba's cache) everything a fit and a query use
    warm = _skhash(algorithm, args, **params).fit(data.database[:20_000])
    warm.kneighbors(data.queries[:10])
    build_s, nn = timed(lambda: _skhash(algorithm, args, **params).fit(data.database))
    described = ", ".join(f"{key}={value}" for key, value in params.items())
    sweep = [None]
    if algorithm == "nndescent":
        sweep = (["auto"] if default_row or not ef_sweep else []) + list(ef_sweep)
    rows = []
    for ef in sweep:
        setting = described
        if ef is not None:
            nn.set_params(ef_search=ef)
            label = f"ef_search={ef}" + " (default)" * (ef == "auto")
            setting = ", ".join(filter(None, [described, label]))
        speed, indices = qps(
            lambda: nn.kneighbors(data.queries, return_distance=False), len(data.queries)
        )
        row = dict(method=f"skhash {algorithm}", params=setting or "defaults", build_s=build_s)
        rows.append(dict(row, qps=speed, recall=data.recall(indices), ef=ef))
    return rows


def bench_numpy(data, args, chunk=64):
    """np.bitwise_count over uint64 words and np.argpartition, chunked queries."""
    words, query_words, k = data.words, data.query_words, args.k

    def search():
        out = np.empty((len(query_words), k), dtype=np.int64)
        for start in range(0, len(query_words), chunk):
            block = query_words[start : start + chunk]
            dist = np.bitwise_count(block[:, None, :] ^ words[None, :, :]).sum(axis=2)
            out[start : start + chunk] = np.argpartition(dist, k - 1, axis=1)[:, :k]
        return out

    speed, indices = qps(search, len(query_words), repeats=2)
    params = f"chunks of {chunk} queries, 1 thread"
    return [
        dict(method="numpy bitwise_count", params=params, build_s=0.0, qps=speed,
             recall=data.recall(indices))
    ]  # fmt: skip


def bench_faiss_flat(data, args):
    import faiss

    faiss.omp_set_num_threads(args.threads)

    def build():
        index = faiss.IndexBinaryFlat(data.n_bits)
        index.add(data.database)
        return index

    build_s, index = timed(build)
    speed, (_, indices) = qps(lambda: index.search(data.queries, args.k), len(data.queries))
    return [
        dict(method="faiss IndexBinaryFlat", params="exact", build_s=build_s, qps=speed,
             recall=data.recall(indices))
    ]  # fmt: skip


def bench_faiss_hnsw(data, args, ef_sweep, M=32):
    import faiss

    faiss.omp_set_num_threads(args.threads)

    def build():
        index = faiss.IndexBinaryHNSW(data.n_bits, M)
        index.add(data.database)
        return index

    build_s, index = timed(build)
    rows = []
    for ef in ef_sweep:
        index.hnsw.efSearch = ef
        speed, (_, indices) = qps(lambda: index.search(data.queries, args.k), len(data.queries))
        rows.append(
            dict(method="faiss IndexBinaryHNSW", params=f"M={M}, efSearch={ef}",
                 build_s=build_s, qps=speed, recall=data.recall(indices), ef=ef)
        )  # fmt: skip
    return rows


def bench_usearch(data, args, ef_sweep):
    from usearch.index import Index

    def build():
        index = Index(ndim=data.n_bits, metric="hamming", dtype="b1")
        index.add(np.arange(len(data.database)), data.database, threads=args.threads)
        return index

    build_s, index = timed(build)
    rows = []
    for ef in ef_sweep:
        index.expansion_search = ef
        speed, matches = qps(
            lambda: index.search(data.queries, args.k, threads=args.threads), len(data.queries)
        )
        params = f"defaults (connectivity 16), expansion_search={ef}"
        rows.append(
            dict(method="usearch", params=params, build_s=build_s, qps=speed,
                 recall=data.recall(matches.keys.astype(np.int64)), ef=ef)
        )  # fmt: skip
    return rows


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
            if verbose:
                print(f"  {json.dumps(row)}", flush=True)
        rows += new_rows
    return rows


def lowest_reaching(rows, target=TARGET_RECALL):
    """The row of the smallest numeric ``ef`` reaching ``target`` recall, else the best row."""
    swept = [row for row in rows if isinstance(row.get("ef"), int)] or rows
    reaching = [row for row in swept if row["recall"] >= target]
    if reaching:
        return min(reaching, key=lambda row: row["ef"])
    return max(swept, key=lambda row: row["recall"])


def qps_at_recall(rows, target=TARGET_RECALL):
    """(QPS at distance-recall ``target``, how it was read) from an ``ef`` sweep.

    Interpolated linearly in recall on log QPS between the two settings that
    straddle ``target``; if even the smallest ``ef`` exceeds it, that row's QPS
    (a lower bound of the QPS at ``target``); None if no setting reaches it.
    """
    swept = sorted((row for row in rows if isinstance(row.get("ef"), int)), key=lambda r: r["ef"])
    if not swept or max(r["recall"] for r in swept) < target:
        return None, "never reaches the target"
    if swept[0]["recall"] >= target:
        first = swept[0]
        return first["qps"], f"ef={first['ef']} already at recall {first['recall']:.3f}"
    for low, high in zip(swept[:-1], swept[1:], strict=True):
        if low["recall"] < target <= high["recall"]:
            t = (target - low["recall"]) / (high["recall"] - low["recall"])
            qps = np.exp((1 - t) * np.log(low["qps"]) + t * np.log(high["qps"]))
            return float(qps), f"between ef={low['ef']} and {high['ef']}"
    best = max(swept, key=lambda r: r["recall"])
    return best["qps"], f"ef={best['ef']} (recall not monotone in ef)"
