"""How fast is skhash from a user's first call, next to scikit-learn and faiss? (issue 13)

Each whole-process figure is a fresh Python process (interpreter start,
imports, data, index, 100 queries), timed by the parent, after one untimed
run of the same process so numba's cache is filled ("a machine where skhash
has run before"); best of ``--repeat``. Data: ``--n`` uniform random 64-bit
codes and 100 random queries, k=10, seeded.

Targets (issue 13): import <= 1.3x ``import sklearn.neighbors``; first exact
answer <= 1.3x (``import sklearn.neighbors`` + faiss ``IndexBinaryFlat``
process); first approximate answer <= 1.5x (``import sklearn.neighbors`` +
faiss ``IndexBinaryHNSW(M=32)`` process); exact QPS >= 3x faiss flat, and the
fraction of a minimal popcount loop (the same scan with no top-k) reached.

Serving a saved index (issue 13, item 6): a ``HashIndex`` of ``--n`` rows (the
fortunes embeddings tiled with N(0, 0.01^2) noise per coordinate; a 64-bit
encoder trained briefly, ``max_epochs=2``, as the network's size, not its
quality, sets the cost) saved to disk; the process loads it, encodes 100
held-out float queries with the numpy network and answers them (default
``n_candidates``, float16 rescoring from the memory-mapped vectors), and checks
that torch was never imported. Next to it, faiss processes that read an index
file and answer the same 100 queries: ``IndexBinaryFlat`` of the same codes
(query codes given) and the float ``IndexFlatIP`` the user would otherwise load.

Usage::

    python benchmarks/first_call.py
    python benchmarks/first_call.py --quick    # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import subprocess
import sys
import tempfile
import time

import numpy as np
from _harness import (
    best_of,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
)

DATA = """
import numpy as np
rng = np.random.default_rng(0)
codes = rng.integers(0, 256, ({n}, 8), dtype=np.uint8)
queries = rng.integers(0, 256, (100, 8), dtype=np.uint8)
"""

PROCESSES = {
    "import sklearn.neighbors": "import sklearn.neighbors",
    "from skhash import HammingNeighbors": "from skhash import HammingNeighbors",
    "skhash exact (brute)": DATA
    + """
from skhash import HammingNeighbors
nn = HammingNeighbors(n_neighbors=10, packed=True, algorithm="brute").fit(codes)
nn.kneighbors(queries)
""",
    "faiss IndexBinaryFlat": DATA
    + """
import faiss
index = faiss.IndexBinaryFlat(64)
index.add(codes)
index.search(queries, 10)
""",
    "skhash approximate (nndescent)": DATA
    + """
from skhash import HammingNeighbors
nn = HammingNeighbors(n_neighbors=10, packed=True, algorithm="nndescent", random_state=0)
nn.fit(codes).kneighbors(queries)
""",
    "faiss IndexBinaryHNSW(M=32)": DATA
    + """
import faiss
index = faiss.IndexBinaryHNSW(64, 32)
index.add(codes)
index.search(queries, 10)
""",
}


SERVE = {
    "skhash HashIndex.load + encode + answer (no torch)": """
import sys
import numpy as np
from skhash import HashIndex
queries = np.load("{dir}/queries.npy")
index = HashIndex.load("{dir}/index")
index.kneighbors(queries, 10)
assert "torch" not in sys.modules, "torch was imported"
""",
    "faiss IndexBinaryFlat: read + answer (codes given)": """
import faiss
import numpy as np
index = faiss.read_index_binary("{dir}/codes.faissindex")
index.search(np.load("{dir}/query_codes.npy"), 10)
""",
    "faiss IndexFlatIP (float32): read + answer": """
