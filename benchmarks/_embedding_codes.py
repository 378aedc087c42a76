"""Codes of real embeddings at any size, for the Hamming k-NN benchmarks (issue 13, item 3).

We hold 34,813 real MiniLM embeddings (``../shared/data``: 14,813 fortunes and
20,000 man-page paragraphs, 384-d, L2-normalised), not 10^6; so
:func:`synthetic_embeddings` makes ``n`` rows *from* them:

- both corpora together, in a seeded order; the first ``n_queries`` real rows
  are held out as query sources (never in the database), the other 32,813 are
  the database sources;
- each source's ``n_partners`` nearest database sources by cosine (input space);
- database row ``i``: source ``s = i mod 32,813``, a random partner ``p`` of it,
  ``t ~ U(0, mix)`` and ``(1 - t) x_s + t x_p + N(0, noise^2)`` per coordinate,
  L2-normalised; each query is its held-out real row perturbed the same way
  (a partner among its nearest database sources).

:func:`embedding_codes` fits ``BinaryHashEncoder(n_bits, random_state=0)`` on
those ``n`` rows themselves (its default ``max_samples`` trains on a seeded
sample of 32,768): an encoder fitted on clean rows maps small perturbations of a
row onto the same few codes (54 distinct codes among 50,000 noisy copies), which
would make a search benchmark a benchmark of ties. It reports how many of the
database codes are distinct, and caches the codes in the system temp directory
(:func:`cached_codes`), keyed by the settings and the encoder's source.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import DATA

# skhash modules that do not change the encoder's codes (not in the codes' cache key); the
# encoder's neighbour graph (_knn_graph.py, and the _hamming.py and _threads.py it imports) does
SEARCH_ONLY = {"_neighbors", "_graph.py"}
CORPORA = ("fortunes_minilm.npz", "manpages_minilm.npz")


def encoder_source_key():
    """Short hash of the skhash sources that can change an encoder's codes."""
    import skhash

    source = hashlib.sha1()
    package = Path(skhash.__file__).parent
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] not in SEARCH_ONLY:
            source.update(path.read_bytes())
    return source.hexdigest()[:10]


def cached_codes(name, make):
    """Arrays saved as ``<tempdir>/skhash_<name>.npz``, made by ``make()`` (a dict) if absent."""
    cache = Path(tempfile.gettempdir()) / f"skhash_{name}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return {key: saved[key] for key in saved.files}
    arrays = make()
    # write then rename, so a killed run leaves no half-written cache
    partial_file = cache.with_suffix(".tmp.npz")
    np.savez(partial_file, **arrays)
    os.replace(partial_file, cache)
    return arrays


def real_embeddings():
    """Both corpora's embeddings, float32, one array (34,813 x 384)."""
    return np.concatenate([np.load(DATA / name)["X"].astype(np.float32) for name in CORPORA])


def nearest_rows(X, Y, n_nearest, exclude_self=False, chunk=2048):
    """Indices of each row of ``X``'s ``n_nearest`` rows of ``Y`` by inner product."""
    out = np.empty((len(X), n_nearest), dtype=np.int64)
    for start in range(0, len(X), chunk):
        sims = X[start : start + chunk] @ Y.T
        if exclude_self:
            sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        out[start : start + chunk] = np.argpartition(-sims, n_nearest, axis=1)[:, :n_nearest]
    return out


def perturbed(sources, partners, X, mix, noise, rng, chunk=65_536):
    """Rows ``(1 - t) X[s] + t X[p] + N(0, noise^2)``, L2-normalised, ``t ~ U(0, mix)``.

    ``sources`` are indices into ``X``; ``partners[s]`` the candidate partners
    (indices into ``X``) of the row ``s``, one drawn at random.
    """
    out = np.empty((len(sources), X.shape[1]), dtype=np.float32)
    for start in range(0, len(sources), chunk):  # no float64 temporary of every row
        s = sources[start : start + chunk]
        p = partners[s, rng.integers(0, partners.shape[1], len(s))]
        t = rng.uniform(0, mix, (len(s), 1)).astype(np.float32)
        rows = (1 - t) * X[s] + t * X[p]
        rows += noise * rng.standard_normal(rows.shape, dtype=np.float32)
        out[start : start + chunk] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def synthetic_embeddings(n, n_queries=2000, mix=0.5, noise=0.01, n_partners=10, seed=0):
    """``n`` database rows and ``n_queries`` queries made from the real embeddings.

    See the module docstring. Returns float32 arrays ``(database, queries)``.
    """
    real = real_embeddings()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    held_out, sources = real[order[:n_queries]], real[order[n_queries:]]
    partners = nearest_rows(sources, sources, n_partners, exclude_self=True)
    database = perturbed(np.arange(n) % len(sources), partners, sources, mix, noise, rng)
    # in ``both`` the held-out rows come first, so their partners shift by n_queries
    query_partners = nearest_rows(held_out, sources, n_partners) + n_queries
    both = np.concatenate([held_out, sources])
    queries = perturbed(np.arange(n_queries), query_partners, both, mix, noise, rng)
    return database, queries


def embedding_codes(n_bits, n, n_queries=2000, mix=0.5, noise=0.01):
    """Packed codes of :func:`synthetic_embeddings` and the number of distinct database codes.

    Returns ``(database, queries, n_distinct)``; cached (the fit and the
    encoding of 10^6 rows take minutes).
    """

    def make():
        from skhash import BinaryHashEncoder

        start = time.perf_counter()
        X_db, X_q = synthetic_embeddings(n, n_queries, mix, noise)
        made = f"made {n:,} + {n_queries:,} rows in {time.perf_counter() - start:.0f} s"
        print(f"{made}; fitting BinaryHashEncoder(n_bits={n_bits})...", flush=True)
        encoder = BinaryHashEncoder(n_bits=n_bits, random_state=0).fit(X_db)
        database = np.concatenate(
            [encoder.packbits(X_db[i : i + 100_000]) for i in range(0, n, 100_000)]
        )
        print(f"fitted and encoded in {time.perf_counter() - start:.0f} s", flush=True)
        distinct = len(np.unique(database, axis=0))
        print(f"{distinct:,} distinct codes among the {n:,} database rows", flush=True)
        return dict(database=database, queries=encoder.packbits(X_q), distinct=distinct)

    key = f"{n}x{n_bits}bits_q{n_queries}_mix{mix}_noise{noise}_{encoder_source_key()}"
    arrays = cached_codes(f"embedding_codes_{key}", make)
    return arrays["database"], arrays["queries"], int(arrays["distinct"])


def add_embedding_arguments(parser):
    """The ``--embeddings`` option and its settings (``--mix``, ``--noise``)."""
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="codes of --n rows made from both real corpora (fortunes and man pages): "
        "--queries held-out real rows, database rows (1 - t) x + t x_neighbour + noise "
        "with t ~ U(0, --mix), encoder fitted on them (see _embedding_codes.py)",
    )
    parser.add_argument("--mix", type=float, default=0.5, help="--embeddings: largest t")
    parser.add_argument(
        "--noise", type=float, default=0.01, help="--embeddings: noise s.d. per coordinate"
    )


def load_embedding_codes(args):
    """(packed database, packed queries, description) of ``--embeddings``."""
    database, queries, distinct = embedding_codes(
        args.bits, args.n, args.queries, args.mix, args.noise
    )
    description = (
        f"{args.n:,} {args.bits}-bit codes of rows made from the fortunes and man-page "
        f"embeddings (t ~ U(0, {args.mix}), noise {args.noise}; {distinct:,} distinct)"
    )
    return database, queries, description
