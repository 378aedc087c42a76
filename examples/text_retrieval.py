"""Semantic search over quotations with 16-byte codes instead of 1,536-byte vectors.

Uses 14,813 quotations (Debian's ``fortunes``) embedded with the sentence
model all-MiniLM-L6-v2 (384 float dimensions, see ``../shared/data/README.md``
beside the repository). 500 quotations are held out as queries; the rest
form the database. :class:`~skhash.BinaryHashEncoder` learns 128-bit codes
on the database (no labels), :class:`~skhash.HammingNeighbors` searches them,
and the answers are compared with exact float cosine search and with SimHash
codes of the same length:

- for one query, its quotation and its nearest quotations by Hamming distance
  and by cosine similarity;
- over all queries, the share of the 10 cosine neighbours found among the 10
  and the 100 nearest codes (recall 10@10, 10@100).

The figure shows, on 2,000 database quotations, the Hamming distances between
each quotation and its 10 cosine neighbours against those of random pairs,
for both codes, and the per-epoch histogram of the encoder's outputs.

Without the data file the script explains how to embed your own texts and
exits. Set ``SKHASH_FORTUNES`` to use another ``.npz`` with the same keys
(``X``: embeddings, ``text``: strings).

    python examples/text_retrieval.py [figure.png] [--query N]   # about a minute
    SKHASH_FAST=1 python examples/text_retrieval.py               # seconds, for the tests
"""

import argparse
import os
import textwrap
import time
from pathlib import Path

import numpy as np

from skhash import BinaryHashEncoder, HammingNeighbors, SimHash
from skhash.metrics import recall_at_k

FAST = bool(os.environ.get("SKHASH_FAST"))
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SKHASH_FORTUNES")
            or REPO.parent / "shared" / "data" / "fortunes_minilm.npz")
N_BITS = 32 if FAST else 128
N_QUERIES = 50 if FAST else 500
N_DATABASE = 2000 if FAST else None  # None: all the rest
ENCODER = dict(hidden_layer_sizes=(32,), max_epochs=2) if FAST else dict(max_epochs=20)

HOW_TO = """\
The example data {path} is not here.

To search your own texts, embed them with any sentence-embedding model and save
the vectors and texts, e.g. with sentence-transformers:

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    X = model.encode(texts, normalize_embeddings=True)   # (n, 384) float32
    np.savez("my_texts.npz", X=X, text=np.array(texts))

then run  SKHASH_FORTUNES=my_texts.npz python examples/text_retrieval.py
(a few thousand texts are enough to learn codes). The core of it is:

    encoder = BinaryHashEncoder(n_bits=128).fit(X)
    index = HammingNeighbors(n_neighbors=10, packed=True).fit(encoder.packbits(X))
    distances, indices = index.kneighbors(encoder.packbits(X_query))
"""


def short(text, width=110):
    return textwrap.shorten(str(text), width=width, placeholder=" ...")


def cosine_top_k(queries, database, k, exclude_self=False):
    """Exact top-k database rows by cosine similarity, best first."""
    sims = queries @ database.T
    if exclude_self:  # queries are the database: row i is not its own neighbour
        np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(sims, top, axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", nargs="?", type=Path,
                        default=Path(__file__).parent / "figures" / "text_retrieval.png")
    parser.add_argument("--query", type=int, default=0,
                        help=f"which held-out query to show (0 to {N_QUERIES - 1})")
    args = parser.parse_args()

    if not DATA.exists():
        print(HOW_TO.format(path=DATA))
        return

    data = np.load(DATA)
    X = data["X"].astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    texts = data["text"]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    queries, database = order[:N_QUERIES], order[N_QUERIES:]
    if N_DATABASE is not None:
        database = database[:N_DATABASE]
    X_query, X_db = X[queries], X[database]
    print(f"{len(X_db)} database quotations, {len(X_query)} queries, "
          f"{X.shape[1]} float dimensions = {X.shape[1] * 4} bytes per item (float32)")

    start = time.perf_counter()
    encoder = BinaryHashEncoder(n_bits=N_BITS, random_state=0, **ENCODER).fit(X_db)
    print(f"BinaryHashEncoder: {N_BITS} bits = {N_BITS // 8} bytes per item, fitted in "
          f"{time.perf_counter() - start:.0f} s, distance to nearest vertex "
          f"{encoder.history_[-1, 'vertex_dist']:.3f}")
    simhash = SimHash(n_bits=N_BITS, random_state=0).fit(X_db)

    true_top, true_sims = cosine_top_k(X_query, X_db, 10)
    results = {}
    for name, model in (("BinaryHashEncoder", encoder), ("SimHash", simhash)):
        codes = np.packbits(model.transform(X_db), axis=1)
        index = HammingNeighbors(n_neighbors=100, packed=True).fit(codes)
        results[name] = index.kneighbors(np.packbits(model.transform(X_query), axis=1))
    print(f"\n{'codes':<18}  recall 10@10  recall 10@100   (cosine top 10 in Hamming top k)")
    for name, (_, retrieved) in results.items():
        print(f"{name:<18}  {recall_at_k(true_top, retrieved, k=10):12.3f}  "
              f"{recall_at_k(true_top, retrieved, k=100):13.3f}")

    q = args.query % N_QUERIES
    distances, retrieved = results["BinaryHashEncoder"]
    print(f"\nQuery: {short(texts[queries[q]], 200)}")
    print(f"\n  nearest by Hamming distance ({N_BITS}-bit codes):")
    for d, j in zip(distances[q, :5], retrieved[q, :5], strict=True):
        print(f"    {d:3d}  {short(texts[database[j]])}")
    print("\n  nearest by cosine similarity (float embeddings):")
    for s, j in zip(true_sims[q, :5], true_top[q, :5], strict=True):
        rank = np.flatnonzero(retrieved[q] == j)
        where = f"Hamming rank {rank[0] + 1}" if len(rank) else "not in Hamming top 100"
        print(f"    {s:.2f}  {short(texts[database[j]], 90)}  [{where}]")

    import matplotlib.pyplot as plt

    from skhash.plotting import plot_code_histograms, plot_hamming_distances

    subset = X_db[:2000]
    neighbors, _ = cosine_top_k(subset, subset, 10, exclude_self=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    for ax, (name, model) in zip(axes, (("BinaryHashEncoder", encoder), ("SimHash", simhash)),
                                 strict=False):
        plot_hamming_distances(model.transform(subset), neighbors, random_state=0, ax=ax,
                               title=f"{name}, {N_BITS} bits")
    axes[1].sharex(axes[0])
    plot_code_histograms(encoder, ax=axes[2])
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=80)
    print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