import faiss
import numpy as np
index = faiss.read_index("{dir}/float.faissindex")
queries = np.load("{dir}/queries.npy")
faiss.normalize_L2(queries)
index.search(queries, 10)
""",
}


def save_serving_files(directory, n):
    """The saved HashIndex, faiss index files and queries that ``SERVE`` reads."""
    import faiss
    from sklearn.frozen import FrozenEstimator

    from skhash import BinaryHashEncoder, HashIndex

    X_db, _, X_q, _ = load_split()
    rng = np.random.default_rng(0)
    X = X_db[np.arange(n) % len(X_db)] + 0.01 * rng.standard_normal((n, 384), np.float32)
    encoder = BinaryHashEncoder(n_bits=64, max_epochs=2, random_state=0).fit(X_db)
    index = HashIndex(encoder=FrozenEstimator(encoder)).fit(X)
    index.save(f"{directory}/index")
    queries = np.ascontiguousarray(X_q[:100])
    np.save(f"{directory}/queries.npy", queries)
    np.save(f"{directory}/query_codes.npy", index._encode(queries))
    flat = faiss.IndexBinaryFlat(64)
    flat.add(index.codes_)
    faiss.write_index_binary(flat, f"{directory}/codes.faissindex")
    flat_ip = faiss.IndexFlatIP(X.shape[1])
    flat_ip.add(X / np.linalg.norm(X, axis=1, keepdims=True))
    faiss.write_index(flat_ip, f"{directory}/float.faissindex")


def whole_process(code, repeat):
    """Best wall time of ``repeat`` fresh processes running ``code``, after one warm-up."""

    def run():
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    run()
    return min(run() for _ in range(repeat))


def reference_loop():
    """A minimal popcount scan: XOR, popcount, sum; no top-k (the machine's limit)."""
    from numba import njit, prange, types
    from numba.extending import intrinsic

    @intrinsic
    def popcount(typingctx, x):
        if x != types.uint64:
            return None
        return types.uint64(types.uint64), lambda ctx, builder, sig, args: builder.ctpop(args[0])

    @njit(parallel=True)
    def scan(queries, database, out):
        for q in prange(queries.shape[0]):
            w = queries[q]
            total = np.uint64(0)
            for j in range(database.shape[0]):
                total += popcount(w ^ database[j])
            out[q] = total

    return scan


def qps(args, codes, queries):
    """Exact k-NN queries per second: skhash brute, faiss flat, reference loop."""
    import faiss

    from skhash import HammingNeighbors

    nn = HammingNeighbors(n_neighbors=10, packed=True, algorithm="brute").fit(codes)
    nn.kneighbors(queries[:10])
    seconds, (distances, _) = best_of(lambda: nn.kneighbors(queries), args.repeat)
    rates = {"skhash brute": len(queries) / seconds}

    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    seconds, (faiss_distances, _) = best_of(lambda: index.search(queries, 10), args.repeat)
    rates["faiss IndexBinaryFlat"] = len(queries) / seconds
    # same answer (distances: ties may be ordered differently)
    assert np.array_equal(distances, faiss_distances)

    scan = reference_loop()
    words, query_words = codes.view(np.uint64).ravel(), queries.view(np.uint64).ravel()
    out = np.empty(len(queries), dtype=np.uint64)
    scan(query_words[:10], words, out[:10])
    seconds, _ = best_of(lambda: scan(query_words, words, out), args.repeat)
    rates["popcount reference loop"] = len(queries) / seconds
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="codes in the index")
    parser.add_argument("--n-queries", type=int, default=2000, help="queries for the QPS")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--no-serve", action="store_true", help="skip the saved-index rows")
    args = parse_args(parser, {"n": 5000, "n_queries": 200, "repeat": 1})
    print(machine_line(extra=("faiss-cpu",)))

    seconds = {}
    print_header("whole process", "seconds", left=1)
    for name, code in PROCESSES.items():
        seconds[name] = whole_process(code.format(n=args.n), args.repeat)
        print_row(name, f"{seconds[name]:.2f}")

    if not args.no_serve:
        with tempfile.TemporaryDirectory() as directory:
            save_serving_files(directory, args.n)
            for name, code in SERVE.items():
                seconds[name] = whole_process(code.format(dir=directory), args.repeat)
                print_row(name, f"{seconds[name]:.2f}")

    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (args.n, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, (args.n_queries, 8), dtype=np.uint8)
    rates = qps(args, codes, queries)
    print()
    print_header(f"exact k=10 on {args.n:,} codes", "QPS", left=1)
    for name, rate in rates.items():
        print_row(name, f"{rate:,.0f}")

    sk = seconds["import sklearn.neighbors"]
    ratios = [
        ("import", seconds["from skhash import HammingNeighbors"] / sk, "<= 1.3"),
        (
            "first exact answer",
            seconds["skhash exact (brute)"] / (sk + seconds["faiss IndexBinaryFlat"]),
            "<= 1.3",
        ),
        (
            "first approximate answer",
            seconds["skhash approximate (nndescent)"]
            / (sk + seconds["faiss IndexBinaryHNSW(M=32)"]),
            "<= 1.5",
        ),
        (
            "exact QPS vs faiss flat",
            rates["skhash brute"] / rates["faiss IndexBinaryFlat"],
            ">= 3",
        ),
        (
            "exact QPS vs popcount loop",
            rates["skhash brute"] / rates["popcount reference loop"],
            "(fraction of the limit)",
        ),
    ]
    if not args.no_serve:
        serve = seconds["skhash HashIndex.load + encode + answer (no torch)"]
        ratios += [
            (
                "load + encode + answer vs faiss binary flat",
                serve / seconds["faiss IndexBinaryFlat: read + answer (codes given)"],
                "(reported)",
            ),
            (
                "load + encode + answer vs faiss float flat",
                serve / seconds["faiss IndexFlatIP (float32): read + answer"],
                "(reported)",
            ),
        ]
    print()
    print_header("ratio", "measured", "target", left=1)
    for name, ratio, target in ratios:
        print_row(name, f"{ratio:.2f}", target)
    print_command()


if __name__ == "__main__":
    main()
